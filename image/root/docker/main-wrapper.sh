#!/bin/sh
# Runs as root: stage 2 runs it as the CMD at every boot; it routes, then runs the command as hermes.
# The container's CMD (Architecture B: the main program is not supervised; its exit code is the
# container's). Routing:
#   no arguments                         -> hermes
#   a hermes subcommand (login, chat...) -> hermes <arguments>, even if a program has that name
#   first argument on the PATH           -> run it as given        (sh -c ..., sleep ...)
#   anything else                        -> hermes <arguments>     (--version, -p coder chat)
export HOME=/opt/data
# shellcheck disable=SC1091
. /opt/hermes/.venv/bin/activate
# Written at image build from hermes' own argument parser (one name per line).
SUBCOMMANDS=/opt/hermes/docker/hermes-subcommands

# An executable file in a PATH directory (not a shell builtin: `true` must run /usr/bin/true).
on_path() {
  case "$1" in
    -*|'') return 1 ;;
    */*) [ -f "$1" ] && [ -x "$1" ]; return ;;
  esac
  old_ifs=$IFS
  IFS=:
  for dir in $PATH; do
    if [ -f "${dir:-.}/$1" ] && [ -x "${dir:-.}/$1" ]; then IFS=$old_ifs; return 0; fi
  done
  IFS=$old_ifs
  return 1
}

is_subcommand() {
  case "$1" in -*|*/*|'') return 1 ;; esac
  grep -qxF -e "$1" "$SUBCOMMANDS" 2>/dev/null
}

if [ "$#" -eq 0 ]; then
  set -- hermes
elif is_subcommand "$1" || ! on_path "$1"; then
  set -- hermes "$@"
fi

if [ "$(id -u)" = 0 ]; then
  exec /command/s6-setuidgid hermes "$@"
fi
exec "$@"
