"""hermes-ctl-agent: the container's half of the contract (hermes-contract/v1).

Every answer is JSON on stdout with "schema"; a failure is {"schema", "error": {"code",
"message"}} with the code's exit status (contract.ERROR_EXITS). The queries (`status`,
`profiles`, `facts`, `boot-log`, `health` for Docker's HEALTHCHECK) and `watch` are ours; every hermes-slots verb (operate, register,
unregister, adopt, desire, get-env, set-env, locked, reconcile) is accepted too, with JSON errors.

Started as `python -IS`: the fast path (status) imports os, struct and _json only.
"""
import sys

from . import contract as C


def _print(doc: dict) -> None:
    from .fastjson import dumps
    sys.stdout.write(dumps(doc) + "\n")


def fail(code: str, message: str) -> int:
    _print({"schema": C.SCHEMA, "error": {"code": code, "message": message}})
    return C.ERROR_EXITS[code]


def _number(argv: list[str], option: str, default: int) -> int:
    if option not in argv:
        return default
    i = argv.index(option)
    if i + 1 >= len(argv) or not argv[i + 1].isdigit():
        raise ValueError(f"{option} needs a whole number")
    return int(argv[i + 1])


def tail(argv: list[str]) -> int:
    """tail PROFILE [--lines N] [--follow] [--until-stdin-closes]: print {"pid": N}, then become
    tail(1) on the log (same pid: the host ends a follower with it). With the lifeline option we
    stay, as tail's parent, until our stdin closes (the host went, however it went), then end it;
    tail itself also ends within a second of us (--pid), whatever ended us."""
    import os
    from .names import require_valid_profile
    if not argv:
        return fail("usage", "tail needs a profile")
    profile = require_valid_profile(argv[0])
    path = os.path.join(C.hermes_home(os.environ), C.GATEWAY_LOG.format(profile=profile))
    _print({"schema": C.SCHEMA, "verb": "tail", "pid": os.getpid(), "path": path})
    sys.stdout.flush()
    follow = "--follow" in argv
    command = ["tail", "-n", str(_number(argv, "--lines", 20)), *(["-F"] if follow else []), path]
    if not (follow and C.LIFELINE_OPTION in argv):
        os.execv("/usr/bin/tail", command)
    return _tail_until_stdin_closes([*command[:-1], f"--pid={os.getpid()}", "-s", "1", path])


def _tail_until_stdin_closes(command: list[str]) -> int:
    import os
    import select
    import signal
    child = os.fork()
    if child == 0:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.execv("/usr/bin/tail", command)
    signal.signal(signal.SIGTERM, lambda *_: (os.kill(child, signal.SIGTERM), os._exit(0)))
    while True:
        ready, _, _ = select.select([0], [], [], 1.0)
        if os.waitpid(child, os.WNOHANG)[0] == child:
            return 0
        if ready:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:
                os.kill(child, signal.SIGTERM)
                os.waitpid(child, 0)
                return 0


def end_processes(argv: list[str]) -> int:
    """end-processes PID...: SIGTERM, then SIGKILL after 5 s, to gateway processes only (a pid
    reused by something else since the host looked is left alone). As hermes: hermes' own only."""
    import os
    import time
    from .snapshot import gateway_processes
    wanted = {int(a) for a in argv if a.isdigit()}
    targets = [p["pid"] for p in gateway_processes() if p["pid"] in wanted]
    for sig in (15, 9):
        for pid in targets:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in targets):
            time.sleep(0.1)
    alive = [p for p in targets if os.path.exists(f"/proc/{p}")]
    _print({"schema": C.SCHEMA, "verb": "end-processes", "ended": [p for p in targets if p not in alive],
            "alive": alive, "skipped": sorted(wanted - set(targets))})
    return 0 if not alive else fail("failed", f"still running: {alive}")


def _site_packages() -> None:
    """The agent starts without site (-S: a faster start for `status`); hermes-slots' verbs
    need the venv's packages (python-dotenv, hermes' own .env parser), so add them here."""
    if sys.flags.no_site:
        import site
        site.main()


def main(argv: list[str]) -> int:
    verb, rest = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if verb == "status":
            from .snapshot import status
            _print(status())
        elif verb == "profiles":
            from .queries import profiles
            _print(profiles())
        elif verb == "facts":
            from .queries import facts
            _print(facts())
        elif verb == "boot-log":
            from .queries import boot_log
            _print(boot_log(_number(rest, "--tail", 50)))
        elif verb == "health":
            from .queries import health
            doc, healthy = health()
            _print(doc)
            return 0 if healthy else 1
        elif verb == "serve":
            from .server import serve
            return serve()
        elif verb == "watch":
            from .watcher import run
            return run(lifeline=C.LIFELINE_OPTION in rest)
        elif verb == "tail":
            return tail(rest)
        elif verb == "end-processes":
            return end_processes(rest)
        elif verb == "snapshot-databases":
            _site_packages()  # the venv's sqlite3, as hermes-agent itself uses
            from .dbsnapshot import main as snapshot
            _print({"schema": C.SCHEMA, "verb": verb, **snapshot(rest)})
        elif verb in ("", "-h", "--help"):
            return fail("usage", "verbs: status profiles facts boot-log health watch tail end-processes "
                        "snapshot-databases "
                        "and hermes-slots' (operate register unregister adopt desire get-env set-env locked)")
        else:
            _site_packages()
            from .cli import Failure, dispatch
            try:
                return dispatch(argv)
            except Failure as failure:
                return fail(failure.code, failure.message)
    except ValueError as exc:
        return fail("invalid-name" if str(exc).startswith("invalid profile name") else "usage", str(exc))
    except OSError as exc:
        return fail("failed", str(exc))
    return 0
