"""hookmq plugin: auth."""
