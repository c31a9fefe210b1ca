"""hermesctl profile / logs / boot-log / exec against real containers.

The Docker half of CI is CPU-bound: the log tests and ps --watch share two containers (`pair`),
each test with its own profiles, and waits run inside the container, one exec each (`wait_in`)."""
import re
import time
from pathlib import Path

import pytest

from cli_modules import run_cli
from conftest import (close_and_collect, hermesctl, hermesctl_until_interrupted, popen_hermesctl, sh, svstat, wait_in,
                      wait_ready)


def test_profile_create_list_delete_as_hermes(containers):
    c = containers.start("prof")
    res = hermesctl("profile", "create", f"{c.name}:Research")  # lowercased before it reaches hermes
    assert res.code == 0, res
    assert sh(c, "find /opt/data ! -user hermes | wc -l").strip() == "0"  # nothing root-owned
    assert sh(c, "test -e /run/service/gateway-research/down && echo down").strip() == "down"
    listing = hermesctl("profile", "list", c.name, "--json").json()["profiles"]
    assert {p["name"]: (p["has_soul"], p["registered"]) for p in listing} == {"research": (True, True)}
    assert hermesctl("profile", "create", f"{c.name}:research").code == 2  # exists
    res = hermesctl("profile", "create", f"{c.name}:starter", "--start")
    assert res.code == 0, res
    assert svstat(c, "starter")["up"]
    res = hermesctl("profile", "delete", f"{c.name}:research", "-y")
    assert res.code == 0, res
    assert sh(c, "test -e /opt/data/profiles/research || test -e /run/service/gateway-research || echo gone").strip() == "gone"
    assert hermesctl("profile", "delete", f"{c.name}:research", "-y").code == 4
    assert hermesctl("profile", "delete", f"{c.name}:starter").code == 2  # no -y, not interactive


@pytest.fixture(scope="module")
def pair(module_containers):
    a, b = module_containers.start("loga", wait=False), module_containers.start("logb", wait=False)  # side by side
    wait_ready(a)
    wait_ready(b)
    return module_containers, a, b


def test_logs_interleave_with_prefixes(pair):
    containers, a, b = pair
    for c in (a, b):
        assert hermesctl("profile", "create", f"{c.name}:talk", "--start").code == 0
    for c in (a, b):  # both gateways start side by side
        wait_in(c, 'grep -q "No messaging platforms" /opt/data/logs/gateways/talk/current 2>/dev/null',
                timeout=60, what="gateway output")
    res = hermesctl("logs", f"{containers.name('log')}*:talk", "-n", "5")
    assert res.code == 0, res
    lines = res.stdout.splitlines()
    assert len(lines) == 10
    assert {l.split(" | ")[0].strip() for l in lines} == {f"{a.name}:talk", f"{b.name}:talk"}
    stamps = [l.split(" | ", 1)[1][:29] for l in lines]
    assert stamps == sorted(stamps)  # merged in time order
    _reads_print_alike_on_both_paths(f"{containers.name('log')}*", a.name)


