"""Anonymised insights (policy section 3, note): counts with small groups suppressed."""
