"""Backups of a Hermes container's /opt/data: one gzip'd tar per container, with a manifest.

Archive layout: `data/...` (the volume, as Docker's get_archive names it) and, last,
`manifest.json`: the container's image and hermes-agent version, its profiles and their desired
states, every file's sha256 and one checksum over all of them (`data_sha256`). A sidecar
`<archive>.sha256` (sha256sum format) covers the archive itself.

Consistency: in a running container every SQLite database under /opt/data is copied with
SQLite's online backup API (a python in the container, as hermes), and its -wal/-shm/-journal
files are left out, since a stale WAL beside a newer database corrupts it. A stopped container
has no writer, so its files are copied as they are. Everything travels through the Docker API
(get_archive/put_archive), so the same code works on any endpoint, ssh:// included.
"""
import errno
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


from hermesctl.agent import client as agent
from hermesctl.backends.docker.daemon import APIError, NotFound
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.core.errors import ExecError, HermesctlError, UsageError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.model.slots import GatewayState

DATA_DIR = "/opt/data"
ARCHIVE_ROOT = "data"          # get_archive("/opt/data") names its members data/...
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "hermesctl.backends.docker.backup-manifest/v1"
VERSION_LABEL = "io.hermes-agent.version"
SIDE_FILES = ("-wal", "-shm", "-journal")
STAGING = re.compile(r"^/tmp/hermesctl-backup-[A-Za-z0-9_]+$")
# A restore's staging area in the volume (the image's restore_swap.WORKSPACE): never backed up,
# never accepted from an archive.
WORKSPACE = ".hermesctl-restore"
SNAPSHOT_VERB = "snapshot-databases"
OWNER_IDS_VERB = "owner-ids"
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
# What an archive may hold under data/: files, directories, symlinks, hard links to its own files.
KEPT_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)
# Bounds checked before a restore stops anything, so that a tree Docker or the kernel cannot
# write is refused whole instead of failing half-way: Linux's NAME_MAX and PATH_MAX (for the
# entry's path while it is staged, the longest it ever has), and a nesting depth.
NAME_MAX = 255
PATH_MAX = 4095
DEPTH_MAX = 512
STAGED_PREFIX = f"{DATA_DIR}/{WORKSPACE}/new/"  # where restore stages an entry (hermesctl.backends.docker.volume_restore)
MANIFEST_MAX = 256 << 20


class BackupError(HermesctlError):
    """An archive that is not ours, is damaged, or does not match its checksums."""
    status = ExitStatus.USAGE


class _Chunks(io.RawIOBase):
    """A file object over an iterator of byte chunks (Docker's get_archive stream)."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


class _EngineNamed(tarfile.TarFile):
    """An archive whose entries are renamed as they are read: `rename(name)` (the engine's
    dialect naming them as Docker does, hermesctl.backends.docker.podman)."""
    rename = staticmethod(lambda name: name)

    def next(self):
        member = super().next()
        if member is not None:
            member.name = self.rename(member.name)
        return member


def _stream_tar(endpoint: Endpoint, container_id: str, path: str) -> tarfile.TarFile:
    """get_archive(path) as a stream of entries named as Docker names them (ROOT, ROOT/x)."""
    from hermesctl.backends.docker.podman import dialect
    stream = endpoint.daemon.get_archive(container_id, path)
    engine, root = dialect(endpoint), os.path.basename(path.rstrip("/"))
    tar = _EngineNamed.open(fileobj=io.BufferedReader(_Chunks(stream), 1 << 20), mode="r|")
    tar.rename = lambda name: engine.member_name(name, root)
    return tar


def _hash_copy(src, dst, size: int) -> str:
    digest = hashlib.sha256()
    left = size
    while left > 0:
        block = src.read(min(left, 1 << 20))
        if not block:
            raise BackupError("archive stream ended early")
        digest.update(block)
        if dst is not None:
            dst.write(block)
        left -= len(block)
    return digest.hexdigest()


def data_checksum(files: dict[str, str]) -> str:
    """One checksum over every file's path and content hash."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}\t{files[path]}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _relative(member_name: str) -> str | None:
    """`data/profiles/x` -> `profiles/x`; the root itself -> ``; anything else -> None."""
    name = member_name.rstrip("/")
    if name == ARCHIVE_ROOT:
        return ""
    if not name.startswith(ARCHIVE_ROOT + "/"):
        return None
    rel = name[len(ARCHIVE_ROOT) + 1:]
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return rel


