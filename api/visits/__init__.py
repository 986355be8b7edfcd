"""Automatic collection of visit events (policy section 1): `POST /collect`."""
