"""Reserved for the gossip clustering plugin; not implemented yet and not registered."""
