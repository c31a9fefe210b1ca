"""Issue 8, point 4: hermesctl backup and restore, against real containers.

One source container and its backup serve every test: the backup's test reads it, the restores
put it into a new container, into the source itself (--force), and refuse a damaged copy of it."""
import hashlib
import json
import shutil
import sqlite3
import tarfile
from pathlib import Path

import pytest

from conftest import hermesctl, sh, svstat, wait_for, wait_ready

# A writer that keeps a WAL-mode database open with its last 200 rows only in the -wal file
# (no checkpoint), the case a raw copy of notes.db gets wrong.
WAL_WRITER = r"""
import sqlite3, time
c = sqlite3.connect('/opt/data/notes.db', isolation_level=None)
c.execute('pragma journal_mode=wal')
c.execute('create table if not exists notes (n integer)')
c.execute('pragma wal_checkpoint(truncate)')
c.execute('pragma wal_autocheckpoint=0')
c.execute('begin')
for n in range(200):
    c.execute('insert into notes values (?)', (n,))
c.execute('commit')
open('/tmp/writer-ready', 'w').close()
time.sleep(3600)
"""


def _start_wal_writer(container) -> None:
    container.exec_run(["/opt/hermes/.venv/bin/python", "-c", WAL_WRITER], user="hermes", detach=True)
    wait_for(lambda: container.exec_run(["test", "-e", "/tmp/writer-ready"]).exit_code == 0,
             what="the WAL writer")


def _rows_in_raw_file(container) -> int:
    """What a raw copy of notes.db alone would hold: the main file without its WAL."""
    out = sh(container, "cp /opt/data/notes.db /tmp/raw.db && /opt/hermes/.venv/bin/python -c "
                        "\"import sqlite3;print(sqlite3.connect('/tmp/raw.db').execute('select count(*) from notes').fetchone()[0])\"")
    return int(out.strip())


def _backup(container, out_dir: Path) -> tuple[Path, dict]:
    res = hermesctl("backup", container.name, "-o", str(out_dir), "--json")
    assert res.code == 0, res
    entry = res.json()["backups"][0]
    assert entry["ok"], entry
    archive = Path(entry["archive"])
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    return archive, manifest


@pytest.fixture(scope="module")
def source(module_containers, tmp_path_factory):
    """A running container with two profiles (coder started, idle not) and a WAL-mode database
    whose last 200 rows are only in its -wal, and its backup: (container, archive, manifest)."""
    c = module_containers.start("src", volume=module_containers.volume("src"))
    assert hermesctl("profile", "create", f"{c.name}:coder", "--start").code == 0
    assert hermesctl("profile", "create", f"{c.name}:idle").code == 0
    _start_wal_writer(c)
    assert _rows_in_raw_file(c) == 0  # the rows are only in notes.db-wal
    archive, manifest = _backup(c, tmp_path_factory.mktemp("backups"))
    return c, archive, manifest


def test_backup_is_consistent_and_carries_a_manifest(source, module_containers, tmp_path):
    c, archive, manifest = source
    assert manifest["consistency"] == "sqlite-online-backup"
    assert manifest["container"]["name"] == c.name
    assert manifest["container"]["image"] == module_containers.image
    assert manifest["container"]["hermes_agent_version"] == c.image.labels["io.hermes-agent.version"]
    profiles = {p["name"]: p["desired_state"] for p in manifest["profiles"]}
    assert profiles["coder"] == "running" and "idle" in profiles and "default" in profiles
    assert "notes.db" in manifest["databases"] and "profiles/coder/state.db" in manifest["databases"]
    # The archive's checksum sidecar, in sha256sum's format, matches the file.
    sidecar = archive.with_name(archive.name + ".sha256").read_text().split()
    assert sidecar == [hashlib.sha256(archive.read_bytes()).hexdigest(), archive.name]

    extracted = tmp_path / "x"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert names[-1] == "manifest.json"
        assert "data/notes.db-wal" not in names and "data/notes.db-shm" not in names
        tar.extractall(extracted, filter="data")
    # Every file's checksum is in the manifest; the database copy has every committed row.
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((extracted / "data" / rel).read_bytes()).hexdigest() == digest
    db = sqlite3.connect(extracted / "data" / "notes.db")
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert db.execute("select count(*) from notes").fetchone()[0] == 200
    assert sh(c, "ls /tmp | grep -c hermesctl-backup || true").strip() == "0"  # staging removed


