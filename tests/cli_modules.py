"""Run hermesctl in a subprocess as a user would, and report which modules it imported
(sys.modules where it ends: hermesctl leaves through os._exit). For tests of what a command
imports (test_cli_speed.py, test_quick_direct.py); no Docker needed."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The CLI's own entry point (the quick paths first) or, with HERMESCTL_TEST_PATH=full, the full
# CLI alone.
DRIVER = """
import json, os, sys
real_exit = os._exit
def dump_and_exit(status):
    with open(os.environ["HERMESCTL_TEST_MODULES"], "w") as f:
        json.dump(sorted(sys.modules), f)
    real_exit(status)
os._exit = dump_and_exit
sys.argv = ["hermesctl", *sys.argv[1:]]
if os.environ.get("HERMESCTL_TEST_PATH") == "full":
    from hermesctl.core import interrupt
    interrupt.install()  # Ctrl-C as the real entry point takes it (hermesctl.__main__.entry)
    from hermesctl.cli.app import main
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        interrupt.hard_exit(exc.code or 0)
from hermesctl.__main__ import entry
entry()
"""


def run_cli(args: tuple[str, ...], *, modules_file: Path, env: dict, full: bool = False,
            cwd: Path = ROOT) -> tuple[int, str, str, set[str]]:
    """hermesctl ARGS: (exit code, stdout, stderr, the modules it imported)."""
    res = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, timeout=60,
                         cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_TEST_MODULES": str(modules_file),
                                        "HERMESCTL_TEST_PATH": "full" if full else "quick", **env})
    return res.returncode, res.stdout, res.stderr, set(json.loads(modules_file.read_text()))
