"""The host<->container contract, in one place: both halves import these constants.

Inside the container this is hermes_supervise.contract; on the host it is hermesctl.contract (a
symlink to this file). Stdlib-free on purpose: the in-container agent imports it on its fast path,
where every millisecond of Python start counts, and the host imports it before typer or docker.
"""

SCHEMA = "hermes-contract/v1"  # every answer of the agent carries it; fields only ever added

# Programs in the image (argv[0] of every exec hermesctl makes; never a shell script).
AGENT = "/opt/hermes/docker/hermes-ctl-agent"
SLOTS_TOOL = "/opt/hermes/docker/hermes-slots"  # the older name; same verbs as the agent's
SETUP_HOOK = "/etc/cont-init.d/01-hermes-setup"
S6_DIR = "/command"

# The layout of a container.
SCANDIR = "/run/service"           # the hermes-owned scan directory of every gateway slot
SLOT_PREFIX = "gateway-"           # /run/service/gateway-<profile>
BOOTED_MARKER = "/run/s6/stage2-done"
PID1_NAME = "s6-svscan"            # /proc/1/comm of a healthy container
HOME_ENV = "HERMES_HOME"
DEFAULT_HOME = "/opt/data"
DEFAULT_PROFILE = "default"        # the profile at the root of HERMES_HOME
PROFILES_DIR = "profiles"          # HERMES_HOME/profiles/<name>
SOUL_FILE = "SOUL.md"              # a profile directory without it is skipped at boot
STATE_FILE = "gateway_state.json"  # in the profile's directory
CONTROL_DIR = ".hermesctl"         # HERMES_HOME/.hermesctl: the operation lock and records
OPERATIONS_DIR = "operations"      # CONTROL_DIR/operations/<profile>: `FROM UNTIL ACTION` lines
BOOT_LOG = "logs/container-boot.log"
# Directories of HERMES_HOME the image creates and relies on. One that hermes replaced by a
# symlink or a file is reported (`facts` -> "layout") and the boot goes on without it.
STANDARD_DIRS = ("logs", "logs/gateways", "profiles", "cron", "sessions", "memories", "skills",
                 "hooks", "pairing", "platforms", "platforms/pairing", "backups", "workspace")
GATEWAY_LOG = "logs/gateways/{profile}/current"



def hermes_home(environ) -> str:
    """HERMES_HOME from an environment mapping; unset or empty means the image's default."""
    return environ.get(HOME_ENV) or DEFAULT_HOME


def profile_path(home: str, profile: str) -> str:
    """A profile's directory: `default` is HERMES_HOME itself, every other one is under profiles/."""
    return home if profile == DEFAULT_PROFILE else f"{home}/{PROFILES_DIR}/{profile}"


def slot_path(profile: str) -> str:
    return f"{SCANDIR}/{SLOT_PREFIX}{profile}"


# Exit codes with a meaning shared by both halves.
FATAL_CONFIG_EXIT = 78             # hermes gateway run: fatal configuration; the slot parks itself
BUSY_EXIT = 75                     # EX_TEMPFAIL: another operation held the container's lock

# Errors: {"schema": SCHEMA, "error": {"code": CODE, "message": TEXT}} on stdout, and this exit.
ERROR_EXITS = {
    "usage": 2,          # a malformed request (the host's bug, or an old agent)
    "invalid-name": 6,   # a profile name that is not ^[a-z0-9][a-z0-9_-]{0,63}$
    "not-found": 4,      # no such profile or slot
    "busy": BUSY_EXIT,   # the container's operation lock was not free in time
    "failed": 1,         # the request was understood and did not succeed
}

# Verbs of the agent. Queries print one document; `watch` prints JSON lines until its stdout
# closes; the others change something and print what they did.
QUERY_VERBS = ("status", "profiles", "facts", "boot-log")
STREAM_VERBS = ("watch", "tail")
WATCH_INTERVAL_S = 0.02            # how often the watcher looks at status files (stat + 35 bytes)
WATCH_HEARTBEAT_S = 2.0            # a line at least this often: a closed stream ends the watcher
PROCESS_SCAN_S = 1.0               # gateways outside their supervisor: /proc looked at this often
# `watch` and `tail --follow` with this option end as soon as their stdin reaches end of file. The
# host attaches stdin to such an exec and never writes to it: Docker closes the process's stdin
# when the client's connection goes (Ctrl-C, kill -9, a dropped connection), whereas stdout stays
# a pipe dockerd keeps draining, so a write never fails and cannot be the signal to stop.
LIFELINE_OPTION = "--until-stdin-closes"
DEATHS_KEPT = 10                   # deaths per slot reported (s6-svdt -n 10)

# The resident agent (static service ctl-agent) answers `status` on this socket: one document
# per connection. In the hermes-owned scan directory, dot-named so s6-svscan ignores it.
AGENT_SOCKET = "/run/service/.hermes-ctl-agent.sock"
# The fast path: connect (s6-ipcclient), then copy the answer to stdout (s6-ioconnect): two C
# programs, one exec'ing the other, about 3 ms of CPU against about 25 ms for a Python start.
FAST_STATUS_ARGV = ("/command/s6-ipcclient", AGENT_SOCKET, "/command/s6-ioconnect")

# Fleet-file secrets. On a swarm, `{from_secret: NAME}` for profile P's KEY is attached as the
# file SECRET_DIR/SECRET_ENV_PREFIX + "P.KEY" (hermes', 0400); the image writes it into P's .env
# at boot (cont-init 01-secret-env) and on `hermes-slots load-secrets`. ENV_HMAC_KEY (root's,
# 0600, made at first boot) keys the hashes `hermesctl diff` shows instead of referenced values.
SECRET_DIR = "/run/secrets"
SECRET_ENV_PREFIX = "hermes-env."
ENV_HMAC_KEY = "/var/lib/hermesctl/env-hmac.key"
