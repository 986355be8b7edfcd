"""Authorization: the registry of categories, purposes, actions and roles, and (soon) Casbin."""
