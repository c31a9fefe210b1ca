"""The operations engine: what commands ask for, over any backend (hermesctl.backends.base).
Commands parse, make one call here, and render; nothing here imports a command or the server."""
