"""Issue 8 without Docker: what recreate keeps from inspect data, how swarm nodes are reached,
and which archive members backup/restore accept. (Behaviour is proven on real containers in
test_backup_restore.py, test_upgrade.py and test_swarm.py.)"""
import hashlib
import io
import json
import tarfile

import pytest

from hermesctl.backends.docker.backup import BackupError, MANIFEST_SCHEMA, _relative, data_checksum, read_manifest
from hermesctl.backends.docker.recreate import spec_from_inspect
from hermesctl.backends.swarm.backend import is_hermes_service, node_url

IMAGE_CONFIG = {
    "Env": ["PATH=/usr/bin", "HERMES_HOME=/opt/data"],
    "Labels": {"io.hermes-agent.managed": "true", "io.hermes-agent.version": "0.19.0"},
    "Entrypoint": ["/init", "/opt/hermes/docker/main-wrapper.sh"],
    "Cmd": None,
    "Healthcheck": {"Test": ["CMD", "/opt/hermes/docker/healthcheck.sh"]},
    "Volumes": {"/opt/data": {}},
}


def _inspect(**overrides) -> dict:
    base = {
        "Id": "0123456789abcdef" * 4,
        "Name": "/hermes-1",
        "Image": "sha256:old",
        "Config": {"Hostname": "0123456789ab", "Env": ["PATH=/usr/bin", "HERMES_HOME=/opt/data", "PUID=1000"],
                   "Labels": {"io.hermes-agent.managed": "true", "io.hermes-agent.version": "0.19.0",
                              "com.docker.compose.service": "hermes-1"},
                   "Entrypoint": ["/init", "/opt/hermes/docker/main-wrapper.sh"], "Cmd": ["sleep", "infinity"],
                   "Healthcheck": {"Test": ["CMD", "/opt/hermes/docker/healthcheck.sh"]},
                   "Volumes": {"/opt/data": {}}, "Image": "hermes-agent:local"},
        "HostConfig": {"Binds": None, "NetworkMode": "fleet_default",
                       "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                       "PortBindings": {"9119/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9119"}]}},
        "Mounts": [{"Type": "volume", "Name": "f00d", "Destination": "/opt/data", "RW": True}],
        "NetworkSettings": {"Networks": {
            "fleet_default": {"Aliases": ["hermes-1", "0123456789ab"], "IPAMConfig": None},
            "backend": {"Aliases": ["h1"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}}}},
    }
    base.update(overrides)
    return base


def test_recreate_keeps_what_the_container_asked_for_and_drops_what_the_image_gave():
    spec = spec_from_inspect(_inspect(), IMAGE_CONFIG)
    assert spec.name == "hermes-1"
    assert spec.config["Env"] == ["PUID=1000"]                       # image defaults follow the new image
    assert spec.config["Labels"] == {"com.docker.compose.service": "hermes-1"}  # so does the version label
    assert spec.config["Cmd"] == ["sleep", "infinity"]
    assert "Entrypoint" not in spec.config and "Healthcheck" not in spec.config
    assert "Hostname" not in spec.config                              # docker's default: the old short id
    assert spec.host_config["Binds"] == ["f00d:/opt/data"]             # the anonymous volume, by name
    assert spec.host_config["RestartPolicy"]["Name"] == "unless-stopped"
    assert spec.primary_network == "fleet_default"
    assert spec.networks["fleet_default"] == {"Aliases": ["hermes-1"]}
    assert spec.networks["backend"] == {"Aliases": ["h1"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}}
    assert spec.summary()["ports"] == ["127.0.0.1:9119->9119/tcp"]


def test_recreate_keeps_a_named_volume_and_everything_when_the_old_image_is_gone():
    inspect = _inspect()
    inspect["HostConfig"]["Mounts"] = [{"Type": "volume", "Source": "data1", "Target": "/opt/data"}]
    spec = spec_from_inspect(inspect, None)
    assert spec.host_config.get("Binds") is None                      # already mounted by name
    assert spec.config["Healthcheck"] and spec.config["Entrypoint"]    # nothing to compare against


def test_swarm_node_endpoint_precedence():
    node = {"Description": {"Hostname": "node-a"}, "Spec": {"Labels": {}}}
    assert node_url(node, {}) == ("ssh://node-a", "default")
    assert node_url(node, {"node-a": "tcp://10.0.0.5:2376"}) == ("tcp://10.0.0.5:2376", "fleet file")
    node["Spec"]["Labels"]["io.hermes-agent.endpoint"] = "ssh://ops@node-a:2222"
    assert node_url(node, {"node-a": "tcp://10.0.0.5:2376"}) == ("ssh://ops@node-a:2222", "label")


def test_hermes_services_are_found_by_service_or_container_label():
    assert is_hermes_service({"Spec": {"Labels": {"io.hermes-agent.managed": "true"}}})
    assert is_hermes_service({"Spec": {"TaskTemplate": {"ContainerSpec": {
        "Labels": {"io.hermes-agent.managed": "true"}}}}})
    assert not is_hermes_service({"Spec": {"Labels": {}, "TaskTemplate": {"ContainerSpec": {}}}})


@pytest.mark.parametrize("member,expected", [
    ("data", ""), ("data/", ""), ("data/state.db", "state.db"), ("data/profiles/a/.env", "profiles/a/.env"),
    ("data/../etc/passwd", None), ("etc/passwd", None), ("/data/x", None), ("data/a/./b", None),
    ("database/x", None),
])
def test_archive_members_must_stay_under_data(member, expected):
    assert _relative(member) == expected


def test_data_checksum_depends_on_paths_and_contents_not_order():
    a = data_checksum({"x": "1", "y": "2"})
    assert a == data_checksum({"y": "2", "x": "1"})
    assert a != data_checksum({"x": "2", "y": "1"}) and a != data_checksum({"x": "1", "z": "2"})


def test_an_archive_writing_through_its_own_symlink_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("data/etc")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
        body = b"root::0:0::/:/bin/sh\n"
        evil = tarfile.TarInfo("data/etc/passwd")
        evil.size = len(body)
        tar.addfile(evil, io.BytesIO(body))
        files = {"etc/passwd": hashlib.sha256(body).hexdigest()}
        raw = json.dumps({"schema": MANIFEST_SCHEMA, "files": files, "data_sha256": data_checksum(files)}).encode()
        manifest = tarfile.TarInfo("manifest.json")
        manifest.size = len(raw)
        tar.addfile(manifest, io.BytesIO(raw))
    with pytest.raises(BackupError, match="under a symlink"):
        read_manifest(archive)
