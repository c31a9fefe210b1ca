# Runs as hermes: in the container (the agent, hermes-slots); on the host it is hermesctl.contract, run by the operator.
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


SKILLS_DIR = "skills"               # a profile's local skills: skills/<name>/SKILL.md
SKILL_FILE = "SKILL.md"


def tree_digest(files: dict) -> str:
    """sha256 of a skill's files ({relative path: bytes}): what the fleet file declares and what
    a profile holds are compared by it, computed the same way by both halves."""
    import hashlib
    total = hashlib.sha256()
    for path in sorted(files):
        total.update(path.encode("utf-8", "surrogateescape") + b"\0" + hashlib.sha256(files[path]).digest())
    return total.hexdigest()


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

# Verbs of the agent, as data: the agent's dispatch, its argument parsing and the verb table of
# docs/architecture.md all come from this one table (tests/test_contract_table.py checks the
# doc). An argument is (name, kind, type, default): kind "arg" (positional), "args" (one or
# more), "opt-args" (zero or more), "flag" (--name, no value), "option" (--name VALUE), "rest" (everything after --).
# Kinds of verb: query (one document), stream (JSON lines until stdout closes), change (one
# document saying what changed). Every answer carries "schema" and "verb"; a failure is
# {"schema", "error": {"code", "message"}} with ERROR_EXITS[code] as exit status.
def _verb(kind: str, summary: str, fields: str, *args: tuple) -> dict:
    return {"kind": kind, "summary": summary, "fields": fields, "args": args}


