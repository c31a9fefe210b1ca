"""Shared fixtures: the Docker daemon, the Hermes image (built once per session, cached), and a
factory of real Hermes containers that removes everything it created.

In CI (CI=true) a missing daemon or a failed image build FAILS the Docker tests; locally they skip.
"""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The image's modules that both root's and hermes' code import (owner_rule) sit beside their
# packages in /opt/hermes/docker; tests that import those packages from the tree need them too.
sys.path.insert(0, str(ROOT / "image" / "either" / "docker"))
IMAGE = os.environ.get("HERMES_IMAGE", "hermes-agent:local")
# The full flavour, for the tests of what only it carries (extras, tool programs, the gateways'
# platforms). scripts/test.sh runs the rest on the slim flavour (the same in-container tree, built
# in a minute) while this one builds, and names a file it writes when that build has ended.
FULL_IMAGE = os.environ.get("HERMES_FULL_IMAGE", IMAGE)
FULL_IMAGE_READY = os.environ.get("HERMES_FULL_IMAGE_READY")
FULL_BUILD_WAIT_S = 1800
FLAVOUR_LABEL = "io.hermes-agent.flavour"
IN_CI = os.environ.get("CI", "").lower() == "true"
# Ryuk's image cannot be pulled here; every container is removed by our own fixtures instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
RUN_ID = uuid.uuid4().hex[:6]
# Records of the tests' own upgrades (hermesctl.engine.journal) and default backups stay out of
# the operator's ~/.local/state: one directory per test session (subprocesses inherit it).
os.environ.setdefault("XDG_STATE_HOME", tempfile.mkdtemp(prefix=f"hct-{RUN_ID}-state-"))


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"Docker tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"Docker not available: {reason}")


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no daemon
        _unavailable(str(exc))
    return client


