"""Issue 15 items 4-5 and issue 14's backup findings, against real containers: backups are
private, the database snapshot has a deadline, restore refuses what it must and is atomic under
kill -9 (of hermesctl, or of the helper doing the swap), and a rollback is exact."""
import hashlib
import io
import json
import os
import re
import signal
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import pytest

from conftest import QUICK_HEALTH, RUN_ID, close_and_collect, hermesctl, popen_hermesctl, sh, wait_for, wait_ready
from derived_images import build_bad_tree

from hermesctl.backends.docker import backup
from hermesctl.backends.docker import volume_restore as restore
from hermesctl.backends.docker.daemon import Daemon
from hermesctl.backends.docker.endpoint import Endpoint

HERMES_IDS = (10000, 10000)
SWAP = [restore.BOOT, "restore-swap", backup.DATA_DIR]
FINISH = [restore.BOOT, "restore-finish", backup.DATA_DIR]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _endpoint(client) -> Endpoint:
    return Endpoint(name="local", url="unix:///var/run/docker.sock", daemon=Daemon(client.api, "local", 60))


def _volume_tree(container, *, skip=(backup.WORKSPACE,)) -> dict:
    """/opt/data as (type, mode, uid, gid, content hash or link target) per path, read through
    get_archive (works on a stopped container)."""
    stream, _ = container.get_archive(backup.DATA_DIR)
    tree = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for m in tar:
            rel = m.name[len("data/"):] if m.name.startswith("data/") else ""
            if rel.split("/")[0] in skip:
                continue
            what = hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isfile() else m.linkname
            tree[rel] = (m.type, stat.S_IMODE(m.mode), m.uid, m.gid, what)
    return tree


def _entry(name: str, kind=tarfile.REGTYPE, *, mode=None, body=b"", link="", ids=HERMES_IDS):
    info = tarfile.TarInfo(name)
    default = {tarfile.DIRTYPE: 0o755, tarfile.SYMTYPE: 0o777}.get(kind, 0o644)
    info.type, info.mode, info.linkname = kind, default if mode is None else mode, link
    info.uid, info.gid = ids
    info.mtime = 1_700_000_000
    if kind == tarfile.REGTYPE:
        info.size = len(body)
    return info, body


def _archive(path: Path, entries: list) -> Path:
    """An archive as `hermesctl backup` writes one, with whatever entries we give it."""
    files = {}
    with tarfile.open(path, "w:gz") as tar:
        for info, body in entries:
            if info.type == tarfile.REGTYPE:
                tar.addfile(info, io.BytesIO(body))
                files[info.name[len("data/"):]] = hashlib.sha256(body).hexdigest()
            else:
                tar.addfile(info)
        raw = json.dumps({"schema": backup.MANIFEST_SCHEMA, "container": {"name": "crafted"}, "profiles": [],
                          "files": files, "data_sha256": backup.data_checksum(files)}).encode()
        manifest = tarfile.TarInfo(backup.MANIFEST)
        manifest.size = len(raw)
        tar.addfile(manifest, io.BytesIO(raw))
    return path


def _helpers(client, container) -> list:
    return client.containers.list(all=True, filters={"label": f"{backup.HELPER_FOR_LABEL}={container.id}"})


# -- item 4: private backups ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def live_container(module_containers):
    """A Hermes container on a named volume for the backup and rollback tests, shared: each leaves
    its data as it found it. A failed boot exits at once (the rollback test's broken image), and
    the container, back, is healthy in seconds."""
    return module_containers.start("live", volume=module_containers.volume("live"), healthcheck=QUICK_HEALTH,
                                   env={"S6_BEHAVIOUR_IF_STAGE2_FAILS": "2"})


@pytest.fixture
def live(live_container):
    """The shared container, running (the rollback test leaves it stopped)."""
    live_container.reload()
    if live_container.status != "running":
        live_container.start()
        wait_ready(live_container)
    return live_container


