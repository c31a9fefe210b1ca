# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""In-container supervision helpers for Hermes gateway slots (stdlib only, runs as hermes)."""
