"""`hermesctl ps`, `ps --watch` and the CLI's start, on one fleet, in one run.

- one-shot ps: list containers, one exec of the agent's `status` per container, in parallel;
  in-process (engine) and as a subprocess (what a user waits for, Python start included);
  beside the naive loop (one `docker exec ... s6-svstat` per gateway, in sequence), the floor
  (one no-op exec per container, in parallel: no design that execs can beat it) and the sh probe
  hermesctl ran before the agent (benchmarks/legacy_probe.sh), at 10 containers and at all.
- in one container: the agent's `status` against the old sh probe and a bare Python start,
  timed inside the container (no exec overhead).
- watch latency: `s6-svc -d|-u` in a container (its clock, read just before) to the changed row
  in the table `ps --watch` draws (rows rebuilt and rendered on every change), on the host.
- CLI start: `hermesctl --version`, `--help`, beside `python3 -c pass` on the same machine.

    python benchmarks/ps_fleet.py --containers 50 --profiles 3 [--changes 60] [--repeat 3]
"""
import argparse
import io
import queue
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import IMAGE, client, remove, run_id, start_fleet, timed  # noqa: E402

from rich.console import Console  # noqa: E402

from hermesctl.agent.contract import AGENT, FAST_STATUS_ARGV  # noqa: E402
from hermesctl.backends.docker.daemon import connect  # noqa: E402
from hermesctl.backends.docker.fleet import Fleet  # noqa: E402
from hermesctl.backends.docker.streams import LiveFleet  # noqa: E402
from hermesctl.commands.ps import render_table  # noqa: E402
from hermesctl.config.endpoints import resolve  # noqa: E402
from hermesctl.engine.rows import collect, live_rows  # noqa: E402
from hermesctl.model.targets import Target  # noqa: E402
from hermesctl.render.output import Output  # noqa: E402

LEGACY_PROBE = (Path(__file__).parent / "legacy_probe.sh").read_text()


def parallel(fn, items):
    with ThreadPoolExecutor(max_workers=32) as pool:
        return list(pool.map(fn, items))


def one_shot(dc, containers, prefix: str, pattern: str, profiles: list[str], repeat: int) -> dict:
    endpoint = connect(resolve())
    gateways = len(containers) * len(profiles)

    def engine():
        rows = collect(Fleet(endpoints=[endpoint]), [Target(pattern, None)])
        assert sum(1 for r in rows if r.profile) == gateways, len(rows)

    def cli():
        subprocess.run([sys.executable, "-m", "hermesctl", "ps", "--json", pattern], cwd=ROOT,
                       check=False, capture_output=True)

    def naive():
        for c in containers:
            for p in profiles:
                c.exec_run(["/command/s6-svstat", f"/run/service/gateway-{p}"], user="hermes")

    def floor():
        parallel(lambda c: c.exec_run(["true"], user="hermes"), containers)

    def legacy():
        parallel(lambda c: c.exec_run(["sh", "-c", LEGACY_PROBE, "probe"], user="hermes"), containers)

    # Interleaved, so that load from elsewhere on the machine falls on every figure alike.
    results = {k: [] for k in ("engine", "cli", "floor", "legacy")}
    for _ in range(repeat):
        for name, fn in (("floor", floor), ("engine", engine), ("legacy", legacy), ("cli", cli)):
            results[name].append(timed(fn, 1))
    figures = {k: statistics.median(v) for k, v in results.items()}
    figures["naive"] = timed(naive, 1)
    figures["gateways"] = gateways
    return figures


def in_container_costs(container) -> dict:
    """Per run, over 20 runs inside the container (no exec overhead): wall and CPU (user+sys of
    the processes started; the resident agent's own work is in its answer's wall time)."""
    loop = 'TIMEFORMAT="%R %U %S"; { time (for i in $(seq 20); do "$@" >/dev/null 2>&1 </dev/null; done); } 2>&1'
    costs = {}
    for name, argv in (("true", ["true"]), ("python -IS -c pass", ["/opt/hermes/.venv/bin/python", "-IS", "-c", "pass"]),
                       ("agent status (one-shot)", [AGENT, "status"]),
                       ("agent status (resident)", list(FAST_STATUS_ARGV)),
                       ("sh probe (before)", ["sh", "-c", LEGACY_PROBE, "p"])):
        out = container.exec_run(["bash", "-c", loop, "cost", *argv], user="hermes").output.decode().split()
        wall, user, system = map(float, out[-3:])
        costs[name] = (wall / 20 * 1000, (user + system) / 20 * 1000)
    return costs


