"""Restore without Docker, in milliseconds: the archive rules (what read_manifest refuses and
accepts) and the image's journaled swap, killed (SIGKILL, from outside) before every step."""
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hermesctl.backends.docker.backup import MANIFEST, MANIFEST_SCHEMA, BackupError, data_checksum, read_manifest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "image" / "root" / "docker"))
from hermes_root import restore_swap  # noqa: E402


def _entry(name, kind=tarfile.REGTYPE, *, mode=None, body=b"", link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.mode = {tarfile.DIRTYPE: 0o755, tarfile.SYMTYPE: 0o777}.get(kind, 0o644) if mode is None else mode
    if kind == tarfile.REGTYPE:
        info.size = len(body)
    return info, body


def _archive(path: Path, entries) -> Path:
    files = {}
    with tarfile.open(path, "w:gz") as tar:
        for info, body in entries:
            tar.addfile(info, io.BytesIO(body) if info.type == tarfile.REGTYPE else None)
            if info.type == tarfile.REGTYPE:
                files[info.name[len("data/"):]] = hashlib.sha256(body).hexdigest()
        raw = json.dumps({"schema": MANIFEST_SCHEMA, "files": files, "data_sha256": data_checksum(files)}).encode()
        manifest = tarfile.TarInfo(MANIFEST)
        manifest.size = len(raw)
        tar.addfile(manifest, io.BytesIO(raw))
    return path


ROOT_DIR = _entry("data", tarfile.DIRTYPE)


@pytest.mark.parametrize("entries,phrase", [
    ([_entry("data", tarfile.SYMTYPE, link="/etc"), _entry("data/passwd", body=b"x")], "data root"),
    ([ROOT_DIR, _entry("data/l", tarfile.SYMTYPE, link="/etc"), _entry("data/h", tarfile.LNKTYPE, link="data/l/passwd")],
     "hard link"),
    ([ROOT_DIR, _entry("data/l", tarfile.SYMTYPE, link="/"), _entry("data/l/x", body=b"1")], "under a symlink"),
    ([ROOT_DIR, _entry("data/l", tarfile.SYMTYPE, link="/"), _entry("data/l/s", tarfile.SYMTYPE, link="/")],
     "under a symlink"),
    ([ROOT_DIR, _entry("data/h", tarfile.LNKTYPE, link="etc/shadow")], "hard link"),
    ([ROOT_DIR, _entry("data/d", tarfile.DIRTYPE), _entry("data/h", tarfile.LNKTYPE, link="data/d")], "hard link"),
    ([ROOT_DIR, _entry("data/null", tarfile.CHRTYPE, mode=0o666)], "device"),
    ([ROOT_DIR, _entry("data/disk", tarfile.BLKTYPE)], "device"),
    ([ROOT_DIR, _entry("data/p", tarfile.FIFOTYPE)], "FIFO"),
    ([ROOT_DIR, _entry("data/t", mode=0o4755, body=b"#!")], "setuid"),
    ([ROOT_DIR, _entry("data/g", tarfile.DIRTYPE, mode=0o2775)], "setgid"),
    ([ROOT_DIR, _entry("data/f", body=b"1"), _entry("data/f/g", body=b"2")], "under a file"),
    ([ROOT_DIR, _entry("data/x", body=b"1"), _entry("data/x", tarfile.SYMTYPE, link="/etc")], "twice"),
    ([ROOT_DIR, _entry("data/.hermesctl-restore", tarfile.DIRTYPE, mode=0o700)], "reserved"),
    ([ROOT_DIR, _entry("elsewhere/x", body=b"1")], "unexpected member"),
], ids=["symlinked-root", "hardlink-through-symlink", "file-under-symlink", "symlink-under-symlink",
        "hardlink-out", "hardlink-to-dir", "chr", "blk", "fifo", "setuid", "setgid", "under-file", "twice",
        "workspace", "outside-data"])
def test_read_manifest_refuses(tmp_path, entries, phrase):
    with pytest.raises(BackupError, match=phrase) as refused:
        read_manifest(_archive(tmp_path / "a.tar.gz", entries))
    assert refused.value.status == 2 and "\n" not in refused.value.message


def test_read_manifest_accepts_links_inside_its_own_tree(tmp_path):
    entries = [ROOT_DIR, _entry("data/a", tarfile.DIRTYPE, mode=0o700), _entry("data/a/f", body=b"x"),
               _entry("data/h", tarfile.LNKTYPE, link="data/a/f"), _entry("data/up", tarfile.SYMTYPE, link="../../etc"),
               _entry("data/abs", tarfile.SYMTYPE, link="/etc/passwd"), _entry("data/empty", tarfile.DIRTYPE),
               _entry("data/sticky", tarfile.DIRTYPE, mode=0o1777)]
    assert read_manifest(_archive(tmp_path / "a.tar.gz", entries))["files"] == {
        "a/f": hashlib.sha256(b"x").hexdigest()}


# -- the swap ------------------------------------------------------------------------------------

def _tree(home: Path) -> dict:
    out = {}
    for top, dirs, files in os.walk(home):
        for name in dirs + files:
            p = Path(top) / name
            st = p.lstat()
            what = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else b""
            out[str(p.relative_to(home))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), what)
    out[""] = (None, stat.S_IMODE(home.stat().st_mode), None)
    return out


