"""Issue 24, usage against real containers whose hermes user writes what it likes: a profile whose
sessions hold 100 MB model names answers `oversized` while every other profile answers exactly (it
made the whole container time out), the readers' memory stays far below one such value, serve's
usage watcher ends with serve, and a symlinked profile directory is skipped, not counted twice.
The same reproductions without Docker, and the rest of the issue's usage part:
test_usage_hostile_unit.py."""
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, RUN_ID, ctrl_c, hermesctl, profile_archive, put_profiles, sh, wait_for
from usage_seed import VENV_PYTHON, seed_all

pytestmark = pytest.mark.docker

AGENT = "/opt/hermes/docker/hermes-ctl-agent"
HEALTHY = ("default", "alpha", "beta")
VALUE_BYTES = 100 * 1024 * 1024
# Two sessions of `hostile` get a 100 MB model name, written as hermes can write it.
SPOIL = r"""
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("UPDATE sessions SET model = printf('%.*c', ?, 'm') WHERE rowid IN "
          "(SELECT rowid FROM sessions ORDER BY started_at DESC LIMIT 2)", (int(sys.argv[2]),))
c.close()
"""
# The peak resident memory (KiB) of a command run as a child, as the kernel counted it, then its
# output. A streaming command (the lifeline option) is read up to its first heartbeat (one whole
# pass), then its stdin is closed, which must end it.
PEAK = r"""
import resource, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
lines = []
if "--until-stdin-closes" in sys.argv:
    for line in child.stdout:
        lines.append(line)
        if b'"heartbeat"' in line:
            break
    child.stdin.close()
lines += child.stdout.readlines()
child.wait()
sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + "\n")
sys.stdout.write(b"".join(lines).decode()[-65536:])
"""


def _profiles(c, names) -> None:
    """The first made by hermesctl (a hermes start), the others byte copies of it: what is read
    here is each profile's state.db, written by the seed."""
    assert hermesctl("profile", "create", f"{c.name}:{names[0]}").code == 0
    put_profiles(c, profile_archive(c, names[0]), names[1:])


@pytest.fixture(scope="module")
def hostile(module_containers):
    project = f"hct{RUN_ID}uhostile"
    c = module_containers.start("hostile", labels={"com.docker.compose.project": project})
    _profiles(c, ("alpha", "beta", "hostile"))
    seed_all(c, [("/opt/data/state.db", 400, 31), ("/opt/data/profiles/alpha/state.db", 300, 32),
                 ("/opt/data/profiles/beta/state.db", 300, 33), ("/opt/data/profiles/hostile/state.db", 300, 34)])
    spoiled = c.exec_run([VENV_PYTHON, "-c", SPOIL, "/opt/data/profiles/hostile/state.db", str(VALUE_BYTES)],
                         user="hermes")
    assert spoiled.exit_code == 0, spoiled.output.decode()[-2000:]
    return c, project


@pytest.fixture(scope="module")
def linked(module_containers):
    """default, alpha and beta seeded, and two symlinks under profiles/ (x -> alpha, y -> beta)."""
    project = f"hct{RUN_ID}ulinked"
    c = module_containers.start("linked", labels={"com.docker.compose.project": project})
    _profiles(c, ("alpha", "beta"))
    seed_all(c, [("/opt/data/state.db", 300, 41), ("/opt/data/profiles/alpha/state.db", 200, 42),
                 ("/opt/data/profiles/beta/state.db", 200, 43)])
    sh(c, "ln -s alpha /opt/data/profiles/x && ln -s /opt/data/profiles/beta /opt/data/profiles/y")
    return c, project


def _alone(c, profile: str) -> dict:
    """The profile's answer asked alone (its neighbours unread)."""
    res = hermesctl("usage", f"{c.name}:{profile}", "--since", "30d", "--json")
    assert res.code == 0, res
    return res.json()["profiles"][0]


def test_a_profile_with_huge_values_is_oversized_and_every_other_profile_answers(hostile):
    c, _ = hostile
    res = hermesctl("usage", c.name, "--since", "30d", "--json")
    assert res.code == 7, res  # a profile's error: partial, not the container's timeout
    doc = res.json()
    assert doc["unreachable"] == []
    profiles = {p["profile"]: p for p in doc["profiles"]}
    assert profiles["hostile"]["error"]["code"] == "oversized", profiles["hostile"]
    assert "`model`" in profiles["hostile"]["error"]["message"] and len(res.stdout) < 1_000_000
    for name in HEALTHY:
        alone = _alone(c, name)
        mine = profiles[name]
        assert mine["ok"] and mine["sessions"] == alone["sessions"] > 0, (name, mine)
        assert {k: mine[k] for k in ("messages", "tool_calls", "input_tokens", "output_tokens", "models")} == \
            {k: alone[k] for k in ("messages", "tool_calls", "input_tokens", "output_tokens", "models")}
    assert doc["totals"]["sessions"] == sum(profiles[n]["sessions"] for n in HEALTHY)
    table = hermesctl("usage", c.name, "--since", "30d")
    assert table.code == 7 and "error: oversized" in table.stdout and "hostile: oversized" in table.stderr, table
    assert all(name in table.stdout for name in HEALTHY)


