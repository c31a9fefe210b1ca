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

from hermesctl.backup import MANIFEST, MANIFEST_SCHEMA, BackupError, data_checksum, read_manifest

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
