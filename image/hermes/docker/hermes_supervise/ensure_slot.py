# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""`ensure-slot`: before `hermes … gateway start` in the container, the slot of the profile that
command line names, registered down when it has none and the reconciler's rule allows it
(names.slot_refusal). hermes-agent 0.19.0's own start under s6 (`hermes_cli.gateway.
_dispatch_via_service_manager_if_s6`) only runs `s6-svc -u` on an existing slot, and says `no
such gateway` for a profile installed, copied in or created on a bind-mounted home since the
boot; upstream later registers it first when the profile has SOUL.md (NousResearch/hermes-agent
#112300). Our `/opt/hermes/bin/hermes` wrapper runs this verb first, then upstream's start.

The profile is found as hermes' `_apply_profile_override` finds it: `-p NAME`, `--profile NAME`
or `--profile=NAME` (before `--`; the values of hermes' value options skipped), else a
HERMES_HOME of `<root>/profiles/NAME`, else the root's `active_profile`. A mistake here can only
register, down, the slot of a profile that qualifies for one: what the next boot does anyway.
"""
import os

from . import contract as C
from .names import is_valid_profile, slot_refusal

# hermes' own options that take a value (hermes_cli.main._apply_profile_override): skipped, so
# `-m -p` is a model named -p, not a profile option.
_VALUE_OPTIONS = {"-z", "--oneshot", "-m", "--model", "--provider", "-t", "--toolsets", "-r", "--resume",
                  "-s", "--skills", "--usage-file"}
_OPTIONAL_VALUE_OPTIONS = {"-c", "--continue"}
ACTIVE_PROFILE_MAX = 256


def _positionals(argv: list[str]) -> list[str]:
    words, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg in ("-p", "--profile") or ("=" not in arg and arg in _VALUE_OPTIONS):
            i += 2
            continue
        if "=" not in arg and arg in _OPTIONAL_VALUE_OPTIONS and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            i += 2
            continue
        if not arg.startswith("-"):
            words.append(arg)
        i += 1
    return words


def is_gateway_start(argv: list[str]) -> bool:
    """`hermes [options] gateway start [options]` for one profile (not `--all`)."""
    return _positionals(argv)[:2] == ["gateway", "start"] and "--all" not in argv


def profile_of(argv: list[str], environ, root: str) -> str | None:
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg in ("-p", "--profile") and i + 1 < len(argv):
            if is_valid_profile(argv[i + 1]):
                return argv[i + 1]
            break  # hermes ignores an invalid one, and looks no further on the line
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
        if "=" not in arg and arg in _VALUE_OPTIONS:
            i += 2
        elif "=" not in arg and arg in _OPTIONAL_VALUE_OPTIONS and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            i += 2
        else:
            i += 1
    home = environ.get(C.HOME_ENV, "")
    if home and os.path.basename(os.path.dirname(home.rstrip("/"))) == C.PROFILES_DIR:
        return os.path.basename(home.rstrip("/"))
    if environ.get("HERMES_S6_SUPERVISED_CHILD"):
        return C.DEFAULT_PROFILE
    try:  # hermes' own file: bounded, never through a symlink
        fd = os.open(f"{root}/active_profile", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            name = os.read(fd, ACTIVE_PROFILE_MAX).decode("utf-8", "replace").strip()
        finally:
            os.close(fd)
    except OSError:
        return C.DEFAULT_PROFILE
    return name or C.DEFAULT_PROFILE


def under_s6() -> bool:
    """s6-svscan is PID 1 and the scan directory exists, as hermes itself decides that it runs
    under s6 (`/proc/1/comm` and `/run/s6/basedir`): otherwise (`--entrypoint hermes`) nothing
    would supervise a slot, and hermes does not dispatch to s6 either."""
    try:
        with open("/proc/1/comm", "rb") as f:
            comm = f.read(64).strip()
    except OSError:
        return False
    return comm == C.PID1_NAME.encode() and os.path.isdir("/run/s6/basedir") and os.path.isdir(C.SCANDIR)


def ensure_slot(argv: list[str], environ, root: str) -> tuple[str | None, bool]:
    """(the profile that `argv` starts, whether its slot was registered now). The caller holds
    the container's operation lock."""
    if not is_gateway_start(argv) or not under_s6():
        return None, False
    profile = profile_of(argv, environ, root)
    if profile is None or profile == C.DEFAULT_PROFILE or slot_refusal(root, profile) is not None:
        return profile, False
    from .operations import register_missing
    return profile, bool(register_missing([profile]))
