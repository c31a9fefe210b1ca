# Runs as root: cont-init 01-hermes-setup (hermes-boot root) at every boot.
"""The root half of cont-init 01-hermes-setup: what only root can do, done without trusting
anything hermes can write. Runs before the hermes half (boot_user). A remap the rule refuses stops
the boot (exit 1); every later failure is a warning: a container without CAP_CHOWN still boots.

  r. remap:     the hermes user and group take HERMES_UID / HERMES_GID (remap.py, owner_rule.py)
  0. restore:   a restore whose swap was killed half-way is completed (restore_swap.finish)
                before anything reads the volume
  1. groups:    device and socket gids (docker.sock, /dev/dri) and `--group-add` gids join the
                hermes user's groups in /etc/group, so they survive the drop to hermes
  2. ownership: the targeted repair of the data volume (ownership.py)
  3. real home: HERMES_REAL_HOME, when set, exists and belongs to hermes (real_home)
  4. runtime:   /run/service and the saved container environment belong to the current hermes
                ids (they change with a remap)
Warnings go to stderr (docker logs) and to /run/s6/boot-warnings, which the reconciler copies
into logs/container-boot.log.
"""
import grp
import os
import pwd
import stat
import subprocess
import sys

from .ownership import log_report, repair
from .remap import RemapError, remap

WARNINGS = "/run/s6/boot-warnings"
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
DRI_DIR = "/dev/dri"


def log(message: str) -> None:
    print(f"01-hermes-setup: {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    log(message)
    try:
        fd = os.open(WARNINGS, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "a") as f:
            f.write(" ".join(message.split()) + "\n")
    except OSError:
        pass


def device_gids() -> dict[int, str]:
    """gid -> what grants it: the Docker socket, /dev/dri nodes, and `docker run --group-add`."""
    found: dict[int, str] = {}
    for path in DOCKER_SOCKETS:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISSOCK(st.st_mode):
            found.setdefault(st.st_gid, path)
            break
    try:
        nodes = sorted(os.listdir(DRI_DIR))
    except OSError:
        nodes = []
    for name in nodes:
        try:
            st = os.stat(os.path.join(DRI_DIR, name))
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode):
            found.setdefault(st.st_gid, f"{DRI_DIR}/{name}")
    for gid in os.getgroups():
        found.setdefault(gid, "--group-add")
    # A root-owned node (or group-add 0) never makes hermes a member of root's group.
    found.pop(0, None)
    return found


def join_groups(user: str) -> None:
    entry = pwd.getpwnam(user)
    member_of = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for gid, source in sorted(device_gids().items()):
        if gid in member_of:
            continue
        try:
            name = grp.getgrgid(gid).gr_name
        except KeyError:
            name = f"hermes-gid-{gid}"
            if subprocess.run(["groupadd", "-g", str(gid), name], capture_output=True).returncode:
                warn(f"groups: cannot create group {gid} for {source}")
                continue
        if subprocess.run(["usermod", "-aG", name, user], capture_output=True).returncode:
            warn(f"groups: cannot add {user} to group {name} ({gid}) for {source}")
        else:
            log(f"groups: added {user} to group {name} ({gid}) for {source}")


def own(path: str, uid: int, gid: int, what: str) -> None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if (st.st_uid, st.st_gid) == (uid, gid):
        return
    try:
        os.chown(path, uid, gid, follow_symlinks=False)
    except OSError as exc:
        warn(f"warning: cannot give {what} to hermes ({exc.strerror}); continuing")


def regroup(path: str, gid: int, what: str) -> None:
    """Root-owned, readable by the hermes group: for the saved container environment."""
    try:
        entries = [path] + [os.path.join(path, n) for n in os.listdir(path)]
    except OSError:
        return
    for p in entries:
        try:
            st = os.stat(p, follow_symlinks=False)
            if st.st_gid != gid:
                os.chown(p, 0, gid, follow_symlinks=False)
        except OSError as exc:
            warn(f"warning: cannot give the hermes group read access to {what} ({exc.strerror})")
            return


def finish_restore(home: str) -> None:
    """A restore killed mid-swap left a journal: complete it before anything reads the volume."""
    from .restore_swap import RestoreError, finish
    try:
        result = finish(home)
    except (RestoreError, OSError) as exc:
        warn(f"restore: cannot finish an interrupted restore of {home}: {exc}")
        return
    if result != "none":
        log(f"restore: an interrupted restore of {home} was {result}")


