"""The record of processing activities (GDPR Article 30)."""
