"""hookmq plugin: redis_store."""