def test_backups_are_0600_in_a_0700_directory_whatever_the_umask(live, tmp_path):
    c = live
    for umask in (0o022, 0o000):
        out = tmp_path / f"umask{umask:o}" / "nested" / "backups"
        previous = os.umask(umask)
        try:
            res = hermesctl("backup", c.name, "-o", str(out), "--json")
        finally:
            os.umask(previous)
        assert res.code == 0, res
        archive = Path(res.json()["backups"][0]["archive"])
        sidecar = archive.with_name(archive.name + ".sha256")
        assert [_mode(p) for p in (out.parent, out)] == [0o700, 0o700]
        assert [_mode(p) for p in (archive, sidecar)] == [0o600, 0o600]
        assert sorted(p.name for p in out.iterdir()) == [archive.name, sidecar.name]  # no .partial left
        as_nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                    "cat", str(archive)], capture_output=True)
        assert as_nobody.returncode != 0 and not as_nobody.stdout


# (An upgrade's backup is private too: test_upgrade_plain's upgrade, with umask 0.)


# -- issue 14: the snapshot's deadline ------------------------------------------------------------

LOCKER = r"""
import os, sqlite3, time
c = sqlite3.connect('/opt/data/locked.db', isolation_level=None)
c.execute('create table if not exists t (x)')
c.execute('begin exclusive')
c.execute('insert into t values (1)')
open('/tmp/locker-ready', 'w').write(str(os.getpid()))
time.sleep(3600)
"""


def test_backup_snapshot_skips_a_fifo_and_has_a_deadline(live, tmp_path):
    c = live
    try:
        sh(c, "mkfifo /opt/data/x.db && mkdir -p /opt/data/sub && mkfifo /opt/data/sub/y.db && "
              "/opt/hermes/.venv/bin/python -c \"import sqlite3; c=sqlite3.connect('/opt/data/real.db'); "
              "c.execute('create table t (x)'); c.execute('insert into t values (7)'); c.commit()\"")
        started = time.monotonic()
        res = hermesctl("backup", c.name, "-o", str(tmp_path / "a"), "--json", timeout=90)
        assert res.code == 0, res
        assert time.monotonic() - started < 60
        [entry] = res.json()["backups"]
        assert "real.db" in entry["databases"] and "x.db" not in entry["databases"]
        with tarfile.open(entry["archive"]) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())
        assert {"x.db", "sub/y.db"} <= set(manifest["skipped"])  # a FIFO is not data

        # A database whose lock is held for longer than the deadline: the in-container copy is killed
        # at --timeout, the command says so (exit 7), and no staging directory is left behind.
        c.exec_run(["/opt/hermes/.venv/bin/python", "-c", LOCKER], user="hermes", detach=True)
        wait_for(lambda: c.exec_run(["test", "-s", "/tmp/locker-ready"]).exit_code == 0, what="the lock holder")
        started = time.monotonic()
        res = hermesctl("--timeout", "3", "backup", c.name, "-o", str(tmp_path / "b"), timeout=90)
        took = time.monotonic() - started
        assert res.code == 7, res
        assert took < 20, took
        assert len(res.stderr.strip().splitlines()) == 1 and "3s" in res.stderr, res
        assert not list((tmp_path / "b").iterdir())
        wait_for(lambda: sh(c, "ls /tmp | grep -c hermesctl-backup || true").strip() == "0",
                 timeout=10, what="the staging directory removed")
    finally:  # the shared container as it was: no lock holder, no FIFOs
        sh(c, "kill $(cat /tmp/locker-ready) 2>/dev/null; rm -rf /tmp/locker-ready /opt/data/x.db /opt/data/sub "
              "/opt/data/real.db /opt/data/locked.db*", check=False)


# -- item 5: what restore refuses ------------------------------------------------------------------