def _old(home: Path) -> None:
    home.mkdir(mode=0o755)
    (home / "a").mkdir()
    (home / "a" / "f").write_bytes(b"old")
    (home / "l").symlink_to("a/f")
    (home / "e").mkdir(mode=0o700)
    (home / "logs").mkdir()
    (home / "logs" / "current").write_bytes(b"old log")


def _stage_new(home: Path) -> None:
    ws = home / restore_swap.WORKSPACE
    ws.mkdir(mode=0o700)
    new = ws / "new"
    new.mkdir(mode=0o750)
    (new / "a").write_bytes(b"a is a file now")
    (new / "b").mkdir()
    (new / "b" / "g").write_bytes(b"new")
    (new / "m").symlink_to("/etc/hostname")
    (new / "logs").mkdir()
    (new / "logs" / "current").write_bytes(b"new log")
    (ws / restore_swap.STAGED).write_text('{"entries": 6}')  # as the host's staging ends


def _swap_killed_before(home: Path, step: int, keep: list[str]) -> bool:
    """swap() in a child process paused before `step`, then SIGKILLed there; False: it finished."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from hermes_root import "
         "restore_swap as r; sys.exit(r.main(sys.argv[2:]))", str(ROOT / "image" / "root" / "docker"),
         "restore-swap", str(home), *keep],
        env={**os.environ, restore_swap.PAUSE_AT_ENV: str(step)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = child.stderr.readline()
    if restore_swap.PAUSED.encode() not in line:
        assert child.wait() == 0, line + child.stderr.read()
        return False
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    return True


@pytest.mark.parametrize("keep", [[], ["logs"]], ids=["restore", "rollback-keeping-logs"])
def test_a_swap_killed_before_any_step_is_finished_to_old_or_new(tmp_path, keep):
    reference = tmp_path / "reference"
    _old(reference)
    old_tree = _tree(reference)
    _stage_new(reference)
    assert restore_swap.swap(str(reference), keep)["installed"] == 4
    new_tree = _tree(reference)
    assert new_tree[""][1] == 0o750 and new_tree["a"][2] == b"a is a file now" and "e" not in new_tree
    assert new_tree["logs/current"][2] == (b"old log" if keep else b"new log")
    finished = {}
    for step in range(1, 40):
        home = tmp_path / f"step{step}"
        _old(home)
        _stage_new(home)
        if not _swap_killed_before(home, step, keep):
            assert _tree(home) == new_tree
            break
        assert restore_swap.finish(str(home)) in ("discarded", "installed")
        finished[step] = _tree(home)
        assert finished[step] == (old_tree if step == 1 else new_tree), step
        assert restore_swap.finish(str(home)) == "none"  # nothing left to do
    assert len(finished) >= 10, sorted(finished)


def test_a_workspace_that_is_not_a_directory_of_ours_is_cleared_never_entered(tmp_path):
    home = tmp_path / "home"
    _old(home)
    (home / restore_swap.WORKSPACE).symlink_to("/etc")
    assert restore_swap.finish(str(home)) == "discarded"
    assert not (home / restore_swap.WORKSPACE).exists() and Path("/etc/passwd").exists()
    with pytest.raises(FileNotFoundError):
        restore_swap.swap(str(home), [])


def test_nothing_to_finish(tmp_path):
    assert restore_swap.finish(str(tmp_path / "not-created-yet")) == "none"
    _old(tmp_path / "home")
    before = _tree(tmp_path / "home")
    assert restore_swap.finish(str(tmp_path / "home")) == "none"
    assert _tree(tmp_path / "home") == before


def test_a_damaged_journal_is_refused_untouched(tmp_path):
    home = tmp_path / "home"
    _old(home)
    _stage_new(home)
    (home / restore_swap.WORKSPACE / "journal").write_text('{"phase": "evacuate", "keep": ["../x"]}')
    before = _tree(home)
    with pytest.raises(restore_swap.RestoreError, match="damaged"):
        restore_swap.finish(str(home))
    assert _tree(home) == before


# -- issue 24: every name comes back where it was, and nothing is written elsewhere -----------

# Names a volume can hold that need PAX records in a tar: non-ASCII, a component of 200 bytes,
# a newline, bytes that are not UTF-8, a path of over 3,000 bytes.
ODD_NAMES = ["café.txt", "d/" + "x" * 200, "line\nbreak", "bytes-\udcff\udcfe", "/".join(["deep" * 10] * 75)]


def _odd_archive(tmp_path: Path) -> Path:
    entries = [ROOT_DIR, _entry("data/d", tarfile.DIRTYPE)]
    made = {"", "d"}
    for name in ODD_NAMES:
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) not in made:
                made.add("/".join(parts[:i]))
                entries.append(_entry("data/" + "/".join(parts[:i]), tarfile.DIRTYPE))
        entries.append(_entry("data/" + name, body=name.encode("utf-8", "surrogateescape")))
    return _archive(tmp_path / "odd.tar.gz", entries)


def _staged_names(archive: Path) -> list[str]:
    from hermesctl.backends.docker import volume_restore as restore
    spool = io.BytesIO()
    restore.write_staging(archive, None, spool)
    spool.seek(0)
    with tarfile.open(fileobj=spool) as tar:
        return [m.name for m in tar]


def test_staging_names_every_entry_inside_the_workspace_whatever_its_pax_records(tmp_path):
    from hermesctl.backends.docker import volume_restore as restore
    archive = _odd_archive(tmp_path)
    read_manifest(archive)
    names = _staged_names(archive)
    inside = f"{restore.STAGE}/new/"
    staged = {n[len(inside):] for n in names if n.startswith(inside)}
    assert set(ODD_NAMES) <= staged  # each one, byte for byte, under new/
    assert all(n.startswith(restore.STAGE) for n in names), [n for n in names if not n.startswith(restore.STAGE)]
    assert names[-1] == f"{restore.STAGE}/{restore.STAGED_MARKER}"


def test_staging_ignores_a_crafted_pax_path(tmp_path):
    """An entry whose PAX `path` says one thing and whose renamed header another: the staging
    header is new, so the archive's PAX path (the one Docker would honour) never reaches it."""
    from hermesctl.backends.docker import volume_restore as restore
    link, _ = _entry("data/x", tarfile.SYMTYPE, link="/opt/hermes/docker")
    link.pax_headers = {"path": "data/x", "linkpath": "/opt/hermes/docker"}
    evil, body = _entry("data/y", body=b"#!/bin/sh\n", mode=0o755)
    evil.pax_headers = {"path": "data/y"}
    archive = _archive(tmp_path / "pax.tar.gz", [ROOT_DIR, (link, b""), (evil, body)])
    read_manifest(archive)
    assert _staged_names(archive) == [restore.STAGE, f"{restore.STAGE}/new", f"{restore.STAGE}/new/x",
                                      f"{restore.STAGE}/new/y", f"{restore.STAGE}/{restore.STAGED_MARKER}"]


