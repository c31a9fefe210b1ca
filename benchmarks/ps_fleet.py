"""`hermesctl ps` across N containers with M profiles each, beside the naive loop and the floor.

- hermesctl ps: what the CLI does (list containers, one probe exec per container, in parallel);
  measured in-process (engine) and as a subprocess (what a user waits for, Python start included).
- naive loop: one `docker exec ... /command/s6-svstat` per gateway, in sequence.
- floor: N no-op execs in parallel (one per container): no design that execs can beat it.

    python benchmarks/ps_fleet.py --containers 20 --profiles 3 [--repeat 3]
"""
import argparse
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import IMAGE, client, remove, run_id, start_fleet  # noqa: E402

from hermesctl.commands.ps import collect  # noqa: E402
from hermesctl.endpoints import connect, resolve  # noqa: E402
from hermesctl.fleet import Fleet  # noqa: E402
from hermesctl.targets import Target  # noqa: E402


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.monotonic()
        fn()
        runs.append(time.monotonic() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--profiles", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image", default=IMAGE)
    args = parser.parse_args()
    if not 1 <= args.containers <= 50:
        parser.error("--containers must be within 1..50")
    dc = client()
    prefix = f"bench-ps-{run_id()}"
    print(f"starting {args.containers} containers with {args.profiles} profiles each ...", flush=True)
    fleet_containers = start_fleet(dc, args.containers, prefix, args.image)
    try:
        names = " ".join(f"p{i}" for i in range(args.profiles))
        setup = ("for p in " + names + "; do mkdir -p /opt/data/profiles/$p && touch /opt/data/profiles/$p/SOUL.md && "
                 "/opt/hermes/docker/hermes-slots register $p; done")
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: c.exec_run(["sh", "-c", setup], user="hermes"), fleet_containers))
        gateways = args.containers * (args.profiles + 1)
        pattern = [Target(f"{prefix}-*", None)]

        endpoint = connect(resolve())

        def engine():
            rows = collect(Fleet(endpoints=[endpoint]), pattern)
            assert sum(1 for r in rows if r.profile) == gateways, len(rows)

        def cli():
            subprocess.run([sys.executable, "-m", "hermesctl", "ps", "--json", f"{prefix}-*"], cwd=ROOT,
                           check=True, capture_output=True)

        def naive():
            for c in fleet_containers:
                for p in ["default", *names.split()]:
                    c.exec_run(["/command/s6-svstat", f"/run/service/gateway-{p}"], user="hermes")

        def floor():
            with ThreadPoolExecutor(max_workers=32) as pool:
                list(pool.map(lambda c: c.exec_run(["true"], user="hermes"), fleet_containers))

        t_engine, t_cli = timed(engine, args.repeat), timed(cli, args.repeat)
        t_naive, t_floor = timed(naive, 1), timed(floor, args.repeat)
        print(f"fleet: {args.containers} containers x {args.profiles + 1} gateways = {gateways} gateways")
        print(f"hermesctl ps (engine, in-process):   {t_engine:6.3f} s")
        print(f"hermesctl ps (CLI, Python start incl.): {t_cli:6.3f} s")
        print(f"naive loop ({gateways} execs in sequence): {t_naive:6.3f} s")
        print(f"floor ({args.containers} no-op execs in parallel): {t_floor:6.3f} s")
        print(f"naive / ps engine = {t_naive / t_engine:5.1f}x faster;  ps engine / floor = {t_engine / t_floor:4.2f}x")
    finally:
        remove(fleet_containers)


if __name__ == "__main__":
    main()
