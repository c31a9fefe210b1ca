"""Compose awareness: which compose project the current directory stands for.

Decided from what compose recorded on the containers, not by re-reading the compose file (whose
`name:` may need interpolation, .env files and profiles that only compose resolves): compose labels
each container with its project, `com.docker.compose.project.working_dir` and
`com.docker.compose.project.config_files`. In a directory holding a compose file, the project is
COMPOSE_PROJECT_NAME when set (compose's own first choice), else the project of the containers
whose labels name this directory or one of its compose files.
"""
import functools
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
                  swarm: object, engine: str | None = None) -> dict:
    """What a command asks about, as one comparable value: its endpoint options and, where no
    project or swarm is named, the compose directory it runs in (which narrows every command
    there). A running `serve` answers a command only when their scopes are equal (one rule
    for the CLI, the fast path and the server)."""
    scope = {"hosts": list(hosts), "contexts": list(contexts), "project": project,
             "fleet_file": fleet_file, "swarm": swarm}
    if engine is not None:  # --engine given: answered by a serve that was given the same
        scope["engine"] = engine
    here = None if (project or swarm) else detect()
    if here is not None:
        scope["compose_dir"] = {"directory": str(here.directory), "project_env": here.env_project}
    return scope


PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
CONFIG_HASH = "com.docker.compose.config-hash"
IMAGE_LABEL = "com.docker.compose.image"
HASH_TIMEOUT_S = 30


def _run_hashes(argv: list[str], cwd: str) -> dict[str, str]:
    """Every service's hash, from compose itself (`config --hash '*'`): {service: hash}."""
    import subprocess
    try:
        res = subprocess.run([*argv, "config", "--hash", "*"], capture_output=True, text=True,
                             timeout=HASH_TIMEOUT_S, cwd=cwd, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found = {}
    for line in res.stdout.splitlines() if res.returncode == 0 else []:
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[1]):
            found[parts[0]] = parts[1]
    return found


@functools.lru_cache(maxsize=32)
def _hashes(argv: tuple[str, ...], cwd: str, image: str | None) -> dict[str, str]:
    """The project's service hashes as it is here (`image` None) or with every service on
    `image`: a service's hash is of its own config alone, so one override naming them all gives
    each the hash it will have once the project names the image. Once per project and image in
    a run, however many of its containers a batch upgrades."""
    import json
    import tempfile
    if image is None:
        return _run_hashes(list(argv), cwd)
    services = _hashes(argv, cwd, None)
    if not services:
        return {}
    with tempfile.TemporaryDirectory(prefix="hermesctl-compose-") as tmp:
        override = Path(tmp) / "image.yaml"
        # JSON is YAML: the names go in quoted, whatever they hold.
        override.write_text(json.dumps({"services": {name: {"image": image} for name in services}}),
                            encoding="utf-8")
        return _run_hashes([*argv, "-f", str(override)], cwd)


def coherent_labels(labels: dict, old_image_id: str, new_image: str, new_image_id: str) -> tuple[dict, str]:
    """What a container compose created must carry once hermesctl recreates it on `new_image`,
    so that `docker compose up -d`, with the project naming `new_image` (HERMES_IMAGE in .env),
    finds it up to date: compose recreates a container whose `config-hash` label differs from
    its hash of the service's config (which includes `image`), or whose `image` label differs
    from the image id it expects. The hash is compose's own (`docker compose config --hash`, with
    an override naming the new image), and only when compose, run here on the files the
    container records, still hashes the project to what the container was created with (or
    already to the new image): otherwise this machine does not see the project the container
    came from, and nothing is claimed. Returns (labels to set, a note for the operator)."""
    import shutil
    project, service = labels.get(PROJECT), labels.get(SERVICE)
    if not project or not service or CONFIG_HASH not in labels:
        return {}, ""
    workdir = labels.get(WORKING_DIR) or ""
    files = [f for f in (labels.get(CONFIG_FILES) or "").split(",") if f]
    if not workdir or not Path(workdir).is_dir() or not files or not all(Path(f).is_file() for f in files):
        return {}, f"compose project {project}: its files are not on this machine, so its config hash was kept"
    docker = shutil.which("docker")
    if docker is None:
        return {}, f"compose project {project}: no docker CLI here to ask compose for its config hash"
    argv = [docker, "compose", "--project-directory", workdir, "-p", project]
    for f in files:
        argv += ["-f", f]
    current = _hashes(tuple(argv), workdir, None).get(service)
    wanted = _hashes(tuple(argv), workdir, new_image).get(service)
    if current is None or wanted is None:
        return {}, f"compose project {project}: `docker compose config --hash` did not answer; config hash kept"
    if current not in (labels[CONFIG_HASH], wanted):
        return {}, (f"compose project {project}: compose here hashes {service} differently from when it was "
                    "created (another .env or environment?); config hash kept")
    made = {CONFIG_HASH: wanted}
    if labels.get(IMAGE_LABEL) == old_image_id:
        made[IMAGE_LABEL] = new_image_id
    return made, ""
