# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""hermes-slots: the in-container entry point (argv only; every value is validated)."""
import json
import os
import sys

from . import secretenv
from .envfile import read_env, set_env
from .paths import DEFAULT_PROFILE, all_profiles, profile_dir
from .reconcile import reconcile
from .slots import SlotError, adopt, register, supervised_pid, unregister
from .operations import BUSY_EXIT, Busy, operate_json, run_locked
from .state import write_desired_state, write_planned_stop_marker


LOCK_WAIT_ENSURE_S = 30.0  # another operation on the container (a hermesctl start) finishes first


class Failure(Exception):
    """A request that failed: a contract error code (contract.ERROR_EXITS), a message, and the
    exit code hermes-slots has always used for it."""

    def __init__(self, code: str, message: str, legacy_exit: int):
        super().__init__(message)
        self.code, self.message, self.legacy_exit = code, message, legacy_exit


def main(argv: list[str]) -> int:
    """hermes-slots: the same verbs (contract.VERBS); errors as one line on stderr."""
    try:
        return dispatch(argv)
    except Failure as failure:
        print(f"hermes-slots: {failure.message}", file=sys.stderr)
        return failure.legacy_exit


def dispatch(argv: list[str], answer=None) -> int:
    """Parse and run one verb; a failure raises Failure."""
    from . import contract as C
    from .verbs import parse
    verb = argv[0] if argv else ""
    if verb not in C.VERBS:
        raise Failure("usage", f"unknown verb {verb[:40]!r}", 2)
    try:
        args = parse(verb, argv[1:])
    except ValueError as exc:
        code = "invalid-name" if str(exc).startswith("invalid profile name") else "usage"
        raise Failure(code, str(exc), 2) from None
    return run_verb(verb, args, answer=answer)


def _say(answer, verb: str, **fields) -> None:
    """The verb's answer document (for the agent); hermes-slots at boot prints nothing."""
    if answer is not None:
        from .contract import SCHEMA
        answer({"schema": SCHEMA, "verb": verb, **fields})


def run_verb(verb: str, args: dict, *, answer=None) -> int:
    """Run one parsed verb; `answer` prints its document. A failure raises Failure."""
    try:
        if verb == "reconcile":
            return reconcile()
        if verb == "register":
            profile = args["profile"]
            if profile != DEFAULT_PROFILE and not (profile_dir(profile) / "SOUL.md").is_file():
                raise Failure("not-found", f"no profile {profile} (profiles/{profile}/SOUL.md is missing)", 4)
            register(profile, start=args["up"])
            _say(answer, verb, profile=profile, started=args["up"])
        elif verb == "adopt":
            adopt(args["profile"])
            _say(answer, verb, profile=args["profile"])
        elif verb == "unregister":
            if not unregister(args["profile"], timeout_s=args["timeout"]):
                raise Failure("not-found", f"gateway {args['profile']} is not registered", 3)
            _say(answer, verb, profile=args["profile"])
        elif verb == "get-env":
            envs = {p: {k: v for k, v in read_env(profile_dir(p) / ".env").items() if k in args["keys"]}
                    for p in all_profiles()}
            if answer is None:
                print(json.dumps(envs))
            _say(answer, verb, profiles=envs)
        elif verb == "set-env":
            directory = profile_dir(args["profile"])
            if not directory.is_dir():
                raise Failure("not-found", f"no profile {args['profile']}", 4)
            missing = [k for k in args["keys"] if f"HERMESCTL_ENV_{k}" not in os.environ]
            if missing:
                raise Failure("usage", f"no value for {', '.join(missing)} (HERMESCTL_ENV_<KEY>)", 2)
            values = {k: os.environ[f"HERMESCTL_ENV_{k}"] for k in args["keys"]}
            changed = set_env(directory / ".env", values)
            if answer is None:
                print(json.dumps({"changed": changed}))
            _say(answer, verb, profile=args["profile"], changed=changed)
        elif verb == "load-secrets":
            outcomes = secretenv.load(args["profiles"] or None, check=args["check"])
            if answer is None:
                print(json.dumps(outcomes))
            _say(answer, verb, profiles=outcomes)
        elif verb == "operate":
            text = operate_json(args["action"], args["profiles"], timeout_s=args["timeout"],
                                settle_s=args["settle"], lock_wait_s=args["lock-wait"],
                                wait_ready=args["wait-ready"])
            print(text)
        elif verb == "ensure-slot":
            from .ensure_slot import ensure_slot
            from .operations import container_lock
            from .paths import hermes_home
            root = str(hermes_home())
            if os.path.basename(os.path.dirname(root.rstrip("/"))) == "profiles":  # a profile's own home
                root = os.path.dirname(os.path.dirname(root.rstrip("/")))
            with container_lock(LOCK_WAIT_ENSURE_S):
                profile, registered = ensure_slot(args["argv"], os.environ, root)
            _say(answer, verb, profile=profile, registered=registered)
        elif verb == "locked":
            return run_locked(args["argv"], args["wait"])
        elif verb == "desire":
            for profile in args["profiles"]:
                directory = profile_dir(profile)
                write_desired_state(directory, args["state"])
                pid = supervised_pid(profile) if args["state"] == "stopped" else None
                if pid:
                    write_planned_stop_marker(directory, pid)
            _say(answer, verb, state=args["state"], profiles=args["profiles"])
        else:
            raise Failure("usage", f"{verb} is not a hermes-slots verb", 2)
    except Busy as exc:
        raise Failure("busy", str(exc), BUSY_EXIT) from None
    except ValueError as exc:
        code = "invalid-name" if str(exc).startswith("invalid profile name") else "usage"
        raise Failure(code, str(exc), 2) from None
    except (SlotError, OSError) as exc:
        raise Failure("failed", str(exc), 2) from None
    return 0
