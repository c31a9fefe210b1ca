"""Compose awareness: which compose project the current directory belongs to."""
import os
import re
from pathlib import Path

import yaml

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def _normalize(name: str) -> str:
    # Compose's own rule: lowercase, only [a-z0-9_-], must start with a letter or digit.
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def detect_project(directory: Path | None = None) -> str | None:
    """The compose project of `directory` (default: cwd) when it holds a compose file:
    COMPOSE_PROJECT_NAME, else the file's `name:`, else the directory name."""
    directory = directory or Path.cwd()
    compose_file = next((directory / f for f in COMPOSE_FILES if (directory / f).is_file()), None)
    if compose_file is None:
        return None
    if os.environ.get("COMPOSE_PROJECT_NAME"):
        return _normalize(os.environ["COMPOSE_PROJECT_NAME"])
    try:
        data = yaml.safe_load(compose_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    name = data.get("name") if isinstance(data, dict) else None
    return _normalize(str(name)) if name else _normalize(directory.resolve().name)
