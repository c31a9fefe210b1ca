"""Issue 19 without Docker: the reference syntax, reading env and files (the errors, their lines
and exit status), what apply shows instead of a value, and the image's secret loader on a
temporary HERMES_HOME. The real containers and the real swarm: test_secret_refs.py,
test_secret_swarm.py."""
import json
import os
import sys

import pytest

from conftest import ROOT
from hermesctl.commands.apply import MASK, show_env
from hermesctl.config.fleetfile import load_fleet_file
from hermesctl.config.references import Reference, hmac_of, resolve, secret_references
from hermesctl.core.errors import FleetFileError, UsageError
from hermesctl.core.exit_codes import ExitStatus

sys.path.insert(0, str(ROOT / "image" / "hermes" / "docker"))
from hermes_supervise import secretenv  # noqa: E402

HEAD = "version: 1\ncontainers:\n  c1:\n    profiles:\n      coder:\n        env:\n"


def _fleet(tmp_path, *env_lines: str):
    path = tmp_path / "fleet.yaml"
    path.write_text(HEAD + "".join(f"          {line}\n" for line in env_lines))
    return path


def _env(spec) -> dict:
    return spec.containers[0].profiles[0].env


def test_each_source_parses_to_a_reference_with_its_line(tmp_path):
    spec = load_fleet_file(str(_fleet(tmp_path, "A_KEY: {from_env: HCT_A}", "B_TOKEN: {from_file: keys/b}",
                                      "C_SECRET: {from_secret: c.v1}", "MODEL: plain")))
    env = _env(spec)
    assert env["A_KEY"] == Reference("env", "HCT_A", 7)
    assert env["B_TOKEN"] == Reference("file", "keys/b", 8)
    assert env["C_SECRET"] == Reference("secret", "c.v1", 9)
    assert env["MODEL"] == "plain"
    assert [(c, p, k) for c, p, k, _ in secret_references(spec)] == [("c1", "coder", "C_SECRET")]
    assert spec.warnings == ()  # references and ordinary literals: nothing to warn about


@pytest.mark.parametrize("line,message", [
    ("A_KEY: {from_env: HCT_A, from_file: x}", "env A_KEY: give exactly one of from_env, from_file, from_secret"),
    ("A_KEY: {from_vault: x}", "env A_KEY: unknown key 'from_vault'"),
    ("A_KEY: {from_env: 1BAD-NAME}", "env A_KEY: from_env needs an environment variable name"),
    ("A_KEY: {from_secret: '-bad'}", "env A_KEY: from_secret needs a Docker secret name"),
    ("A_KEY: {from_env: [x]}", "env A_KEY from_env must be a single value"),
])
def test_malformed_references_name_the_line(tmp_path, line, message):
    path = _fleet(tmp_path, line)
    with pytest.raises(FleetFileError) as err:
        load_fleet_file(str(path))
    assert err.value.message.startswith(f"{path}:7: ") and message in err.value.message
    assert err.value.status == ExitStatus.USAGE


def test_literals_whose_key_looks_like_a_secret_are_warned_about_with_their_line(tmp_path):
    path = _fleet(tmp_path, "OPENAI_API_KEY: sk-1", "SLACK_BOT_TOKEN: t", "CLIENT_SECRET: s", "DB_PASSWORD: p",
                  "GITHUB_PAT: g", "OPENROUTER_MODEL: m", "KEYBOARD: k")
    warned = [w.split(": env ")[1].split()[0] for w in load_fleet_file(str(path)).warnings]
    assert warned == ["OPENAI_API_KEY", "SLACK_BOT_TOKEN", "CLIENT_SECRET", "DB_PASSWORD", "GITHUB_PAT"]
    assert load_fleet_file(str(path)).warnings[0].startswith(f"{path}:7: env OPENAI_API_KEY is a literal value")
    assert all("sk-1" not in w for w in load_fleet_file(str(path)).warnings)


def test_env_and_file_values_are_read_relative_to_the_fleet_file(tmp_path, monkeypatch):
    (tmp_path / "keys").mkdir()
    secret = tmp_path / "keys" / "b"
    secret.write_bytes(b"file-value\r\n")
    secret.chmod(0o400)
    monkeypatch.setenv("HCT_A", "env-value")
    monkeypatch.chdir("/")  # relative to the fleet file, not to the working directory
    spec = resolve(load_fleet_file(str(_fleet(tmp_path, "A_KEY: {from_env: HCT_A}", "B_TOKEN: {from_file: keys/b}"))))
    assert {k: v.value for k, v in _env(spec).items()} == {"A_KEY": "env-value", "B_TOKEN": "file-value"}
    assert "env-value" not in repr(spec)  # nor in a traceback that prints the spec


