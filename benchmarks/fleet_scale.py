"""A fleet on one host, growing to 200 containers, in one run (issue 18):

- CLI overhead per command (`ps`, `gateway status`, `logs -n`, `events` to its first line): the
  CLI's wall time beside the same work in-process, and a bare `python3 -c pass`;
- `ps` at each size, direct (CLI and in-process) and answered by `hermesctl serve` (CLI and
  in-process), beside the exec floor (one no-op exec per container, as many at once as
  hermesctl allows per endpoint);
- `hermesctl serve` at each size: time until it holds every container's state, its RSS and CPU
  (idle, over a window), a `/metrics` scrape, and its page's event stream open beside it with
  still one `watch` stream per container;
- `events`: time until every stream is open; `gateway restart '*:default'` over the whole fleet
  (hermesctl goes in waves of endpoints.EXEC_CONCURRENCY containers), then `gateway stop`;
- per-container cost: an idle container (its cgroup's memory and its containerd shim's RSS), a
  held-open `watch` stream (in the container, and in serve), and a running gateway (real
  hermes, on a few extra containers).

The fleet's gateways are a stand-in (`sleep`, bind-mounted over the venv's `hermes`) so that
200 of them fit beside other work: every command runs for real against them (s6, the agent,
the Docker API); the real gateway's own cost is measured on --real-gateways containers.

    python benchmarks/fleet_scale.py --sizes 10,50,200 [--repeat 3] [--image hermes-agent:local]

Every Docker call goes to DOCKER_HOST (the local socket without it): a run of 200 containers
belongs on a dockerd of its own, so that it cannot wedge the daemon other work shares, e.g.

    DOCKER_HOST=unix:///run/speed-docker.sock python benchmarks/fleet_scale.py \
        --dockerd-pidfile /var/lib/speed-docker/docker.pid
"""
import argparse
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import IMAGE, client, run_id, wait_booted  # noqa: E402

from rich.console import Console  # noqa: E402

from hermesctl.backends.docker.daemon import connect  # noqa: E402
from hermesctl.backends.docker.fleet import Fleet  # noqa: E402
from hermesctl.backends.docker.streams import LiveFleet  # noqa: E402
from hermesctl.commands.gateway import status as gateway_status  # noqa: E402
from hermesctl.commands.logs import logs as gateway_logs  # noqa: E402
from hermesctl.commands.ps import render_table  # noqa: E402
from hermesctl.commands.ps_served import render as render_served  # noqa: E402
from hermesctl.config.endpoints import EXEC_CONCURRENCY, resolve  # noqa: E402
from hermesctl.engine.rows import collect  # noqa: E402
from hermesctl.model.targets import Target  # noqa: E402
from hermesctl.render.output import Output  # noqa: E402
from hermesctl.serve.client import ps_from_server  # noqa: E402

STAND_IN_GATEWAY = "#!/bin/sh\nexec sleep 2147483647\n"
WATCHERS = "ps -eo args | grep -c '^/opt/hermes/.venv/bin/python -IS /opt/hermes/docker/hermes-ctl-agent watch' || true"
WATCHER_RSS = "ps -eo rss,args | grep -m1 ' /opt/hermes/docker/hermes-ctl-agent watch'"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def say(text: str) -> None:
    print(text, flush=True)


