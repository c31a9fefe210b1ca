#!/bin/sh
# cont-init 01-hermes-setup: prepare the volume before anything runs as hermes.
#   1. refuse a --user other than root or hermes
#   2. remap the hermes user to HERMES_UID/HERMES_GID (aliases PUID/PGID)
#   3. create the standard directories
#   4. repair ownership where it is wrong, never through a symlink
#   5. seed .env, config.yaml and SOUL.md when missing; optionally seed the gateway state
set -u
HERMES_HOME=${HERMES_HOME:-/opt/data}
seed=/opt/hermes/docker/seed

log() { echo "01-hermes-setup: $*" >&2; }
die() { log "$*"; exit 1; }

hermes_uid=$(id -u hermes) || die "no hermes user in this image"

# 1. The user guard.
/opt/hermes/docker/user-guard.sh || exit 1
uid=$(id -u)
[ "$uid" = 0 ] || log "running as hermes (uid $uid): no remap and no ownership repair possible"

# 2. UID/GID remap.
wanted_id() {  # $1 = primary variable, $2 = alias; prints the value or nothing
  eval "v=\${$1:-\${$2:-}}"
  [ -n "$v" ] || return 0
  case "$v" in *[!0-9]*) die "$1/$2 must be digits, got '$v'" ;; esac
  [ "$v" -ge 1 ] && [ "$v" -le 65534 ] || die "$1/$2 must be within 1..65534, got $v"
  echo "$v"
}
want_uid=$(wanted_id HERMES_UID PUID) || exit 1
want_gid=$(wanted_id HERMES_GID PGID) || exit 1
if [ "$uid" = 0 ]; then
  if [ -n "$want_gid" ] && [ "$want_gid" != "$(id -g hermes)" ]; then
    groupmod -o -g "$want_gid" hermes || die "cannot set the hermes group to gid $want_gid"
    log "hermes group is now gid $want_gid"
  fi
  if [ -n "$want_uid" ] && [ "$want_uid" != "$hermes_uid" ]; then
    usermod -o -u "$want_uid" hermes >/dev/null || die "cannot set the hermes user to uid $want_uid"
    log "hermes user is now uid $want_uid"
  fi
fi

# 3. Standard directories.
for d in "" logs logs/gateways profiles cron sessions memories skills hooks; do
  [ -d "$HERMES_HOME/$d" ] || mkdir -p "$HERMES_HOME/$d" || die "cannot create $HERMES_HOME/$d"
done

# 4. Ownership repair: only entries that are mis-owned, on this filesystem. find does not follow
# symlinks; a mis-owned symlink is reported and left alone, since chown through it could hand
# hermes any file on the system. This covers profiles/ recursively on every boot.
if [ "$uid" = 0 ]; then
  find "$HERMES_HOME" -xdev \( ! -user hermes -o ! -group hermes \) -print 2>/dev/null |
  while IFS= read -r path; do
    if [ -L "$path" ]; then
      log "refusing to re-own symlink $path (-> $(readlink "$path")); fix it by hand"
    else
      chown -h hermes:hermes "$path" 2>/dev/null || log "cannot re-own $path"
    fi
  done
fi

# 5. Seeding, each file only when it is missing (first boot, or deleted on purpose).
seed_file() {  # $1 = name under HERMES_HOME, $2 = mode
  [ -e "$HERMES_HOME/$1" ] || [ -L "$HERMES_HOME/$1" ] && return 0
  cp "$seed/$1" "$HERMES_HOME/$1" && chmod "$2" "$HERMES_HOME/$1" || die "cannot seed $1"
  [ "$uid" = 0 ] && chown hermes:hermes "$HERMES_HOME/$1"
  log "seeded $1"
}
seed_file .env 600
seed_file config.yaml 644
seed_file SOUL.md 644

state=$HERMES_HOME/gateway_state.json
if [ "${HERMES_GATEWAY_BOOTSTRAP_STATE:-}" = running ] && [ ! -e "$state" ] && [ ! -L "$state" ]; then
  printf '{"desired_state":"running","updated_at":%s}\n' "$(date +%s)" > "$state"
  [ "$uid" = 0 ] && chown hermes:hermes "$state"
  log "seeded gateway_state.json (desired_state=running)"
fi
exit 0