@pytest.mark.parametrize("setup,line,message", [
    (lambda t, m: None, "A_KEY: {from_env: HCT_UNSET_A}", "env A_KEY: HCT_UNSET_A is not set in the environment"),
    (lambda t, m: m.setenv("HCT_A", ""), "A_KEY: {from_env: HCT_A}", "env A_KEY: from_env:HCT_A is empty"),
    (lambda t, m: m.setenv("HCT_A", "a${HOME}"), "A_KEY: {from_env: HCT_A}", "would be expanded"),
    (lambda t, m: None, "B_TOKEN: {from_file: nothere}", "env B_TOKEN: from_file 'nothere': no such file"),
    (lambda t, m: _write(t / "f", b"x\n", 0o644), "B_TOKEN: {from_file: f}",
     "env B_TOKEN: from_file 'f': mode 0644 lets group or others read or write it; chmod 600 it"),
    (lambda t, m: _write(t / "f", b"x\n", 0o640), "B_TOKEN: {from_file: f}", "mode 0640 lets group"),
    (lambda t, m: _write(t / "f", b"line1\nline2\n", 0o600), "B_TOKEN: {from_file: f}", "holds more than one line"),
    (lambda t, m: _write(t / "f", b"\xff\xfe", 0o600), "B_TOKEN: {from_file: f}", "not UTF-8 text"),
    (lambda t, m: (t / "d").mkdir(mode=0o700), "B_TOKEN: {from_file: d}", "not a regular file"),
    (lambda t, m: _write(t / "f", b"\n", 0o600), "B_TOKEN: {from_file: f}", "from_file:f is empty"),
])
def test_a_reference_that_cannot_be_read_is_a_one_line_usage_error(tmp_path, monkeypatch, setup, line, message):
    monkeypatch.delenv("HCT_UNSET_A", raising=False)
    setup(tmp_path, monkeypatch)
    path = _fleet(tmp_path, line)
    with pytest.raises(UsageError) as err:
        resolve(load_fleet_file(str(path)))
    assert err.value.message.startswith(f"{path}:7: ") and message in err.value.message, err.value.message
    assert "\n" not in err.value.message and "line1" not in err.value.message
    assert err.value.status == ExitStatus.USAGE


def _write(path, data: bytes, mode: int) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def test_a_referenced_value_is_never_shown_even_with_show_values():
    key = bytes(range(32))
    refs = {"A_KEY": Reference("env", "HCT_A", 7)}
    diff = {"A_KEY": "new-secret-value", "MODEL": "m1"}
    shown = show_env(diff, show_values=True, refs=refs, current={"A_KEY": "old-secret-value"}, key=key)
    assert shown == (f"A_KEY=from_env:HCT_A (hmac {hmac_of(key, 'new-secret-value')}, "
                     f"was {hmac_of(key, 'old-secret-value')}), MODEL=m1")
    assert show_env(diff, show_values=False, refs=refs, key=key).endswith(f"was unset), MODEL={MASK}")
    # Keyed: the same value hashes differently under another container's key.
    assert hmac_of(key, "v") != hmac_of(bytes(32), "v") and len(hmac_of(key, "v")) == 12


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    for profile in ("coder", "writer"):
        (home / "profiles" / profile).mkdir(parents=True)
        (home / "profiles" / profile / "SOUL.md").write_text("soul\n")
    (home / "profiles" / "coder" / ".env").write_text("# mine\nOTHER=kept\nTOKEN_A=old\n")
    monkeypatch.setenv("HERMES_HOME", str(home))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    return home, secrets


