"""One exception hierarchy; each error knows its exit status and prints as one line."""
from hermesctl.core.exit_codes import ExitStatus


class HermesctlError(Exception):
    status = ExitStatus.FAILED

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(HermesctlError):
    status = ExitStatus.USAGE


class NotFoundError(HermesctlError):
    status = ExitStatus.NOT_FOUND


class ContainerStoppedError(HermesctlError):
    status = ExitStatus.CONTAINER_STOPPED


class InvalidNameError(HermesctlError):
    status = ExitStatus.INVALID_NAME


class NotHermesError(HermesctlError):
    status = ExitStatus.NOT_HERMES


class ContainerRunningError(HermesctlError):
    status = ExitStatus.CONTAINER_RUNNING


class DaemonUnreachableError(HermesctlError):
    status = ExitStatus.DAEMON_UNREACHABLE


class ExecError(HermesctlError):
    """A command inside a container failed in a way the caller did not expect."""


class FleetFileError(UsageError):
    """A fleet file that does not validate; the message names the file and line."""


def describe(exc: BaseException) -> str:
    """One line for any exception: ours carry a message; others are cut to their first line."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0]


class UnansweredError(HermesctlError):
    """What was asked about exists but could not be answered for (its node is down, its task
    has no node yet): the answer is partial."""
    status = ExitStatus.PARTIAL


class ExecTimeoutError(HermesctlError):
    """A command inside a container did not finish before its deadline (it was killed)."""
