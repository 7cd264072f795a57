"""hookmq.engine."""
