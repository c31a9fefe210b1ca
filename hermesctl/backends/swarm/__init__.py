"""backends.swarm."""
