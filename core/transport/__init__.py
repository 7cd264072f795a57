"""hookmq.transport."""