VERBS = {
    "status": _verb("query", "every slot, the boot, PID 1, gateway processes (`ps`, `gateway`, `logs`, `apply` select with it)",
                    "`now` (Unix s), `pid1`, `booted`, `slots{P: {profile, supervised, status{up, wanted_up, normally_up, pid, exit_code, signal, since, seconds}, deaths[{at, how}], gateway_state{…file…}, gateway_state_corrupt, operations[{start, until, action}]}}`, `processes[{pid, ppid, profile, supervisor}]` (`supervisor`: the service whose s6-supervise is the parent, or null), `unslotted[]` (profiles that qualify for a slot, as the reconciler decides, and have none)"),
    "watch": _verb("stream", "JSON lines until stdout closes, or stdin with `--until-stdin-closes` (`events`, `ps --watch`)",
                   "`event`: `snapshot` (= `status`), `slot` / `slot-added` (`profile`, `slot{…}`), `slot-removed`, `boot`, `processes`, `unslotted` (`unslotted[]`), `heartbeat` (every 2 s at least)",
                   ("until-stdin-closes", "flag", "bool", False)),
    "serve": _verb("stream", "the resident agent (static service `ctl-agent`): `status` on the agent socket",
                   "one `status` document per connection"),
    "profiles": _verb("query", "profile directories (`profile list`, `create`, `delete`)",
                      "`profiles[{name, readable, has_soul, registered}]`"),
    "facts": _verb("query", "what `doctor` checks, in the same exec as the status",
                   "`command_dir`, `ownership{misowned[], misowned_count, refused[]}`, `profiles[…]`, `status{…}`; "
                   "with `HERMESCTL_TOKEN_KEY` (hex) in the exec's environment also `platform_tokens{P: {KEY: "
                   "HMAC-SHA256}}` of `PLATFORM_TOKEN_KEYS` (one token, one gateway; never a value)"),
    "serving": _verb("query", "each profile's API server asked on the container's loopback, as hermes: `/health`, "
                     "with `--prompt` one chat completion (`probe`, `serve`; the API key stays inside)",
                     "`profiles{P: {configured[] (platforms whose token is set), error, api{enabled, host, port, reason, "
                     "health{ok, status, seconds, error}, chat{ok, status, seconds, first_line, error}}}}`",
                     ("profiles", "opt-args", "profile", None), ("prompt", "option", "str", None),
                     ("timeout", "option", "float", 20.0)),
    "boot-log": _verb("query", "the reconciler's log, parsed (`boot-log`)",
                      "`entries[{time, profile, prior_state, action, reason, …}]`",
                      ("tail", "option", "int", 50)),
    "health": _verb("query", "Docker's HEALTHCHECK (exit 1 when unhealthy)", "`healthy`, `problems[]`"),
    "tail": _verb("stream", "`{\"pid\"}`, then the log lines (`logs`; tail(1) takes the agent's pid)",
                  "`pid`, `path`", ("profile", "arg", "profile", None), ("lines", "option", "int", 20),
                  ("follow", "flag", "bool", False), ("until-stdin-closes", "flag", "bool", False)),
    "snapshot-databases": _verb("query", "SQLite online-backup copies of DIR's databases in a fresh staging "
                                "directory (`backup`; regular files only, locks waited on in Python so the "
                                "deadline ends it)", "`staging`, `databases[]`, `skipped[{path, reason}]`",
                                ("directory", "arg", "str", None)),
    "owner-ids": _verb("query", "the uid and gid of hermes' files: HERMES_UID/PUID and HERMES_GID/PGID (the boot's "
                       "remap), else the hermes user's (`restore`, in a helper with a stopped container's environment)",
                       "`user`, `uid`, `gid`; `not-found` without a hermes user, `failed` for a remap the boot refuses"),
    "usage": _verb("query", "each profile's `state.db` read-only, as `hermes insights` counts it (`usage`)",
                   "`now`, `cutoff`, `profiles{P: {ok, error{code: missing|locked|corrupt|schema|unreadable|oversized|non-finite, message}, schema_version, last_activity, sources{platform: {sessions, active, messages, tool_calls, *_tokens, estimated_usd, actual_usd, unpriced_rows, models{M: {…}}}}}}`, `skipped{P: why}` (symlinks under profiles/: not profiles)",
                   ("window", "option", "float", None), ("since", "option", "float", None),
                   ("profiles", "opt-args", "profile", None)),
    "usage-watch": _verb("stream", "a line per profile whose usage counters changed, incrementally (`serve`)",
                         "per changed profile `profile, ok, read_error{code, message}, sessions_total, days{date: {sessions, estimated_usd}}, sessions_active, last_activity, models{M: {*_tokens, api_calls, estimated_usd, actual_usd}}`; `heartbeat` (with `cpu_s`, `profiles`, `skipped{P: why}`) every interval; with `--until-stdin-closes` it ends when its stdin closes",
                         ("interval", "option", "float", 15.0), ("until-stdin-closes", "flag", "bool", False)),
    "operate": _verb("change", "lock, intent, records (before acting, then the real end), s6-svlisten + s6-svc "
                     "(restart: a planned stop, then up), `--wait-ready`: hermes' verdict on each start "
                     "(`gateway start/stop/restart`); start and restart first register the slot of a profile that has "
                     "none, as the reconciler would",
                     "`waited_s`, `wait_rc`, `gateways{P: {before, acted, after, startup?}}` (status fields; "
                     "`startup`: ready|failed|died|unconfirmed), `registered[]`",
                     ("action", "arg", "start|stop|restart", None), ("profiles", "args", "profile", None),
                     ("timeout", "option", "float", 20.0), ("settle", "option", "float", 0.0),
                     ("lock-wait", "option", "float", 60.0), ("wait-ready", "flag", "bool", False)),
    "register": _verb("change", "create a profile's s6 slot (`gateway register`)", "`profile`, `started`",
                      ("profile", "arg", "profile", None), ("up", "flag", "bool", False)),
    "unregister": _verb("change", "stop and remove a slot (`gateway unregister`, `profile delete`)", "`profile`",
                        ("profile", "arg", "profile", None), ("timeout", "option", "float", 10.0)),
    "adopt": _verb("change", "re-render an existing slot's scripts (`profile create`, `apply`)", "`profile`",
                   ("profile", "arg", "profile", None)),
    "desire": _verb("change", "record desired_state (stopped: also the planned-stop marker)", "`state`, `profiles[]`",
                    ("state", "arg", "running|stopped", None), ("profiles", "args", "profile", None)),
    "get-env": _verb("query", "chosen `.env` keys of every profile (`apply`, `diff`)", "`profiles{P: {KEY: value}}`",
                     ("keys", "args", "str", None)),
    "agent-config": _verb("query", "the fleet file's `model`/`config` keys judged by the image's own hermes-agent "
                          "(hermes_cli/config.py: known key, its default's type, `config set`'s coercion), each "
                          "profile's current value and SOUL.md digest; read-only; proposed values in "
                          "`HERMESCTL_AGENT_CONFIG` (JSON `{profiles: {P: {key: value}}, skills: {P: [name]}}`, never "
                          "argv) (`apply`, `diff`)",
                          "`profiles{P: {exists, soul_sha256, config_error?, keys{K: {problem, set, current, same}}, "
                          "skills{NAME: sha256|null|unreadable}, applied{config[], skills[]} (what apply set: "
                          "`.hermesctl-applied.json`), applied_error?}}`"),
    "write-soul": _verb("change", "replace a profile's SOUL.md atomically with `HERMESCTL_SOUL`'s text (`apply`)",
                        "`profile`, `sha256`", ("profile", "arg", "profile", None)),
    "config-set": _verb("change", "set keys of a profile's config.yaml with hermes' own writer (`set_config_value`, "
                        "what `hermes -p P config set` calls), all in one process; values from `HERMESCTL_CONFIG_VALUES` "
                        "(JSON `{key: value}`, never argv); each key written is recorded in the profile's "
                        "`.hermesctl-applied.json` (`apply`)",
                        "`profile`, `keys[]` (written)", ("profile", "arg", "profile", None), ("keys", "args", "str", None)),
    "config-unset": _verb("change", "`hermes [-p P] config unset -- KEY` for a key the profile's "
                          "`.hermesctl-applied.json` says apply set (any other: `usage`), then out of that record "
                          "(`apply --prune`)", "`profile`, `key`",
                          ("profile", "arg", "profile", None), ("key", "arg", "str", None)),
    "remove-skill": _verb("change", "remove a profile's skills/NAME that its `.hermesctl-applied.json` says apply "
                          "installed (any other: `usage`), never through a symlink (`apply --prune`)",
                          "`profile`, `skill`", ("profile", "arg", "profile", None), ("name", "arg", "str", None)),
    "write-skill": _verb("change", "replace a profile's skills/NAME with the files in `HERMESCTL_SKILL` (JSON "
                         "`{path: base64}`): staged beside it, then swapped in (recorded in `.hermesctl-applied.json`) (`apply`)",
                         "`profile`, `skill`, `sha256`", ("profile", "arg", "profile", None), ("name", "arg", "str", None)),
    "set-env": _verb("change", "set `.env` keys of a profile; values from `HERMESCTL_ENV_<KEY>` (never argv) (`apply`)",
                     "`profile`, `changed[]`", ("profile", "arg", "profile", None), ("keys", "args", "str", None)),
    "load-secrets": _verb("change", "swarm secrets (`/run/secrets/hermes-env.P.KEY`) into the profiles' `.env`; "
                          "`--check` compares only (`apply --swarm`; never a value)",
                          "`profiles{P: {KEY: written|same|differs|…}}`",
                          ("profiles", "opt-args", "profile", None), ("check", "flag", "bool", False)),
    "locked": _verb("change", "a command (argv) under the container's operation lock (`profile`, `apply`)",
                    "the command's own output and exit", ("wait", "option", "float", 60.0), ("argv", "rest", "str", None)),
    "end-processes": _verb("change", "end gateway processes outside their supervisor (`doctor --fix`)",
                           "`ended[]`, `alive[]`, `skipped[]`", ("pids", "args", "int", None)),
    "ensure-slot": _verb("change", "the in-container `hermes` wrapper before `hermes … gateway start`: the slot of the "
                         "profile that command line names, registered down when it has none and the reconciler's "
                         "rule allows (upstream's `start` then brings it up)", "`profile`, `registered`",
                         ("argv", "rest", "str", None)),
    "reconcile": _verb("change", "recreate every slot from the profiles (the boot; not for the host)",
                       "nothing (the boot log's lines)"),
}
QUERY_VERBS = tuple(v for v, d in VERBS.items() if d["kind"] == "query")
STREAM_VERBS = tuple(v for v, d in VERBS.items() if d["kind"] == "stream")
WATCH_INTERVAL_S = 0.02            # how often the watcher looks at status files (stat + 35 bytes)
WATCH_HEARTBEAT_S = 2.0            # a line at least this often: a closed stream ends the watcher
PROCESS_SCAN_S = 1.0               # gateways outside their supervisor: /proc looked at this often
# `watch` and `tail --follow` with this option end as soon as their stdin reaches end of file. The
# host attaches stdin to such an exec and never writes to it: Docker closes the process's stdin
# when the client's connection goes (Ctrl-C, kill -9, a dropped connection), whereas stdout stays
# a pipe dockerd keeps draining, so a write never fails and cannot be the signal to stop.
LIFELINE_OPTION = "--until-stdin-closes"
DEATHS_KEPT = 10                   # deaths per slot reported (s6-svdt -n 10)
UNSLOTTED_SCAN = 4096              # entries of profiles/ `status` looks at for profiles without a slot

