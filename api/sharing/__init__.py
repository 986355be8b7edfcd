"""Processors, sharing with them, and the disclosure ledger (policy section 3)."""