ROOT_DIR = _entry("data", tarfile.DIRTYPE, mode=0o755)
REFUSED = {
    "symlinked root": ([_entry("data", tarfile.SYMTYPE, link="/etc"), _entry("data/passwd", body=b"x")],
                       "data root"),
    "hard link through a symlink": ([ROOT_DIR, _entry("data/l", tarfile.SYMTYPE, link="/etc"),
                                     _entry("data/h", tarfile.LNKTYPE, link="data/l/passwd")], "hard link"),
    "symlink through a symlink": ([ROOT_DIR, _entry("data/l", tarfile.SYMTYPE, link="/etc"),
                                   _entry("data/l/s", tarfile.SYMTYPE, link="/")], "under a symlink"),
    "hard link out of data": ([ROOT_DIR, _entry("data/h", tarfile.LNKTYPE, link="etc/shadow")], "hard link"),
    "device node": ([ROOT_DIR, _entry("data/null", tarfile.CHRTYPE, mode=0o666)], "device"),
    "block device": ([ROOT_DIR, _entry("data/disk", tarfile.BLKTYPE, mode=0o660)], "device"),
    "fifo": ([ROOT_DIR, _entry("data/pipe", tarfile.FIFOTYPE)], "FIFO"),
    "setuid file": ([ROOT_DIR, _entry("data/tool", mode=0o4755, body=b"#!/bin/sh\n")], "setuid"),
    "setgid directory": ([ROOT_DIR, _entry("data/shared", tarfile.DIRTYPE, mode=0o2775)], "setgid"),
    "file through a file": ([ROOT_DIR, _entry("data/f", body=b"1"), _entry("data/f/g", body=b"2")],
                            "under a file"),
    "the restore workspace": ([ROOT_DIR, _entry("data/.hermesctl-restore", tarfile.DIRTYPE, mode=0o700)],
                              "reserved"),
}


def test_restore_refuses_unsafe_archives_and_changes_nothing(docker_client, swap_target, tmp_path):
    c, endpoint, old, _, swapper = swap_target
    swapper.install(endpoint, c, old)  # files, directories, a symlink: what must stay as it is
    before = _volume_tree(c)
    assert before == _expected(OLD_TREE)
    for case, (entries, phrase) in REFUSED.items():
        archive = _archive(tmp_path / f"{case.replace(' ', '-')}.tar.gz", entries)
        res = hermesctl("restore", str(archive), c.name)
        assert res.code == 2, (case, res)
        assert len(res.stderr.strip().splitlines()) == 1 and phrase in res.stderr, (case, res)
        assert _volume_tree(c) == before, case
        assert not _helpers(docker_client, c), case


# -- item 5: atomic under kill -9 -------------------------------------------------------------------

BIG = hashlib.sha256(b"seed").digest() * (1 << 17)  # 4 MiB, the same every run
OLD_TREE = [ROOT_DIR, _entry("data/a", tarfile.DIRTYPE), _entry("data/a/f", body=b"old file"),
            _entry("data/l", tarfile.SYMTYPE, link="a/f"), _entry("data/e", tarfile.DIRTYPE, mode=0o700),
            _entry("data/x", mode=0o640, body=b"old x")]
NEW_TREE = [_entry("data", tarfile.DIRTYPE, mode=0o750), _entry("data/b", tarfile.DIRTYPE),
            _entry("data/b/g", body=b"new file"), _entry("data/m", tarfile.SYMTYPE, link="/etc/hostname"),
            _entry("data/a", mode=0o600, body=b"a is a file now"),
            _entry("data/h", tarfile.LNKTYPE, mode=0o600, link="data/a"),  # a hard link reads back with a's mode
            _entry("data/d", tarfile.DIRTYPE, mode=0o711)]


def _expected(entries) -> dict:
    """The tree an archive of these entries must restore to (hard links read back as such)."""
    tree = {}
    for info, body in entries:
        rel = info.name[len("data/"):] if info.name.startswith("data/") else ""
        what = hashlib.sha256(body).hexdigest() if info.type == tarfile.REGTYPE else info.linkname
        tree[rel] = (info.type, info.mode, *HERMES_IDS, what)
    return tree


