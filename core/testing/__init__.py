"""hookmq.testing: helpers for testing hookmq and its plugins (pytest fixtures, a real Redis, the store contract suite)."""
