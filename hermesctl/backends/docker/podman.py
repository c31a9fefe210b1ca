"""Podman behind the Docker backend: every way Podman's Docker-compatible API differs from
Docker's, in this one module. A Podman endpoint is a DockerBackend endpoint (same listing, execs,
archives, events, lifecycle) whose `engine` is "podman"; what the engine does differently goes
through its `Dialect` (`dialect(endpoint)`), never around the seam.

Which engine answers is read from the endpoint's own answer to /_ping, the request both clients
(the SDK's and hermesctl.backends.docker.unix_api) make anyway: Podman stamps every answer with a
`Libpod-Api-Version` header and a `Server: Libpod/...` (its /version names the same thing, a
component "Podman Engine"); dockerd answers `Server: Docker/...`. `--engine` names it instead,
and is refused when the endpoint's answer says the other engine.

The differences, as Podman 4.3's compat API shows them (tests/test_podman.py runs them):
  - inspect reports ulimits as `RLIMIT_NOFILE`, which its own create refuses (`nofile` wanted);
  - inspect's Env holds what Podman adds to every container (`container=podman`, `HOSTNAME`,
    `TERM=xterm`, `HOME=/root` for root): not the operator's settings, so not copied to a new
    container (Podman adds its own again);
  - an image is named `localhost/NAME` once Podman has resolved a short NAME;
  - get_archive of a stopped container names a volume's entries "" and "/x" (Docker: "data",
    "data/x"), and of any container gives every entry the container user's ids (its names kept);
  - put_archive at "/" into a stopped container writes under a volume's mount point in the
    image's tree, not into the volume;
  - an exec in a stopped container is refused with 500 (dockerd: 409), and one whose container
    exits is forgotten at once (500 "no such exec session");
  - Podman runs healthchecks with systemd timers: where Podman found no systemd (its cgroup
    manager is then cgroupfs, containers/common's default), a health status stays `starting`
    for ever, so a wait for `healthy` would never end (the health gate's other gate decides);
  - the Status text of a listing carries no health: `ps` shows none.
"""
from dataclasses import dataclass
from typing import Mapping

from hermesctl.core.errors import HermesctlError, UsageError

DOCKER, PODMAN = "docker", "podman"
ENGINES = (DOCKER, PODMAN)
LIBPOD_HEADER = "libpod-api-version"
# Environment entries Podman puts in every container it creates, whatever was asked.
PODMAN_ENV = ("container=podman", "TERM=xterm")


def engine_from_ping(headers: Mapping) -> str | None:
    """The engine a /_ping answer's headers name (any mapping, names in any case, values str or
    bytes): podman, docker, or None when they name neither (a proxy in between)."""
    norm = {}
    for name, value in headers.items():
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        norm[name.lower()] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    server = norm.get("server", "")
    if LIBPOD_HEADER in norm or server.startswith("Libpod/"):
        return PODMAN
    if server.startswith("Docker/"):
        return DOCKER
    return None


def choose(detected: str | None, asked: str | None, where: str) -> str:
    """The engine to speak to an endpoint: `asked` (--engine) unless the endpoint said the other
    one (a usage error: the wrong dialect would recreate containers wrongly), else what it said,
    else Docker."""
    if asked is not None:
        if asked not in ENGINES:
            raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, not {asked[:40]!r}")
        if detected is not None and detected != asked:
            raise UsageError(f"the endpoint {where} answers as {detected.capitalize()}, not "
                             f"{asked.capitalize()} (--engine {asked})")
        return asked
    return detected or DOCKER


@dataclass(frozen=True)
class Dialect:
    """Docker's own API: the reference, nothing to translate."""
    name: str = DOCKER

    def creation_inspect(self, inspect: dict) -> dict:
        """A container's inspect as Docker reports it (hermesctl.backends.docker.recreate reads that)."""
        return inspect

    def image_name(self, ref: str) -> str:
        """An image name as the operator writes it."""
        return ref

    def runs_healthchecks(self, daemon) -> bool:
        """Whether a configured healthcheck will ever give a status on this endpoint."""
        return True

    # An archive's entries carry their owners' ids (get_archive): a rollback can give back the
    # backup's owners exactly.
    archive_owners: bool = True

    def member_name(self, name: str, root: str) -> str:
        """An entry of get_archive(.../ROOT) named as Docker names it: ROOT, ROOT/x."""
        return name

    def exec_found_it_stopped(self, error) -> bool:
        """Whether an exec's API error (the SDK's APIError) says the container is not running."""
        return error.status_code == 409

    def put_tree(self, daemon, ref: str, spool, volume: str) -> None:
        """Extract `spool` (a tar whose entries are named from "/", all under `volume`, checked
        by the caller) into the stopped container `ref`."""
        daemon.put_archive(ref, "/", spool)


