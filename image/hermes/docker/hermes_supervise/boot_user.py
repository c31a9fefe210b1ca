# Runs as hermes: cont-init 01-hermes-setup's last step (hermes-boot-user) at every boot, as hermes.
"""The hermes half of cont-init 01-hermes-setup, run AS hermes: everything that only creates or
fixes hermes' own files needs no privilege, so it gets none. Each step is idempotent.

  - the standard directories exist
  - first boot: .env (0600), config.yaml (0640) and SOUL.md seeded; auth.json from
    HERMES_AUTH_JSON_BOOTSTRAP; gateway_state.json from HERMES_GATEWAY_BOOTSTRAP_STATE=running
  - every boot: .env 0600 and config.yaml 0640; a stale `.install_method` stamp removed (older
    images wrote one into the volume, which then misled host installs sharing it);
    /tmp/hermes-files is a private directory (HERMES_WRITE_SAFE_ROOT)
"""
import json
import os
import stat
import sys
import time
from pathlib import Path

from .layout import STANDARD_DIRS, describe, problems

SEED_DIR = Path("/opt/hermes/docker/seed")
SEEDS = ((".env", 0o600), ("config.yaml", 0o640), ("SOUL.md", 0o644))
MODES = ((".env", 0o600), ("config.yaml", 0o640))
PRIVATE_TMP = Path("/tmp/hermes-files")


def log(message: str) -> None:
    print(f"01-hermes-setup: {message}", file=sys.stderr, flush=True)


def _create(path: Path, data: bytes, mode: int) -> bool:
    """Write a new file; never through a symlink, never over an existing name."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return True


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def ensure_dirs(home: Path) -> None:
    """Create the missing standard directories; one replaced by a symlink or a file is left as it
    is and reported (the boot goes on without it)."""
    bad = problems(str(home))
    for problem in bad:
        log(f"warning: {describe(problem)}")
    skipped = [os.path.relpath(p["path"], home) for p in bad]
    for name in STANDARD_DIRS:
        if any(name == s or name.startswith(s + "/") for s in skipped):
            continue
        try:
            (home / name).mkdir(exist_ok=True)
        except OSError as exc:
            log(f"cannot create {home / name}: {exc.strerror}")


def seed(home: Path) -> None:
    for name, mode in SEEDS:
        if not _exists(home / name) and _create(home / name, (SEED_DIR / name).read_bytes(), mode):
            log(f"seeded {name}")
    auth = os.environ.get("HERMES_AUTH_JSON_BOOTSTRAP", "")
    if auth and not _exists(home / "auth.json"):
        try:
            json.loads(auth)
        except ValueError:
            log("HERMES_AUTH_JSON_BOOTSTRAP is not JSON: auth.json not seeded")
        else:
            if _create(home / "auth.json", auth.encode(), 0o600):
                log("seeded auth.json from HERMES_AUTH_JSON_BOOTSTRAP")
    state = home / "gateway_state.json"
    if os.environ.get("HERMES_GATEWAY_BOOTSTRAP_STATE", "") == "running" and not _exists(state):
        record = {"desired_state": "running", "updated_at": int(time.time())}
        if _create(state, (json.dumps(record) + "\n").encode(), 0o644):
            log("seeded gateway_state.json (desired_state=running)")


def assert_modes(home: Path) -> None:
    for name, mode in MODES:
        path = home / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log(f"cannot check the mode of {name}: {exc.strerror}")
            continue
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != mode:
                os.fchmod(fd, mode)
        except OSError as exc:
            log(f"cannot set the mode of {name} to {mode:o}: {exc.strerror}")
        finally:
            os.close(fd)


def remove_stale_stamp(home: Path) -> None:
    stamp = home / ".install_method"
    try:
        if not stamp.is_symlink() and stamp.is_file() and stamp.read_text().strip() == "docker":
            stamp.unlink()
            log("removed the stale .install_method stamp from the data volume")
    except OSError:
        pass


def private_tmp() -> None:
    """/tmp/hermes-files: a real directory, ours, mode 0700 (hermes' safe write root)."""
    if PRIVATE_TMP.is_symlink() or (_exists(PRIVATE_TMP) and not PRIVATE_TMP.is_dir()):
        PRIVATE_TMP.unlink()
    PRIVATE_TMP.mkdir(mode=0o700, exist_ok=True)
    st = PRIVATE_TMP.lstat()
    if st.st_uid != os.getuid():
        log(f"{PRIVATE_TMP} belongs to uid {st.st_uid}, not to hermes")
        return
    os.chmod(PRIVATE_TMP, 0o700)


def main() -> int:
    home = Path(os.environ.get("HERMES_HOME", "/opt/data"))
    status = 0
    for step in (ensure_dirs, seed, assert_modes, remove_stale_stamp):
        try:
            step(home)
        except OSError as exc:
            log(f"{step.__name__}: {exc}")
            status = 1
    try:
        private_tmp()
    except OSError as exc:
        log(f"private tmp: {exc}")
    return status