@pytest.fixture(scope="session")
def hermes_image(docker_client):
    if os.environ.get("HERMES_TEST_SKIP_BUILD") != "1":
        result = subprocess.run(["bash", "scripts/build-image.sh"], cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            _unavailable(f"image build failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    docker_client.images.get(IMAGE)
    return IMAGE


@pytest.fixture(scope="session")
def full_image(docker_client, hermes_image):
    """The full flavour's tag, once its build has ended (never a skip: a test of what the full
    flavour carries fails when it is not there)."""
    if FULL_IMAGE_READY:
        deadline = time.monotonic() + FULL_BUILD_WAIT_S
        while not os.path.exists(FULL_IMAGE_READY):
            if time.monotonic() > deadline:
                pytest.fail(f"the full image's build did not end within {FULL_BUILD_WAIT_S}s", pytrace=False)
            time.sleep(1)
        verdict = Path(FULL_IMAGE_READY).read_text()
        if verdict.strip() != "ok":
            pytest.fail(f"the full image's build failed:\n{verdict[-3000:]}", pytrace=False)
    flavour = docker_client.images.get(FULL_IMAGE).labels.get(FLAVOUR_LABEL)
    if flavour != "full":
        pytest.fail(f"{FULL_IMAGE} is the {flavour or 'unlabelled'} flavour, not the full one "
                    "(HERMES_FULL_IMAGE names the full flavour's tag)", pytrace=False)
    return FULL_IMAGE


class Containers:
    """Starts Hermes containers through testcontainers and tracks them (and their named volumes)."""

    def __init__(self, client: docker.DockerClient, image: str, scope: str):
        self.client = client
        self.image = image
        self.scope = scope
        self.started = []
        self.volumes: list[str] = []

    def name(self, hint: str) -> str:
        return f"hct-{RUN_ID}-{self.scope}-{hint}"

    def volume(self, hint: str) -> str:
        name = self.name(hint) + "-data"
        self.volumes.append(name)
        return name

    def start(self, hint: str, *, env: dict | None = None, command=("sleep", "infinity"),
              volume: str | None = None, binds: dict | None = None, wait: bool = True,
              image: str | None = None, **kwargs):
        from testcontainers.core.container import DockerContainer

        # No network unless the test asks for one: hermesctl reaches a container through the
        # Docker API, and a container without networking never enters libnetwork, whose
        # endpoint bookkeeping in Debian's dockerd 20.10 can deadlock when containers on one
        # network exit at the same moment (moby/moby#46661), as they do across pytest workers.
        if not {"network", "network_mode", "ports", "network_disabled"} & set(kwargs):
            kwargs["network_disabled"] = True
        spec = DockerContainer(image or self.image, name=self.name(hint), command=list(command) if command else None,
                               env=env or {}, **kwargs)
        if volume:
            spec.with_volume_mapping(volume, "/opt/data", "rw")
        for host, target in (binds or {}).items():
            spec.with_volume_mapping(host, target, "rw")
        spec.start()
        self.started.append(spec)
        container = spec.get_wrapped_container()
        if wait:
            wait_ready(container)
        return container

    def cleanup(self) -> None:
        for spec in self.started:
            try:
                spec.get_wrapped_container().remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for name in self.volumes:
            try:
                self.client.volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass


def _started_at(container) -> float:
    """The container's last start, as epoch seconds (Docker gives RFC 3339 with nanoseconds)."""
    from datetime import datetime
    stamp = container.attrs["State"]["StartedAt"]
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (frac or "0"))


# The image's healthcheck, checked every 2 s instead of its 30: `upgrade` waits for `healthy`
# (and so does its rollback), and a recreated container keeps this setting.
QUICK_HEALTH = {"test": ["CMD", "/opt/hermes/docker/healthcheck.sh"], "interval": 2_000_000_000,
                "timeout": 5_000_000_000, "start_period": 60_000_000_000, "retries": 3}


def wait_ready(container, timeout: float = 60.0) -> None:
    """Boot is complete when stage 2 has run cont-init and started the static services, in THIS
    run of the container: /run survives `docker restart`, so a stage2-done left by the previous
    run (before /init has cleaned /run) must not count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "running":
            done = container.exec_run(["stat", "-c", "%.9Y", "/run/s6/stage2-done"])
            if done.exit_code == 0 and float(done.output.decode().strip()) >= _started_at(container) - 0.5:
                return
        elif container.status == "exited":
            raise AssertionError(f"container exited during boot:\n{container.logs().decode()[-3000:]}")
        time.sleep(0.25)  # each look is an exec: a boot takes seconds, and the host's CPU is shared
    raise AssertionError(f"container not ready after {timeout}s:\n{container.logs().decode()[-3000:]}")


@pytest.fixture
def containers(docker_client, hermes_image, request):
    factory = Containers(docker_client, hermes_image, request.node.name[:20].replace("[", "-").replace("]", "").replace("_", "-").lower())
    yield factory
    factory.cleanup()


@pytest.fixture(scope="module")
def module_containers(docker_client, hermes_image, request):
    factory = Containers(docker_client, hermes_image, request.module.__name__.split(".")[-1][5:15].replace("_", "-"))
    yield factory
    factory.cleanup()


def sh(container, script: str, *, user: str = "hermes", check: bool = True) -> str:
    """Run a constant test script in a container; returns stdout+stderr."""
    result = container.exec_run(["sh", "-c", script], user=user)
    output = result.output.decode()
    if check and result.exit_code != 0:
        raise AssertionError(f"exit {result.exit_code} from {script!r}:\n{output}")
    return output


def svstat(container, profile: str) -> dict:
    fields = "up,wantedup,normallyup,pid,exitcode"
    out = sh(container, f"/command/s6-svstat -o {fields} /run/service/gateway-{profile}").split()
    return {"up": out[0] == "true", "wantedup": out[1] == "true", "normallyup": out[2] == "true",
            "pid": int(out[3]), "exitcode": int(out[4])}


# Most predicates exec into a container (~85 ms of this 2-core host's CPU each, where the suite is
# CPU-bound): polling at 0.5 s rather than faster leaves that CPU to the tests themselves.
def wait_for(predicate, timeout: float = 30.0, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class CliResult:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self):
        import json
        return json.loads(self.stdout)

    def __repr__(self):
        return f"CliResult(code={self.code}, stdout={self.stdout[-1500:]!r}, stderr={self.stderr[-1500:]!r})"


def hermesctl(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 180) -> CliResult:
    """Run the real CLI in its own process, as a user would: `python -m hermesctl ARGS`, forked
    from this worker's pre-imported interpreter (tests/cli_zygote.py) unless the call's environment
    changes how Python itself starts."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if _ZYGOTE.usable and not _changes_interpreter_start(env or {}):
        return _ZYGOTE.run(list(args), full_env, str(cwd or ROOT), timeout)
    result = subprocess.run([sys.executable, "-m", "hermesctl", *args], capture_output=True, text=True,
                            timeout=timeout, env=full_env, cwd=cwd or ROOT)
    return CliResult(result.returncode, result.stdout, result.stderr)


def _changes_interpreter_start(env: dict) -> bool:
    """Variables read when Python starts (flags, I/O encoding, locale): those calls get a fresh one."""
    return any(k.startswith("PYTHON") and k != "PYTHONPATH" or k in ("LANG", "LANGUAGE") or k.startswith("LC_")
               for k in env)


class _Zygote:
    """The client of tests/cli_zygote.py: started on first use, shared by a worker's threads."""

    def __init__(self):
        import threading
        self.proc = None
        self.usable = os.environ.get("HERMES_TEST_NO_ZYGOTE") != "1"
        self.lock = threading.Lock()
        self.waiting: dict[str, dict] = {}
        self.next_id = 0

    def _start(self) -> None:
        import threading
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cli_zygote.py")], cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        threading.Thread(target=self._read_answers, args=(self.proc,), daemon=True).start()

    def _read_answers(self, proc) -> None:
        import json
        for line in proc.stdout:
            doc = json.loads(line)
            with self.lock:
                call = self.waiting.get(doc["id"])
            if call is not None:
                call.update(doc)
                if "status" in doc:
                    call["done"].set()
        with self.lock:  # the zygote is gone: nobody may wait forever
            for call in self.waiting.values():
                call.setdefault("status", None)
                call["done"].set()

    def spawn(self, args: list[str], env: dict, cwd: str) -> "ZygoteCall":
        """Fork one call; returns at once with its handle (its pid once the fork is answered)."""
        import json
        import threading
        out = tempfile.NamedTemporaryFile(prefix="hct-cli-", delete=False)
        err = tempfile.NamedTemporaryFile(prefix="hct-cli-", delete=False)
        out.close()
        err.close()
        call = {"done": threading.Event()}
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            self.next_id += 1
            ident = str(self.next_id)
            self.waiting[ident] = call
            request = {"id": ident, "args": args, "env": env, "cwd": cwd, "stdout": out.name, "stderr": err.name}
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
        return ZygoteCall(self, ident, call, args, out.name, err.name)

    def forget(self, ident: str) -> None:
        with self.lock:
            self.waiting.pop(ident, None)

    def run(self, args: list[str], env: dict, cwd: str, timeout: float) -> CliResult:
        call = self.spawn(args, env, cwd)
        try:
            call.wait(timeout)
            return call.result()
        finally:
            call.kill()
            call.close()


class ZygoteCall:
    """A hermesctl call forked by the zygote, handled as tests handle a subprocess.Popen: pid,
    poll, wait, send_signal, kill; its output is collected in files (result())."""

    def __init__(self, zygote: _Zygote, ident: str, call: dict, args: list[str], out: str, err: str):
        self.zygote, self.ident, self.call, self.args, self.out, self.err = zygote, ident, call, args, out, err

    @property
    def pid(self) -> int | None:
        return self.call.get("pid")

    @property
    def returncode(self) -> int | None:
        return self.call.get("status") if self.call["done"].is_set() else None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self.call["done"].wait(timeout):
            raise subprocess.TimeoutExpired([sys.executable, "-m", "hermesctl", *self.args], timeout)
        if self.call["status"] is None:
            raise RuntimeError("tests/cli_zygote.py ended during a call")
        return self.call["status"]

    def _forked_pid(self) -> int | None:
        # The fork's answer follows the request within milliseconds; a signal must reach the child.
        deadline = time.monotonic() + 10
        while self.pid is None and not self.call["done"].is_set() and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.pid

    def send_signal(self, sig: int) -> None:
        pid = self._forked_pid()
        if pid is not None and not self.call["done"].is_set():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def result(self) -> CliResult:
        return CliResult(self.call["status"], _read_text(self.out), _read_text(self.err))

    def close(self) -> None:
        self.zygote.forget(self.ident)
        for path in (self.out, self.err):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _read_text(path: str) -> str:
    """Decoded as subprocess.run(text=True) decodes: the locale's encoding, universal newlines."""
    import locale
    data = Path(path).read_bytes().decode(locale.getpreferredencoding(False))
    return data.replace("\r\n", "\n").replace("\r", "\n")


_ZYGOTE = _Zygote()


def ctrl_c(proc: subprocess.Popen, timeout: float = 10) -> None:
    """End a server or follower the way its user would (SIGINT); killed if it does not end in time."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def popen_hermesctl(*args: str, env: dict | None = None):
    """Start `python -m hermesctl ARGS` in the background, for a test that signals it (Ctrl-C,
    kill -9): forked by the zygote like hermesctl(), else a subprocess. Either handle has pid,
    poll, wait, send_signal, kill; close_and_collect() ends it and returns its CliResult."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if _ZYGOTE.usable and not _changes_interpreter_start(env or {}):
        return _ZYGOTE.spawn(list(args), full_env, str(ROOT))
    out = tempfile.NamedTemporaryFile(prefix="hct-cli-", delete=False)
    err = tempfile.NamedTemporaryFile(prefix="hct-cli-", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", *args], cwd=ROOT, stdout=out, stderr=err,
                            env=full_env)
    out.close()
    err.close()
    proc.out, proc.err = out.name, err.name
    return proc


def close_and_collect(proc, timeout: float = 20) -> CliResult:
    """Wait for a popen_hermesctl() process to end (killed after timeout), its output read and removed."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    result = CliResult(proc.returncode, _read_text(proc.out), _read_text(proc.err))
    if isinstance(proc, ZygoteCall):
        proc.close()
    else:
        for path in (proc.out, proc.err):
            os.unlink(path)
    return result


def hermesctl_until_interrupted(args: list[str], during) -> CliResult:
    """Start hermesctl in the background, call during(), then Ctrl-C it (SIGINT) and collect."""
    proc = popen_hermesctl(*args)
    try:
        during()
        proc.send_signal(signal.SIGINT)
    except BaseException:
        proc.kill()
        close_and_collect(proc)
        raise
    return close_and_collect(proc)


def _client(url: str, **kwargs):
    try:
        client = docker.DockerClient(base_url=url, **kwargs)
        return client if client.ping() else None
    except Exception:  # noqa: BLE001 - not up yet
        return None


@contextlib.contextmanager
def second_dockerd(tag: str, image: str | None, *, extra_args: tuple[str, ...] = ()):
    """A second dockerd on this machine: its own socket, data root, containerd namespace and
    bridge (`--bridge none` would make it delete the main daemon's docker0), with `image` loaded.
    Yields (unix url, client, process); removes everything it made."""
    if shutil.which("dockerd") is None:
        if IN_CI:
            pytest.fail("dockerd is not installed (scripts/ensure-docker.sh)")
        pytest.skip("dockerd is not installed")
    root = Path(f"/tmp/hct-{tag}-{RUN_ID}")
    root.mkdir(parents=True, exist_ok=True)
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "w")
    # Its containers use network_mode=none; the bridge only satisfies the daemon's default network.
    bridge = f"hct{tag}{RUN_ID}"[:15]
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    proc = subprocess.Popen(["dockerd", "--host", f"unix://{sock}", *extra_args, "--data-root", str(root / "data"),
                             "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
                             "--bridge", bridge, "--iptables=false", "--ip-masq=false",
                             "--containerd-namespace", f"hct{tag}{RUN_ID}",
                             "--containerd-plugins-namespace", f"hct{tag}p{RUN_ID}"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"unix://{sock}"
    client = None
    try:
        client = wait_for(lambda: _client(url), timeout=60, what=f"second dockerd ({root / 'dockerd.log'})")
        if image:
            saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            loaded = subprocess.run(["docker", "-H", url, "load", "-q"], stdin=saved.stdout, capture_output=True)
            saved.wait()
            assert loaded.returncode == 0, loaded.stderr
        yield url, client, proc
    finally:
        if proc.poll() is None:
            if client is not None:
                for c in client.containers.list(all=True):
                    c.remove(force=True, v=True)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        # dockerd bind-mounts its data root onto itself and leaves that mount behind.
        subprocess.run(["umount", "-l", str(root / "data")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


# Images the upgrade tests move to (tests/derived_images.py), one set per worker process.
UPGRADE_NEXT = f"hermes-agent:wtc-next-{RUN_ID}"
UPGRADE_BAD = f"hermes-agent:wtc-bad-{RUN_ID}"
UPGRADE_UNHEALTHY = f"hermes-agent:wtc-unhealthy-{RUN_ID}"
UPGRADE_NEVER_HEALTHY = f"hermes-agent:wtc-neverhealthy-{RUN_ID}"
UPGRADE_QUICK_HEALTH = f"hermes-agent:wtc-quickhealth-{RUN_ID}"


@pytest.fixture(scope="module")
def upgrade_images(docker_client, hermes_image):
    """(ours, next, bad), built on top of ours in seconds (the unhealthy ones too), removed after
    the module. test_upgrade.py and test_upgrade_plain.py each build them: two files that
    xdist can run side by side."""
    from derived_images import build_bad, build_never_healthy, build_next, build_quick_health, build_unhealthy
    build_next(docker_client, UPGRADE_NEXT, hermes_image)
    build_quick_health(docker_client, UPGRADE_QUICK_HEALTH, hermes_image)
    build_bad(docker_client, UPGRADE_BAD, hermes_image)
    build_unhealthy(docker_client, UPGRADE_UNHEALTHY, hermes_image)
    build_never_healthy(docker_client, UPGRADE_NEVER_HEALTHY, hermes_image)
    yield hermes_image, UPGRADE_NEXT, UPGRADE_BAD
    for tag in (UPGRADE_NEXT, UPGRADE_BAD, UPGRADE_UNHEALTHY, UPGRADE_NEVER_HEALTHY, UPGRADE_QUICK_HEALTH):
        docker_client.images.remove(tag, force=True)


# Images the swarm tests upgrade to, loaded on the nodes with ours when the cluster is made.
SWARM_NEXT = f"hermes-agent:wtc-swnext-{RUN_ID}"
SWARM_BAD = f"hermes-agent:wtc-swbad-{RUN_ID}"


@pytest.fixture(scope="session")
def swarm_cluster(docker_client, hermes_image):
    """One real two-node swarm for the session, with each instance's node labelled. Making one
    costs a minute or two, so test_swarm.py and test_secret_swarm.py share it (tests/file_schedule.py
    keeps both on one worker); each deploys its own stack on it and removes it at its end."""
    from derived_images import build_bad, build_next
    from swarm_cluster import SwarmCluster

    missing = [t for t in ("dockerd", "nsenter", "unshare", "ip", "iptables") if shutil.which(t) is None]
    missing += ["root"] if os.geteuid() != 0 else []
    if missing:
        if IN_CI:
            pytest.fail(f"a two-node swarm needs: {', '.join(missing)}")
        pytest.skip(f"a two-node swarm needs: {', '.join(missing)}")
    build_next(docker_client, SWARM_NEXT, hermes_image)
    build_bad(docker_client, SWARM_BAD, hermes_image)
    cluster = SwarmCluster(f"hctc{RUN_ID}", subnet=f"10.231.{int(RUN_ID[:2], 16)}")
    try:
        cluster.up([hermes_image, SWARM_NEXT, SWARM_BAD])
        cluster.label_instances()
        yield cluster
    finally:
        cluster.down_after_background()
        for tag in (SWARM_NEXT, SWARM_BAD):
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.ImageNotFound:
                pass


DAEMON_FIXTURES = {"docker_client", "hermes_image"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Once this worker's last test on the swarm is torn down, the cluster goes in the background
    (a minute of waiting on two daemons' shutdown) while the worker runs its next file; the
    session's end waits for it. Left to the session's end, that minute was the run's last."""
    yield
    uses = lambda i: i is not None and "swarm_cluster" in getattr(i, "fixturenames", ())  # noqa: E731
    if uses(item) and not uses(nextitem):
        item.funcargs["swarm_cluster"].down_in_background()  # funcargs: the whole fixture closure


def pytest_collection_modifyitems(config, items):
    """Every test that needs a daemon (directly or through another fixture) is marked `docker`, so
    `pytest -m "not docker"` is the fast set: the fakes, the parsers, the agent on files."""
    for item in items:
        if DAEMON_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)


try:  # Hypothesis finds its bugs in our runs, not CI's: the same examples on every run.
    from hypothesis import settings as _hypothesis_settings
    _hypothesis_settings.register_profile("derandomized", derandomize=True, database=None)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))
except ImportError:
    pass


def installed_launcher(tmp_path) -> str:
    """The `hermesctl` command with bin/ as pip lays it out: the launcher as it is, hermesctl-start's `#!python` rewritten."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(ROOT / "bin" / "hermesctl", bin_dir / "hermesctl")
    start = (ROOT / "bin" / "hermesctl-start").read_text().splitlines(keepends=True)
    assert start[0].strip() == "#!python"
    (bin_dir / "hermesctl-start").write_text(f"#!{sys.executable}\n" + "".join(start[1:]))
    for name in ("hermesctl", "hermesctl-start"):
        os.chmod(bin_dir / name, 0o755)
    return str(bin_dir / "hermesctl")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With `--dist loadfile` (scripts/test.sh): the long files first, a file's tests on one
    worker, the swarm files together (tests/file_schedule.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from file_schedule import LongestFirstFileScheduling
    return LongestFirstFileScheduling(config, log)
