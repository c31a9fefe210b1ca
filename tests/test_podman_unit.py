"""Issue 27 without a daemon: the Podman dialect (hermesctl.backends.docker.podman) on the answers Podman
4.3 gives (recorded from tests/test_podman.py's service), in milliseconds."""
import io
import tarfile
from types import SimpleNamespace

import pytest
from docker.errors import APIError
from requests.structures import CaseInsensitiveDict

from conftest import hermesctl
from hermesctl.backends.docker import recreate
from hermesctl.backends.docker import podman
from hermesctl.backends.docker.backup import _stream_tar
from hermesctl.cli.quick_ps import parse
from hermesctl.core.errors import HermesctlError, UsageError

PODMAN_PING = {b"api-version": b"1.41", b"libpod-api-version": b"4.3.1", b"server": b"Libpod/4.3.1 (linux)"}
DOCKER_PING = CaseInsensitiveDict({"Api-Version": "1.41", "Server": "Docker/20.10.24+dfsg1 (linux)"})

# A compose container's inspect as Podman 4.3 reports it (the parts recreate reads).
PODMAN_INSPECT = {
    "Id": "f1589bb4b2db" + "0" * 52, "Name": "/fleet-hermes-1-1",
    "Config": {"Hostname": "hermes-1", "User": "", "Image": "localhost/hermes-agent:local-slim",
               "Env": ["HERMES_HOME=/opt/data", "TERM=xterm", "container=podman", "PUID=10000",
                       "HOME=/root", "HOSTNAME=hermes-1", "NOTE=kept"],
               "Cmd": ["sleep", "infinity"], "Labels": {"io.hermes-agent.managed": "true", "team": "ops"},
               "StopSignal": "15"},
    "HostConfig": {"Binds": ["fleet_hermes-1-data:/opt/data:rw,rprivate,nosuid,nodev,rbind"], "NetworkMode": "bridge",
                   "Ulimits": [{"Name": "RLIMIT_NOFILE", "Hard": 4096, "Soft": 4096},
                               {"Name": "RLIMIT_NPROC", "Hard": 4096, "Soft": 4096}],
                   "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
    "Mounts": [{"Type": "volume", "Name": "fleet_hermes-1-data", "Destination": "/opt/data", "RW": True}],
    "NetworkSettings": {"Networks": {"fleet_default": {"Aliases": ["fleet-hermes-1-1", "hermes-1", "f1589bb4b2db"]}}},
}
IMAGE_CONFIG = {"Env": ["HERMES_HOME=/opt/data"], "Cmd": None, "Labels": {"io.hermes-agent.managed": "true"}}


def test_the_engine_is_read_from_the_ping_answer_and_named_engines_are_checked():
    assert podman.engine_from_ping(PODMAN_PING) == "podman"
    assert podman.engine_from_ping(CaseInsensitiveDict({"Server": "Libpod/4.3.1 (linux)"})) == "podman"
    assert podman.engine_from_ping(DOCKER_PING) == "docker"
    assert podman.engine_from_ping({"Api-Version": "1.41"}) is None  # a proxy: neither says
    assert podman.choose("podman", None, "x") == "podman"
    assert podman.choose(None, None, "x") == "docker"
    assert podman.choose(None, "podman", "x") == "podman"  # named where the answer says nothing
    with pytest.raises(UsageError, match="answers as Podman, not Docker"):
        podman.choose("podman", "docker", "x")
    with pytest.raises(UsageError, match="one of docker, podman"):
        podman.choose(None, "lxc", "x")


def test_recreate_reads_podmans_inspect_as_dockers():
    dialect = podman.dialect(SimpleNamespace(engine="podman"))
    spec = recreate.spec_from_inspect(dialect.creation_inspect(PODMAN_INSPECT), IMAGE_CONFIG)
    # Podman's create refuses RLIMIT_NOFILE: it takes the names Docker uses.
    assert spec.host_config["Ulimits"] == [{"Name": "nofile", "Hard": 4096, "Soft": 4096},
                                           {"Name": "nproc", "Hard": 4096, "Soft": 4096}]
    # What Podman adds to every container is not copied; what the operator set is.
    assert spec.config["Env"] == ["PUID=10000", "NOTE=kept"]
    assert spec.config["Labels"] == {"team": "ops"}
    assert spec.primary_network == "fleet_default" and spec.networks["fleet_default"]["Aliases"] == [
        "fleet-hermes-1-1", "hermes-1"]
    assert PODMAN_INSPECT["HostConfig"]["Ulimits"][0]["Name"] == "RLIMIT_NOFILE"  # the input is not changed
    # Docker's dialect translates nothing; a root HOME set by an operator for another user stays.
    docker = podman.dialect(SimpleNamespace(engine="docker"))
    assert docker.creation_inspect(PODMAN_INSPECT) is PODMAN_INSPECT
    as_user = {**PODMAN_INSPECT, "Config": {**PODMAN_INSPECT["Config"], "User": "hermes"}}
    assert "HOME=/root" in dialect.creation_inspect(as_user)["Config"]["Env"]


def test_image_names_health_and_exec_errors_by_engine():
    pod, dock = podman.dialect(SimpleNamespace(engine="podman")), podman.dialect(SimpleNamespace())
    assert pod.image_name("localhost/hermes-agent:x") == "hermes-agent:x" == dock.image_name("hermes-agent:x")
    assert dock.image_name("localhost/hermes-agent:x") == "localhost/hermes-agent:x"
    daemon = lambda driver: SimpleNamespace(info=lambda: {"CgroupDriver": driver})  # noqa: E731
    assert not pod.runs_healthchecks(daemon("cgroupfs")) and pod.runs_healthchecks(daemon("systemd"))
    assert dock.runs_healthchecks(daemon("cgroupfs"))
    gone = APIError("500 Server Error", response=SimpleNamespace(status_code=500),
                    explanation="no such exec session: exec abc found in container def")
    other = APIError("500 Server Error", response=SimpleNamespace(status_code=500), explanation="disk full")
    improper = APIError("500 Server Error", response=SimpleNamespace(status_code=500),
                        explanation="can only create exec sessions on running containers: container state improper")
    assert pod.exec_found_it_stopped(improper) and not dock.exec_found_it_stopped(improper)
    conflict = APIError("409", response=SimpleNamespace(status_code=409), explanation="not running")
    assert pod.exec_found_it_stopped(gone) and pod.exec_found_it_stopped(conflict)
    assert not pod.exec_found_it_stopped(other) and not dock.exec_found_it_stopped(gone)
    assert dock.exec_found_it_stopped(conflict)
    assert dock.archive_owners and not pod.archive_owners


def _tar(names: list[tuple[str, bytes | None]], *, link: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in names:
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 10000
            if body is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(body), 0o640
                tar.addfile(info, io.BytesIO(body))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.LNKTYPE, link[1]
            tar.addfile(info)
    return buffer.getvalue()


def test_a_stopped_containers_archive_is_read_with_dockers_names():
    archive = _tar([("", None), ("/.env", b"A=1\n"), ("/profiles", None)])
    daemon = SimpleNamespace(get_archive=lambda ref, path: iter([archive]))
    names = {}
    for engine in ("podman", "docker"):
        with _stream_tar(SimpleNamespace(daemon=daemon, engine=engine, name="e"), "c", "/opt/data") as tar:
            names[engine] = [m.name for m in tar]
    assert names["podman"] == ["data", "data/.env", "data/profiles"]
    assert names["docker"] == ["", "/.env", "/profiles"]  # Docker never sends these: nothing renamed
    already = _tar([("data", None), ("data/.env", b"A=1\n")])
    daemon.get_archive = lambda ref, path: iter([already])
    with _stream_tar(SimpleNamespace(daemon=daemon, engine="podman", name="e"), "c", "/opt/data") as tar:
        assert [m.name for m in tar] == ["data", "data/.env"]  # a running container's, as Docker's


def test_a_backup_whose_archive_has_no_data_root_fails_and_leaves_nothing(tmp_path):
    """What a stopped Podman container sent before the dialect named its entries: read as
    Docker's (no rename), nothing is under data/; the backup fails instead of keeping nothing."""
    from hermesctl.backends.docker.backup import BackupError, create_backup
    inspect = {"Id": "c" * 64, "Name": "/h", "Image": "sha256:i", "State": {"Running": False},
               "Config": {"Image": "hermes-agent:x", "Labels": {"io.hermes-agent.version": "0.19.0"}}}
    daemon = SimpleNamespace(inspect_container=lambda ref: inspect,
                             get_archive=lambda ref, path: iter([_tar([("", None), ("/.env", b"A=1\n")])]))
    endpoint = SimpleNamespace(daemon=daemon, engine="docker", name="e")
    with pytest.raises(BackupError, match="no data/ entry"):
        create_backup(endpoint, "h", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    endpoint.engine = "podman"  # the same answer, named as Docker names it: a whole backup
    made = create_backup(endpoint, "h", tmp_path / "out")
    assert list(made.manifest["files"]) == [".env"]


def test_a_tree_is_put_into_the_volume_itself_on_podman():
    put = []
    daemon = SimpleNamespace(put_archive=lambda ref, path, data: put.append((ref, path, data.read())))
    staged = _tar([("opt/data/.hermesctl-restore", None), ("opt/data/.hermesctl-restore/new/f", b"x")],
                  link=("opt/data/.hermesctl-restore/new/g", "opt/data/.hermesctl-restore/new/f"))
    podman.dialect(SimpleNamespace(engine="podman")).put_tree(daemon, "c", io.BytesIO(staged), "/opt/data")
    [(ref, path, body)] = put
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        members = tar.getmembers()
    assert (ref, path) == ("c", "/opt/data")
    assert [m.name for m in members] == [".hermesctl-restore", ".hermesctl-restore/new/f", ".hermesctl-restore/new/g"]
    assert members[2].linkname == ".hermesctl-restore/new/f" and members[1].uid == 10000
    put.clear()
    podman.dialect(SimpleNamespace(engine="docker")).put_tree(daemon, "c", io.BytesIO(staged), "/opt/data")
    assert put[0][:2] == ("c", "/") and put[0][2] == staged
    outside = _tar([("etc/passwd", b"x")])
    with pytest.raises(HermesctlError, match="not under /opt/data"):
        podman.dialect(SimpleNamespace(engine="podman")).put_tree(daemon, "c", io.BytesIO(outside), "/opt/data")


def test_engine_option_on_both_command_lines():
    assert parse(["--engine", "podman", "ps", "--wide"])["engine"] == "podman"
    assert parse(["ps"])["engine"] is None
    for args in (("--engine", "lxc", "ps"), ("--engine", "lxc", "doctor"), ("--engine", "podman", "--swarm", "unix:///x", "ps")):
        res = hermesctl(*args)
        assert res.code == 2 and "--engine" in res.stderr, (args, res)


def test_a_container_that_exits_at_once_on_podman_names_the_boot_gate():
    """The upgrade's output says which gate judged: on an engine that runs no healthchecks a
    new container that exits before the first look failed the boot gate, not Docker's health."""
    from hermesctl.backends.base import Started
    from hermesctl.engine import health_gate
    from support.fake_docker import FakeDocker, endpoint as fake_endpoint
    exited = {"State": {"Status": "exited", "ExitCode": 3, "Running": False},
              "Config": {"Healthcheck": {"Test": ["CMD", "/opt/hermes/docker/healthcheck.sh"]}}}
    started = Started(fake_endpoint(FakeDocker(states={"c": [exited]}), "p", engine="podman"), "c", "h")
    for runs, gate in ((False, health_gate.GATE_BOOT_NO_ENGINE), (True, health_gate.GATE_DOCKER)):
        verdict = health_gate.wait(None, started, [], timeout=5, settle=1, engine_runs_healthchecks=runs)
        assert not verdict and verdict.gate == gate and verdict.detail == "exited with code 3", verdict