def _docker_ulimit(limit: dict) -> dict:
    name = str(limit.get("Name") or "")
    if name.upper().startswith("RLIMIT_"):
        name = name[len("RLIMIT_"):].lower()
    return {**limit, "Name": name}


@dataclass(frozen=True)
class PodmanDialect(Dialect):
    name: str = PODMAN

    def creation_inspect(self, inspect: dict) -> dict:
        config = dict(inspect.get("Config") or {})
        host_config = dict(inspect.get("HostConfig") or {})
        added = set(PODMAN_ENV)
        if config.get("Hostname"):
            added.add(f"HOSTNAME={config['Hostname']}")
        if (config.get("User") or "root") in ("root", "0", "0:0"):
            added.add("HOME=/root")
        config["Env"] = [e for e in config.get("Env") or [] if e not in added]
        if host_config.get("Ulimits"):
            host_config["Ulimits"] = [_docker_ulimit(u) for u in host_config["Ulimits"]]
        return {**inspect, "Config": config, "HostConfig": host_config}

    def image_name(self, ref: str) -> str:
        return ref[len("localhost/"):] if ref.startswith("localhost/") else ref

    # Podman's copier gives every entry of an archive the ids of the container's user (root for
    # ours) and keeps only the names (hermes): a rollback gives hermes' files to hermes, as a
    # restore does (hermesctl.backends.docker.volume_restore.roll_back_data), never the archive's 0:0.
    archive_owners: bool = False

    def member_name(self, name: str, root: str) -> str:
        # Of a stopped container, Podman 4.3 names a volume's entries "" and "/x"; of a running
        # one, "data/x" as Docker does.
        if name in ("", "/", "."):
            return root
        return root + name if name.startswith("/") else name

    def exec_found_it_stopped(self, error) -> bool:
        # Where dockerd answers 409, Podman answers 500: "container state improper" to an exec
        # in a stopped container, and "no such exec session" when asked for the exit code of
        # one whose container has exited since (it forgets the session at once).
        text = str(getattr(error, "explanation", "") or error)
        return error.status_code == 409 or (error.status_code == 500 and (
            "no such exec session" in text or "container state improper" in text))

    def put_tree(self, daemon, ref: str, spool, volume: str) -> None:
        # Into a stopped container, Podman 4.3 extracts an archive put at "/" into the image's
        # tree under the volume's mount point, where nothing sees it: put at the volume itself,
        # the entries renamed from it (hard links' targets too).
        import tarfile
        import tempfile
        prefix = volume.strip("/") + "/"
        with tempfile.TemporaryFile(prefix="hermesctl-podman-") as moved:
            with tarfile.open(fileobj=spool, mode="r:") as src, \
                    tarfile.open(fileobj=moved, mode="w", format=tarfile.PAX_FORMAT) as out:
                for member in src:
                    if not member.name.startswith(prefix):
                        raise HermesctlError(f"restore: refusing to write {member.name!r}: not under {volume}")
                    entry = tarfile.TarInfo(member.name[len(prefix):])
                    for key in ("type", "mode", "uid", "gid", "mtime", "size", "linkname"):
                        setattr(entry, key, getattr(member, key))
                    if member.islnk():
                        if not member.linkname.startswith(prefix):
                            raise HermesctlError(f"restore: refusing a hard link to {member.linkname!r}")
                        entry.linkname = member.linkname[len(prefix):]
                    out.addfile(entry, src.extractfile(member) if member.isfile() else None)
            moved.seek(0)
            daemon.put_archive(ref, volume, moved)

    def runs_healthchecks(self, daemon) -> bool:
        # Podman's healthcheck timers are systemd units; containers/common makes cgroupfs the
        # cgroup manager exactly when systemd is not the host's init (or is configured so: then
        # the boot gate decides, which is never wrong, only not Docker's verdict).
        return str((daemon.info() or {}).get("CgroupDriver") or "").lower() == "systemd"


_DIALECTS = {DOCKER: Dialect(), PODMAN: PodmanDialect()}


def dialect(endpoint) -> Dialect:
    """The dialect of an endpoint (hermesctl.config.endpoints.Endpoint)."""
    return _DIALECTS[getattr(endpoint, "engine", DOCKER) or DOCKER]
