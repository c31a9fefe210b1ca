# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""What this container is for, as the reconciler decides it (hermes-agent 0.19.0's rules, read
from the CMD that /init saved in /run/s6/container-argv, plus our own opt-out variable).

- `dashboard` as the CMD (`docker run IMAGE dashboard`): a dashboard-only container; it never
  runs gateways, which belong to the gateway container sharing its volume.
- HERMES_RECONCILE_GATEWAYS=0 (ours): any other second container on the same volume (an API
  server, a shell) opts out the same way, so a gateway never runs twice.
- `gateway run` as the CMD with no state yet: the pre-s6 way of running the gateway; the default
  gateway's intent is seeded as running (unless --no-supervise or HERMES_GATEWAY_NO_SUPERVISE).
- GATEWAY_MULTIPLEX_PROFILES truthy: the default gateway serves every profile, so named slots are
  registered but never started at boot.
"""
import os
from pathlib import Path

ARGV_FILE = Path("/run/s6/container-argv")
WRAPPER = "main-wrapper.sh"
TRUTHY = {"1", "true", "yes", "on"}
FALSY = {"0", "false", "no", "off"}


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUTHY


def container_args(path: Path = ARGV_FILE) -> list[str]:
    """The CMD's arguments after the main wrapper, without a leading `hermes`."""
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    args = [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]
    for i, arg in enumerate(args):
        if arg.endswith(WRAPPER):
            args = args[i + 1:]
            break
    if args and os.path.basename(args[0]) == "hermes":
        args = args[1:]
    return args


def skip_reason(args: list[str]) -> str | None:
    """Why this container runs no gateways at all, or None."""
    if args and args[0] == "dashboard":
        return "dashboard-container"
    if (os.environ.get("HERMES_RECONCILE_GATEWAYS") or "").strip().lower() in FALSY:
        return "HERMES_RECONCILE_GATEWAYS=0"
    return None


def legacy_gateway_run(args: list[str]) -> bool:
    if truthy(os.environ.get("HERMES_GATEWAY_NO_SUPERVISE")):
        return False
    return args[:2] == ["gateway", "run"] and "--no-supervise" not in args


def multiplex() -> bool:
    return truthy(os.environ.get("GATEWAY_MULTIPLEX_PROFILES"))
