"""Compose awareness: which compose project the current directory stands for.

Decided from what compose recorded on the containers, not by re-reading the compose file (whose
`name:` may need interpolation, .env files and profiles that only compose resolves): compose labels
each container with its project, `com.docker.compose.project.working_dir` and
`com.docker.compose.project.config_files`. In a directory holding a compose file, the project is
COMPOSE_PROJECT_NAME when set (compose's own first choice), else the project of the containers
whose labels name this directory or one of its compose files.
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hermesctl.core.errors import UsageError

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"


@dataclass(frozen=True)
class ComposeDir:
    directory: Path          # resolved
    files: tuple[Path, ...]  # the compose files in it, resolved
    env_project: str | None  # COMPOSE_PROJECT_NAME, normalised as compose does

    def describe(self) -> str:
        return f"{self.files[0].name} in {self.directory}"


def _normalize(name: str) -> str:
    # Compose's own rule: lowercase, only [a-z0-9_-], must start with a letter or digit.
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def detect(directory: Path | None = None) -> ComposeDir | None:
    """The compose files of `directory` (default: cwd), or None when it holds none."""
    directory = (directory or Path.cwd()).resolve()
    files = tuple(directory / f for f in COMPOSE_FILES if (directory / f).is_file())
    if not files:
        return None
    env = _normalize(os.environ.get("COMPOSE_PROJECT_NAME", ""))
    return ComposeDir(directory, files, env or None)


def started_here(scope: ComposeDir, labels: dict) -> bool:
    """Did compose start this container from `scope`'s directory or one of its files?"""
    if labels.get(WORKING_DIR) and Path(labels[WORKING_DIR]) == scope.directory:
        return True
    recorded = [Path(f) for f in labels.get(CONFIG_FILES, "").split(",") if f]
    return any(f in scope.files for f in recorded)


def project_of(scope: ComposeDir, containers) -> str | None:
    """The one compose project started from `scope` among `containers` (with labels), or None.
    Several projects from one directory cannot be told apart: the user must name one."""
    found = sorted({c.compose_project for c in containers if c.compose_project and started_here(scope, c.labels)})
    if len(found) > 1:
        raise UsageError(f"several compose projects were started from {scope.describe()} "
                         f"({', '.join(found)}): choose one with --project")
    return found[0] if found else None


def request_scope(*, hosts: list, contexts: list, project: str | None, fleet_file: str | None,
                  swarm: object) -> dict:
    """What a command asks about, as one comparable value: its endpoint options and, where no
    project or swarm is named, the compose directory it runs in (which narrows every command
    there). A running `serve` answers a command only when their scopes are equal (one rule
    for the CLI, the fast path and the server)."""
    scope = {"hosts": list(hosts), "contexts": list(contexts), "project": project,
             "fleet_file": fleet_file, "swarm": swarm}
    here = None if (project or swarm) else detect()
    if here is not None:
        scope["compose_dir"] = {"directory": str(here.directory), "project_env": here.env_project}
    return scope
