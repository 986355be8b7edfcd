"""Custos: the GraphQL service that keeps a shop's privacy policy."""