class Swapper:
    """A root container of the target's image on the target's volumes (no network), doing nothing
    but sleep: the image's own `restore-swap` and `restore-finish` run in it as execs, as root, on
    the same volume, which is all a restore's helper container is: an exec (~50 ms of the host's
    CPU beyond what it runs) where a helper is a container's create, start and removal (~0.5 s).
    The product's own helper path is proven by the restore_tree calls and every `hermesctl
    restore` of this file. Not labelled a helper of the target (restore's settle_helpers would
    wait for it to end), nor a Hermes container (`ps` would list it)."""

    def __init__(self, client, target, name: str):
        self.api = client.api
        self.container = client.containers.run(
            target.attrs["Image"], ["infinity"], entrypoint=["sleep"], user="0:0", name=name, detach=True,
            network_mode="none", volumes_from=[f"{target.id}:rw"], labels={"io.hermes-agent.managed": "false"})

    def run(self, argv: list[str], *, user: str = "0:0") -> str:
        code, output = self.container.exec_run(argv, user=user)
        assert code == 0, (argv, code, output)
        return output.decode("utf-8", "replace")

    def finish(self) -> str:
        return self.run(FINISH)

    def install(self, endpoint, target, archive: Path) -> None:
        """The volume holds the archive's tree: staged as restore stages it, swapped in by the
        image's swap (a volume left whole by the last finish: the fixture's, or the test's own)."""
        restore.stage_archive(endpoint, target.id, archive, HERMES_IDS)
        self.run(SWAP)

    def start_swap(self, environment: dict) -> "SwapExec":
        """The image's swap, started in the background with its fault injection; SwapExec reads
        its stderr as it comes (one blocking read, no polling)."""
        created = self.api.exec_create(self.container.id, ["sh", "-c", 'echo "pid $$" >&2 && exec "$@"', "sh", *SWAP],
                                       user="0:0", stdout=True, stderr=True, environment=environment)
        return SwapExec(self, created["Id"], self.api.exec_start(created["Id"], stream=True, demux=True))

    def swap_killed_before(self, step: int) -> bool:
        """Run the swap, paused before `step`, and kill -9 it there: True, or False if it
        finished first (there is no such step)."""
        swap = self.start_swap({"HERMES_RESTORE_PAUSE_AT": str(step)})
        if not swap.wait_for(f"paused before step {step}"):
            assert swap.exit_code() == 0, swap.stderr
            return False
        self.run(["kill", "-KILL", swap.pid])  # the swap's own process (sh exec'd into it), as root
        swap.wait_for("(never printed)")  # its output ends with it
        assert swap.exit_code() == 137, swap.stderr  # 128 + SIGKILL
        return True

    def remove(self) -> None:
        self.container.remove(force=True, v=True)


class SwapExec:
    def __init__(self, swapper: Swapper, exec_id: str, stream):
        self.swapper, self.exec_id, self.stream = swapper, exec_id, stream
        self.stderr, self.pid = b"", None

    def wait_for(self, text: str) -> bool:
        """Read its stderr until `text` (True) or its end (False). The swap either pauses, says
        so and waits to be killed, or runs to its end: no read waits for ever."""
        for _, err in self.stream:
            self.stderr += err or b""
            found = re.match(rb"pid (\d+)\n", self.stderr)
            self.pid = found.group(1).decode() if found else self.pid
            if text.encode() in self.stderr:
                return True
        return False

    def exit_code(self) -> int:
        return self.swapper.api.exec_inspect(self.exec_id)["ExitCode"]


@pytest.fixture(scope="module")
def shared_target(docker_client, module_containers):
    """One stopped Hermes container for the tests of restore itself (each gives its volume the
    tree it starts from), and its Swapper. One boot for the file instead of one per test."""
    c = module_containers.start("swap", volume=module_containers.volume("swap"))
    c.stop(timeout=10)
    swapper = Swapper(docker_client, c, module_containers.name("swapper"))
    yield c, swapper
    swapper.remove()


