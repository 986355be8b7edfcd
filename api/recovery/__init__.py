"""Account recovery: password reset by a mailed link, and the verification mail again."""
