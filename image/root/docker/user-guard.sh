#!/bin/sh
# Runs as root: from cont-init 01-hermes-setup at every boot (as hermes under --user hermes).
# Refuse to boot as any user but root or hermes: only root can remap ids and repair ownership,
# and hermes is the one user the volume belongs to. Exit 0 when the user is acceptable.
uid=$(id -u)
[ "$uid" = 0 ] && exit 0
[ "$uid" = "$(id -u hermes 2>/dev/null)" ] && exit 0
echo "hermes: refusing to run as uid $uid: start the container as root (the default) and set HERMES_UID/HERMES_GID (or PUID/PGID) to choose the ids the hermes user runs with" >&2
exit 1
