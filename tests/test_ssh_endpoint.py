"""An ssh:// endpoint, tested the way docker-py tests its own: a container running sshd that
reaches a Docker daemon (here the host's socket), with the docker CLI for `dial-stdio`."""
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, RUN_ID, hermesctl, svstat, wait_for

SSHD_DOCKERFILE = b"""FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends openssh-server \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh
CMD ["/usr/sbin/sshd", "-D", "-e"]
"""


@pytest.fixture(scope="module")
def ssh_endpoint(docker_client, hermes_image, tmp_path_factory):
    missing = [tool for tool in ("ssh", "ssh-keygen") if shutil.which(tool) is None]
    docker_cli = next((p for p in ("/usr/bin/docker", shutil.which("docker")) if p and os.path.exists(p)), None)
    if missing or docker_cli is None:
        reason = f"missing {', '.join(missing) or 'docker CLI'}"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)
    keys = tmp_path_factory.mktemp("ssh")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True)
    docker_client.images.build(fileobj=io.BytesIO(SSHD_DOCKERFILE), tag="hermesctl-test-sshd:latest", rm=True)
    sshd = docker_client.containers.run(
        "hermesctl-test-sshd:latest", detach=True, name=f"hct-{RUN_ID}-sshd", ports={"22/tcp": ("127.0.0.1", None)},
        volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                 docker_cli: {"bind": "/usr/local/bin/docker", "mode": "ro"},
                 str(keys / "id.pub"): {"bind": "/root/.ssh/authorized_keys", "mode": "ro"}})
    sshd.reload()
    port = sshd.attrs["NetworkSettings"]["Ports"]["22/tcp"][0]["HostPort"]
    alias = f"hct-ssh-{RUN_ID}"
    # ssh reads the system config's drop-ins; docker-py passes the port itself (in the URL).
    conf = Path(f"/etc/ssh/ssh_config.d/{alias}.conf")
    conf.write_text(f"Host {alias}\n  HostName 127.0.0.1\n  User root\n  IdentityFile {keys / 'id'}\n"
                    "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    try:
        wait_for(lambda: subprocess.run(["ssh", "-p", port, alias, "docker", "version"],
                                        capture_output=True, timeout=30).returncode == 0,
                 timeout=60, interval=0.5, what="sshd and docker over ssh")
        yield f"ssh://{alias}:{port}"
    finally:
        conf.unlink(missing_ok=True)
        sshd.remove(force=True)


@pytest.fixture(scope="module")
def ssh_fleet(module_containers):
    """More containers than sshd accepts connections at once (MaxStartups 10); the first is also
    the gateway test's (it leaves its default gateway stopped, as the others are)."""
    return [module_containers.start(f"sshpar{i}") for i in range(12)]


def test_ps_and_gateway_over_ssh(ssh_fleet, ssh_endpoint):
    c = ssh_fleet[0]
    res = hermesctl("-H", ssh_endpoint, "ps", "--json", c.name, env={"DOCKER_HOST": ""})
    assert res.code == 0, res
    rows = res.json()["gateways"]
    assert [(r["endpoint"], r["profile"]) for r in rows] == [(ssh_endpoint, "default")]
    # Several execs in a row over ssh (probe, desire, s6-svlisten, probe).
    for verb, up in (("start", True), ("restart", True), ("stop", False)):
        res = hermesctl("-H", ssh_endpoint, "gateway", verb, f"{c.name}:default", env={"DOCKER_HOST": ""})
        assert res.code == 0, (verb, res)
        assert svstat(c, "default")["up"] is up


def test_parallel_work_over_ssh_stays_within_sshd_limits(ssh_fleet, module_containers, ssh_endpoint):
    """A fleet-wide command fans out; over ssh it must not open more connections than sshd
    accepts at once (MaxStartups 10), or some containers would come back as errors."""
    fleet = ssh_fleet
    res = hermesctl("-H", ssh_endpoint, "ps", "--json", f"{module_containers.name('sshpar')}*", env={"DOCKER_HOST": ""})
    assert res.code == 0, res
    rows = res.json()["gateways"]
    assert sorted(r["container"] for r in rows) == sorted(c.name for c in fleet)
    assert all(r["state"] == "down" and r["profile"] == "default" for r in rows)
