"""hermes-slots: the in-container entry point (argv only; every value is validated)."""
import argparse
import json
import os
import sys

from .names import require_valid_profile
from . import secretenv
from .envfile import read_env, set_env
from .paths import DEFAULT_PROFILE, all_profiles, profile_dir
from .reconcile import reconcile
from .slots import SlotError, adopt, register, supervised_pid, unregister
from .operations import BUSY_EXIT, Busy, operate_json, run_locked
from .state import write_desired_state, write_planned_stop_marker


class Failure(Exception):
    """A request that failed: a contract error code (contract.ERROR_EXITS), a message, and the
    exit code hermes-slots has always used for it."""

    def __init__(self, code: str, message: str, legacy_exit: int):
        super().__init__(message)
        self.code, self.message, self.legacy_exit = code, message, legacy_exit


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise Failure("usage", message, 2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hermes-slots")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("reconcile", help="recreate every gateway slot (container boot)")
    reg = sub.add_parser("register", help="register one gateway slot")
    reg.add_argument("profile")
    reg.add_argument("--up", action="store_true", help="start it now (default: down marker)")
    adopt_cmd = sub.add_parser("adopt", help="re-render an existing slot's scripts")
    adopt_cmd.add_argument("profile")
    unreg = sub.add_parser("unregister", help="stop and remove one gateway slot")
    unreg.add_argument("profile")
    unreg.add_argument("--timeout", type=float, default=10.0)
    get_env = sub.add_parser("get-env", help="print chosen .env keys of every profile as JSON")
    get_env.add_argument("keys", nargs="+")
    put_env = sub.add_parser("set-env", help="set .env keys of a profile; values come from "
                             "HERMESCTL_ENV_<KEY> in the environment (never argv)")
    put_env.add_argument("profile")
    put_env.add_argument("keys", nargs="+")
    secrets = sub.add_parser("load-secrets", help="write swarm secrets (/run/secrets/hermes-env.P.KEY) "
                             "into the profiles' .env; prints outcomes per key as JSON, never a value")
    secrets.add_argument("profiles", nargs="*", help="only these profiles (default: every one)")
    secrets.add_argument("--check", action="store_true", help="compare only, write nothing")
    desire = sub.add_parser(
        "desire", help="record desired_state (and, for stopped, the planned-stop marker)")
    desire.add_argument("state", choices=["running", "stopped"])
    desire.add_argument("profiles", nargs="+")
    op = sub.add_parser("operate", help="start/stop/restart gateways under the container's lock; "
                        "prints what each was before and after (JSON)")
    op.add_argument("verb", choices=["start", "stop", "restart"])
    op.add_argument("profiles", nargs="+")
    op.add_argument("--timeout", type=float, default=20.0, help="wait for the change, seconds")
    op.add_argument("--settle", type=float, default=0.0, help="a started gateway must stay up this long")
    op.add_argument("--lock-wait", type=float, default=60.0, help="wait for another operation, seconds")
    locked = sub.add_parser("locked", help="run a command (argv, no shell) under the container's lock")
    locked.add_argument("--wait", type=float, default=60.0)
    locked.add_argument("argv", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str]) -> int:
    """hermes-slots: errors as one line on stderr."""
    try:
        return dispatch(argv)
    except Failure as failure:
        print(f"hermes-slots: {failure.message}", file=sys.stderr)
        return failure.legacy_exit


def dispatch(argv: list[str]) -> int:
    """Run one verb; a failure raises Failure (the agent prints it as JSON)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "reconcile":
            return reconcile()
        if args.command == "register":
            profile = require_valid_profile(args.profile)
            if profile != DEFAULT_PROFILE and not (profile_dir(profile) / "SOUL.md").is_file():
                raise Failure("not-found", f"no profile {profile} (profiles/{profile}/SOUL.md is missing)", 4)
            register(profile, start=args.up)
        elif args.command == "adopt":
            adopt(require_valid_profile(args.profile))
        elif args.command == "unregister":
            if not unregister(require_valid_profile(args.profile), timeout_s=args.timeout):
                raise Failure("not-found", f"gateway {args.profile} is not registered", 3)
        elif args.command == "get-env":
            print(json.dumps({p: {k: v for k, v in read_env(profile_dir(p) / ".env").items() if k in args.keys}
                              for p in all_profiles()}))
        elif args.command == "set-env":
            directory = profile_dir(require_valid_profile(args.profile))
            if not directory.is_dir():
                raise Failure("not-found", f"no profile {args.profile}", 4)
            missing = [k for k in args.keys if f"HERMESCTL_ENV_{k}" not in os.environ]
            if missing:
                raise Failure("usage", f"no value for {', '.join(missing)} (HERMESCTL_ENV_<KEY>)", 2)
            values = {k: os.environ[f"HERMESCTL_ENV_{k}"] for k in args.keys}
            print(json.dumps({"changed": set_env(directory / ".env", values)}))
        elif args.command == "load-secrets":
            wanted = [require_valid_profile(p) for p in args.profiles] or None
            print(json.dumps(secretenv.load(wanted, check=args.check)))
        elif args.command == "operate":
            print(operate_json(args.verb, args.profiles, timeout_s=args.timeout, settle_s=args.settle,
                               lock_wait_s=args.lock_wait))
        elif args.command == "locked":
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                raise Failure("usage", "locked needs a command", 2)
            return run_locked(command, args.wait)
        elif args.command == "desire":
            for profile in args.profiles:
                directory = profile_dir(require_valid_profile(profile))
                write_desired_state(directory, args.state)
                pid = supervised_pid(profile) if args.state == "stopped" else None
                if pid:
                    write_planned_stop_marker(directory, pid)
    except Busy as exc:
        raise Failure("busy", str(exc), BUSY_EXIT) from None
    except ValueError as exc:
        code = "invalid-name" if str(exc).startswith("invalid profile name") else "usage"
        raise Failure(code, str(exc), 2) from None
    except (SlotError, OSError) as exc:
        raise Failure("failed", str(exc), 2) from None
    return 0
