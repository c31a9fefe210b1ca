# Sourced by the ensure-*.sh scripts: install Debian packages unless their programs are there.
# ensure_debian_packages NAME "PROGRAM..." PACKAGE...   (NAME: the calling script, for errors)
ensure_debian_packages() {
  local name=$1 programs=$2 program missing=0
  shift 2
  for program in $programs; do
    command -v "$program" >/dev/null 2>&1 || missing=1
  done
  [ "$missing" = 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "$name: $programs missing and we are not root: apt-get install $*" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