def _profile_of_state_file(rel: str) -> str | None:
    if rel == "gateway_state.json":
        return "default"
    m = re.fullmatch(r"profiles/([^/]+)/gateway_state\.json", rel)
    return m.group(1) if m else None


@dataclass
class Snapshot:
    """SQLite copies taken inside a running container, fetched to a host directory."""
    directory: Path
    databases: list[str]
    not_copied: list[dict]  # databases the agent could not copy (locked too long...): raw copies


def _snapshot_databases(endpoint: Endpoint, container_id: str, into: Path, timeout: float) -> Snapshot:
    """The agent copies every database with SQLite's online backup API into a staging directory
    (as hermes, under the exec deadline: a FIFO named x.db or a lock held forever costs at most
    `timeout`); the copies are fetched into `into` and the staging directory removed."""
    from hermesctl.backends.docker import execs
    from hermesctl.backends.docker.inventory import HermesContainer
    target = HermesContainer(endpoint=endpoint.name, id=container_id, name=container_id[:12], state="running", status="")
    where = f"SQLite online backup in {container_id[:12]}"
    report = agent.answer(execs.run(endpoint, target, agent.argv(SNAPSHOT_VERB, DATA_DIR), timeout=timeout),
                          where=where)
    staging = report.get("staging")
    if not isinstance(staging, str) or not STAGING.match(staging):
        raise ExecError(f"{where}: unexpected staging directory {staging!r}")
    try:
        with _stream_tar(endpoint, container_id, staging) as tar:
            prefix = os.path.basename(staging) + "/"
            for member in tar:
                rel = member.name[len(prefix):] if member.name.startswith(prefix) else None
                if not member.isfile() or rel is None or _relative(f"{ARCHIVE_ROOT}/{rel}") is None:
                    continue
                dst = into / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                with open(dst, "wb") as fh:
                    _hash_copy(tar.extractfile(member), fh, member.size)
    finally:
        execs.run(endpoint, target, ["rm", "-rf", "--", staging], timeout=timeout)
    return Snapshot(into, [d for d in report.get("databases", []) if isinstance(d, str)],
                    [d for d in report.get("skipped", []) if isinstance(d, dict)])


def private_dir(directory: Path) -> None:
    """Create `directory` (and missing parents) 0700 whatever the umask: backups hold every
    profile's .env. An existing directory keeps its mode (the operator chose it)."""
    missing = []
    for path in [directory, *directory.parents]:
        if path.exists():
            break
        missing.append(path)
    for path in reversed(missing):
        try:
            os.mkdir(path, PRIVATE_DIR)
        except FileExistsError:
            continue
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    if not directory.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory))


