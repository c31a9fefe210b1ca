# Runs as root or hermes: sourced by every login shell (hermes' terminal tool, `docker exec ... bash -l`).
# Login shells (`bash -l`, what hermes' terminal tool starts): Debian's /etc/profile resets PATH,
# so put the hermes wrapper and the venv first again.
case ":$PATH:" in
  :/opt/hermes/bin:/opt/hermes/.venv/bin:*) ;;
  *) PATH=/opt/hermes/bin:/opt/hermes/.venv/bin:$PATH ;;
esac
VIRTUAL_ENV=/opt/hermes/.venv
export PATH VIRTUAL_ENV