def test_check_staging_refuses_a_name_outside_the_workspace():
    from hermesctl.backends.docker import volume_restore as restore
    from hermesctl.core.errors import HermesctlError
    spool = io.BytesIO()
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"{restore.STAGE}/new/ok")
        info.pax_headers = {"path": "data/workspace/café.txt"}  # what a reader (and Docker) honours
        tar.addfile(info, io.BytesIO(b""))
    spool.seek(0)
    with pytest.raises(HermesctlError, match="outside the staging directory"):
        restore.check_staging(spool)


@pytest.mark.parametrize("name,phrase", [
    ("/".join(["a"] * 600), "levels deep"),
    ("/".join(["a"] * 2100), "levels deep"),
    ("n" * 256, "name of 256 bytes"),
    ("/".join(["b" * 250] * 17), "bytes long where a restore stages it"),
], ids=["600-levels", "2100-levels", "long-component", "long-path"])
def test_read_manifest_refuses_what_cannot_be_restored_whole(tmp_path, name, phrase):
    entries, parts = [ROOT_DIR], name.split("/")
    for i in range(1, len(parts)):
        entries.append(_entry("data/" + "/".join(parts[:i]), tarfile.DIRTYPE))
    entries.append(_entry("data/" + name, body=b"x"))
    with pytest.raises(BackupError, match=phrase) as refused:
        read_manifest(_archive(tmp_path / "a.tar.gz", entries))
    assert "\n" not in refused.value.message


