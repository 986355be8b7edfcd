"""Telling the recipients of a customer's data about erasures, rectifications and withdrawn
consents (GDPR Article 19)."""
