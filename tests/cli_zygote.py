"""Run `python -m hermesctl` for the tests without paying Python's start-up and imports each time.

Most of the suite's CPU goes to containers and to the CLI the tests run as users would (hundreds of
calls per run, each ~0.2 s of interpreter start and imports before any work). This process (one per
pytest worker) imports hermesctl and its dependencies once, then forks a child per call; the child
takes the call's argv, environment, working directory, umask, stdin (/dev/null) and output files and runs
the same entry point `python -m hermesctl` runs (hermesctl.__main__.entry, which ends the process
with os._exit). Only what happens before that entry point is shared; everything the command does,
including its exit code and its signal handling, happens in its own process.

Not for what depends on interpreter start-up itself (import counts, Ctrl-C during start-up, the
installed launcher): those tests start their own processes. Calls whose environment changes how
Python starts (PYTHON*, locale variables) are run as plain subprocesses by the caller (conftest).

Protocol, one JSON document per line: requests on stdin {"id", "args", "env", "cwd", "stdout",
"stderr", "umask" (optional)}; answers on the stdout this process was started with, {"id", "pid"} once forked and
{"id", "status"} when the child ended (its exit code, or minus the signal that ended it).
"""
import json
import os
import select
import sys


def _child(request: dict, reply_fd: int) -> None:
    try:
        os.close(reply_fd)
        os.chdir(request["cwd"])
        if "umask" in request:  # the caller's, as a subprocess of it would have
            os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        sys.path[0] = os.getcwd()  # what `python -m` puts first, for any import the command makes
        import hermesctl.__main__ as main
        sys.argv = [main.__file__, *request["args"]]
        main.entry()  # ends with os._exit(status)
    finally:
        os._exit(70)


def serve() -> None:
    # Answers go to a private copy of our stdout; fd 1 itself becomes /dev/null, so nothing a
    # child or an import prints can mix into them.
    reply_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    # Everything `python -m hermesctl` would import for any command, imported once here (from
    # where `python -m` run in the repository imports, not from tests/).
    sys.path[0] = os.getcwd()
    import hermesctl.__main__  # noqa: F401
    import hermesctl.cli.app  # noqa: F401
    import hermesctl.cli.quick_ps  # noqa: F401
    import hermesctl.cli.quick_read  # noqa: F401
    import hermesctl.cli.reads  # noqa: F401
    import hermesctl.backends.docker.backend  # noqa: F401
    import hermesctl.backends.swarm.backend  # noqa: F401

    def answer(doc: dict) -> None:
        os.write(reply_fd, (json.dumps(doc) + "\n").encode())

    running: dict[int, str] = {}
    pending = b""
    stdin_fd = sys.stdin.fileno()
    open_input = True
    while open_input or running:
        readable, _, _ = select.select([stdin_fd] if open_input else [], [], [], 0.005 if running else None)
        if readable:
            chunk = os.read(stdin_fd, 65536)
            if not chunk:
                open_input = False
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    os.close(stdin_fd)
                    _child(request, reply_fd)
                running[pid] = request["id"]
                answer({"id": request["id"], "pid": pid})
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in running:
                answer({"id": running.pop(pid), "status": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    serve()