def _private_file(path: Path):
    """A new file, 0600 whatever the umask, opened for writing (never an existing one)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "wb")


@dataclass
class BackupResult:
    path: Path
    manifest: dict
    archive_sha256: str


def _container_facts(endpoint: Endpoint, inspect: dict) -> dict:
    labels = inspect["Config"].get("Labels") or {}
    version = labels.get(VERSION_LABEL)
    if version is None:
        try:
            version = (endpoint.daemon.inspect_image(inspect["Image"])["Config"].get("Labels") or {}).get(VERSION_LABEL)
        except APIError:
            version = None
    return {"name": inspect["Name"].lstrip("/"), "id": inspect["Id"], "endpoint": endpoint.name,
            "image": inspect["Config"]["Image"], "image_id": inspect["Image"],
            "hermes_agent_version": version, "running": inspect["State"]["Running"]}


def create_backup(endpoint: Endpoint, container: str, out_dir: Path, *, label: str | None = None,
                  describe_as: dict | None = None, timeout: float = 30.0) -> BackupResult:
    """Back up one container's /opt/data into `out_dir`; returns the archive and its manifest.
    The archive appears only when complete (written under a temporary name, then renamed), 0600
    in a directory created 0700. `timeout`: the deadline of the in-container database snapshot.
    `describe_as` overrides the manifest's container facts (a swarm service read through a
    stand-in container that only holds its volume)."""
    inspect = endpoint.daemon.inspect_container(container)
    facts = {**_container_facts(endpoint, inspect), **(describe_as or {})}
    private_dir(out_dir)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    final = out_dir / f"{facts['name']}-{label or stamp}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="hermesctl-backup-") as scratch:
        snapshot = None
        if facts["running"]:
            snapshot = _snapshot_databases(endpoint, inspect["Id"], Path(scratch), timeout)
        files, profiles, states, skipped = {}, [], {}, []
        partial = final.with_name(final.name + ".partial")
        partial.unlink(missing_ok=True)  # left by a killed backup
        try:
            with _private_file(partial) as raw_out, \
                    tarfile.open(fileobj=raw_out, mode="w:gz", compresslevel=6) as out, \
                    _stream_tar(endpoint, inspect["Id"], DATA_DIR) as source:
                copied = set(snapshot.databases) if snapshot else set()
                side = {db + suffix for db in copied for suffix in SIDE_FILES}
                rooted = False
                for member in source:
                    rel = _relative(member.name)
                    rooted = rooted or rel == ""
                    if rel is None or rel in side or rel.split("/")[0] == WORKSPACE:
                        continue
                    if member.type not in KEPT_TYPES:
                        skipped.append(rel)  # sockets, fifos, devices: nothing to keep
                        continue
                    # A set-id bit means nothing in a data volume, and restore refuses it.
                    member.mode &= ~(stat.S_ISUID | stat.S_ISGID)
                    if member.isdir() and re.fullmatch(r"profiles/[^/]+", rel):
                        profiles.append(rel.split("/")[1])
                    if member.isfile():
                        profile = _profile_of_state_file(rel)
                        if rel in copied:  # a database: its online-backup copy instead
                            snap_path = snapshot.directory / rel
                            member.size = snap_path.stat().st_size
                            with open(snap_path, "rb") as fh:
                                files[rel] = _add_file(out, member, fh)
                        elif profile:  # small, and read for the manifest on the way
                            body = source.extractfile(member).read(member.size)
                            files[rel] = _add_file(out, member, io.BytesIO(body))
                            states[profile] = GatewayState.parse(body.decode("utf-8", "replace"))
                        else:
                            files[rel] = _add_file(out, member, source.extractfile(member))
                    else:
                        out.addfile(member)
                if not rooted:  # an engine that names entries otherwise: never an empty backup
                    raise BackupError(f"the archive of {DATA_DIR} that the endpoint {endpoint.name} sent has no "
                                      f"{ARCHIVE_ROOT}/ entry: nothing of it would be kept")
                manifest = {
                    "schema": MANIFEST_SCHEMA,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "container": facts,
                    "consistency": "sqlite-online-backup" if snapshot else "stopped-container",
                    "databases": sorted(snapshot.databases) if snapshot else
                    sorted(r for r in files if r.endswith(".db")),
                    "profiles": [_profile_entry(p, states.get(p)) for p in ["default", *sorted(profiles)]],
                    "skipped": skipped,
                    "databases_copied_raw": [{"path": str(d.get("path")), "reason": str(d.get("reason"))}
                                             for d in snapshot.not_copied] if snapshot else [],
                    "files": files,
                    "data_sha256": data_checksum(files),
                }
                raw = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o600
                out.addfile(info, io.BytesIO(raw))
            archive_sha = file_sha256(partial)
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    sidecar = final.with_name(final.name + ".sha256")
    sidecar_partial = sidecar.with_name(sidecar.name + ".partial")
    sidecar_partial.unlink(missing_ok=True)
    with _private_file(sidecar_partial) as fh:
        fh.write(f"{archive_sha}  {final.name}\n".encode())
    os.replace(sidecar_partial, sidecar)
    return BackupResult(final, manifest, archive_sha)


def _add_file(out: tarfile.TarFile, member: tarfile.TarInfo, fileobj) -> str:
    """Add a regular file, hashing it on the way through."""
    digest = hashlib.sha256()

    class Hashing(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            block = fileobj.read(len(buffer))
            digest.update(block)
            buffer[:len(block)] = block
            return len(block)

    out.addfile(member, io.BufferedReader(Hashing(), 1 << 20))
    return digest.hexdigest()


def _profile_entry(name: str, state: GatewayState | None) -> dict:
    return {"name": name, "desired_state": state.desired_state if state else None,
            "gateway_state": state.gateway_state if state else None}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _EntryRules:
    """What restore accepts, entry by entry, in archive order: under data/ only plain files,
    directories, symlinks and hard links to a file the archive already holds; every entry's
    parent a directory of the archive (so nothing is written through a symlink, the root `data`
    itself a directory); no set-id bits; no name twice; not the restore's own workspace.
    A symlink's target is data: it is written as a link and never followed."""

    def __init__(self, path: Path):
        self.path = path
        self.kinds: dict[str, bytes] = {}

    def refuse(self, member: tarfile.TarInfo, why: str):
        return BackupError(f"{self.path}: entry {member.name!r} {why}")

    def check(self, member: tarfile.TarInfo, rel: str) -> None:
        if member.type not in KEPT_TYPES:
            raise self.refuse(member, "is not a file, directory or link (a device, FIFO or other special file)")
        if member.mode & (stat.S_ISUID | stat.S_ISGID):
            raise self.refuse(member, "has a setuid/setgid bit")
        if rel in self.kinds:
            raise self.refuse(member, "appears twice")
        if rel == "":
            if member.type != tarfile.DIRTYPE:
                raise self.refuse(member, "(the data root) is not a directory")
        else:
            self.kinds.setdefault("", tarfile.DIRTYPE)  # an archive may leave its root implicit
            parent = rel.rpartition("/")[0]
            kind = self.kinds.get(parent)
            if kind == tarfile.SYMTYPE:
                raise self.refuse(member, "lies under a symlink of the archive")
            if kind != tarfile.DIRTYPE:
                raise self.refuse(member, "lies under " + ("nothing the archive holds" if kind is None
                                                           else "a file of the archive"))
            if rel.split("/")[0] == WORKSPACE:
                raise self.refuse(member, "uses a name reserved for restores")
            self._check_size(member, rel)
        if member.type == tarfile.LNKTYPE:
            target = _relative(member.linkname)
            if target is None or self.kinds.get(target) not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise self.refuse(member, f"is a hard link to {member.linkname!r}, not to a file of the archive")
        self.kinds[rel] = member.type

    def _check_size(self, member: tarfile.TarInfo, rel: str) -> None:
        parts = rel.split("/")
        if len(parts) > DEPTH_MAX:
            raise self.refuse(member, f"is nested {len(parts)} levels deep (at most {DEPTH_MAX} can be restored)")
        longest = max(len(_bytes(p)) for p in parts)
        if longest > NAME_MAX:
            raise self.refuse(member, f"has a name of {longest} bytes (at most {NAME_MAX})")
        staged = len(_bytes(STAGED_PREFIX + rel))
        if staged > PATH_MAX:
            raise self.refuse(member, f"is {staged} bytes long where a restore stages it (at most {PATH_MAX})")
        if member.issym() and len(_bytes(member.linkname)) > PATH_MAX:
            raise self.refuse(member, f"is a symlink to a target over {PATH_MAX} bytes")