def test_a_staging_that_lost_entries_since_is_not_installed(tmp_path):
    home = tmp_path / "home"
    _old(home)
    _stage_new(home)
    (home / restore_swap.WORKSPACE / "new" / "b" / "g").unlink()  # thinned after staging (a boot's discard)
    before = _tree(home)
    with pytest.raises(restore_swap.RestoreError, match="5 entries where 6 were staged"):
        restore_swap.swap(str(home), [])
    assert _tree(home) == before


def test_a_staging_that_never_completed_is_not_installed(tmp_path):
    home = tmp_path / "home"
    _old(home)
    _stage_new(home)
    (home / restore_swap.WORKSPACE / restore_swap.STAGED).unlink()
    with pytest.raises(restore_swap.RestoreError, match="did not complete"):
        restore_swap.swap(str(home), [])


def test_one_swap_at_a_time_per_volume(tmp_path, monkeypatch):
    """A second finish or swap waits for the volume's lock (the first's helper, or the boot)."""
    import fcntl
    home = tmp_path / "home"
    _old(home)
    _stage_new(home)
    holder = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    monkeypatch.setenv(restore_swap.LOCK_WAIT_ENV, "0.3")
    try:
        for call in (lambda: restore_swap.finish(str(home)), lambda: restore_swap.swap(str(home), [])):
            with pytest.raises(restore_swap.RestoreError, match="held this volume's lock"):
                call()
        assert (home / restore_swap.WORKSPACE / "new").is_dir()  # untouched while locked
    finally:
        os.close(holder)
    assert restore_swap.swap(str(home), [])["installed"] == 4


def test_an_old_tree_deeper_than_pythons_recursion_limit_is_swapped_out(tmp_path):
    home = tmp_path / "home"
    _old(home)
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(sys.getrecursionlimit() + 500):  # hermes can nest this deep in its volume
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    _stage_new(home)
    assert restore_swap.swap(str(home), [])["installed"] == 4
    assert not (home / "d").exists() and not (home / restore_swap.WORKSPACE).exists()