# The resident agent (static service ctl-agent) answers `status` on this socket: one document
# per connection. In the hermes-owned scan directory, dot-named so s6-svscan ignores it.
AGENT_SOCKET = "/run/service/.hermes-ctl-agent.sock"
# The fast path: connect (s6-ipcclient), then copy the answer to stdout (s6-ioconnect): two C
# programs, one exec'ing the other, about 3 ms of CPU against about 25 ms for a Python start.
FAST_STATUS_ARGV = ("/command/s6-ipcclient", AGENT_SOCKET, "/command/s6-ioconnect")
# Questions with arguments go to a second socket, through the same C client as `status`: the
# question rides in the client's environment, QUERY_ENV = a JSON array (the verb and its
# arguments, as on the agent's command line), which the agent reads from /proc/PID/environ of
# the connected process (SO_PEERCRED; a process of its own user only). No program writes to the
# socket, so the client is s6-ipcclient, fdmove and head, as for `status`. Only
# QUERY_SOCKET_VERBS are answered there (`usage`: from the tallies the resident agent keeps).
AGENT_QUERY_SOCKET = "/run/service/.hermes-ctl-agent-query.sock"
QUERY_ENV = "HERMESCTL_QUERY"
QUERY_SOCKET_VERBS = ("usage",)
QUERY_MAX_BYTES = 4096             # the question, at most

