"""hermesctl: operate fleets of Hermes Agent containers through the Docker API and s6."""

__version__ = "0.1.0"

# Before anything imports the Docker SDK: its ssh transport (and paramiko) only for ssh://.
from hermesctl.backends.docker import sshcompat as _sshcompat  # noqa: E402

_sshcompat.defer()
