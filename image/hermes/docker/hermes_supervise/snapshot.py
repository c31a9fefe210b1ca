# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""The `status` answer: every gateway slot of the container, the boot, PID 1 and the gateway
processes, as one JSON-ready dict (hermes-contract/v1). Facts only; the host judges them
(crash loop, parked, orphaned), so both ends agree on what was seen.

On the agent's fast path: imports nothing beyond os, struct and the stdlib JSON scanner.
"""
import os
import time

from . import contract as C
from .s6state import parse_deaths, parse_status, read_small, supervised


def home() -> str:
    return C.hermes_home(os.environ)


def profile_path(profile: str) -> str:
    return C.profile_path(home(), profile)


def slot_path(profile: str) -> str:
    return C.slot_path(profile)


def slot_names() -> list[str]:
    """Profiles with a slot in the scan directory (dot names are s6-svscan's to ignore)."""
    try:
        names = os.listdir(C.SCANDIR)
    except OSError:
        return []
    return sorted(n[len(C.SLOT_PREFIX):] for n in names
                  if n.startswith(C.SLOT_PREFIX) and os.path.isdir(f"{C.SCANDIR}/{n}"))


def load_json_object(raw: bytes | None) -> tuple[dict | None, bool]:
    """(object, corrupt): a file that is not a JSON object is corrupt, never trusted further."""
    if raw is None or not raw.strip():
        return None, False
    from .fastjson import loads
    try:
        data = loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None, True
    return (data, False) if isinstance(data, dict) else (None, True)


def parse_operations(raw: bytes | None) -> list[dict]:
    """`FROM UNTIL ACTION` lines (hermes-writable: anything else is skipped)."""
    ops = []
    for line in (raw or b"")[:2048].decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isalpha() or not parts[2].islower() or len(parts[2]) > 16:
            continue
        try:
            start, until = float(parts[0]), float(parts[1])
        except ValueError:
            continue
        ops.append({"start": start, "until": until, "action": parts[2]})
    return ops


def slot(profile: str, now: float) -> dict:
    service = slot_path(profile)
    is_supervised = supervised(service)
    status = None
    if is_supervised:
        status = parse_status(read_small(service + "/supervise/status"), now,
                              normally_up=not os.path.exists(service + "/down"))
    state, corrupt = load_json_object(read_small(f"{profile_path(profile)}/{C.STATE_FILE}"))
    return {
        "profile": profile,
        "supervised": status is not None,
        "status": status,
        "deaths": parse_deaths(read_small(service + "/supervise/death_tally"), C.DEATHS_KEPT)
        if is_supervised else [],
        "gateway_state": state,
        "gateway_state_corrupt": corrupt,
        "operations": parse_operations(read_small(f"{home()}/{C.CONTROL_DIR}/{C.OPERATIONS_DIR}/{profile}")),
    }


def gateway_processes() -> list[dict]:
    """Every `hermes [-p P] gateway run` process, supervised or not: pid, ppid, profile, and
    `supervisor`, the service its parent s6-supervise runs (None for any other parent). The
    parent, not the slot's pid in svstat, says whether a process is supervised: svstat is read
    at another moment, and a restart in between would make the new gateway look orphaned."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        raw = read_small(f"/proc/{entry}/cmdline", 8192)
        if not raw or b"gateway\0run" not in raw:
            continue
        args = raw.decode("utf-8", "replace").split("\0")
        if not _is_gateway_run(args):
            continue
        stat = read_small(f"/proc/{entry}/stat", 4096)
        if not stat:
            continue
        try:
            ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        except (IndexError, ValueError):
            continue
        found.append({"pid": int(entry), "ppid": ppid, "profile": _profile_of(args),
                      "supervisor": _supervised_service(ppid)})
    return sorted(found, key=lambda p: p["pid"])


def _supervised_service(pid: int) -> str | None:
    """The service directory name when `pid` is `s6-supervise NAME`, else None."""
    raw = read_small(f"/proc/{pid}/cmdline", 4096)
    args = raw.decode("utf-8", "replace").split("\0") if raw else []
    if len(args) >= 2 and os.path.basename(args[0]) == "s6-supervise":
        return args[1]
    return None


def _is_gateway_run(args: list[str]) -> bool:
    """hermes itself running `gateway run`: `[python] .../hermes [-p P] gateway run ...`. Not a
    process that merely carries those words (stage 2's shell, `sh -c 'hermes gateway run'`)."""
    if args and os.path.basename(args[0]).startswith("python"):
        args = args[1:]
    if not args or os.path.basename(args[0]) != "hermes":
        return False
    i = 1
    while i < len(args):
        if args[i] in ("-p", "--profile"):
            i += 2
        elif args[i].startswith("--profile="):
            i += 1
        else:
            break
    return args[i:i + 2] == ["gateway", "run"]


def _profile_of(args: list[str]) -> str:
    for i, arg in enumerate(args):
        if arg in ("-p", "--profile") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
    return C.DEFAULT_PROFILE


def pid1() -> str:
    raw = read_small("/proc/1/comm", 256)
    return raw.decode("utf-8", "replace").strip() if raw else ""


def unslotted(slotted) -> list[str]:
    """Profiles that would get a slot (names.slot_refusal: the reconciler's rule) but have none
    yet: made by `hermes profile install`, copied in, or on a bind-mounted home since the boot.
    `ps` lists them (`no slot`) and `gateway start` registers them. profiles/ is hermes' own:
    at most UNSLOTTED_SCAN entries are looked at, the rule is imported only when one is found."""
    found = []
    try:
        with os.scandir(f"{home()}/{C.PROFILES_DIR}") as entries:
            for i, entry in enumerate(entries):
                if i >= C.UNSLOTTED_SCAN:
                    break
                if not entry.name.startswith(".") and entry.name not in slotted:
                    found.append(entry.name)
    except OSError:
        return []
    if not found:
        return []
    from .names import slot_refusal
    return sorted(n for n in found if slot_refusal(home(), n) is None)


def status() -> dict:
    now = time.time()
    names = slot_names()
    return {
        "schema": C.SCHEMA, "verb": "status", "now": round(now, 3),
        "pid1": pid1(), "booted": os.path.exists(C.BOOTED_MARKER),
        "slots": {p: slot(p, now) for p in names},
        "processes": gateway_processes(),
        "unslotted": unslotted(set(names)),
    }