def watch_latency(containers, pattern: str, changes: int) -> list[float]:
    """s6-svc in a container -> the changed row in ps --watch's table (rows rebuilt and rendered
    on every change, as _watch does), over `changes` changes spread over the fleet."""
    endpoint = connect(resolve())
    fleet = Fleet(endpoints=[endpoint])
    live = LiveFleet(fleet, [Target(pattern, None)])
    live.start()
    out = Output(console=Console(file=io.StringIO(), width=200))
    expected: dict = {}
    seen: queue.Queue = queue.Queue()

    def redraw():
        while True:
            live.events.get()
            while not live.events.empty():
                live.events.get_nowait()
            rows = live_rows(live)
            out.console.print(render_table(out, fleet, rows, wide=False, live=True))
            out.console.file.seek(0)
            out.console.file.truncate(0)
            want = expected.get("row")
            if want and any(r.container == want[0] and r.profile == "bench" and r.wanted == want[1] for r in rows):
                expected.pop("row", None)
                seen.put(time.time())

    threading.Thread(target=redraw, daemon=True).start()
    latencies = []
    for i in range(changes):
        c = containers[i % len(containers)]
        flag, wanted = ("-u", "up") if (i // len(containers)) % 2 == 0 else ("-d", "down")
        expected["row"] = (c.name, wanted)
        res = c.exec_run(["sh", "-c", 'date +%s.%N; exec /command/s6-svc "$1" /run/service/gateway-bench', "svc", flag],
                         user="hermes")
        began = float(res.output.decode().split()[0])
        try:
            latencies.append(seen.get(timeout=10) - began)
        except queue.Empty:
            latencies.append(float("inf"))
    return latencies


def cli_start(repeat: int = 7) -> dict:
    def wall(argv):
        return timed(lambda: subprocess.run(argv, cwd=ROOT, capture_output=True, check=False), repeat)
    hermesctl = [sys.executable, "-m", "hermesctl"]
    return {"python3 -c pass": wall([sys.executable, "-c", "pass"]),
            "hermesctl --version": wall(hermesctl + ["--version"]),
            "hermesctl --help": wall(hermesctl + ["--help"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--profiles", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--image", default=IMAGE)
    args = parser.parse_args()
    if not 10 <= args.containers <= 50:
        parser.error("--containers must be within 10..50")
    dc = client()
    prefix = f"bench-ps-{run_id()}"
    print(f"starting {args.containers} containers with {args.profiles} profiles each ...", flush=True)
    fleet_containers = start_fleet(dc, args.containers, prefix, args.image)
    try:
        names = [f"p{i}" for i in range(args.profiles)]
        # The watch benchmark toggles `bench`, a slot whose service is a sleep: fifty real
        # gateways starting at once would measure hermes' start on two cores, not the view.
        setup = ("for p in " + " ".join(names) + "; do mkdir -p /opt/data/profiles/$p && "
                 "touch /opt/data/profiles/$p/SOUL.md && /opt/hermes/docker/hermes-slots register $p; done; "
                 "b=/run/service/.gateway-bench; mkdir -p $b && printf '#!/bin/sh\\nexec sleep 100000\\n' > $b/run && "
                 "chmod 755 $b/run && touch $b/down && mv $b /run/service/gateway-bench && "
                 "/command/s6-svscanctl -a /run/service")
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: c.exec_run(["sh", "-c", setup], user="hermes"), fleet_containers))
        time.sleep(1)
        profiles = ["default", *names, "bench"]

        print("\n== one-shot ps (median of interleaved runs) ==")
        for count, pattern in ((10, f"{prefix}-0*"), (args.containers, f"{prefix}-*")):
            f = one_shot(dc, fleet_containers[:count], prefix, pattern, profiles, args.repeat)
            print(f"{count} containers x {len(profiles)} gateways = {f['gateways']}:")
            print(f"  hermesctl ps (engine, in-process):      {f['engine']:6.3f} s  = {f['engine'] / f['floor']:4.2f}x floor")
            print(f"  hermesctl ps (CLI, Python start incl.): {f['cli']:6.3f} s")
            print(f"  naive loop ({f['gateways']} execs in sequence):  {f['naive']:6.3f} s  "
                  f"({f['naive'] / f['engine']:4.1f}x slower than ps)")
            print(f"  floor ({count} no-op execs in parallel):  {f['floor']:6.3f} s")
            print(f"  the sh probe before the agent, in parallel: {f['legacy']:6.3f} s  = "
                  f"{f['legacy'] / f['floor']:4.2f}x floor")

        print("\n== in one container (per run, mean of 20, timed inside the container) ==")
        for name, (wall, cpu) in in_container_costs(fleet_containers[0]).items():
            print(f"  {name:24s} wall {wall:6.1f} ms   cpu {cpu:6.1f} ms")

        print(f"\n== ps --watch latency at {args.containers} containers: s6-svc in a container -> changed row ==")
        latencies = sorted(watch_latency(fleet_containers, f"{prefix}-*", args.changes))
        p95 = latencies[min(len(latencies) - 1, int(round(0.95 * len(latencies))) - 1)]
        print(f"  {len(latencies)} changes: median {statistics.median(latencies) * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    finally:
        remove(fleet_containers)

    print("\n== CLI start (median of 7) ==")
    for name, seconds in cli_start().items():
        print(f"  {name:22s} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