@pytest.mark.parametrize("argv", [[AGENT, "usage", "--window", str(30 * 86400)],
                                  [AGENT, "usage-watch", "--interval", "600"]])
def test_the_readers_never_hold_a_huge_value(hostile, argv):
    """The one-shot agent (what answers when the resident one cannot) and usage-watch: their peak
    memory stays far below one 100 MB value (the watcher grew to 2.2 GB), and they say `oversized`."""
    c, _ = hostile
    watch = argv[1] == "usage-watch"
    if watch:
        argv = [*argv, "--until-stdin-closes"]  # one pass, then the end of stdin ends it
    result = c.exec_run([VENV_PYTHON, "-c", PEAK, *argv], user="hermes", environment={"HOME": "/opt/data"})
    assert result.exit_code == 0, result.output.decode()[-2000:]
    peak_kib, _, output = result.output.decode().partition("\n")
    assert int(peak_kib) * 1024 < VALUE_BYTES / 2, (peak_kib, output[-2000:])
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    if watch:
        mine = {d["profile"]: d for d in lines if "profile" in d}
        assert mine["hostile"]["read_error"]["code"] == "oversized"
        assert all(mine[n]["ok"] and mine[n]["sessions_total"] > 0 for n in HEALTHY)
    else:
        answers = lines[0]["profiles"]
        assert answers["hostile"]["error"]["code"] == "oversized"
        assert all(answers[n]["ok"] for n in HEALTHY)


def _watchers(c) -> list[str]:
    out = sh(c, "ps -eo pid,args | grep '[u]sage-watch' || true")
    return [line for line in out.splitlines() if line.strip()]


def test_a_symlinked_profile_is_skipped_and_said(linked):
    """`profiles/x -> alpha` was read as a second profile and counted twice in totals."""
    c, _ = linked
    res = hermesctl("usage", c.name, "--since", "30d", "--json")
    assert res.code == 0, res
    doc = res.json()
    names = {p["profile"] for p in doc["profiles"]}
    assert names == set(HEALTHY), names
    assert {(k["profile"], "symlink" in k["reason"]) for k in doc["skipped"]} == {("x", True), ("y", True)}
    assert doc["totals"]["sessions"] == sum(_alone(c, n)["sessions"] for n in HEALTHY)
    table = hermesctl("usage", c.name, "--since", "30d")
    assert table.code == 0 and "profiles/x skipped" in table.stderr and "profiles/y skipped" in table.stderr, table
    named = hermesctl("usage", f"{c.name}:x", "--json")
    assert named.code == 7 and "symlink" in named.json()["profiles"][0]["error"]["message"], named


def test_serve_counts_no_symlinked_profile_and_its_watcher_ends_with_serve(linked, tmp_path):
    """The symlinked profile was a second profile in /metrics too; serve's usage watcher kept
    running after serve exited (Docker keeps draining an exec's stdout, so no write fails)."""
    c, project = linked
    token = tmp_path / "token"
    token.write_text("hostile-usage-token-0123456789abcdef\n")
    token.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": str(tmp_path / "run" / "serve.sock")}
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", project, "serve", "--listen",
                             "127.0.0.1:0", "--usage-interval", "0.5", "--token-file", str(token)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://\S+/) ", proc.stdout.readline()).group(1)

        all_time = {p["profile"]: p["sessions"] for p in
                    hermesctl("usage", c.name, "--since", "1970-01-01", "--json").json()["profiles"]}
        assert set(all_time) == set(HEALTHY)
        text = ""

        def counted() -> dict:
            nonlocal text
            req = urllib.request.Request(url + "metrics",
                                         headers={"Authorization": f"Bearer {token.read_text().strip()}"})
            try:
                with urllib.request.urlopen(req, timeout=10) as answer:
                    text = answer.read().decode()
            except OSError:
                return {}
            return {s.labels["profile"]: s.value for family in text_string_to_metric_families(text)
                    for s in family.samples if s.name == "hermes_sessions_total" and s.labels["container"] == c.name}
        wait_for(lambda: set(counted()) >= set(HEALTHY), timeout=120, what="serve's usage metrics")
        assert counted() == all_time, (counted(), all_time)  # no x, no y: each profile once
        assert 'profile="x"' not in text and 'profile="y"' not in text
        assert len(_watchers(c)) == 1, _watchers(c)
        proc.kill()  # kill -9: nothing of serve's own runs after this
        proc.wait(10)
        wait_for(lambda: not _watchers(c), timeout=60, what="the usage watcher to end with serve")
    finally:
        if proc.poll() is None:
            ctrl_c(proc)
        proc.stdout.close()
        proc.stderr.close()
