"""A verifier for Custos's decision log that depends on nothing of Custos: only the Python
standard library and the `cryptography` package, and the published formats of
docs/AUDIT_LOG.md (RFC 9162 Merkle trees, C2SP signed-note checkpoints and cosignatures,
the leaf format). Custos uses it to sign and check; an auditor can copy this folder and run
it elsewhere (`python -m verifier --help`)."""