def _bytes(name: str) -> bytes:
    """A member name as the file system gets it (tarfile keeps undecodable bytes as surrogates)."""
    return name.encode("utf-8", "surrogateescape")


def read_manifest(path: Path) -> dict:
    """The manifest of an archive, after checking every entry against what a restore accepts,
    every file against the manifest, and the archive against its sidecar .sha256 when there is
    one. Raises BackupError (exit 2) on anything else: nothing has been touched yet."""
    if not path.is_file():
        raise UsageError(f"no backup archive at {path}")
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().split()[0] if sidecar.read_text().split() else ""
        if expected != file_sha256(path):
            raise BackupError(f"{path}: archive checksum does not match {sidecar.name}")
    seen: dict[str, str] = {}
    rules = _EntryRules(path)
    manifest = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name == MANIFEST and member.isfile() and manifest is None:
                    if member.size > MANIFEST_MAX:
                        raise BackupError(f"{path}: its manifest is {member.size} bytes (at most {MANIFEST_MAX})")
                    manifest = json.loads(tar.extractfile(member).read(MANIFEST_MAX))
                    continue
                rel = _relative(member.name)
                if rel is None:
                    raise BackupError(f"{path}: unexpected member {member.name!r}")
                rules.check(member, rel)
                if member.isfile():
                    seen[rel] = _hash_copy(tar.extractfile(member), None, member.size)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise BackupError(f"{path}: not a readable backup archive ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise BackupError(f"{path}: no hermesctl backup manifest")
    if seen != manifest.get("files") or data_checksum(seen) != manifest.get("data_sha256"):
        bad = sorted(set(seen.items()) ^ set(manifest.get("files", {}).items()))
        raise BackupError(f"{path}: contents do not match the manifest"
                          f"{' (' + bad[0][0] + ')' if bad else ''}")
    return manifest


HELPER_LABEL = "io.hermes-agent.helper"
HELPER_FOR_LABEL = "io.hermes-agent.helper-for"  # the container whose volumes a helper changes
HELPER_WAIT_S = 600


def helper_name(purpose: str, container_id: str) -> str:
    """Helpers are named for what they do and whom for (`docker ps -a` says so at a glance)."""
    import secrets
    return f"hermesctl-{purpose}-{container_id[:12]}-{secrets.token_hex(3)}"


def run_helper(endpoint: Endpoint, container_id: str, image: str, argv: list[str], *,
               environment: dict | None = None) -> str:
    """Run argv as root in a throwaway container that shares `container_id`'s volumes: how we
    change a stopped container's /opt/data (exec needs a running container). Returns its output.
    Interrupted while it runs, it is left to finish (it may be mid-swap: removing it would kill
    that); settle_helpers waits for it and removes it next time."""
    daemon = endpoint.daemon
    helper = daemon.create_helper(image, entrypoint=[argv[0]], command=argv[1:], user="0:0",
                                  environment=environment, name=helper_name("restore", container_id),
                                  labels={HELPER_LABEL: "restore", HELPER_FOR_LABEL: container_id},
                                  volumes_from=[f"{container_id}:rw"])
    started = False
    try:
        daemon.start(helper)
        started = True
        code = daemon.wait(helper, timeout=HELPER_WAIT_S)
        output = daemon.logs(helper).decode("utf-8", "replace").strip()
        if code != 0:
            lines = output.splitlines()
            raise ExecError(f"{' '.join(argv[:2])} in a helper container exited {code}: "
                            f"{lines[-1] if lines else 'no output'}")
    except BaseException:
        if not started:
            daemon.remove(helper, force=True)
        raise
    daemon.remove(helper, force=True)
    return output


def ask_in_helper(endpoint: Endpoint, container_id: str, image: str, verb: str, *args: str) -> dict:
    """The agent's answer to a query about a stopped container (exec needs a running one): the
    image's agent, as hermes, in a throwaway container with the container's environment and
    nothing else (no volume, no network). Errors are the agent's typed ones (agent.parse)."""
    daemon = endpoint.daemon
    environment = (daemon.inspect_container(container_id).get("Config") or {}).get("Env") or []
    # A tmpfs where the image declares its VOLUME: Docker and Podman would otherwise make an
    # anonymous volume for it at every question, and the helper's removal keeps volumes.
    helper = daemon.create_helper(image, entrypoint=[agent.AGENT], command=[verb, *args], user="hermes",
                                  environment=environment, labels={HELPER_LABEL: "query"},
                                  name=helper_name("query", container_id), tmpfs={DATA_DIR: ""})
    try:
        daemon.start(helper)
        daemon.wait(helper, timeout=HELPER_WAIT_S)
        output = daemon.logs(helper).decode("utf-8", "replace")
    finally:
        daemon.remove(helper, force=True)
    return agent.parse(output, where=f"{container_id[:12]} ({verb} in a helper of its image)")


def owner_ids(endpoint: Endpoint, container_id: str, image: str) -> tuple[int, int]:
    """The uid and gid hermes' files have in a stopped container: its agent's `owner-ids` (the
    boot's HERMES_UID/PUID remap, else the image's hermes user)."""
    doc = ask_in_helper(endpoint, container_id, image, OWNER_IDS_VERB)
    uid, gid = doc.get("uid"), doc.get("gid")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 32 for v in (uid, gid)):
        raise ExecError(f"container {container_id[:12]}: owner-ids answered {uid!r}, {gid!r}, not two ids")
    return uid, gid