def test_the_image_writes_secrets_into_env_and_reports_only_names(home, tmp_path):
    home, secrets = home
    (secrets / "hermes-env.coder.TOKEN_A").write_text("from-swarm-a\n")
    (secrets / "hermes-env.coder.TOKEN_B").write_text("from-swarm-b")
    (secrets / "hermes-env.writer.BAD").write_text("two\nlines\n")
    (secrets / "hermes-env.ghost.TOKEN").write_text("x\n")  # no such profile
    (secrets / "hermes-env.default.TOKEN").write_text("d\n")
    (secrets / "unrelated").write_text("not ours\n")
    os.symlink("/etc/hostname", secrets / "hermes-env.writer.LINK")

    check = secretenv.load(check=True, directory=str(secrets))
    assert check == {"coder": {"TOKEN_A": "differs", "TOKEN_B": "differs"}, "default": {"TOKEN": "differs"},
                     "ghost": {"TOKEN": "no-profile"}, "writer": {"BAD": "refused", "LINK": "unreadable"}}
    assert (home / "profiles" / "coder" / ".env").read_text() == "# mine\nOTHER=kept\nTOKEN_A=old\n"

    done = secretenv.load(directory=str(secrets))
    assert done["coder"] == {"TOKEN_A": "written", "TOKEN_B": "written"}
    assert (home / "profiles" / "coder" / ".env").read_text() == \
        "# mine\nOTHER=kept\nTOKEN_A=from-swarm-a\nTOKEN_B=from-swarm-b\n"
    assert oct((home / "profiles" / "coder" / ".env").stat().st_mode & 0o777) == "0o600"
    assert (home / ".env").read_text() == "TOKEN=d\n"
    assert "from-swarm" not in json.dumps(done)
    assert secretenv.load(["coder"], check=True, directory=str(secrets)) == \
        {"coder": {"TOKEN_A": "same", "TOKEN_B": "same"}}


def test_the_example_fleet_file_holds_references_for_every_secret():
    spec = load_fleet_file(str(ROOT / "compose" / "fleet.example.yaml"))
    assert spec.warnings == ()
    values = [v for c in spec.containers for p in c.profiles for v in p.env.values()]
    assert values and all(isinstance(v, Reference) for v in values)


# apply's branches for from_secret on recorded answers: what it asks, what it plans.
from hermesctl.agent.contract import AGENT, SCHEMA  # noqa: E402
from hermesctl.backends.docker.execs import ExecResult  # noqa: E402
from hermesctl.backends.swarm.backend import SwarmBackend, SwarmTask  # noqa: E402
from hermesctl.commands.apply import make_plan  # noqa: E402

from fakefleet import FakeFleet, container, recorded  # noqa: E402
from support.fake_docker import FakeDocker, endpoint as fake_endpoint  # noqa: E402

SECRETS = {"tok-v1": "sid1aaaaaaaaaaaaaaaaaaaaa", "tok-v2": "sid2bbbbbbbbbbbbbbbbbbbbb"}


def _manager(attached: list[dict]) -> FakeDocker:
    """The swarm manager's side: its secrets, and the service whose task is h1."""
    # No PUID here: the ids a secret file gets are the task's agent's answer (owner-ids), the
    # remap rule is the image's alone.
    return FakeDocker(secrets=SECRETS, services={"*": lambda name: {"ID": "svc1", "Spec": {
        "Name": name, "TaskTemplate": {"ContainerSpec": {"Env": [], "Secrets": attached}}}}})


class FakeSwarm(FakeFleet):
    """A swarm fleet on recorded answers: one task, `pa` up; get-env and load-secrets --check
    answered here, every exec recorded."""

    def __init__(self, attached: list[dict], check: dict):
        h1 = container("h1")
        super().__init__([h1], {"h1": {"status": recorded("status-h1.json"), "profiles": {
            "schema": "hermes-contract/v1", "verb": "profiles",
            "profiles": [{"name": "pa", "readable": True, "has_soul": True, "registered": True}]}}})
        self.backend = SwarmBackend(manager=fake_endpoint(_manager(attached), "manager"),
                                    tasks=[SwarmTask("t1", "st_h1", "h1", 1, "default", "running", h1.id)])
        self.check = check

    def run(self, c, argv, **kwargs):
        if argv[:2] == [AGENT, "get-env"]:
            self.calls.append((c.name, argv))
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": "get-env", "profiles": {"pa": {"MODEL": "old"}}}), "")
        if argv == [AGENT, "owner-ids"]:
            self.calls.append((c.name, argv))
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": "owner-ids", "uid": 1234, "gid": 10000}), "")
        if argv == [AGENT, "load-secrets", "--check"]:
            self.calls.append((c.name, argv))
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": "load-secrets", "profiles": self.check}), "")
        return super().run(c, argv, **kwargs)


