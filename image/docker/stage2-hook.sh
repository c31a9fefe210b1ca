#!/bin/sh
# cont-init 01-hermes-setup: prepare the volume before anything runs as hermes.
#   1. refuse a --user other than root or hermes
#   2. remap the hermes user to HERMES_UID/HERMES_GID (aliases PUID/PGID)
#   3. as root (hermes-boot root): device groups, targeted ownership repair, runtime ownership
#   4. as hermes (hermes-boot user): directories, first-boot seeds, file modes, private tmp
# Root never runs, sources or follows anything hermes wrote: steps 3 and 4 are Python that walks
# with file descriptors, and step 4 has no privilege at all.
set -u
boot=/opt/hermes/docker/hermes-boot

log() { echo "01-hermes-setup: $*" >&2; }
die() { log "$*"; exit 1; }

hermes_uid=$(id -u hermes) || die "no hermes user in this image"

# 1. The user guard.
/opt/hermes/docker/user-guard.sh || exit 1
uid=$(id -u)
if [ "$uid" != 0 ]; then
  log "running as hermes (uid $uid): no remap and no ownership repair possible"
  exec "$boot" user
fi

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
if [ -n "$want_gid" ] && [ "$want_gid" != "$(id -g hermes)" ]; then
  groupmod -o -g "$want_gid" hermes || die "cannot set the hermes group to gid $want_gid"
  log "hermes group is now gid $want_gid"
fi
if [ -n "$want_uid" ] && [ "$want_uid" != "$hermes_uid" ]; then
  # usermod -u would re-own the home directory (the data volume) itself, recursively and
  # without our precautions: point the home elsewhere while the uid changes.
  usermod -d /nonexistent hermes >/dev/null || die "cannot change the hermes user"
  usermod -o -u "$want_uid" hermes >/dev/null
  rc=$?
  usermod -d /opt/data hermes >/dev/null
  [ "$rc" = 0 ] || die "cannot set the hermes user to uid $want_uid"
  log "hermes user is now uid $want_uid"
fi

# 3. and 4.
"$boot" root
exec /command/s6-setuidgid hermes "$boot" user
