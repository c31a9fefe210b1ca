# Runs as hermes: the agent's dispatch (hermes-ctl-agent), as hermes only.
"""hermes-ctl-agent: the container's half of the contract (hermes-contract/v1).

Every answer is JSON on stdout with "schema"; a failure is {"schema", "error": {"code",
"message"}} with the code's exit status (contract.ERROR_EXITS). The verbs and their arguments
are one table, contract.VERBS: parsed by hermes_supervise.verbs, dispatched by HANDLERS here.

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


def tail(args: dict) -> int:
    """tail PROFILE [--lines N] [--follow] [--until-stdin-closes]: print {"pid": N}, then become
    tail(1) on the log (same pid: the host ends a follower with it). With the lifeline option we
    stay, as tail's parent, until our stdin closes (the host went, however it went), then end it;
    tail itself also ends within a second of us (--pid), whatever ended us."""
    import os
    path = os.path.join(C.hermes_home(os.environ), C.GATEWAY_LOG.format(profile=args["profile"]))
    _print({"schema": C.SCHEMA, "verb": "tail", "pid": os.getpid(), "path": path})
    sys.stdout.flush()
    follow = args["follow"]
    command = ["tail", "-n", str(args["lines"]), *(["-F"] if follow else []), path]
    if not (follow and args["until-stdin-closes"]):
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


def end_processes(args: dict) -> int:
    """end-processes PID...: SIGTERM, then SIGKILL after 5 s, to gateway processes only (a pid
    reused by something else since the host looked is left alone). As hermes: hermes' own only."""
    import os
    import time
    from .snapshot import gateway_processes
    wanted = set(args["pids"])
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


def _query(name: str):
    def run(args: dict) -> int:
        from . import queries
        _print(getattr(queries, name)())
        return 0
    return run


def _facts(args: dict) -> int:
    import os
    from .queries import facts
    doc = facts()
    key = os.environ.get(C.TOKEN_KEY_ENV)
    if key is not None:  # the host compares tokens across its fleet (one token, one gateway)
        try:
            raw = bytes.fromhex(key)
        except ValueError:
            return fail("usage", f"{C.TOKEN_KEY_ENV} must be hex")
        if len(raw) < 16:
            return fail("usage", f"{C.TOKEN_KEY_ENV} must hold at least 16 bytes")
        _site_packages()  # python-dotenv: each .env read as hermes reads it
        from .paths import all_profiles
        from .serving import token_hashes
        doc["platform_tokens"] = token_hashes(all_profiles(), raw)
    _print(doc)
    return 0


def _serving(args: dict) -> int:
    _site_packages()  # python-dotenv: each .env read as hermes reads it
    from .paths import all_profiles
    from .serving import serving
    _print(serving(args["profiles"] or all_profiles(), args["prompt"], args["timeout"]))
    return 0


def _boot_log(args: dict) -> int:
    from .queries import boot_log
    _print(boot_log(args["tail"]))
    return 0


def _usage(args: dict) -> int:
    import time
    from .paths import profile_entries
    from .usage import usage
    if args["window"] is not None:
        cutoff = time.time() - args["window"]  # back from the container's clock, as `hermes insights --days`
    else:
        cutoff = args["since"] or 0.0
    profiles, skipped = (args["profiles"], {}) if args["profiles"] else profile_entries()
    from .fastjson import dumps
    sys.stdout.write(dumps(usage(profiles, cutoff, skipped), strict=True) + "\n")
    return 0


def _usage_watch(args: dict) -> int:
    from .usage_watch import run
    return run(["--interval", repr(args["interval"]), *([C.LIFELINE_OPTION] if args["until-stdin-closes"] else [])])


def _health(args: dict) -> int:
    from .queries import health
    doc, healthy = health()
    _print(doc)
    return 0 if healthy else 1


def _serve(args: dict) -> int:
    from .server import serve
    return serve()


def _watch(args: dict) -> int:
    from .watcher import run
    return run(lifeline=args["until-stdin-closes"])


def _snapshot_databases(args: dict) -> int:
    _site_packages()  # the venv's sqlite3, as hermes-agent itself uses
    from .dbsnapshot import main as snapshot
    _print({"schema": C.SCHEMA, "verb": "snapshot-databases", **snapshot([args["directory"]])})
    return 0


def _owner_ids(args: dict) -> int:
    import os
    from .owners import OwnerError, owner_ids
    try:
        ids = owner_ids(os.environ)
    except OwnerError as exc:
        return fail(exc.code, str(exc))
    _print({"schema": C.SCHEMA, "verb": "owner-ids", **ids})
    return 0


