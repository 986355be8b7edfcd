"""Retention (policy section 6): how long each category is kept, and the purge that keeps
that promise (batched, honouring legal holds, summarised in the decision log)."""
