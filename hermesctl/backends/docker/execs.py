"""Running argv lists inside containers through the Docker API, as the hermes user by default.

Never a shell string built from input: callers pass argv lists; the only shell scripts we run are
constants, with user values passed as positional arguments.

Every exec has a deadline, enforced twice: inside the container the command runs under
coreutils' `timeout` (which signals the whole process group, so a `cat` blocked on a FIFO dies
too, and the exec's stream ends), and on the host the blocking API read runs in a daemon thread
that we stop waiting for shortly after the deadline (a stream that never ends, whatever the
reason, cannot hold the command up).
"""
import threading
from dataclasses import dataclass

from hermesctl.backends.docker import sdk_errors
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.core.errors import ContainerStoppedError, DaemonUnreachableError, ExecTimeoutError, NotFoundError

HERMES_USER = "hermes"
TIMEOUT_PROGRAM = "/usr/bin/timeout"
KILL_AFTER_S = 1        # timeout -k: SIGKILL this long after the SIGTERM
HOST_GRACE_S = 2.0      # the host waits this much longer than the in-container deadline
TIMED_OUT_CODES = (124, 137)  # timeout(1): the deadline passed (137 = it had to SIGKILL)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _exec(endpoint: Endpoint, container: HermesContainer, argv: list[str], user: str,
          environment: dict | None) -> ExecResult:
    try:
        # run() holds the endpoint's in_flight slot around this call.
        code, out, err = endpoint.daemon.exec_run(container.id, argv, user=user, environment=environment)
    # The SDK's exception classes are looked up only when something was raised (sdk_errors).
    except sdk_errors.NotFound as exc:
        raise NotFoundError(f"container {container.name} no longer exists") from exc
    except sdk_errors.APIError as exc:
        from hermesctl.backends.docker.podman import dialect
        if dialect(endpoint).exec_found_it_stopped(exc):
            raise ContainerStoppedError(f"container {container.name} is not running") from exc
        raise
    except sdk_errors.CONNECTION_ERRORS as exc:
        raise DaemonUnreachableError(f"lost the Docker daemon at {endpoint.url}: {exc}") from exc
    return ExecResult(code if code is not None else -1, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def run(endpoint: Endpoint, container: HermesContainer, argv: list[str], *,
        user: str = HERMES_USER, environment: dict | None = None,
        timeout: float | None = None) -> ExecResult:
    """argv in the container; with `timeout` (seconds), ExecTimeoutError when it is not done by then.

    At most `endpoint.in_flight` execs run at once per endpoint (hermesctl.config.endpoints); the
    deadline counts from the moment this one may start, not while it waits for its turn."""
    if timeout is None:
        with endpoint.in_flight:
            return _exec(endpoint, container, argv, user, environment)
    wrapped = [TIMEOUT_PROGRAM, "-k", str(KILL_AFTER_S), f"{timeout:g}", *argv]
    outcome: dict = {}
    done = threading.Event()

    def call() -> None:
        try:
            outcome["result"] = _exec(endpoint, container, wrapped, user, environment)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc
        finally:
            endpoint.in_flight.release()  # only once dockerd is done with it, late or not
            done.set()

    endpoint.in_flight.acquire()
    # A daemon thread: if the read never returns, it must not keep the process alive.
    try:
        threading.Thread(target=call, name=f"exec-{container.name}", daemon=True).start()
    except BaseException:
        endpoint.in_flight.release()
        raise
    late = ExecTimeoutError(f"{container.name}: no answer within {timeout:g}s ({argv[0]})")
    if not done.wait(timeout + KILL_AFTER_S + HOST_GRACE_S):
        raise late
    if "error" in outcome:
        raise outcome["error"]
    result: ExecResult = outcome["result"]
    if result.exit_code in TIMED_OUT_CODES:
        raise late
    return result
