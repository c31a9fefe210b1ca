"""Issue 14 item 6: the image's source tree shows its trust boundary and its boot order.

image/root/ holds what runs as root, image/hermes/ what runs as hermes, image/either/ what runs as
whoever calls it; every program or module there says so in its first line (after a shebang), and
says it truthfully: root's files are root's and read-only for hermes in the image, hermes' programs
run as hermes whoever starts them, root's Python never imports hermes' package. Every cont-init
script is in image/root/cont-init.d under its installed name, and the boot runs them in that order.
The source checks take milliseconds; the image checks one container."""
import ast
import hashlib
import re
from pathlib import Path

import pytest

from conftest import sh, wait_ready

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SRC = ROOT / "image"
HEADERS = {"root": "# Runs as root:", "hermes": "# Runs as hermes:", "either": "# Runs as root or hermes:"}
DATA_DIRS = ("seed", "extra-ca")   # copied, never run
CONT_INIT = IMAGE_SRC / "root" / "cont-init.d"


def _is_code(path: Path) -> bool:
    return path.suffix in (".py", ".sh") or path.name in ("run", "finish") or path.read_bytes()[:2] == b"#!"


def _code_files(folder: str) -> list[Path]:
    return sorted(p for p in (IMAGE_SRC / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and _is_code(p))


def _first_line(path: Path) -> str:
    lines = path.read_text().splitlines()
    return lines[1] if lines and lines[0].startswith("#!") else (lines[0] if lines else "")


def test_the_image_tree_has_only_the_three_runners_and_data():
    assert sorted(p.name for p in IMAGE_SRC.iterdir()) == sorted([*HEADERS, *DATA_DIRS])
    for data in DATA_DIRS:
        assert [p for p in (IMAGE_SRC / data).rglob("*") if p.is_file() and _is_code(p)] == []


@pytest.mark.parametrize("folder", list(HEADERS))
def test_every_program_says_who_runs_it_in_its_first_line(folder):
    files = _code_files(folder)
    assert len(files) >= 3
    wrong = [str(p.relative_to(ROOT)) for p in files if not _first_line(p).startswith(HEADERS[folder])]
    assert wrong == []


def test_roots_python_never_imports_hermes_code():
    for path in (IMAGE_SRC / "root").rglob("*"):
        head = path.read_bytes()[:60] if path.is_file() else b""
        if not path.is_file() or not (path.suffix == ".py" or head.startswith(b"#!") and b"python" in head):
            continue
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] == "hermes_supervise"}, path


def test_services_sit_with_the_user_that_runs_them():
    for folder, marked in (("root", False), ("hermes", True)):
        for svc in (IMAGE_SRC / folder / "s6-rc.d").iterdir():
            if (svc / "type").read_text().strip() == "longrun":
                assert (svc / "run-by-hermes").exists() is marked, svc


def _copies() -> list[tuple[str, str]]:
    """(source under the repository, destination) of every COPY from image/ in the Dockerfile."""
    return re.findall(r"^COPY (image/\S+) (\S+)$", (ROOT / "Dockerfile").read_text(), re.M)


def test_every_cont_init_script_is_in_one_folder_under_its_installed_name():
    to_cont_init = [(src, dest) for src, dest in _copies() if dest.startswith("/etc/cont-init.d")]
    assert to_cont_init == [("image/root/cont-init.d/", "/etc/cont-init.d/")]
    assert sorted(p.name for p in CONT_INIT.iterdir()) == ["01-hermes-setup", "01-secret-env", "02-reconcile-profiles"]


def installed() -> dict[str, Path]:
    """Installed path -> source file, for every code file of the three folders."""
    found = {}
    for src, dest in _copies():
        source = ROOT / src
        if src.startswith("image/extra-ca") or src.startswith("image/seed"):
            continue
        if source.is_dir():
            for path in source.rglob("*"):
                if path.is_file() and _is_code(path):
                    found[dest.rstrip("/") + "/" + str(path.relative_to(source))] = path
        elif _is_code(source):
            found[dest] = source
    return found


def test_the_image_holds_the_tree_root_owned_and_read_only_for_hermes(containers):
    c = containers.start("tree", env={"HERMES_DASHBOARD": "1"}, wait=False)
    wait_ready(c, timeout=180)  # a shared host can be very busy
    paths = {p: s for p, s in installed().items() if p != "/etc/hermes-init/init"}  # /init's copy is removed
    assert len(paths) >= 60
    listed = " ".join(sorted(paths))
    # Byte for byte the source (so each first line holds in the image), root's, and not writable by
    # hermes: neither the file nor the directory it is in.
    sums = dict(line.split()[::-1] for line in sh(c, f"sha256sum {listed}", user="root").splitlines())
    assert sums == {p: hashlib.sha256(s.read_bytes()).hexdigest() for p, s in paths.items()}
    owners = sh(c, f"stat -c '%U:%G %n' {listed}", user="root").splitlines()
    assert [o for o in owners if not o.startswith("root:root ")] == []
    dirs = " ".join(sorted({p.rsplit("/", 1)[0] or "/" for p in paths}))
    writable = sh(c, f"for p in {listed} {dirs}; do [ -w \"$p\" ] && echo \"$p\"; done; true")
    assert writable == ""
    # The boot ran cont-init in the folder's order, and nothing else.
    ran = re.findall(r"cont-init: running (\S+)", c.logs().decode())
    assert ran == sorted(p.name for p in CONT_INIT.iterdir())
    assert sh(c, "ls /etc/cont-init.d").split() == ran
    assert sh(c, "find /etc/cont-init.d ! -type f ! -type d") == ""  # no link to a script elsewhere
    # The setup hook's older path still leads to it (entrypoint.sh, derived images).
    assert sh(c, "readlink -f /opt/hermes/docker/stage2-hook.sh").strip() == "/etc/cont-init.d/01-hermes-setup"


def test_hermes_programs_run_as_hermes_whoever_starts_them(containers):
    c = containers.start("treeusers", env={"HERMES_DASHBOARD": "1"}, wait=False)
    wait_ready(c, timeout=180)
    hermes_programs = [p.rsplit("/", 1)[1] for p, s in installed().items()
                       if s.is_relative_to(IMAGE_SRC / "hermes" / "docker") and s.parent.name == "docker"]
    assert {"hermes-ctl-agent", "hermes-slots", "hermes-boot-user", "dashboard-served"} <= set(hermes_programs)
    procs = [line.split(None, 1) for line in sh(c, "ps -eo user:12,args", user="root").splitlines()[1:]]
    running = [(user, args) for user, args in procs if any(f"/opt/hermes/docker/{p}" in args for p in hermes_programs)]
    assert running and {user for user, _ in running} == {"hermes"}, running
    roots = [user for user, args in procs if args.startswith(("s6-svscan /run/s6/services", "/bin/sh /etc/hermes-init/stage2"))]
    assert roots == ["root", "root"], procs
    # A root exec of hermes' tools becomes hermes before any of their code runs.
    for tool in ("/opt/hermes/docker/hermes-ctl-agent", "/opt/hermes/docker/hermes-slots"):
        assert sh(c, f"{tool} locked -- id -un", user="root").strip() == "hermes"
