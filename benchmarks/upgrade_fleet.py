"""A fleet upgraded at fleet speed (issue 28): N containers of ours, each with its default
profile's gateway running (a stand-in, `sleep`, bind-mounted over the venv's `hermes` as in
benchmarks/fleet_scale.py), moved to a new image by `hermesctl upgrade` with a canary and
batches side by side. Every container is stopped, backed up, recreated and health-gated for real
(s6, the agent, the Docker API); only the gateway process is a stand-in.

Prints the end-to-end wall time, what each container got (upgraded / rolled back / not touched),
the gate that let it through, and the per-container cost of each step (stop, backup, start,
gate: min / median / max over the fleet, from the upgrade's own `--json` timings).

    python benchmarks/upgrade_fleet.py [--count 50] [--parallel 10] [--canary 1] [--image hermes-agent:local-slim]

Not part of the test suite: it is heavy (50 boots twice); run it on a quiet machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from common import client, run_id, wait_booted  # noqa: E402

STAND_IN_GATEWAY = "#!/bin/sh\nexec sleep 2147483647\n"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def say(text: str) -> None:
    print(text, flush=True)


def hermesctl(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hermesctl", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def build_next(dc, base: str, tag: str) -> None:
    """`base` with another version label: a new image id, built in a second."""
    import io
    import tarfile
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = f"FROM {base}\nLABEL io.hermes-agent.version=bench-next\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    dc.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"min {min(values):6.2f}  median {statistics.median(values):6.2f}  max {max(values):6.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--parallel", default="10")
    parser.add_argument("--canary", default="1")
    parser.add_argument("--max-failures", default="10%")
    parser.add_argument("--image", default="hermes-agent:local-slim")
    parser.add_argument("--prefix", default="hcu-bench")
    parser.add_argument("--timeout", default="300")
    args = parser.parse_args()

    dc = client()
    rid = run_id()
    prefix = f"{args.prefix}-{rid}"
    next_tag = f"hcu-upgrade-next:{rid}"
    stub_dir = Path(tempfile.mkdtemp(prefix="bench-upgrade-"))
    stub = stub_dir / "hermes"
    stub.write_text(STAND_IN_GATEWAY)
    stub.chmod(0o755)
    backups = stub_dir / "backups"
    containers, volumes = [], []
    try:
        build_next(dc, args.image, next_tag)
        begun = time.monotonic()

        def start(i: int):
            return dc.containers.run(args.image, ["sleep", "infinity"], name=f"{prefix}-{i:03d}", detach=True,
                                     labels={"com.docker.compose.project": prefix}, network_disabled=True,
                                     volumes={str(stub): {"bind": "/opt/hermes/.venv/bin/hermes", "mode": "ro"}})
        with ThreadPoolExecutor(max_workers=8) as pool:
            containers = list(pool.map(start, range(args.count)))
            list(pool.map(lambda c: wait_booted(c, timeout=600), containers))
        started = hermesctl("--project", prefix, "gateway", "start", "*:default", "--json")
        up = sum(1 for g in json.loads(started.stdout or "{}").get("results", []) if g.get("ok"))
        volumes = [m["Name"] for c in containers for m in c.attrs["Mounts"] if m.get("Type") == "volume"]
        say(f"{args.count} containers on {args.image}, booted, each with its default gateway wanted up "
            f"({up} started: exit {started.returncode}), in {time.monotonic() - begun:.1f} s")

        begun = time.monotonic()
        res = hermesctl("--project", prefix, "upgrade", "*", "--image", next_tag, "--canary", args.canary,
                        "--parallel", args.parallel, "--max-failures", args.max_failures, "--timeout", args.timeout,
                        "--backup-dir", str(backups), "--json")
        wall = time.monotonic() - begun
        try:
            doc = json.loads(res.stdout)
        except ValueError:
            say(f"upgrade exited {res.returncode} without a document: {res.stderr[-2000:]}")
            return 1
        items = doc["containers"]
        say(f"upgrade of {len(items)} containers (--canary {args.canary} --parallel {args.parallel} "
            f"--max-failures {args.max_failures}): {wall:.1f} s end to end, exit {res.returncode}")
        say(f"  results: {doc.get('counts')}")
        gates: dict[str, int] = {}
        for item in items:
            if item.get("gate"):
                gates[item["gate"]] = gates.get(item["gate"], 0) + 1
        say(f"  gates: {gates}")
        say(f"  backups: {len(list(backups.glob('*.tar.gz')))} archives")
        say("  per container, seconds:")
        for step in ("stop", "backup", "start", "gate"):
            say(f"    {step:<7} {spread([i['timings'][step] for i in items if step in i.get('timings', {})])}")
        totals = [sum(i["timings"].values()) for i in items if i.get("timings")]
        say(f"    {'total':<7} {spread(totals)}")
        for item in items:
            if item["result"] != "upgraded":
                say(f"  ! {item['container']}: {item['result']}: {item['detail'][:300]}")
        return 0 if res.returncode == 0 else 1
    finally:
        leftovers = dc.containers.list(all=True, filters={"name": prefix})
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: c.remove(force=True, v=True), leftovers))
        for name in volumes:  # the anonymous volumes, named in the new containers: kept by rm -v
            try:
                dc.volumes.get(name).remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        try:
            dc.images.remove(next_tag, force=True)
        except Exception:  # noqa: BLE001 - never built
            pass
        subprocess.run(["rm", "-rf", str(stub_dir)], check=False)
        say(f"removed {len(leftovers)} containers")


if __name__ == "__main__":
    sys.exit(main())
