"""`hermesctl ps` answered by a running `hermesctl serve` (its unix socket), beside direct ps and
the exec floor, at N containers with M profiles each.

- served ps (in-process): ask the socket, render the table (what the CLI does after start-up)
- served ps (CLI): the same as a subprocess, Python start included
- direct ps (in-process): list containers, one probe exec per container, in parallel
- floor: N no-op execs in parallel: no design that execs can beat it

    python benchmarks/serve_ps.py --containers 50 --profiles 3 [--repeat 5]
"""
import argparse
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import IMAGE, client, remove, run_id, start_fleet, timed  # noqa: E402

from rich.console import Console  # noqa: E402

from hermesctl.backends.docker.daemon import connect  # noqa: E402
from hermesctl.backends.docker.fleet import Fleet  # noqa: E402
from hermesctl.commands.ps_served import show  # noqa: E402
from hermesctl.config.endpoints import resolve  # noqa: E402
from hermesctl.engine.rows import collect  # noqa: E402
from hermesctl.model.targets import Target  # noqa: E402
from hermesctl.render.output import Output  # noqa: E402
from hermesctl.serve.client import get_json, ps_from_server  # noqa: E402

SCOPE = {"hosts": [], "contexts": [], "project": None, "fleet_file": None, "swarm": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--profiles", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--image", default=IMAGE)
    args = parser.parse_args()
    dc = client()
    prefix = f"bench-serve-{run_id()}"
    print(f"starting {args.containers} containers with {args.profiles} profiles each ...", flush=True)
    fleet_containers = start_fleet(dc, args.containers, prefix, args.image)
    socket_path = os.path.join(tempfile.mkdtemp(prefix="bench-serve-"), "serve.sock")
    env = {**os.environ, "HERMESCTL_SOCKET": socket_path, "PYTHONPATH": str(ROOT)}
    server = None
    try:
        names = " ".join(f"p{i}" for i in range(args.profiles))
        setup = ("for p in " + names + "; do mkdir -p /opt/data/profiles/$p && touch /opt/data/profiles/$p/SOUL.md && "
                 "/opt/hermes/docker/hermes-slots register $p; done")
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: c.exec_run(["sh", "-c", setup], user="hermes"), fleet_containers))
        gateways = args.containers * (args.profiles + 1)
        server = subprocess.Popen([sys.executable, "-m", "hermesctl", "serve", "--listen", "127.0.0.1:0",
                                   "--interval", "5"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            doc = get_json(socket_path, "/api/ps")
            if doc and sum(1 for g in doc["gateways"] if g["container"].startswith(prefix) and g["profile"]) == gateways:
                break
            time.sleep(0.5)
        else:
            raise SystemExit("the server did not see the whole fleet within 120 s")
        targets = [Target(f"{prefix}-*", None)]
        endpoint = connect(resolve())

        def served():
            out = Output(console=Console(file=io.StringIO(), width=200))
            doc = ps_from_server(SCOPE, socket_path)
            assert show(out, doc, targets, wide=False, quiet=False) is not None

        def served_cli():
            subprocess.run([sys.executable, "-m", "hermesctl", "ps", f"{prefix}-*"], cwd=ROOT, env=env,
                           check=True, capture_output=True)

        def direct():
            rows = collect(Fleet(endpoints=[endpoint]), targets)
            assert sum(1 for r in rows if r.profile) == gateways

        def floor():
            with ThreadPoolExecutor(max_workers=32) as pool:
                list(pool.map(lambda c: c.exec_run(["true"], user="hermes"), fleet_containers))

        t_served, t_cli = timed(served, args.repeat), timed(served_cli, args.repeat)
        t_direct, t_floor = timed(direct, args.repeat), timed(floor, args.repeat)
        print(f"fleet: {args.containers} containers x {args.profiles + 1} gateways = {gateways} gateways")
        print(f"ps through hermesctl serve (in-process): {t_served * 1000:7.1f} ms")
        print(f"ps through hermesctl serve (CLI, Python start incl.): {t_cli * 1000:7.1f} ms")
        print(f"direct ps (in-process, one exec per container): {t_direct * 1000:7.1f} ms")
        print(f"floor ({args.containers} no-op execs in parallel): {t_floor * 1000:7.1f} ms")
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=10)
        remove(fleet_containers)


if __name__ == "__main__":
    main()
