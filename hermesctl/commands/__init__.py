"""One module per command; the CLI layer only parses and hands over."""
