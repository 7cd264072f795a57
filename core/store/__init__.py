"""hookmq.store."""
