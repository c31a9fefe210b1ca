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
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


from hermesctl.backends.daemon import APIError
from hermesctl.endpoints import Endpoint
from hermesctl.errors import ExecError, HermesctlError, UsageError
from hermesctl.exit_codes import ExitStatus
from hermesctl.models import GatewayState

DATA_DIR = "/opt/data"
ARCHIVE_ROOT = "data"          # get_archive("/opt/data") names its members data/...
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "hermesctl.backup-manifest/v1"
VERSION_LABEL = "io.hermes-agent.version"
VENV_PYTHON = "/opt/hermes/.venv/bin/python"
SQLITE_MAGIC = b"SQLite format 3\x00"
SIDE_FILES = ("-wal", "-shm", "-journal")
STAGING = re.compile(r"^/tmp/hermesctl-backup-[A-Za-z0-9_]+$")

# Runs as hermes inside the container. Constant: the only argument is the data directory.
# Copies every SQLite database under it with the online backup API into a fresh directory and
# prints {"staging": dir, "databases": [relative paths]}. A database hermes cannot read is
# skipped here (and then copied as a file).
SNAPSHOT_SCRIPT = r"""
import json, os, sqlite3, sys, tempfile
root = sys.argv[1]
stage = tempfile.mkdtemp(prefix="hermesctl-backup-", dir="/tmp")
done = []
for top, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(files):
        if not name.endswith(".db"):
            continue
        src = os.path.join(top, name)
        try:
            if os.path.islink(src):
                continue
            with open(src, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    continue
            rel = os.path.relpath(src, root)
            dst = os.path.join(stage, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            source = sqlite3.connect(src, timeout=30)
            target = sqlite3.connect(dst)
            with target:
                source.backup(target)
            target.close()
            source.close()
            done.append(rel)
        except (OSError, sqlite3.Error) as exc:
            print("skipped %s: %s" % (src, exc), file=sys.stderr)
print(json.dumps({"staging": stage, "databases": done}))
"""


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


def _stream_tar(endpoint: Endpoint, container_id: str, path: str) -> tarfile.TarFile:
    stream = endpoint.daemon.get_archive(container_id, path)
    return tarfile.open(fileobj=io.BufferedReader(_Chunks(stream), 1 << 20), mode="r|")


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