@pytest.fixture
def swap_target(docker_client, shared_target, tmp_path):
    """The shared container, stopped and its volume whole (whatever a failed test before left),
    its endpoint, two archives (OLD and NEW) and its Swapper."""
    c, swapper = shared_target
    c.reload()
    if c.status == "running":
        c.stop(timeout=10)
    endpoint = _endpoint(docker_client)
    backup.settle_helpers(endpoint, c.id)
    swapper.finish()
    old = _archive(tmp_path / "old.tar.gz", OLD_TREE)
    new = _archive(tmp_path / "new.tar.gz", NEW_TREE)
    return c, endpoint, old, new, swapper


def test_swap_killed_at_every_step_recovers_to_old_or_new(docker_client, swap_target):
    c, endpoint, old, new, swapper = swap_target
    image = c.attrs["Image"]
    # Restore as restore runs it (its helper containers): the trees come out exact.
    restore.restore_tree(endpoint, c.id, old, image, owners=HERMES_IDS)
    assert _volume_tree(c) == _expected(OLD_TREE)
    restore.restore_tree(endpoint, c.id, new, image, owners=HERMES_IDS)
    assert _volume_tree(c) == _expected(NEW_TREE)  # types, modes, owners, links: exact
    # Then the same swap, killed before each of its steps in turn, and the finish every restore
    # and every boot runs first: in the Swapper, the same code as root on the same volume.
    old_tree, new_tree = _expected(OLD_TREE), _expected(NEW_TREE)
    outcomes = {}
    for step in range(1, 40):
        swapper.install(endpoint, c, old)
        restore.stage_archive(endpoint, c.id, new, HERMES_IDS)
        if not swapper.swap_killed_before(step):
            assert _volume_tree(c, skip=()) == new_tree
            break
        swapper.finish()
        outcomes[step] = _volume_tree(c, skip=())  # nothing of the workspace is left either
        assert outcomes[step] == (old_tree if step == 1 else new_tree), step  # step 1 writes the journal
    assert len(outcomes) >= 12, sorted(outcomes)
    assert not _helpers(docker_client, c)


def test_a_swap_killed_midway_is_finished_by_the_next_boot(docker_client, swap_target):
    c, endpoint, old, new, swapper = swap_target
    for step in (4, 10):  # while the old entries move aside; while the new ones move in
        swapper.install(endpoint, c, old)
        restore.stage_archive(endpoint, c.id, new, HERMES_IDS)
        assert swapper.swap_killed_before(step)
        half = _volume_tree(c)
        assert half != _expected(OLD_TREE) and half != _expected(NEW_TREE)  # really half-way
        said = c.logs().decode().count("interrupted restore")  # the container's earlier boots' too
        c.start()
        wait_ready(c)
        assert c.logs().decode().count("interrupted restore") == said + 1, step
        c.stop(timeout=10)
        tree = _volume_tree(c, skip=())
        assert backup.WORKSPACE not in tree
        for rel, entry in _expected(NEW_TREE).items():
            if rel:  # the boot itself owns the root and seeds its files beside these
                assert tree.get(rel) == entry, (step, rel)
        assert "e" not in tree and "l" not in tree and "x" not in tree


def _helper_running(client, container, verb: str) -> bool:
    found = client.api.containers(all=True, filters={"label": f"{backup.HELPER_FOR_LABEL}={container.id}"})
    return any(verb in h["Command"] and h["State"] == "running" for h in found)


def _helper_created(client, container) -> bool:
    found = client.api.containers(all=True, filters={"label": f"{backup.HELPER_FOR_LABEL}={container.id}"})
    return any("restore-swap" in h["Command"] for h in found)