def _open_dirs(path: str, name: str, create: bool = True) -> int | None:
    """Open directory `path` (the value of variable `name`), creating what is missing (if `create`):
    parents root-owned 0755, the last component too. The walk goes by directory descriptor and never
    follows a symlink, so nothing hermes planted redirects it. Returns the last directory's
    descriptor (the caller closes it), or None after a warning."""
    if not os.path.isabs(path):
        warn(f"{name}={path!r} is not an absolute path")
        return None
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        warn(f"{name}={path!r} holds . or ..; not created")
        return None
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            try:
                if create:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    log(f"created {part!r} for {name}={path}")
            except FileExistsError:
                pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                verb = "create" if create else "open (a system directory: nothing is created there)"
                warn(f"cannot {verb} {name}={path}: {part!r}: {exc.strerror}")
                os.close(fd)
                return None
            os.close(fd)
            fd = child
        return fd
    except OSError as exc:
        warn(f"cannot create {name}={path}: {exc.strerror}")
        os.close(fd)
        return None


def create_home(path: str) -> bool:
    """Create HERMES_HOME where hermes could not (`-e HERMES_HOME=/home/hermes/.hermes`: only root
    may create /home/hermes). The ownership repair then gives it to hermes as it does /opt/data.
    True if the directory exists afterwards."""
    fd = _open_dirs(path, "HERMES_HOME")
    if fd is None:
        return False
    os.close(fd)
    return True


# The system's own trees: HERMES_REAL_HOME naming one of them (or a directory inside) is never
# given to hermes. Only the directory itself is ever re-owned, never what it holds.
SYSTEM_TREES = ("/bin", "/boot", "/command", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
                "/opt/hermes", "/proc", "/root", "/run", "/sbin", "/sys", "/usr", "/var/lib")
SYSTEM_DIRS = ("/", "/home", "/media", "/mnt", "/opt", "/srv", "/tmp", "/var")


def real_home(path: str, uid: int, gid: int) -> None:
    """HERMES_REAL_HOME, as upstream's stage 2 prepares it: the account home hermes' tools get
    (hermes_constants.get_real_home; the dashboard's HOME). Created if missing and given to hermes,
    so a privilege-dropped hermes process can write under it, whatever its UID after a remap. A
    directory hermes can already write to (/tmp) is left as it is; a system directory is refused,
    and nothing is created inside one."""
    normal = "/" + "/".join(p for p in path.split("/") if p)
    system = normal in SYSTEM_DIRS or any(normal == t or normal.startswith(t + "/") for t in SYSTEM_TREES)
    fd = _open_dirs(path, "HERMES_REAL_HOME", create=not system)
    if fd is None:
        return
    try:
        st = os.fstat(fd)
        if st.st_uid == uid:
            return
        if st.st_mode & stat.S_ISVTX and st.st_mode & stat.S_IWOTH:
            return  # sticky and world-writable: hermes writes under it as anyone does
        if system:
            warn(f"HERMES_REAL_HOME={path} is a system directory; not given to hermes")
            return
        os.fchown(fd, uid, gid)
        log(f"gave HERMES_REAL_HOME={path} to hermes")
    except OSError as exc:
        warn(f"warning: cannot give HERMES_REAL_HOME={path} to hermes ({exc.strerror}); continuing")
    finally:
        os.close(fd)


def main(user: str = "hermes") -> int:
    try:
        remap(os.environ, log, user)
    except RemapError as exc:
        log(str(exc))
        return 1
    home = os.environ.get("HERMES_HOME") or "/opt/data"
    finish_restore(home)
    join_groups(user)
    entry = pwd.getpwnam(user)
    if not os.path.isdir(home) and not create_home(home):
        return 0
    report = repair(home, entry.pw_uid, entry.pw_gid)
    log_report(report, warn, log)
    if os.environ.get("HERMES_REAL_HOME"):
        real_home(os.environ["HERMES_REAL_HOME"], entry.pw_uid, entry.pw_gid)
    own("/run/service", entry.pw_uid, entry.pw_gid, "/run/service")
    regroup("/run/s6/container_environment", entry.pw_gid, "the container environment")
    return 0