def _agent_config(args: dict) -> int:
    import os
    _site_packages()  # hermes-agent's own hermes_cli.config and PyYAML, from the image's venv
    from .agentconfig import agent_config
    _print(agent_config(os.environ))
    return 0


def _write_soul(args: dict) -> int:
    import os
    from .agentconfig import write_soul
    from .operations import Busy, container_lock
    try:  # apply runs it under `locked`, which holds the lock already (container_lock sees that)
        with container_lock(60.0):
            doc = write_soul(args["profile"], os.environ)
    except FileNotFoundError as exc:
        return fail("not-found", str(exc))
    except Busy as exc:
        return fail("busy", str(exc))
    _print(doc)
    return 0


def _write_skill(args: dict) -> int:
    import os
    from .agentconfig import write_skill
    from .operations import Busy, container_lock
    try:
        with container_lock(60.0):
            doc = write_skill(args["profile"], args["name"], os.environ)
    except FileNotFoundError as exc:
        return fail("not-found", str(exc))
    except Busy as exc:
        return fail("busy", str(exc))
    _print(doc)
    return 0


def _config_set(args: dict) -> int:
    import os
    from .agentconfig import config_set
    try:
        doc = config_set(args["profile"], args["keys"], os.environ)
    except (RuntimeError, OSError) as exc:  # OSError: the record (a symlinked profile)
        return fail("failed", str(exc))
    _print(doc)
    return 0


def _config_unset(args: dict) -> int:
    import os
    from .agentconfig import config_unset
    try:
        doc = config_unset(args["profile"], args["key"], os.environ)
    except FileNotFoundError as exc:
        return fail("not-found", str(exc))
    except ValueError as exc:
        return fail("usage", str(exc))
    except RuntimeError as exc:
        return fail("failed", str(exc))
    _print(doc)
    return 0


def _remove_skill(args: dict) -> int:
    from .agentconfig import remove_skill
    from .operations import Busy, container_lock
    try:
        with container_lock(60.0):
            doc = remove_skill(args["profile"], args["name"])
    except FileNotFoundError as exc:
        return fail("not-found", str(exc))
    except ValueError as exc:
        return fail("usage", str(exc))
    except Busy as exc:
        return fail("busy", str(exc))
    _print(doc)
    return 0


def _slots(verb: str):
    """hermes-slots' verbs (hermes_supervise.cli): they need the venv's packages."""
    def run(args: dict) -> int:
        _site_packages()
        from .cli import Failure, run_verb
        try:
            return run_verb(verb, args, answer=_print)
        except Failure as failure:
            return fail(failure.code, failure.message)
    return run


# verb -> handler(parsed args); the verbs and their arguments are contract.VERBS.
HANDLERS = {
    "profiles": _query("profiles"), "facts": _facts, "serving": _serving, "boot-log": _boot_log, "health": _health,
    "serve": _serve, "watch": _watch, "tail": tail, "end-processes": end_processes,
    "snapshot-databases": _snapshot_databases, "usage": _usage, "usage-watch": _usage_watch,
    "owner-ids": _owner_ids, "agent-config": _agent_config, "write-soul": _write_soul,
    "config-set": _config_set, "write-skill": _write_skill, "config-unset": _config_unset,
    "remove-skill": _remove_skill,
    **{verb: _slots(verb) for verb in ("operate", "register", "unregister", "adopt", "desire", "get-env",
                                       "set-env", "load-secrets", "locked", "reconcile", "ensure-slot")},
}


def main(argv: list[str]) -> int:
    verb, rest = (argv[0], argv[1:]) if argv else ("", [])
    if verb == "status" and not rest:  # the fast path: nothing to parse, nothing else imported
        from .snapshot import status
        _print(status())
        return 0
    if verb not in C.VERBS:
        return fail("usage", f"unknown verb {verb[:40]!r}; verbs: {' '.join(C.VERBS)}" if verb
                    else f"verbs: {' '.join(C.VERBS)}")
    try:
        from .verbs import parse
        args = parse(verb, rest)
        if verb == "status":
            from .snapshot import status
            _print(status())
            return 0
        return HANDLERS[verb](args)
    except ValueError as exc:
        return fail("invalid-name" if str(exc).startswith("invalid profile name") else "usage", str(exc))
    except OSError as exc:
        return fail("failed", str(exc))
