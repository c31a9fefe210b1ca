"""hermesctl exec CONTAINER -- CMD...: run a command as hermes; a TTY when interactive."""
import os
import shutil
import sys

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core.errors import UsageError
from hermesctl.model.targets import Target
from hermesctl.render.output import Output


def exec_command(out: Output, fleet: Fleet, target: Target, argv: list[str], *,
                 interactive: bool | None) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("nothing to run: hermesctl exec CONTAINER -- CMD...")
    if target.profile is not None:
        raise UsageError(f"{target}: exec takes a container, not a gateway")
    container = fleet.one(target)
    endpoint = fleet.endpoint(container.endpoint)
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive and shutil.which("docker"):
        # A real TTY with resizing and raw mode is the docker CLI's job; hand over to it, with
        # the flags that reach the same endpoint (--context NAME, or -H URL and the TLS flags).
        os.execvp("docker", ["docker", *endpoint.cli_args, "exec", "-it", "--user", "hermes",
                             container.id, *argv])
    result = fleet.run(container, argv)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.exit_code