def _snapshot_databases(endpoint: Endpoint, container_id: str, into: Path) -> Snapshot:
    from hermesctl import execs
    from hermesctl.inventory import HermesContainer
    target = HermesContainer(endpoint=endpoint.name, id=container_id, name=container_id[:12], state="running", status="")
    result = execs.run(endpoint, target, [VENV_PYTHON, "-c", SNAPSHOT_SCRIPT, DATA_DIR])
    if not result.ok:
        raise ExecError(f"SQLite online backup failed in {container_id[:12]}: "
                        f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    staging = report["staging"]
    if not STAGING.match(staging):
        raise ExecError(f"unexpected staging directory {staging!r}")
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
        execs.run(endpoint, target, ["rm", "-rf", "--", staging])
    return Snapshot(into, report["databases"])


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
                  describe_as: dict | None = None) -> BackupResult:
    """Back up one container's /opt/data into `out_dir`; returns the archive and its manifest.
    The archive appears only when complete (written under a temporary name, then renamed).
    `describe_as` overrides the manifest's container facts (a swarm service read through a
    stand-in container that only holds its volume)."""
    inspect = endpoint.daemon.inspect_container(container)
    facts = {**_container_facts(endpoint, inspect), **(describe_as or {})}
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    final = out_dir / f"{facts['name']}-{label or stamp}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="hermesctl-backup-") as scratch:
        snapshot = None
        if facts["running"]:
            snapshot = _snapshot_databases(endpoint, inspect["Id"], Path(scratch))
        files, profiles, states, skipped = {}, [], {}, []
        partial = final.with_name(final.name + ".partial")
        try:
            with tarfile.open(partial, "w:gz", compresslevel=6) as out, \
                    _stream_tar(endpoint, inspect["Id"], DATA_DIR) as source:
                copied = set(snapshot.databases) if snapshot else set()
                side = {db + suffix for db in copied for suffix in SIDE_FILES}
                for member in source:
                    rel = _relative(member.name)
                    if rel is None or rel in side:
                        continue
                    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
                        skipped.append(rel)  # sockets, fifos, devices: nothing to keep
                        continue
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
                manifest = {
                    "schema": MANIFEST_SCHEMA,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "container": facts,
                    "consistency": "sqlite-online-backup" if snapshot else "stopped-container",
                    "databases": sorted(snapshot.databases) if snapshot else
                    sorted(r for r in files if r.endswith(".db")),
                    "profiles": [_profile_entry(p, states.get(p)) for p in ["default", *sorted(profiles)]],
                    "skipped": skipped,
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
    final.with_name(final.name + ".sha256").write_text(f"{archive_sha}  {final.name}\n")
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


def read_manifest(path: Path) -> dict:
    """The manifest of an archive, after checking every file against it (and the archive
    against its sidecar .sha256 when there is one). Raises BackupError on any mismatch."""
    if not path.is_file():
        raise UsageError(f"no backup archive at {path}")
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().split()[0] if sidecar.read_text().split() else ""
        if expected != file_sha256(path):
            raise BackupError(f"{path}: archive checksum does not match {sidecar.name}")
    seen: dict[str, str] = {}
    symlinks: set[str] = set()
    manifest = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name == MANIFEST:
                    manifest = json.loads(tar.extractfile(member).read())
                    continue
                rel = _relative(member.name)
                if rel is None:
                    raise BackupError(f"{path}: unexpected member {member.name!r}")
                if member.islnk() and _relative(member.linkname) is None:
                    raise BackupError(f"{path}: hard link {member.name!r} leaves the data directory")
                # Nothing may be written through a symlink the archive itself just made (it could
                # point anywhere in the container); get_archive never produces such an entry.
                parts = rel.split("/")
                if any("/".join(parts[:i]) in symlinks for i in range(1, len(parts))):
                    raise BackupError(f"{path}: {member.name!r} lies under a symlink of the archive")
                if member.issym():
                    symlinks.add(rel)
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


def hermes_ids(endpoint: Endpoint, container_id: str) -> tuple[int, int]:
    """The hermes user's uid and gid in a container, from its /etc/passwd (works stopped).
    A container that boots with PUID/PGID re-owns the volume to the remapped ids itself."""
    with _stream_tar(endpoint, container_id, "/etc/passwd") as tar:
        for member in tar:
            if member.isfile():
                for line in tar.extractfile(member).read().decode("utf-8", "replace").splitlines():
                    fields = line.split(":")
                    if len(fields) >= 4 and fields[0] == "hermes":
                        return int(fields[2]), int(fields[3])
    raise ExecError(f"container {container_id[:12]} has no hermes user")


def restore_archive(endpoint: Endpoint, container_id: str, path: Path, *,
                    only: set[str] | None = None) -> int:
    """Write the archive's data into the container's /opt/data (through put_archive), every
    entry owned by hermes. `only`: just these relative paths (and their parent directories).
    Returns how many entries were written."""
    uid, gid = hermes_ids(endpoint, container_id)
    wanted_dirs = set()
    if only is not None:
        for rel in only:
            parts = rel.split("/")
            wanted_dirs.update("/".join(parts[:i]) for i in range(len(parts)))
    written = 0
    with tempfile.TemporaryFile(prefix="hermesctl-restore-") as spool:
        with tarfile.open(path, "r:gz") as src, tarfile.open(fileobj=spool, mode="w") as out:
            for member in src:
                rel = _relative(member.name)
                if member.name == MANIFEST or rel is None:
                    continue
                if only is not None and rel not in only and rel not in wanted_dirs:
                    continue
                member.uid, member.gid, member.uname, member.gname = uid, gid, "hermes", "hermes"
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
                written += 1
        spool.seek(0)
        if written:
            endpoint.daemon.put_archive(container_id, os.path.dirname(DATA_DIR), spool)
    return written


def run_helper(endpoint: Endpoint, container_id: str, image: str, argv: list[str]) -> None:
    """Run argv as root in a throwaway container that shares `container_id`'s volumes: how we
    change a stopped container's /opt/data (exec needs a running container)."""
    daemon = endpoint.daemon
    helper = daemon.create_helper(image, entrypoint=[argv[0]], command=argv[1:], user="0:0",
                                  labels={"io.hermes-agent.helper": "restore"},
                                  volumes_from=[f"{container_id}:rw"])
    try:
        daemon.start(helper)
        code = daemon.wait(helper, timeout=120)
        if code != 0:
            logs = daemon.logs(helper).decode("utf-8", "replace").strip().splitlines()
            raise ExecError(f"{' '.join(argv[:2])} in a helper container exited {code}: "
                            f"{logs[-1] if logs else 'no output'}")
    finally:
        daemon.remove(helper, force=True)


def volume_holder(endpoint: Endpoint, image: str, mounts: list[dict], name: str) -> str:
    """A created, never started container with these swarm volume mounts (Source, Target):
    get_archive/put_archive reach a volume through it while nothing runs on it."""
    daemon = endpoint.daemon
    binds = []
    for m in mounts:
        if m.get("Type", "volume") != "volume" or not m.get("Source"):
            continue
        daemon.inspect_volume(m["Source"])  # never create an empty stand-in for a missing volume
        binds.append(f"{m['Source']}:{m['Target']}")
    return daemon.create_helper(image, command=["true"], name=name,
                                labels={"io.hermes-agent.helper": "volume-holder"}, binds=binds)


def clear_data(endpoint: Endpoint, container_id: str, image: str) -> None:
    """Empty /opt/data (the mount point itself stays): a restore must not leave a newer
    database's -wal beside the restored database."""
    run_helper(endpoint, container_id, image, ["find", DATA_DIR, "-mindepth", "1", "-delete"])


@dataclass
class DataDiff:
    changed: list[str] = field(default_factory=list)   # differs from, or missing against, the backup
    added: list[str] = field(default_factory=list)     # not in the backup

    @property
    def empty(self) -> bool:
        return not self.changed and not self.added


def diff_against(endpoint: Endpoint, container_id: str, manifest: dict, *,
                 ignore_prefixes: tuple[str, ...] = ("logs/",)) -> DataDiff:
    """How a (stopped) container's /opt/data differs from a backup's files. Logs are ignored:
    they only grow, and a failed boot's log lines are worth keeping."""
    expected: dict[str, str] = manifest["files"]
    found: dict[str, str] = {}
    with _stream_tar(endpoint, container_id, DATA_DIR) as tar:
        for member in tar:
            rel = _relative(member.name)
            if rel and member.isfile() and not rel.startswith(ignore_prefixes):
                found[rel] = _hash_copy(tar.extractfile(member), None, member.size)
    relevant = {r: h for r, h in expected.items() if not r.startswith(ignore_prefixes)}
    return DataDiff(changed=sorted(r for r, h in relevant.items() if found.get(r) != h),
                    added=sorted(r for r in found if r not in relevant))
