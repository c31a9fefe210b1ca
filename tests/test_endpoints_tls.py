"""Issue 9 point 5: a TLS endpoint, for real. A second dockerd listens on tcp://127.0.0.1:PORT
with --tlsverify and certificates made here (openssl); hermesctl reaches it with DOCKER_TLS_VERIFY
and DOCKER_CERT_PATH as the docker CLI does, through a Docker context holding the same TLS
material, and `hermesctl exec` on a TTY hands the context to the docker CLI."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT, hermesctl, second_dockerd, wait_ready
from test_fleet_compose import free_port


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path, *, server_ip: str = "127.0.0.1") -> None:
    """ca.pem, server-{cert,key}.pem (SAN the IP) and the client's cert.pem/key.pem, as
    `docker` and DOCKER_CERT_PATH name them."""
    directory.mkdir(parents=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=wtb test CA",
            "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=directory)
    for who, ext in (("server", f"subjectAltName=IP:{server_ip}\nextendedKeyUsage=serverAuth"),
                     ("client", "extendedKeyUsage=clientAuth")):
        (directory / f"{who}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}", "-keyout", f"{who}-key.pem",
                "-out", f"{who}.csr", cwd=directory)
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-days", "2", "-extfile", f"{who}.ext", "-out", f"{who}-cert.pem", cwd=directory)
    shutil.copy(directory / "client-cert.pem", directory / "cert.pem")
    shutil.copy(directory / "client-key.pem", directory / "key.pem")


@pytest.fixture(scope="module")
def tls_daemon(hermes_image, tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is missing") if IN_CI else pytest.skip("openssl is missing")
    pki = tmp_path_factory.mktemp("tls") / "pki"
    make_pki(pki)
    port = free_port()
    tcp = f"tcp://127.0.0.1:{port}"
    with second_dockerd("tls", hermes_image, extra_args=(
            "--host", tcp, "--tlsverify", "--tlscacert", str(pki / "ca.pem"),
            "--tlscert", str(pki / "server-cert.pem"), "--tlskey", str(pki / "server-key.pem"))) as (_, client, _):
        yield tcp, pki, client


def on_a_tty(arguments: str, env: dict) -> subprocess.CompletedProcess:
    """hermesctl under script(1), which gives it a pseudo-terminal: exec hands over to the docker
    CLI. `arguments` are constants of the test (script(1) takes one command string)."""
    if shutil.which("script") is None or shutil.which("docker") is None:
        pytest.fail("script(1) and the docker CLI are needed") if IN_CI else pytest.skip("no script(1)/docker")
    cli = f"{sys.executable} -m hermesctl {arguments}"
    return subprocess.run(["script", "-qec", cli, "/dev/null"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdin=subprocess.DEVNULL)


NO_DOCKER_ENV = {"DOCKER_HOST": "", "DOCKER_CONTEXT": "", "DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": ""}


def test_docker_host_with_tls_env_lists_the_daemons_containers(tls_daemon, containers):
    tcp, pki, client = tls_daemon
    c = client.containers.run(containers.image, ["sleep", "infinity"], detach=True,
                              name=containers.name("tls"), network_mode="none")
    wait_ready(c)
    tls_env = {**NO_DOCKER_ENV, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(pki)}

    res = hermesctl("-H", tcp, "ps", "--json", c.name, env=tls_env)
    assert res.code == 0, res
    assert [(r["endpoint"], r["container"], r["profile"]) for r in res.json()["gateways"]] == [(tcp, c.name, "default")]
    res = hermesctl("ps", "--json", c.name, env={**tls_env, "DOCKER_HOST": tcp})
    assert res.code == 0 and [r["container"] for r in res.json()["gateways"]] == [c.name], res
    res = hermesctl("-H", tcp, "exec", "--no-tty", c.name, "--", "id", "-un", env=tls_env)
    assert res.code == 0 and res.stdout.strip() == "hermes", res
    # On a TTY: `docker -H tcp://... --tlsverify --tlscacert ... --tlscert ... --tlskey ... exec -it`.
    tty = on_a_tty(f"-H {tcp} exec {c.name} -- id -un", tls_env)
    assert tty.returncode == 0 and "hermes" in tty.stdout, (tty.stdout, tty.stderr)

    # Without TLS settings: a clear one-line error, exit 69.
    res = hermesctl("-H", tcp, "ps", env=NO_DOCKER_ENV)
    assert res.code == 69 and "expects TLS" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res
    # Certificates from another CA: not trusted.
    other = pki.parent / "other"
    make_pki(other)
    res = hermesctl("-H", tcp, "ps", env={**tls_env, "DOCKER_CERT_PATH": str(other)})
    assert res.code == 69 and "TLS" in res.stderr, res
    # A cert path without the files: a usage error naming it, not a traceback.
    res = hermesctl("-H", tcp, "ps", env={**tls_env, "DOCKER_CERT_PATH": str(pki.parent / "nowhere")})
    assert res.code == 2 and "DOCKER_CERT_PATH" in res.stderr, res


def test_tls_context_and_exec_on_a_tty_keep_the_tls_material(tls_daemon, containers, tmp_path):
    tcp, pki, client = tls_daemon
    c = client.containers.run(containers.image, ["sleep", "infinity"], detach=True,
                              name=containers.name("tlsctx"), network_mode="none")
    wait_ready(c)
    config = tmp_path / "docker-config"
    made = subprocess.run(["docker", "--config", str(config), "context", "create", "wtb-tls", "--docker",
                           f"host={tcp},ca={pki / 'ca.pem'},cert={pki / 'cert.pem'},key={pki / 'key.pem'}"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    env = {**NO_DOCKER_ENV, "DOCKER_CONFIG": str(config)}
    # Both ways of reading the context store: ours (no config.json yet, where docker-py does not
    # look) and docker-py's context API (once config.json exists).
    (config / "config.json").unlink(missing_ok=True)
    for with_config_json in (False, True):
        if with_config_json:
            (config / "config.json").write_text(json.dumps({}))
        res = hermesctl("--context", "wtb-tls", "ps", "--json", c.name, env=env)
        assert res.code == 0, (with_config_json, res)
        assert [(r["endpoint"], r["container"]) for r in res.json()["gateways"]] == [("wtb-tls", c.name)]
    res = hermesctl("ps", "--json", c.name, env={**env, "DOCKER_CONTEXT": "wtb-tls"})
    assert res.code == 0 and [r["container"] for r in res.json()["gateways"]] == [c.name], res

    # On a TTY, exec hands over to `docker --context wtb-tls exec -it`: before, it ran
    # `docker -H tcp://...` and the daemon refused the TLS-less client.
    tty = on_a_tty(f"--context wtb-tls exec {c.name} -- id -un", env)
    assert tty.returncode == 0 and "hermes" in tty.stdout, (tty.stdout, tty.stderr)
