"""Shared fixtures: the Docker daemon, the Hermes image (built once per session, cached), and a
factory of real Hermes containers that removes everything it created. They live in
tests/support/ by subject (its __init__ says which module holds what); here they are imported so
pytest finds them, and so `from conftest import NAME` keeps working. The hooks stay here.

In CI (CI=true) a missing daemon or a failed image build FAILS the Docker tests; locally they skip.
"""
import os

import pytest

from support.containers import (QUICK_HEALTH, Containers, containers, module_containers, sh,  # noqa: F401
                                profile_archive, put_profiles, svstat, wait_for, wait_in, wait_ready)
from support.daemons import SWARM_BAD, SWARM_NEXT, second_dockerd, swarm_cluster  # noqa: F401
from support.images import (UPGRADE_BAD, UPGRADE_NEVER_HEALTHY, UPGRADE_NEXT, UPGRADE_QUICK_HEALTH,  # noqa: F401
                            UPGRADE_UNHEALTHY, docker_client, full_image, hermes_image, upgrade_images)
from support.runner import (CliResult, close_and_collect, ctrl_c, hermesctl, hermesctl_until_interrupted,  # noqa: F401
                            installed_launcher, popen_hermesctl)
from support.settings import FULL_IMAGE, IMAGE, IN_CI, ROOT, RUN_ID  # noqa: F401


DAEMON_FIXTURES = {"docker_client", "hermes_image"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Once this worker's last test on the swarm is torn down, the cluster goes in the background
    (a minute of waiting on two daemons' shutdown) while the worker runs its next file; the
    session's end waits for it. Left to the session's end, that minute was the run's last."""
    yield
    uses = lambda i: i is not None and "swarm_cluster" in getattr(i, "fixturenames", ())  # noqa: E731
    if uses(item) and not uses(nextitem):
        item.funcargs["swarm_cluster"].down_in_background()  # funcargs: the whole fixture closure


def pytest_collection_modifyitems(config, items):
    """Every test that needs a daemon (directly or through another fixture) is marked `docker`, so
    `pytest -m "not docker"` is the fast set: the fakes, the parsers, the agent on files."""
    for item in items:
        if DAEMON_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)


try:  # Hypothesis finds its bugs in our runs, not CI's: the same examples on every run.
    from hypothesis import settings as _hypothesis_settings
    _hypothesis_settings.register_profile("derandomized", derandomize=True, database=None)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))
except ImportError:
    pass


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With `--dist loadfile` (scripts/test.sh): the long files first, a file's tests on one
    worker, the swarm files together (tests/file_schedule.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from file_schedule import LongestFirstFileScheduling
    return LongestFirstFileScheduling(config, log)
