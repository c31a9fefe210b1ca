# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""The agent's other questions: `profiles`, `facts` (for hermesctl doctor) and `boot-log`."""
import os

from . import contract as C
from .snapshot import home, read_small, slot_names, status


def profiles() -> dict:
    """Every directory under profiles/: SOUL.md present, readable by hermes, slot registered."""
    root = f"{home()}/{C.PROFILES_DIR}"
    registered = set(slot_names())
    found = []
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        entries = []
    for name in entries:
        path = f"{root}/{name}"
        if name.startswith(".") or os.path.islink(path) or not os.path.isdir(path):
            continue
        readable = os.access(path, os.R_OK | os.X_OK)
        found.append({"name": name, "readable": readable,
                      "has_soul": readable and os.path.isfile(f"{path}/{C.SOUL_FILE}"),
                      "registered": name in registered})
    return {"schema": C.SCHEMA, "verb": "profiles", "profiles": found}


def _ownership() -> dict:
    """The boot's ownership repair, as a dry run (what it would change)."""
    import pwd
    from hermes_root.ownership import repair
    user = pwd.getpwnam("hermes")
    report = repair(home(), user.pw_uid, user.pw_gid, dry_run=True)
    return {"misowned": report.misowned[:50], "misowned_count": len(report.misowned),
            "refused": report.refused[:50]}


def facts() -> dict:
    """What hermesctl doctor checks, with the status it judges gateways by (one exec)."""
    try:
        ownership = _ownership()
    except (OSError, KeyError) as exc:
        ownership = {"error": str(exc), "misowned": [], "misowned_count": 0, "refused": []}
    from .layout import problems
    return {"schema": C.SCHEMA, "verb": "facts",
            "command_dir": os.access(f"{C.S6_DIR}/s6-svc", os.X_OK),
            "layout": problems(home()),
            "ownership": ownership,
            "profiles": profiles()["profiles"],
            "status": status()}


def parse_boot_line(line: str) -> dict | None:
    """`<iso time> profile=coder prior_state=running action=started` -> {"time": ..., fields}."""
    time, _, rest = line.strip().partition(" ")
    fields = dict(part.split("=", 1) for part in rest.split() if "=" in part)
    if "profile" not in fields:
        return None
    return {"time": time, **fields}


def boot_log(lines: int) -> dict:
    raw = read_small(f"{home()}/{C.BOOT_LOG}", 1 << 20) or b""
    text = raw.decode("utf-8", "replace").splitlines()[-lines:] if lines > 0 else []
    return {"schema": C.SCHEMA, "verb": "boot-log",
            "entries": [e for e in map(parse_boot_line, text) if e]}


def health() -> tuple[dict, bool]:
    """Docker's HEALTHCHECK: s6 is PID 1, the boot has finished, and no gateway that is wanted
    up is stuck down, parked or unsupervised (one stopped on purpose, desired_state=stopped, is
    fine)."""
    doc = status()
    problems = []
    if doc["pid1"] != C.PID1_NAME:
        problems.append(f"{C.PID1_NAME} is not PID 1")
    elif not doc["booted"]:
        problems.append("boot has not finished")
    for profile, slot in doc["slots"].items():
        s = slot["status"]
        desired = (slot["gateway_state"] or {}).get("desired_state")
        if s is None:
            problems.append(f"{profile}:no-supervisor")
        elif not s["up"] and s["wanted_up"]:
            problems.append(f"{profile}:down-but-wanted-up")
        elif not s["up"] and s["exit_code"] == C.FATAL_CONFIG_EXIT and desired != "stopped":
            problems.append(f"{profile}:parked-exit-{C.FATAL_CONFIG_EXIT}")
    return {"schema": C.SCHEMA, "verb": "health", "healthy": not problems, "problems": problems}, not problems