def _staging_exists(client, container) -> bool:
    api = client.api
    head = api.head(api._url("/containers/{0}/archive", container.id),
                    params={"path": f"{backup.DATA_DIR}/{backup.WORKSPACE}"})
    return head.status_code == 200


def test_kill_9_of_hermesctl_at_any_moment_leaves_old_or_new(docker_client, swap_target, tmp_path):
    c, endpoint, old, _, swapper = swap_target
    big_tree = NEW_TREE + [_entry("data/big", body=BIG * 8)]  # 32 MiB: a staging long enough to catch
    big = _archive(tmp_path / "big.tar.gz", big_tree)
    old_tree, new_tree = _expected(OLD_TREE), _expected(big_tree)
    moments = {  # when hermesctl gets SIGKILL -> what the volume must then hold
        "as soon as it is started": (lambda: True, old_tree),
        "while the earlier restore is finished": (lambda: _helper_running(docker_client, c, "restore-finish"), old_tree),
        "while the new tree is staged": (lambda: _staging_exists(docker_client, c), old_tree),
        "while the helper swaps": (lambda: _helper_running(docker_client, c, "restore-swap"), new_tree),
        "right after hermesctl created the swap's helper": (lambda: _helper_created(docker_client, c), None),
    }
    for moment, (reached, expected) in moments.items():
        backup.settle_helpers(endpoint, c.id)  # also after a failed iteration: leave none behind
        swapper.install(endpoint, c, old)
        proc = popen_hermesctl("restore", str(big), c.name)  # its own process, forked ready-imported
        try:
            wait_for(reached, timeout=60, interval=0.02, what=moment)
        finally:
            proc.send_signal(signal.SIGKILL)
            close_and_collect(proc)
            backup.settle_helpers(endpoint, c.id)  # a swap already started runs to its end without us
        assert _volume_tree(c) in ((old_tree, new_tree) if expected is None else (expected,)), moment
        # The next restore completes (a half staging is discarded first).
        res = hermesctl("restore", str(big), c.name)
        assert res.code == 0, (moment, res)
        assert _volume_tree(c, skip=()) == new_tree, moment


# -- issue 14: an exact rollback -------------------------------------------------------------------

BAD_TREE = f"hermes-agent:wtc-badtree-{RUN_ID}"


def test_rollback_restores_the_tree_exactly_whatever_the_new_image_added(docker_client, hermes_image, live, tmp_path):
    build_bad_tree(docker_client, BAD_TREE, hermes_image)
    c, name = live, live.name
    try:
        assert hermesctl("profile", "create", f"{name}:coder").code == 0
        sh(c, "chmod 0640 /opt/data/config.yaml && ln -s SOUL.md /opt/data/soul-link && mkdir /opt/data/kept-empty")
        # The tree the upgrade's backup will hold (read running: no gateway runs, nothing has a
        # database open, so it is the files as they are).
        before = _volume_tree(c, skip=(backup.WORKSPACE, "logs"))
        res = hermesctl("upgrade", name, "--image", BAD_TREE, "--timeout", "60", "--backup-dir", str(tmp_path), "--json")
        assert res.code == 1, res
        [outcome] = res.json()["containers"]
        assert outcome["result"] == "rolled back", outcome
        for rel in ("added-link", "added-empty", "profiles/coder/added-dir", "config.yaml", "profiles",
                    "profiles/coder/.env", "soul-link", "kept-empty"):
            assert rel in outcome["changed_files_restored"], (rel, outcome)
        back = docker_client.containers.get(name)
        assert back.id == c.id
        back.stop(timeout=10)
        after = _volume_tree(back, skip=(backup.WORKSPACE, "logs"))
        # Exactly the backup's tree (logs aside), after the old image booted on it again: the
        # symlink and the empty directory the new image added are gone, every mode is back.
        assert after == before
    finally:  # a failed run's new container (the shared one, by its id, goes with the module)
        for leftover in docker_client.containers.list(all=True, filters={"name": name}):
            if leftover.id != c.id:
                leftover.remove(force=True)
        docker_client.images.remove(BAD_TREE, force=True)


