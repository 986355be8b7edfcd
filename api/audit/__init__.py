"""The decision log for auditors, and the customer's view of who accessed their data."""