def test_restore_into_a_new_container(source, containers):
    src, archive, _ = source
    new = containers.start("rs-new", volume=containers.volume("rs-new"))
    sh(new, "echo only-here > /opt/data/leftover && echo x > /opt/data/notes.db-wal")
    # A running target is refused, and nothing is changed.
    refused = hermesctl("restore", str(archive), new.name)
    assert refused.code == 9 and "is running" in refused.stderr, refused
    assert len(refused.stderr.strip().splitlines()) == 1
    assert sh(new, "cat /opt/data/leftover").strip() == "only-here"

    new.stop(timeout=10)
    res = hermesctl("restore", str(archive), new.name, "--json")
    assert res.code == 0, res
    assert res.json()["from"]["name"] == src.name
    new.start()
    wait_ready(new)

    assert sh(new, "test -e /opt/data/leftover || echo gone").strip() == "gone"
    assert sh(new, "test -e /opt/data/notes.db-wal || echo gone").strip() == "gone"
    assert sh(new, "find /opt/data ! -user hermes -o ! -group hermes").strip() == ""
    listed = hermesctl("profile", "list", new.name, "--json").json()["profiles"]
    assert {p["name"] for p in listed} == {"coder", "idle"}
    state = json.loads(sh(new, "cat /opt/data/profiles/coder/gateway_state.json"))
    assert state["desired_state"] == "running"
    wait_for(lambda: svstat(new, "coder")["up"], what="restored coder gateway up")
    assert not svstat(new, "idle")["up"]
    rows = sh(new, "/opt/hermes/.venv/bin/python -c \"import sqlite3;"
                   "print(sqlite3.connect('/opt/data/notes.db').execute('select count(*) from notes').fetchone()[0])\"")
    assert rows.strip() == "200"


def test_restore_force_restarts_a_running_target(source):
    c, archive, _ = source  # its own backup, back into it
    sh(c, "hermes profile create later >/dev/null")
    res = hermesctl("restore", str(archive), c.name, "--force")
    assert res.code == 0, res
    assert "started again" in res.stdout
    c.reload()
    assert c.status == "running"
    wait_ready(c)
    assert sh(c, "ls /opt/data/profiles").split() == ["coder", "idle"]  # back to the backup's state


def test_damaged_archive_is_refused_before_anything_changes(source, tmp_path):
    c, good, _ = source
    archive = tmp_path / good.name
    shutil.copy(good, archive)
    shutil.copy(good.with_name(good.name + ".sha256"), archive.with_name(archive.name + ".sha256"))
    c.reload()
    started = c.attrs["State"]["StartedAt"]
    # A flipped byte deep in the archive: the sidecar checksum no longer matches. --force: had it
    # got past the check, the running target would have been stopped and written.
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    archive.write_bytes(bytes(blob))
    res = hermesctl("restore", str(archive), c.name, "--force")
    assert res.code == 2 and "checksum" in res.stderr, res
    # Without the sidecar, the per-file checksums in the manifest still catch it.
    archive.with_name(archive.name + ".sha256").unlink()
    res = hermesctl("restore", str(archive), c.name, "--force")
    assert res.code == 2 and len(res.stderr.strip().splitlines()) == 1, res
    c.reload()
    assert c.status == "running" and c.attrs["State"]["StartedAt"] == started  # never even stopped
    assert sh(c, "test -e /opt/data/config.yaml && echo kept").strip() == "kept"
    assert hermesctl("restore", str(tmp_path / "nope.tar.gz"), c.name).code == 2
