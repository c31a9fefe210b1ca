"""`hermesctl usage` and serve's usage counters on one fleet, in one run.

- one-shot usage: one exec per container, in parallel, every profile's state.db read: the
  resident agent's answer over its query socket (C programs in the container, hourly tallies
  kept by the agent; the first question per container, which reads the window once, apart),
  and, for comparison, the one-shot agent (a Python start and a read of the whole window); the
  CLI as a subprocess. Beside the floor: one no-op exec per container through hermesctl's own
  exec path (the same deadline wrapper, the same limit of execs at once per endpoint), in the
  same run, interleaved with the rest so that load from elsewhere falls on each alike. (The
  raw SDK floor of earlier runs, 32 at once and no wrapper, is printed too.)
- serve's incremental refresh: the agent's `usage-watch` held open in every container (the
  stream serve keeps), while a writer adds a session to every profile every 5 s; the watcher's
  own CPU time (its heartbeat's cpu_s, read by the host) after its first full read, per profile
  per minute.

Each profile's state.db holds --sessions seeded sessions (tests/usage_seed.py: the schema of the
image's hermes-agent, several models and platforms), copied into every profile of every container.
Containers are named usage-bench-<run>-NN.

    python benchmarks/usage_fleet.py --containers 50 --profiles 3 --sessions 10000 [--repeat 3] [--minutes 2]
"""
import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from common import client, remove, run_id, start_fleet, timed  # noqa: E402
from usage_seed import SEED_SCRIPT, VENV_PYTHON  # noqa: E402

from hermesctl.agent.contract import AGENT  # noqa: E402
from hermesctl.backends.docker.daemon import connect  # noqa: E402
from hermesctl.backends.docker.fleet import Fleet  # noqa: E402
from hermesctl.commands.usage import collect  # noqa: E402
from hermesctl.config.endpoints import resolve  # noqa: E402
from hermesctl.core.parallel import fan_out  # noqa: E402
from hermesctl.model.targets import Target  # noqa: E402
from hermesctl.model.usage import parse_since  # noqa: E402


EXEC_TIMEOUT_S = 120.0  # a generous deadline for every exec of the run, floor included (a loaded host)


class OneShotFleet(Fleet):
    """The fleet as hermesctl asked it before the resident agent answered `usage`."""

    def ask_resident(self, container, verb, *args):
        return self.ask(container, verb, *args)

WRITER = r"""
import sqlite3, sys, time
paths = sys.argv[2:]
end = time.time() + float(sys.argv[1])
n = 0
while time.time() < end:
    for p in paths:
        c = sqlite3.connect(p, isolation_level=None, timeout=5)
        c.execute("begin immediate")
        c.execute("insert into sessions (id, source, model, started_at, input_tokens, output_tokens, estimated_cost_usd, "
                  "cost_status, api_call_count) values (?, 'cli', 'claude-opus-4-8', ?, 1000, 100, 0.01, 'estimated', 1)",
                  (f"bench-{n}-{p[-20:]}", time.time()))
        c.execute("commit")
        c.close()
    n += 1
    time.sleep(5)
"""


def parallel(fn, items):
    with ThreadPoolExecutor(max_workers=32) as pool:
        return list(pool.map(fn, items))


def profile_paths(profiles: int) -> list[str]:
    return ["/opt/data/state.db"] + [f"/opt/data/profiles/p{i}/state.db" for i in range(1, profiles)]


