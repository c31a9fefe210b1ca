#!/bin/sh
# The container's CMD (Architecture B: the main program is not supervised; its exit code is the
# container's). Routing:
#   no arguments                 -> hermes
#   first argument on the PATH   -> run it as given        (sh -c ..., hermes ..., sleep ...)
#   anything else                -> hermes <arguments>     (--version, chat, -p coder chat)
export HOME=/opt/data
# shellcheck disable=SC1091
. /opt/hermes/.venv/bin/activate

on_path() {
  case "$1" in
    -*|'') return 1 ;;
    */*) [ -f "$1" ] && [ -x "$1" ] ;;
    *) p=$(command -v -- "$1" 2>/dev/null) && case "$p" in /*) [ -x "$p" ] ;; *) false ;; esac ;;
  esac
}

if [ "$#" -eq 0 ]; then
  set -- hermes
elif ! on_path "$1"; then
  set -- hermes "$@"
fi

if [ "$(id -u)" = 0 ]; then
  exec /command/s6-setuidgid hermes "$@"
fi
exec "$@"
