"""hermes-slots: the in-container entry point (argv only; every value is validated)."""
import argparse
import sys

from .names import require_valid_profile
from .paths import DEFAULT_PROFILE, profile_dir
from .reconcile import reconcile
from .slots import SlotError, adopt, register, supervised_pid, unregister
from .state import write_desired_state, write_planned_stop_marker


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hermes-slots")
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
    desire = sub.add_parser(
        "desire", help="record desired_state (and, for stopped, the planned-stop marker)")
    desire.add_argument("state", choices=["running", "stopped"])
    desire.add_argument("profiles", nargs="+")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "reconcile":
            return reconcile()
        if args.command == "register":
            profile = require_valid_profile(args.profile)
            if profile != DEFAULT_PROFILE and not (profile_dir(profile) / "SOUL.md").is_file():
                print(f"hermes-slots: no profile {profile} (profiles/{profile}/SOUL.md is missing)",
                      file=sys.stderr)
                return 4
            register(profile, start=args.up)
        elif args.command == "adopt":
            adopt(require_valid_profile(args.profile))
        elif args.command == "unregister":
            if not unregister(require_valid_profile(args.profile), timeout_s=args.timeout):
                print(f"hermes-slots: gateway {args.profile} is not registered", file=sys.stderr)
                return 3
        elif args.command == "desire":
            for profile in args.profiles:
                directory = profile_dir(require_valid_profile(profile))
                write_desired_state(directory, args.state)
                pid = supervised_pid(profile) if args.state == "stopped" else None
                if pid:
                    write_planned_stop_marker(directory, pid)
    except (ValueError, SlotError, OSError) as exc:
        print(f"hermes-slots: {exc}", file=sys.stderr)
        return 2
    return 0