def seed_fleet(containers, profiles: int, sessions: int) -> float:
    """Seed one state.db in the first container, then copy its bytes into every profile."""
    first = containers[0]
    started = time.monotonic()
    res = first.exec_run([VENV_PYTHON, "-c", SEED_SCRIPT, "/tmp/seed/state.db", str(sessions), "17"],
                         user="hermes", environment={"HOME": "/opt/data"})
    assert res.exit_code == 0, res.output.decode()[-2000:]
    seeded = time.monotonic() - started
    stream, _ = first.get_archive("/tmp/seed/state.db")
    data = tarfile.open(fileobj=io.BytesIO(b"".join(stream))).extractfile("state.db").read()

    def fill(c):
        for i in range(1, profiles):
            c.exec_run(["sh", "-c", f"mkdir -p /opt/data/profiles/p{i} && echo soul > /opt/data/profiles/p{i}/SOUL.md"],
                       user="hermes")
        for path in profile_paths(profiles):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                info = tarfile.TarInfo("state.db")
                info.size, info.uid, info.gid, info.mode = len(data), 10000, 10000, 0o644
                tar.addfile(info, io.BytesIO(data))
            assert c.put_archive(path.rsplit("/", 1)[0], buf.getvalue())
    parallel(fill, containers)
    return seeded


def container_cpu(containers) -> float | None:
    """The containers' CPU time so far (cgroup v1 cpuacct of a local daemon), in seconds: what
    runs in them (execs, the resident agent) whatever the load from elsewhere; None elsewhere."""
    try:
        return sum(int(Path(f"/sys/fs/cgroup/cpuacct/docker/{c.id}/cpuacct.usage").read_text()) for c in containers) / 1e9
    except OSError:
        return None