def wall(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def median_of(fn, repeat: int) -> float:
    return statistics.median(wall(fn) for _ in range(repeat))


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """hermesctl ARGS; a failure is reported (one run of 200 containers must not stop at it)."""
    res = subprocess.run([sys.executable, "-m", "hermesctl", *args], cwd=ROOT, env={**ENV, **(env or {})},
                         capture_output=True, text=True)
    if res.returncode not in (0, 3):
        say(f"  ! hermesctl {' '.join(args)} exited {res.returncode}: {res.stderr.strip()[-300:]}")
    return res


def child_cpu(fn) -> float:
    """CPU seconds (user + system) the subprocesses fn() ran took: what a loaded machine does not
    inflate as it does wall time."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    fn()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def check(ok: bool, what: str) -> None:
    if not ok:
        say(f"  ! {what}")


def quiet_out() -> Output:
    return Output(console=Console(file=io.StringIO(), width=300))


class Bench:
    def __init__(self, args):
        self.args = args
        self.dc = client()
        self.prefix = f"{args.prefix}-{run_id()}"
        self.project = self.prefix
        self.containers: list = []
        self.extra: list = []
        self.endpoint = connect(resolve())
        self.stub = Path(tempfile.mkdtemp(prefix="bench-scale-")) / "hermes"
        self.stub.write_text(STAND_IN_GATEWAY)
        self.stub.chmod(0o755)
        self.figures: dict = {}

    # --- the fleet -------------------------------------------------------------------------
    def grow(self, size: int) -> None:
        def start(i: int):
            return self.dc.containers.run(
                self.args.image, ["sleep", "infinity"], name=f"{self.prefix}-{i:03d}", detach=True,
                labels={"com.docker.compose.project": self.project},
                volumes={str(self.stub): {"bind": "/opt/hermes/.venv/bin/hermes", "mode": "ro"}})
        begun = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            new = list(pool.map(start, range(len(self.containers), size)))
            self.containers += new
            list(pool.map(lambda c: wait_booted(c, timeout=600), new))
        say(f"  {len(new)} containers started and booted in {time.monotonic() - begun:.1f} s")

    def fleet(self) -> Fleet:
        return Fleet(endpoints=[self.endpoint], project=self.project)

    def watchers(self) -> list[int]:
        with ThreadPoolExecutor(max_workers=EXEC_CONCURRENCY) as pool:
            return list(pool.map(lambda c: int(c.exec_run(["sh", "-c", WATCHERS]).output.decode().strip() or 0),
                                 self.containers))

    def remove(self) -> None:
        everything = self.containers + self.extra
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: c.remove(force=True, v=True), everything))
        say(f"removed {len(everything)} containers")

    # --- figures ---------------------------------------------------------------------------
    def python_start(self) -> float:
        t = median_of(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 7)
        self.figures["python"] = t
        self.figures["python_cpu"] = statistics.median(
            child_cpu(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)) for _ in range(7))
        return t

    def floor_once(self, pool) -> float:
        """One no-op exec per container through the same Docker API (create, start, inspect),
        EXEC_CONCURRENCY at once, as hermesctl goes."""
        return wall(lambda: list(pool.map(lambda c: c.exec_run(["true"], user="hermes"), self.containers)))

    def direct_ps(self, size: int, rounds: int) -> dict:
        """Direct ps beside its floor, in interleaved rounds (floor, `python3 -c pass`, the CLI,
        in-process) so that every figure sees the same load; medians over the rounds, and the
        median of each round's CLI / (floor + Python start)."""
        def engine():
            out = quiet_out()
            rows = collect(self.fleet(), [])
            answered = sum(1 for r in rows if r.profile)
            check(answered == size, f"direct ps: {answered} of {size} containers answered")
            out.print(render_table(out, self.fleet(), rows, wide=False))

        runs: dict[str, list[float]] = {"floor": [], "python": [], "cli": [], "engine": [], "ratio": [], "cli_cpu": []}
        with ThreadPoolExecutor(max_workers=EXEC_CONCURRENCY) as pool:
            for _ in range(rounds):
                runs["floor"].append(self.floor_once(pool))
                runs["python"].append(wall(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)))
                box: dict = {}
                runs["cli_cpu"].append(child_cpu(lambda: box.update(
                    t=wall(lambda: cli("--project", self.project, "ps", "--direct")))))
                runs["cli"].append(box["t"])
                runs["engine"].append(wall(engine))
                runs["ratio"].append(runs["cli"][-1] / (runs["floor"][-1] + runs["python"][-1]))
        return {k: statistics.median(v) for k, v in runs.items()}

    def overhead(self) -> None:
        """CLI against the same work in-process, per command, on the first container."""
        c = self.containers[0].name
        target = [Target(c, "default")]
        cases = {
            "ps": (lambda: collect(self.fleet(), []),
                   ("--project", self.project, "ps", "--direct")),
            "gateway status": (lambda: gateway_status(quiet_out(), self.fleet(), target),
                               ("--project", self.project, "gateway", "status", f"{c}:default")),
            "logs -n 20": (lambda: gateway_logs(quiet_out(), self.fleet(), target, lines=20, follow=False),
                           ("--project", self.project, "logs", "-n", "20", f"{c}:default")),
        }
        say("CLI overhead (median of %d; the command's wall time less the same work in-process):" % self.args.repeat)
        for name, (engine, argv) in cases.items():
            t_engine = median_of(engine, self.args.repeat)
            t_cli = median_of(lambda: cli(*argv), self.args.repeat)
            cpu = statistics.median(child_cpu(lambda: cli(*argv)) for _ in range(self.args.repeat))
            self.figures[f"overhead {name}"] = (t_cli, t_engine, cpu)
            say(f"  {name:16s} CLI {t_cli * 1000:6.0f} ms  in-process {t_engine * 1000:6.0f} ms  "
                f"overhead {(t_cli - t_engine) * 1000:5.0f} ms; the CLI's own CPU {cpu * 1000:4.0f} ms "
                f"(python3 -c pass: {self.figures['python_cpu'] * 1000:.0f} ms)")
        t_cli, t_engine = self.events_first_line()
        self.figures["overhead events"] = (t_cli, t_engine)
        say(f"  {'events 1st line':16s} CLI {t_cli * 1000:6.0f} ms  in-process {t_engine * 1000:6.0f} ms  "
            f"overhead {(t_cli - t_engine) * 1000:5.0f} ms   (a container sent SIGCONT every 0.1 s)")

    def _nudging(self, stop: threading.Event) -> None:
        """A Docker `kill` event every 0.1 s: SIGCONT to PID 1 of a running container is a no-op
        (pausing/unpausing instead once left a container frozen on a loaded host)."""
        c = self.containers[-1]
        while not stop.is_set():
            c.kill(signal="SIGCONT")
            stop.wait(0.1)

    def events_first_line(self) -> tuple[float, float]:
        def engine():
            live = LiveFleet(self.fleet(), [])
            try:
                live.start()
                live.events.get(timeout=60)
            finally:
                live.stop()

        def command():
            proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", self.project, "events", "--json"],
                                    cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                reader = threading.Thread(target=proc.stdout.readline, daemon=True)
                reader.start()
                reader.join(60)
                check(not reader.is_alive(), "events printed nothing within 60 s")
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=20)

        results = []
        for fn in (command, engine):
            stop = threading.Event()
            runs = []
            for _ in range(self.args.repeat):
                stop.clear()
                toggler = threading.Thread(target=self._nudging, args=(stop,), daemon=True)
                start = time.monotonic()
                toggler.start()
                fn()
                runs.append(time.monotonic() - start)
                stop.set()
                toggler.join()
            results.append(statistics.median(runs))
        return results[0], results[1]

    def events_ready(self, size: int) -> float:
        live = LiveFleet(self.fleet(), [])
        try:
            t = wall(live.start)
            check(len(live.snapshots) == size, f"events: {len(live.snapshots)} of {size} streams open")
        finally:
            live.stop()
        return t

    def serve(self, size: int) -> dict:
        socket_path = os.path.join(tempfile.mkdtemp(prefix="bench-serve-"), "serve.sock")
        env = {"HERMESCTL_SOCKET": socket_path}
        scope = {"hosts": [], "contexts": [], "project": self.project, "fleet_file": None, "swarm": None}
        begun = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", self.project, "serve",
                                 "--listen", "127.0.0.1:0", "--interval", "2"], cwd=ROOT, env={**ENV, **env},
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        figures: dict = {}
        try:
            url = re.search(r"(http://\S+/) ", proc.stdout.readline()).group(1)
            token = re.search(r"token \(shown once\): (\S+)", proc.stdout.readline()).group(1)

            def get(path: str):  # every read over TCP needs the token
                return urllib.request.urlopen(urllib.request.Request(
                    url + path, headers={"Authorization": f"Bearer {token}"}), timeout=60)
            while True:
                doc = ps_from_server(scope, socket_path, again=True)
                if doc and sum(1 for g in doc["gateways"] if g.get("profile")) == size:
                    break
                if time.monotonic() - begun > 600:
                    raise SystemExit("serve did not hold the whole fleet within 600 s")
                time.sleep(0.2)
            figures["ready"] = time.monotonic() - begun
            time.sleep(3)
            page = get("api/events")
            page.readline()
            daemons = _daemon_processes(self.args.dockerd_pidfile)
            cpu0, d0, t0 = _cpu_seconds(proc.pid), sum(map(_cpu_seconds, daemons)), time.monotonic()
            time.sleep(self.args.idle_window)
            elapsed = time.monotonic() - t0
            figures["cpu_idle"] = (_cpu_seconds(proc.pid) - cpu0) / elapsed
            try:
                figures["daemon_cpu"] = (sum(map(_cpu_seconds, daemons)) - d0) / elapsed
            except OSError:
                figures["daemon_cpu"] = float("nan")
            figures["rss_mib"] = _rss_kib(proc.pid) / 1024
            figures["daemon_rss_mib"] = [_rss_kib(pid) / 1024 for pid in daemons]

            def served():
                doc = ps_from_server(scope, socket_path, again=True)
                render_served(doc, [], json_output=False, wide=False, quiet=False, no_headers=False,
                              stdout=io.StringIO(), stderr=io.StringIO())
            figures["served_engine"] = median_of(served, self.args.repeat * 3)
            served, bare = [], []  # interleaved with a bare Python start: the same load for both
            for _ in range(self.args.repeat * 3):
                served.append(wall(lambda: cli("--project", self.project, "ps", env=env)))
                bare.append(wall(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)))
            figures["served_cli"], figures["served_python"] = statistics.median(served), statistics.median(bare)
            figures["served_cpu"] = statistics.median(
                child_cpu(lambda: cli("--project", self.project, "ps", env=env)) for _ in range(self.args.repeat * 3))
            check("from hermesctl serve" in cli("--project", self.project, "ps", env=env).stderr,
                  "ps did not come from serve")
            scrapes = []
            cpu_before = _cpu_seconds(proc.pid)
            for _ in range(20):
                start = time.monotonic()
                with get("metrics") as res:
                    body = res.read()
                scrapes.append(time.monotonic() - start)
            # serve's own CPU per scrape (its idle CPU is small beside it): what load does not inflate
            figures["scrape_cpu"] = (_cpu_seconds(proc.pid) - cpu_before) / 20
            figures["scrape_median"], figures["scrape_max"] = statistics.median(scrapes), max(scrapes)
            figures["scrape_bytes"] = len(body)
            counts = self.watchers()
            figures["streams"] = (min(counts), max(counts))
            page.close()
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        return figures

    def restart_all(self, size: int) -> tuple[float, float]:
        def restart():
            res = cli("--project", self.project, "gateway", "restart", "*:default", "--json")
            try:
                ok = sum(1 for r in json.loads(res.stdout)["results"] if r["ok"])
            except (ValueError, KeyError):
                ok = 0
            check(ok == size, f"gateway restart: {ok} of {size} ok")
        t_restart = wall(restart)
        t_stop = wall(lambda: cli("--project", self.project, "gateway", "stop", "*:default"))
        return t_restart, t_stop

    def per_container(self) -> None:
        """Idle container, its shim, a held-open stream, a real running gateway."""
        sample = self.containers[: min(10, len(self.containers))]
        idle = statistics.median(_memory_mib(c) for c in sample)
        shims = [_shim_rss_mib(c.id) for c in sample]
        shim = statistics.median(s for s in shims if s is not None) if any(s is not None for s in shims) else None
        live = LiveFleet(Fleet(endpoints=[self.endpoint], project=self.project), [Target(f"{self.prefix}-00?", None)])
        try:
            live.start()
            time.sleep(2)
            streamed = statistics.median(_memory_mib(c) for c in sample)
            rss = statistics.median(int(c.exec_run(["sh", "-c", WATCHER_RSS]).output.decode().split()[0]) / 1024
                                    for c in sample)
        finally:
            live.stop()
        self.figures["idle"], self.figures["shim"], self.figures["stream"] = idle, shim, streamed - idle
        say(f"per container: idle {idle:.1f} MiB (container cgroup) + containerd shim "
            f"{'%.1f MiB RSS' % shim if shim is not None else 'n/a'}; a held-open watch stream "
            f"+{streamed - idle:.1f} MiB of the container's memory (the watcher's RSS: {rss:.1f} MiB)")
        if self.args.real_gateways:
            self.real_gateway()

    def real_gateway(self) -> None:
        n = self.args.real_gateways

        def start(i):
            return self.dc.containers.run(self.args.image, ["sleep", "infinity"], name=f"{self.prefix}-real-{i}",
                                          detach=True, labels={"com.docker.compose.project": self.project + "-real"})
        with ThreadPoolExecutor(max_workers=n) as pool:
            real = list(pool.map(start, range(n)))
            self.extra += real
            list(pool.map(wait_booted, real))
        time.sleep(2)
        before = [_memory_mib(c) for c in real]
        cpu_before = [_cpu_usage_s(c) for c in real]
        t = wall(lambda: cli("--project", self.project + "-real", "gateway", "start", "*:default", "--settle", "5"))
        time.sleep(10)
        after = [_memory_mib(c) for c in real]
        cpu = [_cpu_usage_s(c) - b for c, b in zip(real, cpu_before)]
        gateway = statistics.median(a - b for a, b in zip(after, before))
        self.figures["gateway"] = gateway
        say(f"a running gateway (real hermes, {n} containers): +{gateway:.0f} MiB each; its start "
            f"{statistics.median(cpu):.1f} CPU-s; `gateway start` of {n}: {t:.1f} s")
        cli("--project", self.project + "-real", "gateway", "stop", "*:default")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _daemon_processes(pidfile: str) -> list[int]:
    """The dockerd the benchmark talks to (its pid file) and the containerd it runs (other
    dockerds on this host, e.g. tests' second daemons, are not ours to count)."""
    try:
        dockerd = int(Path(pidfile).read_text())
    except (OSError, ValueError):
        return []
    found = [dockerd]
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "containerd" and \
                    int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == dockerd:
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _memory_mib(container) -> float:
    """What `docker stats` shows: the cgroup's usage less its inactive page cache."""
    stats = container.stats(stream=False)["memory_stats"]
    inner = stats.get("stats", {})
    cache = inner.get("inactive_file", inner.get("total_inactive_file", inner.get("cache", 0)))
    return (stats.get("usage", 0) - cache) / (1 << 20)


