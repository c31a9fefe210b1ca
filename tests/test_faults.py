"""hermesctl under faults: hung execs, Ctrl-C, concurrent commands, orphans.

Three containers serve the whole file (a boot costs this CPU-bound suite ~2 s of CPU): `a` and `b`
answer, `hung` never does. Each test works on profiles of its own (coder is the hung test's, which
checks that it is down; concur, orphan and the fleet file's alpha/beta/gamma are the others'), so
no test sees another's gateways. Operator restarts against real deaths (the crash-loop verdict)
are proven in test_alert_pipeline.py, through `ps` and through the alert pipeline both."""
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import ROOT, hermesctl, installed_launcher, sh, svstat, wait_for, wait_ready


def _with_coder(containers, *hints):
    made = [containers.start(hint, wait=False) for hint in hints]  # they boot side by side
    for c in made:
        wait_ready(c)
        sh(c, "hermes profile create coder >/dev/null")
    return made


def _hang_agent(container):
    """A container whose every question to the agent hangs (as a wedged filesystem would make
    it): the resident agent stopped (SIGSTOP: connections wait), the one-shot agent a sleep. A
    FIFO left by hermes no longer does it: the agent opens nothing it could block on."""
    sh(container, "pkill -STOP -f '[h]ermes-ctl-agent serve' && a=/opt/hermes/docker/hermes-ctl-agent && "
       "mv $a $a.real && printf '#!/bin/sh\\nexec sleep 600\\n' > $a && chmod 755 $a", user="root")


@pytest.fixture(scope="module")
def trio(module_containers):
    """(a, hung, b), named so that one glob matches the three and nothing else."""
    a, hung, b = _with_coder(module_containers, "hga", "hgb", "hgc")
    _hang_agent(hung)
    return a, hung, b


def test_a_hung_container_times_out_while_the_rest_answers(trio, module_containers):
    a, hung, b = trio
    glob = f"{module_containers.name('hg')}*"
    began = time.monotonic()
    res = hermesctl("ps", glob, "--json", "--timeout", "3", timeout=60)
    assert time.monotonic() - began < 3 + 10, res
    assert res.code == 7, res  # partial: one container did not answer
    doc = res.json()
    rows = {(g["container"], g["profile"]): g for g in doc["gateways"]}
    assert rows[(hung.name, None)]["state"] == "timeout" and "3s" in rows[(hung.name, None)]["error"]
    for c in (a, b):
        assert rows[(c.name, "coder")]["state"] == "down"
    assert [(u["container"], u["reason"]) for u in doc["unreachable"]] == [(hung.name, "timeout")]
    # the table says so too, and --no-headers is accepted after the subcommand
    table = hermesctl("ps", glob, "--timeout", "3", "--no-headers", timeout=60)
    assert table.code == 7 and "CONTAINER" not in table.stdout, table
    assert "timeout" in table.stdout and a.name in table.stdout and b.name in table.stdout
    assert f"container {hung.name} did not answer in time" in table.stderr
    # doctor reports the container as not answering and still checks the others
    began = time.monotonic()
    doc = hermesctl("doctor", glob, "--json", "--timeout", "3", timeout=60)
    assert time.monotonic() - began < 3 + 10, doc
    assert doc.code == 1, doc
    findings = doc.json()["findings"]
    assert any(f["container"] == hung.name and f["check"] == "reachable" and f["detail"].startswith("timeout")
               for f in findings)
    assert any(f["container"] == a.name and f["check"] == "s6-pid1" and f["ok"] for f in findings)
    # a restart of everything restarts the answering containers and reports the hung one
    # (the global --timeout is the exec deadline; `gateway start --timeout` is the wait)
    res = hermesctl("--timeout", "3", "gateway", "start", f"{glob}:coder", "--json", timeout=120)
    assert res.code == 7, res
    assert sorted(r["container"] for r in res.json()["results"] if r["ok"]) == sorted([a.name, b.name])
    assert svstat(a, "coder")["up"] and svstat(b, "coder")["up"]


