"""A short run of benchmarks/fault_script.py: every fault kind once on one container, no loss."""
import subprocess
import sys

from conftest import ROOT


def test_fault_script_short_run_loses_nothing(hermes_image):
    result = subprocess.run([sys.executable, "benchmarks/fault_script.py", "--containers", "1", "--cycles", "1",
                             "--image", hermes_image], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "losses: 0; commands that misbehaved: 0" in result.stdout
    assert "faults: 8 " in result.stdout