def one_shot(containers, prefix: str, profiles: int, repeat: int) -> dict:
    endpoint = connect(resolve())
    window = parse_since("7d")
    target = [Target(f"{prefix}-*", None)]

    answered = {}

    def engine(kind=Fleet, name="engine"):
        fleet = kind(endpoints=[endpoint], exec_timeout=EXEC_TIMEOUT_S)
        rows, _ = collect(fleet, target, window)
        assert all(r.error is None for r in rows), [r.error for r in rows if r.error][:3]
        answered[name] = (len(rows) // profiles, [u.message for u in fleet.unreachable][:2])

    def cli():
        subprocess.run([sys.executable, "-m", "hermesctl", "usage", "--json", "--since", "7d", f"{prefix}-*"],
                       cwd=ROOT, check=False, capture_output=True)

    def floor():
        fleet = Fleet(endpoints=[endpoint], exec_timeout=EXEC_TIMEOUT_S)
        outcomes = fan_out(lambda item: fleet.run(item[0], ["/bin/true"]), fleet.match(target))
        answered["floor"] = (sum(1 for o in outcomes if o.ok and o.value.ok),
                             [str(o.error)[:100] for o in outcomes if not o.ok][:2])

    def raw_floor():
        parallel(lambda c: c.exec_run(["true"], user="hermes"), containers)

    def single():
        containers[0].exec_run([AGENT, "usage", "--window", "604800"], user="hermes")

    first = timed(lambda: engine(name="first"), 1)  # every container's resident agent reads the window once
    results = {k: [] for k in ("floor", "engine", "oneshot", "cli", "raw_floor", "single")}
    cpu = {k: [] for k in ("floor", "engine", "oneshot")}
    for _ in range(repeat):
        for name, fn in (("floor", floor), ("engine", engine), ("oneshot", lambda: engine(OneShotFleet, "oneshot")),
                         ("cli", cli), ("raw_floor", raw_floor), ("single", single)):
            before = container_cpu(containers)
            results[name].append(timed(fn, 1))
            after = container_cpu(containers)
            if name in cpu and before is not None and after is not None:
                cpu[name].append((after - before) / len(containers) * 1000)
    return {"first": first, "answered": answered, **{k: statistics.median(v) for k, v in results.items()},
            **{f"cpu_{k}": statistics.median(v) if v else None for k, v in cpu.items()}}


def watch_cost(containers, profiles: int, minutes: float) -> dict:
    """The watcher's CPU in every container while a writer adds a session per profile every 5 s."""
    beats: dict[str, list[tuple[float, float]]] = {c.name: [] for c in containers}
    stop = threading.Event()

    def follow(c):
        api = c.client.api
        created = api.exec_create(c.id, [AGENT, "usage-watch", "--interval", "15"], user="hermes")
        stream = api.exec_start(created["Id"], stream=True)
        buffer = b""
        for chunk in stream:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                doc = json.loads(line)
                if "heartbeat" in doc:
                    beats[c.name].append((time.monotonic(), doc["cpu_s"]))
            if stop.is_set():
                break
        stream.close()

    threads = [threading.Thread(target=follow, args=(c,), daemon=True) for c in containers]
    for t in threads:
        t.start()
    # The first full read (every seeded session) is the start-up cost; count from the first beat.
    deadline = time.monotonic() + 300
    while any(not b for b in beats.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    first_reads = [b[0][1] for b in beats.values() if b]
    seconds = minutes * 60
    for c in containers:
        c.exec_run([VENV_PYTHON, "-c", WRITER, str(seconds), *profile_paths(profiles)], user="hermes", detach=True)
    time.sleep(seconds + 16)
    stop.set()
    per_profile_minute = []
    for b in beats.values():
        if len(b) >= 2:
            (t0, cpu0), (t1, cpu1) = b[0], b[-1]
            per_profile_minute.append((cpu1 - cpu0) / profiles / ((t1 - t0) / 60) * 1000)
    return {"first_read_s": statistics.median(first_reads), "ms_per_profile_minute": statistics.median(per_profile_minute),
            "max_ms_per_profile_minute": max(per_profile_minute), "containers_measured": len(per_profile_minute)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--profiles", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--image", default="hermes-agent:local")
    args = parser.parse_args()
    dc = client()
    prefix = f"usage-bench-{run_id()}"
    containers = start_fleet(dc, args.containers, prefix, args.image)
    try:
        seeded = seed_fleet(containers, args.profiles, args.sessions)
        print(f"{args.containers} containers x {args.profiles} profiles x {args.sessions} sessions "
              f"(seeding one state.db: {seeded:.1f} s)")
        f = one_shot(containers, prefix, args.profiles, args.repeat)
        print(f"floor: one no-op exec per container through hermesctl's exec path, in parallel: {f['floor']:.2f} s")
        print(f"hermesctl usage --since 7d (in-process), the resident agent's answer: {f['engine']:.2f} s = "
              f"{f['engine'] / f['floor']:.2f}x the floor (median of {args.repeat})")
        print(f"  its first question per container (each agent reads the window once): {f['first']:.2f} s")
        for name, (n, why) in f["answered"].items():
            if n != args.containers:
                print(f"  {name}: {n} of {args.containers} containers answered within {EXEC_TIMEOUT_S:.0f} s ({why})")
        print(f"  the one-shot agent instead (before): {f['oneshot']:.2f} s = {f['oneshot'] / f['floor']:.2f}x the floor")
        if f["cpu_floor"] is not None:
            print(f"container CPU per container (cgroup): floor {f['cpu_floor']:.1f} ms, resident answer "
                  f"{f['cpu_engine']:.1f} ms, one-shot agent {f['cpu_oneshot']:.1f} ms")
        print(f"hermesctl usage (CLI, Python start included): {f['cli']:.2f} s")
        print(f"raw floor (SDK exec_run of `true`, 32 at once, no deadline wrapper): {f['raw_floor']:.2f} s")
        print(f"one container's one-shot agent `usage` ({args.profiles} profiles), one exec: {f['single']:.3f} s")
        w = watch_cost(containers, args.profiles, args.minutes)
        print(f"serve's usage-watch: first full read {w['first_read_s'] * 1000:.0f} ms CPU per container; then, "
              f"with a session added to every profile every 5 s, {w['ms_per_profile_minute']:.2f} ms CPU per "
              f"profile per minute (median of {w['containers_measured']} containers, max "
              f"{w['max_ms_per_profile_minute']:.2f})")
    finally:
        try:
            remove(containers)
        except Exception:  # noqa: BLE001 - a loaded daemon may fail one removal: once more, one by one
            for c in containers:
                try:
                    c.remove(force=True, v=True)
                except Exception as exc:  # noqa: BLE001
                    print(f"could not remove {c.name}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
