"""Real Hermes containers started for a test (or a module) and removed after it, and the
helpers that look into them."""
import time

import docker
import pytest

from hermesctl.backends.docker.backup import HELPER_FOR_LABEL
from support.settings import RUN_ID


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
            container = spec.get_wrapped_container()
            # Helpers hermesctl made for it (restore, backup) go with it: a test that kills
            # hermesctl between a helper's create and its start leaves one that nothing else removes.
            for helper in self.client.containers.list(all=True, filters={"label": f"{HELPER_FOR_LABEL}={container.id}"}):
                try:
                    helper.remove(force=True, v=True)
                except docker.errors.NotFound:
                    pass
            try:
                container.remove(force=True, v=True)
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


# One exec that waits inside the container for stage 2's mark of THIS run (its mtime, in
# nanoseconds, at or after $1), looking every 0.1 s until $2 (epoch seconds): an exec costs the
# host ~50 ms of CPU and a boot under load takes seconds, so one exec replaces a dozen polls.
_WAIT_STAGE2 = ('while :; do m=$(stat -c %.9Y /run/s6/stage2-done 2>/dev/null) && '
                '[ "${m%.*}${m#*.}" -ge "$1" ] && exit 0; [ "$(date +%s)" -ge "$2" ] && exit 1; sleep 0.1; done')


def wait_ready(container, timeout: float = 60.0) -> None:
    """Boot is complete when stage 2 has run cont-init and started the static services, in THIS
    run of the container: /run survives `docker restart`, so a stage2-done left by the previous
    run (before /init has cleaned /run) must not count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "running":
            since_ns = int((_started_at(container) - 0.5) * 1e9)
            until = int(time.time() + max(1.0, deadline - time.monotonic()))
            try:
                done = container.exec_run(["sh", "-c", _WAIT_STAGE2, "wait-ready", str(since_ns), str(until)])
            except docker.errors.APIError:  # it stopped meanwhile: look again
                done = None
            if done is not None and done.exit_code == 0:
                return
            if done is not None and done.exit_code == 1:
                break  # waited inside until the deadline
        elif container.status == "exited":
            raise AssertionError(f"container exited during boot:\n{container.logs().decode()[-3000:]}")
        time.sleep(0.25)
    container.reload()
    if container.status == "exited":
        raise AssertionError(f"container exited during boot:\n{container.logs().decode()[-3000:]}")
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


def wait_in(container, condition: str, *, timeout: float = 30.0, interval: float = 0.3,
            user: str = "hermes", what: str = "condition") -> None:
    """Wait for a constant shell condition INSIDE the container, in one exec: a docker exec costs
    ~50 ms of the daemon's CPU beyond what it runs, so a loop in one exec, whose look is a fork
    of sh, test or grep, is a fraction of the cost of wait_for's exec per look."""
    assert "'" not in condition, "the condition is quoted in single quotes"
    script = f"timeout {timeout:g} sh -c 'until {condition}; do sleep {interval:g}; done'"
    result = container.exec_run(["sh", "-c", script], user=user)
    if result.exit_code != 0:
        raise AssertionError(f"timed out after {timeout}s waiting for {what} in {container.name} "
                             f"(exit {result.exit_code}): {condition}\n{result.output.decode()[-2000:]}")


def profile_archive(container, profile: str) -> bytes:
    """A hermes-made profile's directory as a tar (owners and modes kept), for put_profiles."""
    stream, _ = container.get_archive(f"/opt/data/profiles/{profile}")
    return b"".join(stream)


def put_profiles(container, archive: bytes, names) -> None:
    """Byte copies of a profile_archive() under other names in a container, each slot registered
    `down` by the image's renderer, as `hermes profile create` leaves it, without its hermes start
    (~0.5 s of CPU in a CPU-bound suite): a profile's files carry no name, and the tar keeps their
    owners and modes. One archive call per name and one exec for all the slots."""
    import io
    import tarfile
    for name in names:
        src = tarfile.open(fileobj=io.BytesIO(archive))
        top = src.getmembers()[0].name
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as dst:
            for member in src.getmembers():
                data = src.extractfile(member) if member.isfile() else None
                member.name = name + member.name[len(top):]
                dst.addfile(member, data)
        assert container.put_archive("/opt/data/profiles", out.getvalue())
    sh(container, " && ".join(f"/opt/hermes/docker/hermes-slots register {n}" for n in names))
