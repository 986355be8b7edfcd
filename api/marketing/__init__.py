"""Marketing (policy sections 2 and 5.2): who marketing may reach, and campaigns."""