def settle_helpers(endpoint: Endpoint, container_id: str) -> None:
    """Helpers an earlier, killed hermesctl left on this container's volumes. One may be running
    a swap (or about to: its start was already sent), so none is ever force-removed: a removal
    Docker refuses because it runs is waited for, then retried."""
    daemon = endpoint.daemon
    for found in daemon.containers({"label": [f"{HELPER_FOR_LABEL}={container_id}"]}):
        for _attempt in range(3):
            try:
                daemon.remove(found["Id"])
                break
            except NotFound:
                break
            except APIError as exc:
                if exc.status_code != 409:
                    raise
                daemon.wait(found["Id"], timeout=HELPER_WAIT_S)


def volume_holder(endpoint: Endpoint, image: str, mounts: list[dict], name: str,
                  environment: list[str] | None = None) -> str:
    """A created, never started container with these swarm volume mounts (Source, Target):
    get_archive/put_archive reach a volume through it while nothing runs on it. `environment`:
    the task's, so that what the agent says about it (owner-ids) is what the task would say."""
    daemon = endpoint.daemon
    binds = []
    for m in mounts:
        if m.get("Type", "volume") != "volume" or not m.get("Source"):
            continue
        daemon.inspect_volume(m["Source"])  # never create an empty stand-in for a missing volume
        binds.append(f"{m['Source']}:{m['Target']}")
    return daemon.create_helper(image, command=["true"], name=name, labels={HELPER_LABEL: "volume-holder"},
                                binds=binds, environment=environment)
