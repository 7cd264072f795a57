"""pytest fixtures for hookmq (being written: broker_config, broker, mqtt_client)."""
