"""Every exit code hermesctl uses, in one place (documented in README and `hermesctl --help`)."""
from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILED = 1              # an operation failed on at least one target
    USAGE = 2               # malformed target, bad option, invalid fleet file
    NOT_RUNNING = 3         # status/ps: some targeted gateway is not up (as systemctl is-active)
    NOT_FOUND = 4           # no such container, profile or gateway; a target matching nothing
    CONTAINER_STOPPED = 5   # the container exists but is not running
    INVALID_NAME = 6        # a profile name that is unsafe (path escape, shell metacharacters)
    PARTIAL = 7             # some endpoints did not answer; the rest of the answer is shown
    NOT_HERMES = 8          # the container is not a Hermes container (no label)
    CONTAINER_RUNNING = 9   # restore: the target is running (stop it, or --force)
    DAEMON_UNREACHABLE = 69  # the Docker daemon / endpoint does not answer (sysexits EX_UNAVAILABLE)
    INTERRUPTED = 130       # Ctrl-C
