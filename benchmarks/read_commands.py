"""The read commands' start-up cost (issue 28): each command's wall time as a user runs it
(`python -m hermesctl ...`, answered on the quick read path or, with --full, by the full CLI),
beside the same work in-process (a warm interpreter running the same code: hermesctl.cli.quick_read
over a fresh local fleet each time) and a bare `python3 -c pass`, in interleaved rounds so that
every figure sees the same load; medians over the rounds.

    python benchmarks/read_commands.py [--size 10] [--rounds 7] [--image hermes-agent:local-slim] [--no-bytecode]

What a command costs beyond its own work is `CLI - in-process`; beyond Python's own start it is
`CLI - in-process - python`, which the issue's goal bounds at 60 ms. The same in CPU time (the
child's user+system time from rusage; in-process, this process's CPU over the work, its threads
included), which a loaded machine inflates far less than wall time: `CLI CPU - in-process CPU -
python3 -c pass CPU` is what the command's start-up (imports, parsing, the client) costs.
`events` is timed to its first line (a container is sent SIGCONT every 0.1 s, a Docker event);
in-process, to the first event of the same LiveFleet. `gateway status (served)`: the same
command answered by a `hermesctl serve` watching the fleet (its unix socket), in-process the
same quick_read.run asking it.

Every child runs with its modules' bytecode compiled beforehand (a private PYTHONPYCACHEPREFIX),
as an installed hermesctl has it (pip compiles at install; Python writes __pycache__ on the
first run): with PYTHONDONTWRITEBYTECODE set, as in this project's sessions, every run would
compile every module it imports from source, 40-50 ms of CPU that no user pays.

The fleet: --size containers of the image with a stand-in gateway (`sleep`, bind-mounted over
the venv's `hermes`, as benchmarks/fleet_scale.py does), `default` started on the first one.
"""
import argparse
import io
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import client, remove, run_id, wait_booted  # noqa: E402

from hermesctl.cli import quick_read  # noqa: E402

STAND_IN_GATEWAY = "#!/bin/sh\nexec sleep 2147483647\n"
PYCACHE = tempfile.mkdtemp(prefix="bench-reads-pyc-")
# --no-bytecode (as the runs before this one measured): every child compiles what it imports
SOURCE_ONLY = "--no-bytecode" in sys.argv
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": "/nonexistent/serve.sock",
       **({"PYTHONDONTWRITEBYTECODE": "1"} if SOURCE_ONLY else {"PYTHONPYCACHEPREFIX": PYCACHE})}
SERVED = "gateway status (served)"
FULL = "import sys; from hermesctl.cli.app import main; main(sys.argv[1:])"


