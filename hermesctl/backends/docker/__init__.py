"""backends.docker."""