def _attached(secret: str, uid: str = "1234") -> list[dict]:
    return [{"SecretID": SECRETS[secret], "SecretName": secret,
             "File": {"Name": "hermes-env.pa.TOKEN", "UID": uid, "GID": "10000", "Mode": 0o400}},
            {"SecretID": "other", "SecretName": "tls", "File": {"Name": "tls.pem", "UID": "0", "GID": "0", "Mode": 0o400}}]


def _swarm_plan(tmp_path, fleet, secret: str = "tok-v2", model: str = "new"):
    path = tmp_path / "fleet.yaml"
    path.write_text(f"version: 1\ncontainers:\n  h1:\n    profiles:\n      pa:\n        env:\n"
                    f"          TOKEN: {{from_secret: {secret}}}\n          MODEL: {model}\n")
    [plan] = make_plan(fleet, resolve(load_fleet_file(str(path))), prune=False)
    return [(ch.action, ch.detail) for ch in plan.changes], plan.service_update


def test_a_rotated_secret_is_one_service_update_and_no_gateway_restart(tmp_path):
    fleet = FakeSwarm(_attached("tok-v1"), check={})
    changes, update = _swarm_plan(tmp_path, fleet)
    assert changes == [("set-env", f"MODEL={MASK}"),
                       ("set-secret", "TOKEN=from_secret:tok-v2 (secret sid2bbbbbbbb, was sid1aaaaaaaa)")]
    assert [s["SecretName"] for s in update.secrets] == ["tls", "tok-v2"]  # others kept
    assert update.secrets[1]["File"] == {"Name": "hermes-env.pa.TOKEN", "UID": "1234", "GID": "10000",
                                         "Mode": 0o400}  # the task's hermes (its agent's owner-ids), owner-only
    # The host asked for the literal's current value only, never the secret's.
    [get_env] = [argv for _, argv in fleet.calls if argv[:2] == [AGENT, "get-env"]]
    assert "TOKEN" not in get_env and "MODEL" in get_env
    assert all(argv[0] == AGENT or argv[0].startswith("/command/") for _, argv in fleet.calls)


def test_an_attached_secret_env_lost_is_loaded_and_the_gateway_restarted_once(tmp_path):
    fleet = FakeSwarm(_attached("tok-v2"), check={"pa": {"TOKEN": "differs"}})
    changes, update = _swarm_plan(tmp_path, fleet, model="old")
    assert update is None
    assert changes == [("load-secrets", "TOKEN=from_secret:tok-v2 (.env differs from the secret)"),
                       ("restart", "settings changed")]
    fleet = FakeSwarm(_attached("tok-v2"), check={"pa": {"TOKEN": "same"}})
    assert _swarm_plan(tmp_path, fleet, model="old") == ([], None)


def test_a_secret_no_longer_named_is_detached(tmp_path):
    fleet = FakeSwarm(_attached("tok-v1"), check={})
    path = tmp_path / "fleet.yaml"
    path.write_text("version: 1\ncontainers:\n  h1:\n    profiles:\n      pa:\n        env:\n          MODEL: old\n")
    [plan] = make_plan(fleet, resolve(load_fleet_file(str(path))), prune=False)
    assert [(ch.action, ch.detail) for ch in plan.changes] == [
        ("unset-secret", "TOKEN (secret tok-v1 detached; .env keeps its value)")]
    assert [s["SecretName"] for s in plan.service_update.secrets] == ["tls"]


def test_from_secret_needs_a_swarm_and_an_existing_secret(tmp_path):
    plain = FakeFleet([container("h1")], {})
    path = tmp_path / "fleet.yaml"
    path.write_text("version: 1\ncontainers:\n  h1:\n    profiles:\n      pa:\n        env:\n"
                    "          TOKEN: {from_secret: tok-v1}\n")
    with pytest.raises(UsageError, match=rf"^{path}:7: env TOKEN: from_secret is a Docker Swarm secret"):
        make_plan(plain, load_fleet_file(str(path)), prune=False)
    assert plain.calls == []  # refused before any container was asked
    with pytest.raises(UsageError, match=rf"^{path}:7: env TOKEN: no swarm secret named 'tok-v9'"):
        _swarm_plan(tmp_path, FakeSwarm([], check={}), secret="tok-v9")
