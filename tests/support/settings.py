"""The tree, the images' tags, this run's id, and the rule for a Docker test that cannot run."""
import os
import re
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The image's modules that both root's and hermes' code import (owner_rule) sit beside their
# packages in /opt/hermes/docker; tests that import those packages from the tree need them too.
sys.path.insert(0, str(ROOT / "image" / "either" / "docker"))
IMAGE = os.environ.get("HERMES_IMAGE", "hermes-agent:local")
# The full flavour, for the tests of what only it carries (extras, tool programs, the gateways'
# platforms). scripts/test.sh runs the rest on the slim flavour (the same in-container tree, built
# in a minute) while this one builds, and names a file it writes when that build has ended.
FULL_IMAGE = os.environ.get("HERMES_FULL_IMAGE", IMAGE)
FULL_IMAGE_READY = os.environ.get("HERMES_FULL_IMAGE_READY")
FULL_BUILD_WAIT_S = 1800
FLAVOUR_LABEL = "io.hermes-agent.flavour"
IN_CI = os.environ.get("CI", "").lower() == "true"
# Ryuk's image cannot be pulled here; every container is removed by our own fixtures instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
# Every container and volume a test makes carries this in its name. HERMES_TEST_RUN_ID fixes it
# (six hex digits) so that a measurement can tell one run's containers from another's.
RUN_ID = os.environ.get("HERMES_TEST_RUN_ID", "") if re.fullmatch(r"[0-9a-f]{6}", os.environ.get("HERMES_TEST_RUN_ID", "")) \
    else uuid.uuid4().hex[:6]
# Records of the tests' own upgrades (hermesctl.engine.journal) and default backups stay out of
# the operator's ~/.local/state: one directory per test session (subprocesses inherit it).
os.environ.setdefault("XDG_STATE_HOME", tempfile.mkdtemp(prefix=f"hct-{RUN_ID}-state-"))


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"Docker tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"Docker not available: {reason}")
