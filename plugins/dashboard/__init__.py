"""hookmq plugin: dashboard."""
