"""In-container supervision helpers for Hermes gateway slots (stdlib only, runs as hermes)."""
