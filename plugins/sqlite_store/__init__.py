"""hookmq plugin: sqlite_store."""