def _interrupt_at(command: str, args: list[str], after: float):
    """Run the `hermesctl` command as installed (the launcher) and send it SIGINT `after` seconds in."""
    proc = subprocess.Popen([command, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    time.sleep(after)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    return proc.returncode, time.monotonic() - sent, out, err


def _interrupted(code: int, out: str, err: str) -> bool:
    """130 from hermesctl; or, before Python ran at all, SIGINT's silent default action."""
    return code == 130 or (code == -signal.SIGINT and not out and not err)


def test_ctrl_c_at_any_moment_of_apply_exits_130_without_traceback(trio, tmp_path):
    c = trio[0]  # its own profiles; apply touches no other without --prune
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"""version: 1
containers:
  {c.name}:
    profiles:
      alpha: {{gateway: running, env: {{HERMES_NOTE: one}}}}
      beta: {{gateway: running}}
      gamma: {{gateway: stopped}}
""")
    # early (the interpreter's start-up, typer, rich and the Docker SDK being imported), then
    # while planning and converging
    command = installed_launcher(tmp_path)
    for after in (0.2, 0.4, 1.0, 2.0, 3.5):
        code, took, out, err = _interrupt_at(command, ["apply", "-f", str(fleet)], after)
        if code == 0:  # finished before the signal: nothing to prove at this moment
            continue
        assert _interrupted(code, out, err), (after, code, err)
        assert "Traceback" not in err, (after, err)
        assert took < 2.0, (after, took)
    # An interrupted hermesctl's last exec runs on in the container, under the container's lock
    # (its client went, the exec did not): wait for it, as the next user command would.
    wait_for(lambda: c.exec_run(["sh", "-c", 'l=/opt/data/.hermesctl/lock; [ ! -e "$l" ] || flock -n "$l" true'],
                                user="hermes").exit_code == 0, timeout=60, what="the container's lock free")
    # nothing lost: a full apply converges, diff then finds no drift (exit 0)
    res = hermesctl("apply", "-f", str(fleet))
    assert res.code == 0, (res.stdout, res.stderr)
    assert hermesctl("diff", "-f", str(fleet)).code == 0
    sh(c, "/command/s6-svc -d /run/service/gateway-alpha")
    wait_for(lambda: not svstat(c, "alpha")["up"], what="alpha down")
    drift = hermesctl("diff", "-f", str(fleet), "--json")
    assert drift.code == 1 and drift.json()["schema"] == "hermesctl.diff/v1", drift
    assert drift.json()["unreachable"] == []


def test_ctrl_c_of_a_hung_ps_exits_130(trio, tmp_path):
    c = trio[1]
    code, took, _, err = _interrupt_at(installed_launcher(tmp_path), ["ps", c.name], 1.5)
    assert code == 130 and "Traceback" not in err and took < 2.0, (code, took, err)


def _concurrently(*argvs):
    results = [None] * len(argvs)

    def run(i, argv):
        results[i] = hermesctl(*argv)
    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(argvs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_commands_on_one_gateway_are_both_truthful(trio):
    c = trio[0]
    sh(c, "hermes profile create concur >/dev/null")
    target = f"{c.name}:concur"
    assert hermesctl("gateway", "start", target).code == 0
    first = svstat(c, "concur")["pid"]
    r1, r2 = _concurrently(("gateway", "restart", target, "--json"), ("gateway", "restart", target, "--json"))
    assert r1.code == 0 and r2.code == 0, (r1, r2)
    pids = {r1.json()["results"][0]["pid"], r2.json()["results"][0]["pid"]}
    assert first not in pids and len(pids) == 2  # each restarted the gateway it found
    assert any("waited" in r.json()["results"][0]["message"] for r in (r1, r2))
    restart, stop = _concurrently(("gateway", "restart", target, "--json"), ("gateway", "stop", target, "--json"))
    assert restart.code == 0 and stop.code == 0, (restart, stop)
    for r in (restart, stop):
        assert "did not come up" not in r.stdout and "FAILED" not in r.stdout
    s = svstat(c, "concur")
    stop_msg = stop.json()["results"][0]["message"]
    if s["up"]:  # the stop ran first; the restart then started it and says so
        assert restart.json()["results"][0]["message"].startswith("started"), restart
    else:       # the restart ran first; the stop stopped what the restart had started
        assert stop_msg.startswith("stopped"), stop


def test_orphaned_gateway_is_found_and_ended(trio):
    c = trio[2]  # b: the fleet file's alpha, deliberately stopped on a, would be a finding of its own
    sh(c, "hermes profile create orphan >/dev/null")
    target = f"{c.name}:orphan"
    # started by hand under s6 (the slot keeps its `down` file), then its supervisor is killed:
    # the respawned supervisor obeys `down` while the old gateway runs on, unsupervised
    sh(c, "/command/s6-svc -u /run/service/gateway-orphan")
    old = wait_for(lambda: svstat(c, "orphan")["pid"] if svstat(c, "orphan")["up"] else None, what="up")
    sh(c, "kill -9 $(ps -e -o pid=,args= | awk '$2==\"s6-supervise\" && $3==\"gateway-orphan\" {print $1}')", user="root")
    wait_for(lambda: sh(c, "/command/s6-svstat -o up /run/service/gateway-orphan", check=False).strip() == "false",
             what="the respawned supervisor")
    row = hermesctl("ps", target, "--json").json()["gateways"][0]
    assert row["state"] == "orphaned" and row["orphan_pids"] == [old], row
    assert hermesctl("ps", target).code == 3
    doctor = hermesctl("doctor", c.name, "--json")
    assert doctor.code == 1
    assert any(f["check"] == "gateway-orphaned" and f["pids"] == [old] for f in doctor.json()["findings"])
    fixed = hermesctl("doctor", c.name, "--fix")
    assert fixed.code == 0, fixed
    assert sh(c, f"kill -0 {old} 2>/dev/null && echo alive || echo gone").strip() == "gone"
    assert hermesctl("ps", target, "--json").json()["gateways"][0]["state"] == "down"