def wall(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def child_cpu(fn) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    fn()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def python_pass() -> None:
    subprocess.run([sys.executable, "-c", "pass"], env=ENV, check=True)


def cli(args: list[str], *, full: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", FULL, *args] if full else [sys.executable, "-m", "hermesctl", *args]
    return subprocess.run(argv, cwd=ROOT, env={**ENV, **(env or {})}, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)


def in_process(args: list[str], env: dict | None = None) -> None:
    """The quick path's own work in this warm interpreter: parse, connect (or ask serve), print."""
    from hermesctl.serve import client as serve_client
    serve_client._answers.clear()  # asked once per process: each run here is a new `hermesctl`
    sink = io.StringIO()
    before = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with redirect_stdout(sink), redirect_stderr(io.StringIO()):
            status = quick_read.run(args)
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if status is None:
        raise SystemExit(f"the quick path did not take {args}")


def compile_bytecode() -> None:
    """hermesctl's modules compiled once into PYCACHE (the stdlib's are written there on first use)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "hermesctl")], env=ENV, check=True,
                   stdout=subprocess.DEVNULL)


def start_serve(project: str) -> tuple[subprocess.Popen, dict]:
    """`hermesctl serve` over the fleet; returns once it holds every container's gateways."""
    from hermesctl.serve.client import ps_from_server
    env = {"HERMESCTL_SOCKET": os.path.join(tempfile.mkdtemp(prefix="bench-reads-serve-"), "serve.sock")}
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", project, "serve",
                             "--listen", "127.0.0.1:0", "--probe-interval", "0"], cwd=ROOT, env={**ENV, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scope = {"hosts": [], "contexts": [], "project": project, "fleet_file": None, "swarm": None}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        doc = ps_from_server(scope, env["HERMESCTL_SOCKET"], again=True)
        if doc and any(g.get("state") == "up" for g in doc["gateways"]):
            return proc, env
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("serve did not hold the fleet within 300 s")


class Fleet:
    def __init__(self, args):
        self.dc = client()
        self.project = f"{args.prefix}-{run_id()}"
        stub = Path(tempfile.mkdtemp(prefix="bench-reads-")) / "hermes"
        stub.write_text(STAND_IN_GATEWAY)
        stub.chmod(0o755)

        def start(i: int):
            return self.dc.containers.run(
                args.image, ["sleep", "infinity"], name=f"{self.project}-{i:02d}", detach=True,
                network_disabled=True, labels={"com.docker.compose.project": self.project},
                volumes={str(stub): {"bind": "/opt/hermes/.venv/bin/hermes", "mode": "ro"}})
        self.containers = [start(i) for i in range(args.size)]
        for c in self.containers:
            wait_booted(c, timeout=300)
        first = self.containers[0].name
        subprocess.run([sys.executable, "-m", "hermesctl", "-p", self.project, "gateway", "start", f"{first}:default"],
                       cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
        self.first = first

    def nudge(self, stop: threading.Event) -> None:
        """A Docker `kill` event every 0.1 s (SIGCONT to PID 1 is a no-op)."""
        c = self.containers[-1]
        while not stop.is_set():
            c.kill(signal="SIGCONT")
            stop.wait(0.1)


def events_first_line(project: str, *, full: bool) -> float:
    argv = ([sys.executable, "-c", FULL] if full else [sys.executable, "-m", "hermesctl"]) + \
        ["-p", project, "events", "--json"]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        took = time.monotonic() - start
        if not line:
            raise SystemExit("events printed nothing")
        return took
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def events_in_process(project: str) -> float:
    from hermesctl.cli.run import Run
    from hermesctl.backends.docker.streams import LiveFleet
    from hermesctl.config.endpoints import resolve_local
    from hermesctl.render.plain_output import PlainOutput
    start = time.monotonic()
    run = Run(out=PlainOutput(json=True), project=project, local=resolve_local([]))
    live = LiveFleet(run.fleet(), [])
    try:
        live.start()
        live.events.get(timeout=60)
        return time.monotonic() - start
    finally:
        live.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--image", default="hermes-agent:local-slim")
    parser.add_argument("--prefix", default="bench-reads")
    parser.add_argument("--no-bytecode", action="store_true", help="children compile every module from source")
    args = parser.parse_args()
    fleet = Fleet(args)
    p, first = fleet.project, fleet.first
    if not args.no_bytecode:
        compile_bytecode()
    commands = {
        "gateway status": ["-p", p, "gateway", "status", "--direct", f"{first}:default"],
        "logs -n 20": ["-p", p, "logs", "-n", "20", f"{first}:default"],
        "profile list": ["-p", p, "profile", "list"],
        "boot-log": ["-p", p, "boot-log", first],
        "doctor": ["-p", p, "doctor"],
        "usage": ["-p", p, "usage"],
    }
    figures: dict[str, dict[str, list[float]]] = {name: {k: [] for k in ("python", "quick", "quick_cpu", "work", "work_cpu", "full", "full_cpu")}
                                                  for name in [*commands, "events (1st line)", SERVED]}
    python_cpu = []
    serve = None

    def measure(f: dict, argv: list[str], env: dict | None = None) -> None:
        f["python"].append(wall(python_pass))
        box: dict = {}
        f["quick_cpu"].append(child_cpu(lambda: box.update(t=wall(lambda: cli(argv, env=env)))))
        f["quick"].append(box["t"])
        cpu = time.process_time()
        f["work"].append(wall(lambda: in_process(argv, env)))
        f["work_cpu"].append(time.process_time() - cpu)
        f["full_cpu"].append(child_cpu(lambda: box.update(t=wall(lambda: cli(argv, full=True, env=env)))))
        f["full"].append(box["t"])
    try:
        for argv in commands.values():  # unmeasured: the stdlib's bytecode written to PYCACHE
            cli(argv), cli(argv, full=True)
        for r in range(args.rounds):
            for name, argv in commands.items():
                measure(figures[name], argv)
            python_cpu.append(child_cpu(python_pass))
            f = figures["events (1st line)"]
            stop = threading.Event()
            nudger = threading.Thread(target=fleet.nudge, args=(stop,), daemon=True)
            nudger.start()
            f["python"].append(wall(python_pass))
            box = {}
            f["quick_cpu"].append(child_cpu(lambda: box.update(t=events_first_line(p, full=False))))
            f["quick"].append(box["t"])
            cpu = time.process_time()
            f["work"].append(events_in_process(p))
            f["work_cpu"].append(time.process_time() - cpu)
            f["full_cpu"].append(child_cpu(lambda: box.update(t=events_first_line(p, full=True))))
            f["full"].append(box["t"])
            stop.set()
            nudger.join()
            print(f"round {r + 1}/{args.rounds} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
        # Then with serve running (its streams are not there while the others are timed).
        serve, served_env = start_serve(p)
        served = ["-p", p, "gateway", "status", f"{first}:default"]
        note = cli(served, env=served_env).stderr
        if "from hermesctl serve" not in note:
            raise SystemExit(f"gateway status was not answered by serve: {note}")
        for _ in range(args.rounds):
            measure(figures[SERVED], served, served_env)
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                serve.kill()
        remove(fleet.containers)
        shutil.rmtree(PYCACHE, ignore_errors=True)
    pcpu = statistics.median(python_cpu)
    print(f"{args.size} containers, {args.image}, median of {args.rounds} interleaved rounds, "
          f"{'no bytecode (every module compiled in every run)' if args.no_bytecode else 'bytecode compiled'}; "
          f"python3 -c pass: {pcpu * 1000:.0f} ms of CPU; load average now {os.getloadavg()[0]:.1f}")
    print("| command | quick CLI: wall, CPU | in-process: wall, CPU | quick beyond Python and the work: "
          "wall, **CPU** (goal <= 60 ms) | full CLI: wall, CPU | full beyond: wall, CPU |")
    print("|---|---|---|---|---|---|")
    for name, f in figures.items():
        python, quick, work, full, qcpu, wcpu, fcpu = (statistics.median(f[k]) for k in (
            "python", "quick", "work", "full", "quick_cpu", "work_cpu", "full_cpu"))
        print(f"| `{name}` | {quick * 1000:.0f} ms, {qcpu * 1000:.0f} | {work * 1000:.0f} ms, {wcpu * 1000:.0f} | "
              f"{(quick - work - python) * 1000:+.0f} ms, **{(qcpu - wcpu - pcpu) * 1000:+.0f} ms** | "
              f"{full * 1000:.0f} ms, {fcpu * 1000:.0f} | {(full - work - python) * 1000:+.0f} ms, "
              f"{(fcpu - wcpu - pcpu) * 1000:+.0f} ms |")


if __name__ == "__main__":
    main()
