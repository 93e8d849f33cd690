"""The alerts and rules pages of the admin window."""
