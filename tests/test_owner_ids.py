"""Issue 14 item 5: the owners restore gives every entry are the agent's `owner-ids` (the boot's
HERMES_UID/PUID remap, else the image's hermes user), asked in a helper of the image for a
stopped container; the host reads no /etc/passwd. Branches on the host and a fake daemon in
milliseconds; the real answer in real containers, running and stopped, remapped and not."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from fakebackend import FakeBackend, FakeInstance
from support.fake_docker import FakeDocker, endpoint as fake_endpoint
from hermesctl.agent.client import AgentError
from hermesctl.agent.contract import AGENT
from hermesctl.backends.docker import backup
from hermesctl.core.errors import ExecError, NotFoundError
from hermesctl.engine import restore as engine
from hermesctl.model.targets import parse_target

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "image" / "hermes" / "docker"))

from hermes_supervise import agent, owners  # noqa: E402


def _passwd(uid=10000, gid=10000):
    return lambda name: SimpleNamespace(pw_uid=uid, pw_gid=gid)


def _no_user(name):
    raise KeyError(name)


@pytest.mark.parametrize("env, expected", [
    ({}, (10000, 10000)),
    ({"HERMES_UID": "2000", "HERMES_GID": "3000"}, (2000, 3000)),
    ({"PUID": "2001", "PGID": "3001"}, (2001, 3001)),
    ({"HERMES_UID": "2000", "PUID": "9"}, (2000, 10000)),   # the primary name wins; gid stays hermes'
    ({"HERMES_UID": "", "PUID": "9"}, (9, 10000)),          # empty is unset, as the boot reads it
])
def test_owner_ids_follow_the_boots_remap(env, expected):
    ids = owners.owner_ids(env, _passwd())
    assert (ids["uid"], ids["gid"]) == expected and ids["user"] == "hermes"


@pytest.mark.parametrize("value", ["0", "65535", "12a", "-1", "١٢"])
def test_a_remap_the_boot_refuses_is_failed(value):
    with pytest.raises(owners.OwnerError) as err:
        owners.owner_ids({"HERMES_UID": value}, _passwd())
    assert err.value.code == "failed" and "HERMES_UID/PUID" in str(err.value)


def test_the_agent_answers_owner_ids_with_typed_errors(monkeypatch, capsys):
    monkeypatch.setenv("HERMES_UID", "2000")
    monkeypatch.setenv("HERMES_GID", "3000")
    assert agent.main(["owner-ids"]) == 0
    assert json.loads(capsys.readouterr().out) == {"schema": "hermes-contract/v1", "verb": "owner-ids",
                                                   "user": "hermes", "uid": 2000, "gid": 3000}
    monkeypatch.delenv("HERMES_GID")
    monkeypatch.setattr(owners.pwd, "getpwnam", _no_user)
    assert agent.main(["owner-ids"]) == 4
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "not-found"
    monkeypatch.setenv("HERMES_GID", "x")
    assert agent.main(["owner-ids"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "failed"
    assert agent.main(["owner-ids", "extra"]) == 2


def _endpoint(output: str):
    """What ask_in_helper reaches: the container's env (its inspect), and a helper printing `output`."""
    docker = FakeDocker(states={"c" * 64: [{"Config": {"Env": ["PUID=2000", "PATH=/bin"]}}]}, helper_output=output)
    return fake_endpoint(docker, "local")


def test_the_host_asks_the_images_agent_as_hermes_with_the_containers_environment():
    ep = _endpoint('{"schema": "hermes-contract/v1", "verb": "owner-ids", "user": "hermes", "uid": 2000, "gid": 10000}\n')
    assert backup.owner_ids(ep, "c" * 64, "sha256:img") == (2000, 10000)
    [(image, kwargs)] = ep.daemon.created
    assert image == "sha256:img" and kwargs["entrypoint"] == [AGENT] and kwargs["command"] == ["owner-ids"]
    assert kwargs["user"] == "hermes" and kwargs["environment"] == ["PUID=2000", "PATH=/bin"]
    assert "volumes_from" not in kwargs and ep.daemon.removed == ["helper-1"]


@pytest.mark.parametrize("output, error", [
    ('{"schema": "hermes-contract/v1", "error": {"code": "not-found", "message": "no hermes user"}}', NotFoundError),
    ('{"schema": "hermes-contract/v1", "error": {"code": "failed", "message": "HERMES_UID/PUID must be"}}', AgentError),
    ('{"schema": "hermes-contract/v1", "error": {"code": "usage", "message": "unknown verb"}}', Exception),
    ("exec: no such file", ExecError),
    ('{"schema": "hermes-contract/v1", "verb": "owner-ids", "uid": "0", "gid": true}', ExecError),
])
def test_every_other_answer_is_a_typed_error_and_the_helper_goes(output, error):
    ep = _endpoint(output)
    with pytest.raises(error):
        backup.owner_ids(ep, "c" * 64, "img")
    assert ep.daemon.removed == ["helper-1"]


def test_restore_gives_the_agents_owners_and_restarts_even_when_asking_fails(monkeypatch, tmp_path):
    archive = tmp_path / "a.tar.gz"
    monkeypatch.setattr(engine.backup, "read_manifest", lambda path: {"files": {}})
    written = []
    monkeypatch.setattr(engine, "restore_tree", lambda ep, ref, arch, image, owners: written.append(owners) or 3)
    asked = []
    monkeypatch.setattr(engine.backup, "owner_ids", lambda ep, ref, image: asked.append((ref, image)) or (2000, 3000))
    inst = FakeInstance("h1")
    done = engine.restore(FakeBackend([inst]), archive, parse_target("h1"), force=True)
    assert written == [(2000, 3000)] and asked == [("holder", "hermes-agent:old")] and done.written == 3
    assert inst.log == ["stop", "data", "start"]

    def refuse(ep, ref, image):
        raise AgentError("failed", "HERMES_UID/PUID must be a whole number")
    monkeypatch.setattr(engine.backup, "owner_ids", refuse)
    inst = FakeInstance("h2")
    with pytest.raises(AgentError):
        engine.restore(FakeBackend([inst]), archive, parse_target("h2"), force=True)
    assert inst.log == ["stop", "data", "start"] and inst.running and len(written) == 1


def _ids_in(container) -> tuple[int, int]:
    out = container.exec_run([AGENT, "owner-ids"], user="hermes")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    return doc["uid"], doc["gid"]


def test_owner_ids_of_real_containers_running_and_stopped(containers):
    from conftest import wait_ready
    from hermesctl.backends.docker.daemon import connect
    from hermesctl.config.endpoints import Resolved
    plain = containers.start("ids-plain", wait=False)  # the two boot side by side
    remapped = containers.start("ids-remap", env={"PUID": "2000", "HERMES_GID": "3000"}, wait=False)
    wait_ready(plain)
    wait_ready(remapped)
    assert _ids_in(plain) == (10000, 10000)
    assert _ids_in(remapped) == (2000, 3000)
    # What the boot made of the hermes user is what the agent says.
    assert remapped.exec_run(["id", "-u", "hermes"]).output.split() == [b"2000"]
    assert remapped.exec_run(["id", "-g", "hermes"]).output.split() == [b"3000"]
    endpoint = connect(Resolved("local", "unix:///var/run/docker.sock"), timeout=30)
    for c, ids in ((plain, (10000, 10000)), (remapped, (2000, 3000))):
        c.stop(timeout=10)
        assert backup.owner_ids(endpoint, c.id, c.attrs["Image"]) == ids
