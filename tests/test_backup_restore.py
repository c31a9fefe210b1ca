"""Issue 8, point 4: hermesctl backup and restore, against real containers."""
import hashlib
import json
import sqlite3
import tarfile
from pathlib import Path

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


def test_backup_is_consistent_and_carries_a_manifest(containers, tmp_path):
    c = containers.start("bk-src", volume=containers.volume("bk-src"))
    assert hermesctl("profile", "create", f"{c.name}:coder", "--start").code == 0
    assert hermesctl("profile", "create", f"{c.name}:writer").code == 0
    _start_wal_writer(c)
    assert _rows_in_raw_file(c) == 0  # the rows are only in notes.db-wal

    archive, manifest = _backup(c, tmp_path / "backups")

    assert manifest["consistency"] == "sqlite-online-backup"
    assert manifest["container"]["name"] == c.name
    assert manifest["container"]["image"] == containers.image
    assert manifest["container"]["hermes_agent_version"] == c.image.labels["io.hermes-agent.version"]
    profiles = {p["name"]: p["desired_state"] for p in manifest["profiles"]}
    assert profiles["coder"] == "running" and "writer" in profiles and "default" in profiles
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


def test_restore_into_a_new_container(containers, tmp_path):
    src = containers.start("rs-src", volume=containers.volume("rs-src"))
    assert hermesctl("profile", "create", f"{src.name}:coder", "--start").code == 0
    assert hermesctl("profile", "create", f"{src.name}:idle").code == 0
    _start_wal_writer(src)
    archive, _ = _backup(src, tmp_path)

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


def test_restore_force_restarts_a_running_target(containers, tmp_path):
    c = containers.start("rs-force", volume=containers.volume("rs-force"))
    assert hermesctl("profile", "create", f"{c.name}:coder").code == 0
    archive, _ = _backup(c, tmp_path)
    sh(c, "hermes profile create later >/dev/null")
    res = hermesctl("restore", str(archive), c.name, "--force")
    assert res.code == 0, res
    assert "started again" in res.stdout
    c.reload()
    assert c.status == "running"
    wait_ready(c)
    assert sh(c, "ls /opt/data/profiles").split() == ["coder"]  # back to the backup's state


def test_damaged_archive_is_refused_before_anything_changes(containers, tmp_path):
    c = containers.start("rs-bad")
    archive, _ = _backup(c, tmp_path)
    c.stop(timeout=10)
    # A flipped byte deep in the archive: the sidecar checksum no longer matches.
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    archive.write_bytes(bytes(blob))
    res = hermesctl("restore", str(archive), c.name)
    assert res.code == 2 and "checksum" in res.stderr, res
    # Without the sidecar, the per-file checksums in the manifest still catch it.
    archive.with_name(archive.name + ".sha256").unlink()
    res = hermesctl("restore", str(archive), c.name)
    assert res.code == 2 and len(res.stderr.strip().splitlines()) == 1, res
    c.start()
    wait_ready(c)
    assert sh(c, "test -e /opt/data/config.yaml && echo kept").strip() == "kept"
    assert hermesctl("restore", str(tmp_path / "nope.tar.gz"), c.name).code == 2