# -- issue 24: every name back where it was, nothing written elsewhere, one swap at a time ----------

# Made by hermes in its volume: non-ASCII, a 200-byte component, a newline, bytes that are not
# UTF-8, a path of over 3,000 bytes; each file holds its own name.
ODD_NAMES_SCRIPT = r"""
import os
names = [b"caf\xc3\xa9.txt", b"workspace/" + b"x" * 200, b"line\nbreak", b"bytes-\xff\xfe",
         b"/".join([b"deep" * 10] * 75)]
for name in names:
    path = b"/opt/data/" + name
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(name)
"""
ODD_TOPS = ("café.txt", "workspace", "line\nbreak", "bytes-\udcff\udcfe", "deep" * 10)


def _outside_data(container) -> list[str]:
    """What `docker diff` says changed in the container's own file system under /data or
    /opt/hermes: a restore writes only inside the /opt/data volume."""
    return [c["Path"] for c in container.diff() or [] if c["Path"].startswith(("/data", "/opt/hermes"))]


def test_a_restore_brings_back_every_name_byte_for_byte(swap_target, tmp_path):
    c, endpoint, old, _, swapper = swap_target
    swapper.install(endpoint, c, old)
    swapper.run(["/opt/hermes/.venv/bin/python", "-c", ODD_NAMES_SCRIPT], user="hermes")  # hermes writes them
    before = _volume_tree(c)
    assert {rel.split("/")[0] for rel in before} >= set(ODD_TOPS)
    res = hermesctl("backup", c.name, "-o", str(tmp_path), "--json")
    assert res.code == 0, res
    archive = res.json()["backups"][0]["archive"]
    swapper.run(["sh", "-c", "rm -rf /opt/data/workspace /opt/data/caf* /opt/data/line* /opt/data/bytes-* "
                             "/opt/data/deep*"], user="hermes")
    res = hermesctl("restore", archive, c.name)
    assert res.code == 0, res
    after = _volume_tree(c)
    for rel, entry in before.items():
        if rel.split("/")[0] in ODD_TOPS:
            assert after.get(rel) == entry, rel
    assert _outside_data(c) == []


def test_crafted_pax_paths_never_write_outside_the_volume(swap_target, tmp_path):
    """Two checksum-valid archives: a symlink to root's boot scripts, then a file under that
    name, both with PAX path records. Before the fix Docker honoured the records: the first put
    /data/x -> /opt/hermes/docker in the container's root file system, the second wrote a
    hermes-owned executable through it."""
    c = swap_target[0]
    assert _outside_data(c) == []  # (the shared container's boots wrote nothing there either)
    link, _ = _entry("data/x", tarfile.SYMTYPE, link="/opt/hermes/docker")
    link.pax_headers = {"path": "data/x", "linkpath": "/opt/hermes/docker"}
    first = _archive(tmp_path / "first.tar.gz", [ROOT_DIR, (link, b"")])
    folder, _ = _entry("data/x", tarfile.DIRTYPE)
    folder.pax_headers = {"path": "data/x"}
    evil, body = _entry("data/x/evil", mode=0o755, body=b"#!/bin/sh\necho owned\n")
    evil.pax_headers = {"path": "data/x/evil"}
    second = _archive(tmp_path / "second.tar.gz", [ROOT_DIR, (folder, b""), (evil, body)])
    for archive, expected in ((first, {"x": (tarfile.SYMTYPE, 0o777, *HERMES_IDS, "/opt/hermes/docker")}),
                              (second, {"x": (tarfile.DIRTYPE, 0o755, *HERMES_IDS, ""),
                                        "x/evil": (tarfile.REGTYPE, 0o755, *HERMES_IDS,
                                                   hashlib.sha256(body).hexdigest())})):
        res = hermesctl("restore", str(archive), c.name)
        assert res.code == 0, res
        tree = _volume_tree(c)
        assert {k: v for k, v in tree.items() if k} == expected, tree
    assert _outside_data(c) == []
    with pytest.raises(docker.errors.NotFound):
        c.get_archive("/opt/hermes/docker/evil")


