#!/bin/sh
# HEALTHCHECK: healthy when s6 is PID 1, the boot has finished, and no gateway that is wanted
# up is stuck down or parked. Gateways stopped on purpose (desired_state=stopped) are fine.
# Docker runs it as root; everything it reads is hermes', so it reads it as hermes.
[ "$(id -u)" = 0 ] && exec /command/s6-setuidgid hermes "$0" "$@"
HERMES_HOME=${HERMES_HOME:-/opt/data}
[ "$(cat /proc/1/comm 2>/dev/null)" = s6-svscan ] || { echo "unhealthy: s6-svscan is not PID 1"; exit 1; }
[ -e /run/s6/stage2-done ] || { echo "unhealthy: boot has not finished"; exit 1; }

problems=""
for slot in /run/service/gateway-*; do
  [ -d "$slot" ] || continue
  profile=${slot#/run/service/gateway-}
  if ! status=$(/command/s6-svstat -o up,wantedup,exitcode "$slot" 2>/dev/null); then
    problems="$problems $profile:no-supervisor"
    continue
  fi
  set -- $status
  [ "$1" = true ] && continue
  if [ "$2" = true ]; then
    problems="$problems $profile:down-but-wanted-up"
  elif [ "$3" = 78 ]; then
    if [ "$profile" = default ]; then state=$HERMES_HOME/gateway_state.json
    else state=$HERMES_HOME/profiles/$profile/gateway_state.json; fi
    grep -qs '"desired_state": *"stopped"' "$state" || problems="$problems $profile:parked-exit-78"
  fi
done
if [ -n "$problems" ]; then
  echo "unhealthy:$problems"
  exit 1
fi
echo healthy