def _cpu_usage_s(container) -> float:
    return container.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def _shim_rss_mib(container_id: str) -> float | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"containerd-shim-runc-v2") and container_id.encode() in cmdline:
            return _rss_kib(int(proc.name)) / 1024
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200", help="fleet sizes, growing (default 10,50,200)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--idle-window", type=float, default=20.0, help="seconds serve's idle CPU is averaged over")
    parser.add_argument("--real-gateways", type=int, default=3, help="containers whose real gateway is measured")
    parser.add_argument("--prefix", default="bench-scale", help="container names start with PREFIX-RUNID")
    parser.add_argument("--dockerd-pidfile", default="/var/run/docker.pid",
                        help="pid file of the dockerd at DOCKER_HOST (its CPU, and its containerd's, is reported)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    # As pip installs it: byte-compiled (PYTHONDONTWRITEBYTECODE would otherwise make every
    # CLI run compile hermesctl from source).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "hermesctl")], check=True)
    bench = Bench(args)
    load = os.getloadavg()
    say(f"{time.strftime('%Y-%m-%d %H:%M:%S')} load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
        f"{os.cpu_count()} CPUs; image {args.image}; endpoint {bench.endpoint.url}; "
        f"at most {EXEC_CONCURRENCY} execs in flight per endpoint")
    try:
        python = bench.python_start()
        say(f"bare Python start (python3 -c pass): {python * 1000:.0f} ms")
        for i, size in enumerate(sizes):
            say(f"--- {size} containers ---")
            bench.grow(size)
            d = bench.direct_ps(size, args.repeat * 3 if size <= 10 else args.repeat)
            floor, engine, command = d["floor"], d["engine"], d["cli"]
            say(f"direct ps (median of {args.repeat * 3 if size <= 10 else args.repeat} interleaved rounds): "
                f"CLI {command:.2f} s ({d['cli_cpu'] * 1000:.0f} ms of its CPU), in-process {engine:.2f} s; "
                f"floor ({size} no-op execs, {EXEC_CONCURRENCY} at once) {floor:.2f} s; python3 -c pass "
                f"{d['python'] * 1000:.0f} ms; CLI / (floor + Python start) = {d['ratio']:.2f} "
                f"(of the medians: {command / (floor + d['python']):.2f})")
            if i == 0:
                bench.overhead()
            ready = bench.events_ready(size)
            say(f"events: all {size} streams open (first snapshot of each) in {ready:.2f} s")
            s = bench.serve(size)
            say(f"serve: whole fleet held {s['ready']:.1f} s after start; RSS {s['rss_mib']:.0f} MiB; idle CPU "
                f"{s['cpu_idle'] * 100:.1f}% of a core (dockerd+containerd meanwhile {s['daemon_cpu'] * 100:.0f}%, "
                f"shared with everyone's work); /metrics {s['scrape_bytes'] // 1024} KiB in "
                f"{s['scrape_median'] * 1000:.1f} ms (max {s['scrape_max'] * 1000:.1f} ms of 20; serve's CPU "
                f"{s['scrape_cpu'] * 1000:.1f} ms per scrape); "
                f"watch streams per container with the page open: {s['streams'][0]}..{s['streams'][1]}; "
                f"dockerd, containerd RSS: {', '.join(f'{m:.0f} MiB' for m in s['daemon_rss_mib'])}")
            say(f"ps via serve: CLI {s['served_cli'] * 1000:.0f} ms = Python start ({s['served_python'] * 1000:.0f} ms "
                f"in the same rounds) + {(s['served_cli'] - s['served_python']) * 1000:.0f} ms; in-process {s['served_engine'] * 1000:.1f} ms; "
                f"the CLI's CPU {s['served_cpu'] * 1000:.0f} ms (python3 -c pass: "
                f"{bench.figures['python_cpu'] * 1000:.0f} ms)")
            bench.figures[size] = {"floor": floor, "direct_engine": engine, "direct_cli": command,
                                   "events_ready": ready, **s}
            restart, stop = bench.restart_all(size)
            say(f"gateway restart '*:default' ({size} stand-in gateways, {EXEC_CONCURRENCY} containers at a time): "
                f"{restart:.1f} s; gateway stop: {stop:.1f} s")
            bench.figures[size].update(restart=restart, stop=stop)
            if i == 0:
                bench.per_container()
        if len(sizes) > 1:
            first, last = bench.figures[sizes[0]], bench.figures[sizes[-1]]
            per = (last["rss_mib"] - first["rss_mib"]) / (sizes[-1] - sizes[0])
            say(f"serve RSS per container (held stream and state): {per * 1024:.0f} KiB")
        say(f"{time.strftime('%H:%M:%S')} done; load average now {os.getloadavg()[0]:.1f}")
    finally:
        bench.remove()


if __name__ == "__main__":
    main()