def _reads_print_alike_on_both_paths(pattern: str, one: str) -> None:
    """Each read command on the quick read path (hermesctl.cli.quick_read, real containers over the
    local socket without the SDK) prints what the full CLI prints, byte for byte, with the same exit
    code (tests/test_quick_read.py proves the branches on a stand-in API). Only an uptime, which
    ticks between the two runs, is compared as a number of seconds within 30 of the other."""
    modules = Path(f"/tmp/hermesctl-reads-{one}.json")
    uptime = re.compile(r'(?<=  )[0-9]+s$|(?<="uptime_s": )[0-9]+', re.M)
    for args in (("gateway", "status", f"{pattern}:talk"), ("logs", "-n", "3", f"{pattern}:talk"),
                 ("profile", "list", pattern, "--json"), ("doctor", one), ("usage", pattern)):
        quick, full = (run_cli(args, modules_file=modules, env={}, full=full) for full in (False, True))
        assert (quick[0], uptime.sub("T", quick[1]), quick[2]) == (full[0], uptime.sub("T", full[1]), full[2]), args
        ticks = [int(t.rstrip("s")) for t in uptime.findall(quick[1] + full[1])]
        assert len(ticks) % 2 == 0 and all(abs(a - b) <= 30 for a, b in zip(ticks, ticks[len(ticks) // 2:])), args
        assert quick[0] == 0 and quick[1], (args, quick)
        assert "hermesctl.cli.quick_read" in quick[3] and "docker" not in quick[3] and "rich" not in quick[3], args
    modules.unlink(missing_ok=True)


def test_logs_follow_until_ctrl_c_and_leave_nothing_running(pair):
    _, c, _ = pair
    assert hermesctl("profile", "create", f"{c.name}:f", "--start").code == 0
    current = "/opt/data/logs/gateways/f/current"
    seen = {}

    def during():
        time.sleep(3)
        assert sh(c, "pgrep -u hermes -f '^tail -n 1 -F' >/dev/null && echo following").strip() == "following"
        sh(c, "/command/s6-svc -t /run/service/gateway-f")  # a restart writes fresh lines
        time.sleep(4)
        seen["before_rotation"] = int(sh(c, f"wc -l < {current}"))
        # Force s6-log to rotate (SIGALRM): current becomes an @archive and starts empty.
        sh(c, "/command/s6-svc -a /run/service/gateway-f/log")
        wait_in(c, "ls /opt/data/logs/gateways/f | grep -q ^@", what="rotation")
        sh(c, "/command/s6-svc -t /run/service/gateway-f")  # lines into the new current
        wait_in(c, f"[ $(wc -l < {current}) -gt 3 ]", what="new current")
        time.sleep(2)

    res = hermesctl_until_interrupted(["logs", "-f", "-n", "1", f"{c.name}:f"], during)
    assert res.code == 130
    assert res.stdout.count(f"{c.name}:f | ") >= 3
    # Lines written after the rotation reached the follower too.
    new_lines = sh(c, f"cat {current}").splitlines()
    assert seen["before_rotation"] > 0 and new_lines and new_lines[-1].split(" ", 2)[-1] in res.stdout
    wait_in(c, '! pgrep -f "^tail -n 1 -F"', timeout=10, what="remote tail gone")


def test_boot_log_and_exec(containers):
    c = containers.start("bootlog")
    sh(c, "mkdir /opt/data/profiles/stray")
    c.restart(timeout=10)
    from conftest import wait_ready
    wait_ready(c)
    doc = hermesctl("boot-log", c.name, "--json").json()
    assert doc["schema"] == "hermesctl.boot-log/v1"
    entries = doc["entries"]
    assert {"profile": "stray", "action": "skipped", "reason": "no-SOUL.md"}.items() <= entries[-2].items()
    assert entries[-1]["profile"] == "default" and entries[-1]["action"] == "registered"
    res = hermesctl("exec", c.name, "--", "sh", "-c", "id -un; exit 3")
    assert res.code == 3 and res.stdout.strip() == "hermes"


def test_ps_watch_redraws_until_ctrl_c(pair):
    _, _, c = pair

    def during():
        time.sleep(2)
        # appears in a later frame: ps lists a profile by its SOUL.md (slot or not), no hermes start to make it
        sh(c, "mkdir /opt/data/profiles/watched && echo soul > /opt/data/profiles/watched/SOUL.md")
        time.sleep(2)

    res = hermesctl_until_interrupted(["ps", "--watch", "--interval", "0.5", c.name], during)
    assert res.code == 130
    assert c.name in res.stdout and "watched" in res.stdout


def test_logs_follow_ends_when_its_container_stops(containers):
    c = containers.start("followstop")
    assert hermesctl("profile", "create", f"{c.name}:s", "--start").code == 0
    # forked from the pre-imported zygote (an interpreter start and the CLI's imports saved)
    proc = popen_hermesctl("logs", "-f", f"{c.name}:s")
    time.sleep(3)
    c.stop(timeout=5)
    res = close_and_collect(proc, timeout=30)
    assert res.code == 1, res
    assert "log stream ended" in res.stderr and f"{c.name}:s | " in res.stdout
