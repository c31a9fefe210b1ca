"""Fault script: hurt a small fleet in every way we know, and count what was lost.

Each container has two profiles: `on` (desired running) and `off` (desired stopped). Faults, in
rotation: hermesctl restart cycles, `docker restart`, `docker kill` + start, kill -9 of a
gateway, of its s6-supervise and of its logger, concurrent hermesctl commands on one gateway,
and a hung exec (the container's resident agent stopped with SIGSTOP) that `ps` must answer around. After each fault the
fleet must converge on its own: `on` up under s6, `off` down, no gateway outside its
supervisor, both profiles still there. Exit 1 on any loss.

    python benchmarks/fault_script.py --containers 3 --cycles 5 [--image hermes-agent:local]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import client, remove, run_id, start_fleet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONVERGE_S = 45


def hermesctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hermesctl", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def sh(c, script: str, user: str = "hermes") -> str:
    return c.exec_run(["sh", "-c", script], user=user).output.decode()


def converged(c) -> str | None:
    """None when the container is as desired, else what is wrong."""
    c.reload()
    if c.status != "running":
        return "container not running"
    out = sh(c, "for p in on off; do echo \"$p $(/command/s6-svstat -o up,pid /run/service/gateway-$p 2>/dev/null)\" "
                "\"$([ -f /opt/data/profiles/$p/SOUL.md ] && echo soul)\"; done; "
                "ps -e -o pid=,args= | grep -c 'gateway[ ]run'")
    lines = out.split("\n")
    state = {l.split()[0]: l.split()[1:] for l in lines[:2] if l.split()}
    if any("soul" not in v for v in state.values()) or len(state) != 2:
        return f"profile lost: {out!r}"
    if state["on"][:1] != ["true"]:
        return "on is not up"
    if state["off"][:1] != ["false"]:
        return "off is not down"
    if lines[2].strip() != "1":
        return f"{lines[2].strip()} gateway processes (want 1: an orphan?)"
    return None


def wait_converged(c) -> tuple[float, str | None]:
    start = time.monotonic()
    why = None
    while time.monotonic() - start < CONVERGE_S:
        try:
            why = converged(c)
        except Exception as exc:  # noqa: BLE001 - booting containers refuse execs for a moment
            why = str(exc)
        if why is None:
            return time.monotonic() - start, None
        time.sleep(0.2)
    return time.monotonic() - start, why


def pid_of(c, pattern: str) -> str:
    return sh(c, f"ps -e -o pid=,args= | grep -e '{pattern}' | awk '{{print $1}}' | head -n1", user="root").strip()


def fault(kind: str, c) -> str | None:
    """Inflict one fault on container c; a string names a command that misbehaved."""
    if kind == "hermesctl-restart":
        for _ in range(2):
            r = hermesctl("gateway", "restart", f"{c.name}:on")
            if r.returncode != 0:
                return f"restart exit {r.returncode}: {r.stdout}{r.stderr}"
    elif kind == "docker-restart":
        c.restart(timeout=10)
    elif kind == "docker-kill":
        c.kill()
        c.start()
    elif kind == "kill-gateway":
        sh(c, "kill -9 $(/command/s6-svstat -o pid /run/service/gateway-on)")
    elif kind == "kill-supervisor":
        sh(c, f"kill -9 {pid_of(c, 's6-supervise gateway-on$')}", user="root")
    elif kind == "kill-logger":
        sh(c, f"kill -9 {pid_of(c, 's6-supervise gateway-on/log$')}", user="root")
        sh(c, f"kill -9 {pid_of(c, 's6-log .*gateways/on')}", user="root")
    elif kind == "concurrent":
        with ThreadPoolExecutor(4) as pool:
            runs = list(pool.map(lambda a: hermesctl(*a), [
                ("gateway", "restart", f"{c.name}:on"), ("gateway", "restart", f"{c.name}:on"),
                ("gateway", "stop", f"{c.name}:off"), ("ps", c.name)]))
        bad = [r for r in runs if r.returncode != 0 or "FAILED" in r.stdout]
        if bad:
            return f"concurrent: {bad[0].args[3:]} exit {bad[0].returncode}: {bad[0].stdout}{bad[0].stderr}"
    elif kind == "hung-exec":
        sh(c, "pkill -STOP -f '[h]ermes-ctl-agent serve'", user="root")
        began = time.monotonic()
        r = hermesctl("ps", c.name, "--timeout", "2", timeout=60)
        took = time.monotonic() - began
        sh(c, "pkill -CONT -f '[h]ermes-ctl-agent serve'", user="root")
        if r.returncode != 7 or "timeout" not in r.stdout or took > 2 + 10:
            return f"hung exec: exit {r.returncode} after {took:.1f}s"
    return None


KINDS = ["hermesctl-restart", "docker-restart", "docker-kill", "kill-gateway", "kill-supervisor",
         "kill-logger", "concurrent", "hung-exec"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=2, help="rounds of every fault kind")
    parser.add_argument("--image", default=os.environ.get("HERMES_IMAGE", "hermes-agent:local"))
    args = parser.parse_args()
    dc = client()
    fleet = start_fleet(dc, args.containers, f"fault-{run_id()}", image=args.image)
    counts = {k: 0 for k in KINDS}
    losses: list[str] = []
    misbehaved: list[str] = []
    times: list[float] = []
    try:
        for c in fleet:
            for p in ("on", "off"):
                sh(c, f"hermes profile create {p} >/dev/null 2>&1")
        names = " ".join(c.name for c in fleet)
        for p, verb in (("on", "start"), ("off", "stop")):
            r = hermesctl("gateway", verb, *[f"{c.name}:{p}" for c in fleet])
            if r.returncode != 0:
                raise SystemExit(f"setup failed ({names}): {r.stdout}{r.stderr}")
        for cycle in range(args.cycles):
            for kind in KINDS:
                def one(c):
                    problem = fault(kind, c)
                    took, why = wait_converged(c)
                    return problem, took, why
                for c, (problem, took, why) in zip(fleet, ThreadPoolExecutor(len(fleet)).map(one, fleet)):
                    counts[kind] += 1
                    times.append(took)
                    if problem:
                        misbehaved.append(f"cycle {cycle} {kind} {c.name}: {problem}")
                    if why:
                        losses.append(f"cycle {cycle} {kind} {c.name}: {why}")
    finally:
        remove(fleet)
    print(f"faults: {sum(counts.values())} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    print(f"converged: {len(times) - len(losses)}/{len(times)}; converge median {statistics.median(times):.2f}s "
          f"max {max(times):.2f}s")
    print(f"losses: {len(losses)}; commands that misbehaved: {len(misbehaved)}")
    for line in losses + misbehaved:
        print("  " + line)
    return 1 if losses or misbehaved else 0


if __name__ == "__main__":
    sys.exit(main())
