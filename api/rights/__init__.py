"""Data-subject rights (policy section 5.1): access, rectification and erasure requests."""
