# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""The one renderer of a gateway slot's scripts, used at boot and at runtime registration."""
import posixpath
import shlex

from .contract import DEFAULT_HOME, FATAL_CONFIG_EXIT, GATEWAY_LOG, HOME_ENV
from .paths import DEFAULT_PROFILE


def run_script(profile: str) -> str:
    gateway = ["hermes"] if profile == DEFAULT_PROFILE else ["hermes", "-p", profile]
    command = shlex.join([*gateway, "gateway", "run", "--replace"])
    return f"""#!/command/with-contenv sh
# shellcheck shell=sh
# Gateway of profile {profile}, supervised by s6. Rendered by hermes_supervise; do not edit.
export HOME={DEFAULT_HOME}
cd "${{{HOME_ENV}:-{DEFAULT_HOME}}}" || exit 1
. /opt/hermes/.venv/bin/activate
# Tells hermes it IS the supervised process, so `gateway run` does not redirect to s6 again.
export HERMES_S6_SUPERVISED_CHILD=1
# with-contenv keeps the container's API_SERVER_* settings from named profiles (#80310).
# stderr joins stdout so every line reaches both docker logs and the persistent log.
exec 2>&1
[ "$(id -u)" = 0 ] || exec {command}
exec /command/s6-setuidgid hermes {command}
"""


def finish_script() -> str:
    return f"""#!/bin/sh
# $1 = the gateway's exit code. {FATAL_CONFIG_EXIT} means fatal configuration: exit 125 so s6
# parks the slot instead of restarting it every second.
[ "$1" = {FATAL_CONFIG_EXIT} ] && exit 125
exit 0
"""


def log_run_script(profile: str) -> str:
    return f"""#!/command/with-contenv sh
# shellcheck shell=sh
# Logger of gateway {profile}: every line to stdout (docker logs) and, with an ISO 8601
# timestamp, to $HERMES_HOME/logs/gateways/{profile}/current (10 archives of 1 MB).
# Runs as hermes (the scanner of /run/service does), so nothing here needs or gets privilege.
dir="${{{HOME_ENV}:-{DEFAULT_HOME}}}/{posixpath.dirname(GATEWAY_LOG.format(profile=profile))}"
if mkdir -p "$dir" 2>/dev/null && [ -d "$dir" ] && [ -w "$dir" ]; then
  exec /command/s6-log -b -- 1 n10 s1000000 T "$dir"
fi
# logs/ replaced by a symlink or a file (hermesctl doctor names it): docker logs only, never a
# restart loop that would block the gateway on a full pipe.
echo "gateway {profile}: cannot write $dir: its log goes to docker logs only" >&2
exec /command/s6-log -b -- 1
"""
