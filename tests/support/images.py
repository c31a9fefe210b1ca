"""The daemon's client and the images the Docker tests run: ours (built once per session,
cached), the full flavour once its build has ended, and the upgrade tests' derived images."""
import os
import subprocess
import time
from pathlib import Path

import docker
import pytest

from support.settings import FLAVOUR_LABEL, FULL_BUILD_WAIT_S, FULL_IMAGE, FULL_IMAGE_READY, IMAGE, ROOT, RUN_ID, _unavailable


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no daemon
        _unavailable(str(exc))
    return client


@pytest.fixture(scope="session")
def hermes_image(docker_client):
    if os.environ.get("HERMES_TEST_SKIP_BUILD") != "1":
        result = subprocess.run(["bash", "scripts/build-image.sh"], cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            _unavailable(f"image build failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    docker_client.images.get(IMAGE)
    return IMAGE


@pytest.fixture(scope="session")
def full_image(docker_client, hermes_image):
    """The full flavour's tag, once its build has ended (never a skip: a test of what the full
    flavour carries fails when it is not there)."""
    if FULL_IMAGE_READY:
        deadline = time.monotonic() + FULL_BUILD_WAIT_S
        while not os.path.exists(FULL_IMAGE_READY):
            if time.monotonic() > deadline:
                pytest.fail(f"the full image's build did not end within {FULL_BUILD_WAIT_S}s", pytrace=False)
            time.sleep(1)
        verdict = Path(FULL_IMAGE_READY).read_text()
        if verdict.strip() != "ok":
            pytest.fail(f"the full image's build failed:\n{verdict[-3000:]}", pytrace=False)
    flavour = docker_client.images.get(FULL_IMAGE).labels.get(FLAVOUR_LABEL)
    if flavour != "full":
        pytest.fail(f"{FULL_IMAGE} is the {flavour or 'unlabelled'} flavour, not the full one "
                    "(HERMES_FULL_IMAGE names the full flavour's tag)", pytrace=False)
    return FULL_IMAGE


# Images the upgrade tests move to (tests/derived_images.py), one set per worker process.
UPGRADE_NEXT = f"hermes-agent:wtc-next-{RUN_ID}"
UPGRADE_BAD = f"hermes-agent:wtc-bad-{RUN_ID}"
UPGRADE_UNHEALTHY = f"hermes-agent:wtc-unhealthy-{RUN_ID}"
UPGRADE_NEVER_HEALTHY = f"hermes-agent:wtc-neverhealthy-{RUN_ID}"
UPGRADE_QUICK_HEALTH = f"hermes-agent:wtc-quickhealth-{RUN_ID}"


@pytest.fixture(scope="module")
def upgrade_images(docker_client, hermes_image):
    """(ours, next, bad), built on top of ours in seconds (the unhealthy ones too), removed after
    the module. test_upgrade.py and test_upgrade_plain.py each build them: two files that
    xdist can run side by side."""
    from derived_images import build_bad, build_never_healthy, build_next, build_quick_health, build_unhealthy
    build_next(docker_client, UPGRADE_NEXT, hermes_image)
    build_quick_health(docker_client, UPGRADE_QUICK_HEALTH, hermes_image)
    build_bad(docker_client, UPGRADE_BAD, hermes_image)
    build_unhealthy(docker_client, UPGRADE_UNHEALTHY, hermes_image)
    build_never_healthy(docker_client, UPGRADE_NEVER_HEALTHY, hermes_image)
    yield hermes_image, UPGRADE_NEXT, UPGRADE_BAD
    for tag in (UPGRADE_NEXT, UPGRADE_BAD, UPGRADE_UNHEALTHY, UPGRADE_NEVER_HEALTHY, UPGRADE_QUICK_HEALTH):
        docker_client.images.remove(tag, force=True)
