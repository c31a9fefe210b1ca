"""More Docker daemons than the machine's: a second dockerd, and one real two-node swarm."""
import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import docker
import pytest

from support.containers import wait_for
from support.settings import IN_CI, RUN_ID


def _client(url: str, **kwargs):
    try:
        client = docker.DockerClient(base_url=url, **kwargs)
        return client if client.ping() else None
    except Exception:  # noqa: BLE001 - not up yet
        return None


@contextlib.contextmanager
def second_dockerd(tag: str, image: str | None, *, extra_args: tuple[str, ...] = ()):
    """A second dockerd on this machine: its own socket, data root, containerd namespace and
    bridge (`--bridge none` would make it delete the main daemon's docker0), with `image` loaded.
    Yields (unix url, client, process); removes everything it made."""
    if shutil.which("dockerd") is None:
        if IN_CI:
            pytest.fail("dockerd is not installed (scripts/ensure-docker.sh)")
        pytest.skip("dockerd is not installed")
    root = Path(f"/tmp/hct-{tag}-{RUN_ID}")
    root.mkdir(parents=True, exist_ok=True)
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "w")
    # Its containers use network_mode=none; the bridge only satisfies the daemon's default network.
    bridge = f"hct{tag}{RUN_ID}"[:15]
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    proc = subprocess.Popen(["dockerd", "--host", f"unix://{sock}", *extra_args, "--data-root", str(root / "data"),
                             "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
                             "--bridge", bridge, "--iptables=false", "--ip-masq=false",
                             "--containerd-namespace", f"hct{tag}{RUN_ID}",
                             "--containerd-plugins-namespace", f"hct{tag}p{RUN_ID}"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"unix://{sock}"
    client = None
    try:
        client = wait_for(lambda: _client(url), timeout=60, what=f"second dockerd ({root / 'dockerd.log'})")
        if image:
            saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            loaded = subprocess.run(["docker", "-H", url, "load", "-q"], stdin=saved.stdout, capture_output=True)
            saved.wait()
            assert loaded.returncode == 0, loaded.stderr
        yield url, client, proc
    finally:
        if proc.poll() is None:
            if client is not None:
                for c in client.containers.list(all=True):
                    c.remove(force=True, v=True)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        # dockerd bind-mounts its data root onto itself and leaves that mount behind.
        subprocess.run(["umount", "-l", str(root / "data")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


# Images the swarm tests upgrade to, loaded on the nodes with ours when the cluster is made.
SWARM_NEXT = f"hermes-agent:wtc-swnext-{RUN_ID}"
SWARM_BAD = f"hermes-agent:wtc-swbad-{RUN_ID}"


@pytest.fixture(scope="session")
def swarm_cluster(docker_client, hermes_image):
    """One real two-node swarm for the session, with each instance's node labelled. Making one
    costs a minute or two, so test_swarm.py and test_secret_swarm.py share it (tests/file_schedule.py
    keeps both on one worker); each deploys its own stack on it and removes it at its end."""
    from derived_images import build_bad, build_next
    from swarm_cluster import SwarmCluster

    missing = [t for t in ("dockerd", "nsenter", "unshare", "ip", "iptables") if shutil.which(t) is None]
    missing += ["root"] if os.geteuid() != 0 else []
    if missing:
        if IN_CI:
            pytest.fail(f"a two-node swarm needs: {', '.join(missing)}")
        pytest.skip(f"a two-node swarm needs: {', '.join(missing)}")
    build_next(docker_client, SWARM_NEXT, hermes_image)
    build_bad(docker_client, SWARM_BAD, hermes_image)
    cluster = SwarmCluster(f"hctc{RUN_ID}", subnet=f"10.231.{int(RUN_ID[:2], 16)}")
    try:
        cluster.up([hermes_image, SWARM_NEXT, SWARM_BAD])
        cluster.label_instances()
        yield cluster
    finally:
        cluster.down_after_background()
        for tag in (SWARM_NEXT, SWARM_BAD):
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.ImageNotFound:
                pass
