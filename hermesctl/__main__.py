"""`python -m hermesctl` and the `hermesctl` script. SIGINT is taken over before anything slow
is imported, and the process ends with os._exit so that threads blocked on a container that does
not answer never hold it up (see hermesctl.core.interrupt)."""
import sys

from hermesctl.core import interrupt


def entry() -> None:
    status = interrupt.INTERRUPTED
    try:
        try:
            interrupt.install()  # a Ctrl-C that came during start-up is raised here
            from hermesctl.cli import quick_ps
            served = quick_ps.run(sys.argv[1:])  # `ps` answered by a running serve, before typer
            if served is not None:
                interrupt.hard_exit(served)
            from hermesctl.cli import quick_read
            answered = quick_read.run(sys.argv[1:])  # the read commands, on local sockets, before typer
            if answered is not None:
                interrupt.hard_exit(answered)
            from hermesctl.cli.app import main
            main()
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except KeyboardInterrupt:
            status = interrupt.INTERRUPTED
    except KeyboardInterrupt:  # Ctrl-C while the first outcome was being handled
        status = interrupt.INTERRUPTED
    interrupt.hard_exit(status)


if __name__ == "__main__":
    entry()