# Fleet-file secrets. On a swarm, `{from_secret: NAME}` for profile P's KEY is attached as the
# file SECRET_DIR/SECRET_ENV_PREFIX + "P.KEY" (hermes', 0400); the image writes it into P's .env
# at boot (cont-init 01-secret-env) and on `hermes-slots load-secrets`. ENV_HMAC_KEY (root's,
# 0600, made at first boot) keys the hashes `hermesctl diff` shows instead of referenced values.
SECRET_DIR = "/run/secrets"
# One bot token, one gateway: two gateways polling with the same token fight over it (Telegram
# answers the second poller 409 Conflict). The environment keys that hold a platform's token
# (hermes-agent 0.19.0 gateway/config.py, PLATFORM_TOKEN_ENV_NAMES plus Slack's app token), and
# the platform name gateway_state.json uses. The host compares HMACs of their values under a key
# it makes per run and hands the agent in TOKEN_KEY_ENV; no token value ever leaves a container.
PLATFORM_TOKEN_KEYS = {"TELEGRAM_BOT_TOKEN": "telegram", "DISCORD_BOT_TOKEN": "discord",
                       "SLACK_BOT_TOKEN": "slack", "SLACK_APP_TOKEN": "slack",
                       "MATTERMOST_TOKEN": "mattermost", "MATRIX_ACCESS_TOKEN": "matrix",
                       "WEIXIN_TOKEN": "weixin"}
TOKEN_KEY_ENV = "HERMESCTL_TOKEN_KEY"
SECRET_ENV_PREFIX = "hermes-env."
ENV_HMAC_KEY = "/var/lib/hermesctl/env-hmac.key"