def test_a_boot_waits_for_a_swap_under_way_instead_of_running_a_second_one(docker_client, swap_target):
    """A killed restore's helper still swapping when the container is started (what doctor
    suggests): before the lock, the boot discarded or resumed the same swap beside it."""
    c, endpoint, old, new, swapper = swap_target
    swapper.install(endpoint, c, old)
    restore.stage_archive(endpoint, c.id, new, HERMES_IDS)
    # The swap in another container on the volume (the Swapper), paused 6 s once it holds the lock.
    swap = swapper.start_swap({"HERMES_RESTORE_PAUSE_AT": "1", "HERMES_RESTORE_PAUSE_FOR": "6"})
    assert swap.wait_for("paused before step 1"), swap.stderr
    c.start()
    swap.wait_for("(never printed)")  # to its end
    assert swap.exit_code() == 0, swap.stderr
    wait_ready(c)
    c.stop(timeout=10)
    tree = _volume_tree(c, skip=())
    assert backup.WORKSPACE not in tree
    for rel, entry in _expected(NEW_TREE).items():
        if rel:  # the boot owns the root and seeds its own files beside these
            assert tree.get(rel) == entry, rel
    assert {"profiles", "logs"} <= set(tree)  # what the boot made after the swap is still there


def _restore_interrupted(c, archive: Path, when, env: dict | None = None):
    proc = popen_hermesctl("restore", str(archive), c.name, env=env)
    try:
        wait_for(when, timeout=60, interval=0.05, what="the moment to press Ctrl-C")
        proc.send_signal(signal.SIGINT)
    finally:
        res = close_and_collect(proc)
    return res


def test_ctrl_c_during_a_restore_leaves_one_whole_tree_and_says_which(docker_client, swap_target, tmp_path):
    c, endpoint, old, new, swapper = swap_target
    swapper.install(endpoint, c, old)

    # During the swap (paused 4 s mid-way): it is finished first, then reported.
    paused = {"HERMES_RESTORE_PAUSE_AT": "3", "HERMES_RESTORE_PAUSE_FOR": "4"}

    def swapping() -> bool:
        for h in docker_client.containers.list(filters={"label": f"{backup.HELPER_FOR_LABEL}={c.id}"}):
            if b"paused before step 3" in h.logs():
                ps = hermesctl("ps", "--json")  # a helper is never listed as a Hermes container
                assert h.name not in ps.stdout and h.name.startswith("hermesctl-restore-"), ps
                return True
        return False
    res = _restore_interrupted(c, new, swapping, env=paused)
    assert res.code == 130, res
    assert "the swap has begun" in res.stderr and "the restored tree is in place" in res.stderr, res
    assert _volume_tree(c, skip=()) == _expected(NEW_TREE)
    assert not _helpers(docker_client, c)

    # Before the swap (its helpers at work, the backup staged: 128 MiB take a while): the old
    # tree stays, and it says so.
    big_tree = NEW_TREE + [_entry("data/big", body=BIG * 32)]
    big = _archive(tmp_path / "big.tar.gz", big_tree)
    swapper.install(endpoint, c, old)

    def before_the_swap() -> bool:
        found = docker_client.api.containers(all=True, filters={"label": f"{backup.HELPER_FOR_LABEL}={c.id}"})
        return bool(found) and not any("restore-swap" in h["Command"] for h in found)
    res = _restore_interrupted(c, big, before_the_swap)
    assert res.code == 130, res
    assert "the old tree is in place" in res.stderr, res
    backup.settle_helpers(endpoint, c.id)
    assert _volume_tree(c) == _expected(OLD_TREE)
