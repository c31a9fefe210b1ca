"""Issue 16 (last item): the image's Python, and so hermes' own `import sqlite3`, uses an SQLite
with the WAL-reset fix (sqlite.org/wal.html, "walresetbug": fixed in 3.51.3, backported to 3.50.7
and 3.44.6); bookworm's 3.40.1 is affected. Proven on hermes' real state.db, in WAL mode."""
import json
import struct

import pytest

from conftest import sh, svstat, wait_for

HERMES = "/opt/data"
OUR_LIBRARY = "/usr/local/lib/libsqlite3.so.0"


def has_wal_reset_fix(version: str) -> bool:
    v = tuple(int(part) for part in version.split("."))
    return v >= (3, 51, 3) or (3, 50, 7) <= v < (3, 51) or (3, 44, 6) <= v < (3, 45)


def test_the_fix_predicate_knows_the_fixed_releases_and_backports():
    assert [has_wal_reset_fix(v) for v in ("3.51.3", "3.53.4", "3.50.7", "3.44.6", "4.0.0")] == [True] * 5
    assert [has_wal_reset_fix(v) for v in ("3.40.1", "3.51.2", "3.50.6", "3.44.5", "3.45.0", "3.46.1")] == [False] * 6


@pytest.fixture(scope="module")
def gateway_container(module_containers):
    """One container whose default gateway (hermes' own code) has opened state.db."""
    c = module_containers.start("gw", env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})
    wait_for(lambda: svstat(c, "default")["up"], what="default gateway up")
    wait_for(lambda: sh(c, f"test -s {HERMES}/state.db && echo yes", check=False).strip() == "yes",
             what="the gateway creates state.db")
    return c


PYTHONS = ("python", "python3", "/opt/hermes/.venv/bin/python", "/usr/bin/python3")


@pytest.mark.parametrize("user", ["hermes", "root"])
def test_every_python_in_the_image_prints_a_fixed_sqlite_version(gateway_container, user):
    for python in PYTHONS:
        out = sh(gateway_container, f"{python} -c 'import sqlite3; print(sqlite3.sqlite_version)'", user=user)
        version = out.strip()
        assert has_wal_reset_fix(version), f"{python} as {user}: SQLite {version} has the WAL-reset bug"
    # A login shell (the venv first on PATH through /etc/profile.d) finds the same library.
    login = gateway_container.exec_run(["bash", "-lc", "python -c 'import sqlite3; print(sqlite3.sqlite_version)'"],
                                       user=user)
    assert login.exit_code == 0 and has_wal_reset_fix(login.output.decode().strip()), login.output


# What bookworm's build offered and Python code may rely on; the new library keeps it.
KEPT_OPTIONS = {"ENABLE_FTS3", "ENABLE_FTS3_PARENTHESIS", "ENABLE_FTS4", "ENABLE_FTS5", "ENABLE_RTREE",
                "ENABLE_MATH_FUNCTIONS", "ENABLE_COLUMN_METADATA", "ENABLE_LOAD_EXTENSION", "ENABLE_DBSTAT_VTAB",
                "ENABLE_UNLOCK_NOTIFY", "ENABLE_UPDATE_DELETE_LIMIT", "ENABLE_PREUPDATE_HOOK", "ENABLE_SESSION",
                "ENABLE_STMTVTAB", "SECURE_DELETE", "SOUNDEX", "LIKE_DOESNT_MATCH_BLOBS", "USE_URI", "THREADSAFE=1",
                "MAX_SCHEMA_RETRY=25", "MAX_VARIABLE_NUMBER=250000"}


def test_the_library_keeps_debians_compile_options_and_extension_loading(gateway_container):
    script = ("import sqlite3; c = sqlite3.connect(':memory:'); c.enable_load_extension(False); "
              "print(' '.join(r[0] for r in c.execute('pragma compile_options')))")
    options = set(sh(gateway_container, f'python -c "{script}"').split())
    assert KEPT_OPTIONS <= options, sorted(KEPT_OPTIONS - options)


def test_the_running_gateway_has_our_library_mapped_and_no_other(gateway_container):
    pid = svstat(gateway_container, "default")["pid"]
    mapped = set(sh(gateway_container, f"grep -o '/[^ ]*libsqlite3[^ ]*' /proc/{pid}/maps | sort -u").split())
    assert mapped == {OUR_LIBRARY}, mapped


def test_hermes_state_db_is_written_in_wal_mode_by_the_fixed_library(gateway_container):
    header = gateway_container.exec_run(["head", "-c", "100", f"{HERMES}/state.db"], user="hermes").output
    # Bytes 18-19: file format read/write versions, 2 = WAL. Bytes 96-99: SQLITE_VERSION_NUMBER
    # of the library that last wrote the file (the gateway, which created it).
    assert header[:16] == b"SQLite format 3\0" and header[18:20] == b"\x02\x02", header[:20]
    number = struct.unpack(">I", header[96:100])[0]
    written_by = f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
    assert has_wal_reset_fix(written_by), f"state.db last written by SQLite {written_by}"


# Three writers through hermes' own SessionDB (WAL, explicit BEGIN IMMEDIATE, FTS5 triggers) while the
# gateway holds the same state.db open; then a full checkpoint that resets the WAL, and a check.
CONCURRENT_WRITERS = r"""
import json, multiprocessing, sqlite3
from hermes_state import SessionDB

def write(worker):
    db = SessionDB()
    session = f"sqlite-wal-{worker}"
    db.create_session(session, "cli")
    for i in range(150):
        db.append_message(session, "user", f"walcheck worker{worker} message{i}")
    db.close()

if __name__ == "__main__":
    procs = [multiprocessing.Process(target=write, args=(w,)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    db = SessionDB()
    found = db.search_messages("walcheck", limit=1000)
    fts = {"fts5": db._fts_enabled, "trigram": db._trigram_available}
    db.close()
    conn = sqlite3.connect("/opt/data/state.db", isolation_level=None)
    conn.execute("insert into messages_fts(messages_fts) values('integrity-check')")  # raises if corrupt
    counts = [conn.execute("select count(*) from messages where session_id = ?", (f"sqlite-wal-{w}",)).fetchone()[0]
              for w in range(3)]
    print(json.dumps({
        "version": sqlite3.sqlite_version,
        "exit_codes": [p.exitcode for p in procs],
        "counts": counts,
        "found": len(found),
        "fts": fts,
        "journal_mode": conn.execute("pragma journal_mode").fetchone()[0],
        "checkpoint_busy": conn.execute("pragma wal_checkpoint(TRUNCATE)").fetchone()[0],
        "integrity": conn.execute("pragma integrity_check").fetchone()[0],
    }))
"""


def test_hermes_session_db_takes_concurrent_writers_in_wal_mode(gateway_container):
    out = gateway_container.exec_run(["/opt/hermes/.venv/bin/python", "-c", CONCURRENT_WRITERS], user="hermes",
                                     workdir=HERMES)
    assert out.exit_code == 0, out.output.decode()
    result = json.loads(out.output.decode().strip().splitlines()[-1])
    assert has_wal_reset_fix(result["version"]), result
    assert result["exit_codes"] == [0, 0, 0] and result["counts"] == [150, 150, 150], result
    assert result["found"] == 450 and result["fts"] == {"fts5": True, "trigram": True}, result
    assert result["journal_mode"] == "wal", result
    assert result["checkpoint_busy"] == 0 and result["integrity"] == "ok", result
    # The gateway, a writer of the same file throughout, is still up.
    assert svstat(gateway_container, "default")["up"]
