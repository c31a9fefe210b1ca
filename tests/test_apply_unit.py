"""apply's create step on a fake fleet, in milliseconds: a profile that an interrupted command's
in-container create finished after this apply planned is what apply wants, not a failure."""
import json

from fakefleet import FakeFleet, container
from hermesctl.agent.contract import AGENT, SCHEMA
from hermesctl.agent.probe import ContainerSnapshot
from hermesctl.backends.docker.execs import ExecResult
from hermesctl.commands.apply import Change, ContainerPlan, _run_changes

EXISTS = "Error: Profile 'gamma' already exists at /opt/data/profiles/gamma"


class CreateRace(FakeFleet):
    """hermes' create fails (another command made the profile meanwhile); `profiles` says
    what is there now; every locked step is recorded."""

    def __init__(self, there_now: list[dict]):
        super().__init__([container("h1")], {})
        self.there_now = there_now
        self.locked: list[list[str]] = []

    def run(self, c, argv, **kwargs):
        if argv[:2] == [AGENT, "locked"]:
            command = argv[argv.index("--") + 1:]
            self.locked.append(command)
            if command[:3] == ["hermes", "profile", "create"]:
                return ExecResult(1, "", EXISTS + "\n")
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": command[1]}), "")
        if argv == [AGENT, "profiles"]:
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": "profiles", "profiles": self.there_now}), "")
        return super().run(c, argv, **kwargs)


def _create_gamma(fleet) -> Change:
    change = Change("default", "h1", "gamma", "create")
    _run_changes(fleet, ContainerPlan(fleet.containers()[0], ContainerSnapshot(), [change]))
    return change


def test_a_profile_made_meanwhile_is_created_and_adopted():
    fleet = CreateRace([{"name": "gamma", "readable": True, "has_soul": True, "registered": False}])
    change = _create_gamma(fleet)
    assert change.ok is True and "meanwhile" in change.message
    assert fleet.locked == [["hermes", "profile", "create", "gamma"], [AGENT, "adopt", "gamma"]]


def test_a_failed_create_with_no_whole_profile_there_fails_with_hermes_words():
    for there in ([], [{"name": "gamma", "readable": True, "has_soul": False, "registered": False}]):
        fleet = CreateRace(there)
        change = _create_gamma(fleet)
        assert change.ok is False and change.message == EXISTS
        assert fleet.locked == [["hermes", "profile", "create", "gamma"]]  # nothing adopted


# --- the whole agent as code: model, soul and config keys (issue 26), on a fake fleet ----------

import base64  # noqa: E402
import hashlib  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from fakefleet import cli_on, recorded  # noqa: E402
from hermesctl.agent.contract import ENV_HMAC_KEY  # noqa: E402
from hermesctl.config.fleetfile import load_fleet_file  # noqa: E402
from hermesctl.core.errors import FleetFileError, UsageError  # noqa: E402

SOUL = "You are pa, the fleet's reviewer.\n"
FLEET = """version: 1
containers:
  h1:
    profiles:
      pa:
        model: {provider: custom, default: model-b, base_url: "http://127.0.0.1:18080/v1"}
        soul: {text: "You are pa, the fleet's reviewer.\\n"}
        config:
          agent.max_turns: 40
          providers.lab.api_key: sk-literal-0123456789
"""


class AgentFleet(FakeFleet):
    """h1 as status-h1.json (pa up), with the agent's agent-config answer `state`; what the
    plan asks and every locked step (argv, environment) recorded."""

    def __init__(self, state: dict):
        super().__init__([container("h1")], {"h1": {
            "status": recorded("status-h1.json"),
            "profiles": {"schema": SCHEMA, "verb": "profiles", "profiles": [
                {"name": "pa", "readable": True, "has_soul": True, "registered": True}]},
            "get-env": {"schema": SCHEMA, "verb": "get-env", "profiles": {"pa": {}}},
            "agent-config": {"schema": SCHEMA, "verb": "agent-config", "profiles": {"pa": state}}}})
        self.asked: dict = {}
        self.locked: list[tuple[list[str], dict]] = []

    def run(self, c, argv, **kwargs):
        if argv == ["cat", ENV_HMAC_KEY]:  # the container's HMAC key (root's file)
            return ExecResult(0, "ab" * 32 + "\n", "")
        if argv[:2] == [AGENT, "agent-config"]:
            self.asked = json.loads(kwargs["environment"]["HERMESCTL_AGENT_CONFIG"])
        if argv[:2] == [AGENT, "locked"]:
            command = argv[argv.index("--") + 1:]
            self.locked.append((command, kwargs.get("environment") or {}))
            verb = command[1] if command[0] == AGENT else "hermes"
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": verb}), "")
        if argv[:2] == [AGENT, "operate"]:
            self.locked.append((argv[1:], {}))
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": "operate", "waited_s": 0, "wait_rc": 0,
                                             "gateways": {}, "registered": []}), "")
        return super().run(c, argv, **kwargs)


def _verdicts(**overrides) -> dict:
    keys = {"model.provider": {"problem": None, "set": True, "current": "custom", "same": True},
            "model.default": {"problem": None, "set": True, "current": "model-a", "same": False},
            "model.base_url": {"problem": None, "set": True, "current": "http://127.0.0.1:18080/v1", "same": True},
            "agent.max_turns": {"problem": None, "set": True, "current": 90, "same": False},
            "providers.lab.api_key": {"problem": None, "set": True, "current": "sk-old-secret", "same": False}}
    keys.update(overrides)
    return {"exists": True, "soul_sha256": hashlib.sha256(b"old soul").hexdigest(), "keys": keys}


def _fleet_file(tmp_path, text: str = FLEET):
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return str(path)


def test_model_soul_and_config_parse_into_dotted_keys_with_their_lines(tmp_path):
    spec = load_fleet_file(_fleet_file(tmp_path))
    pa = spec.containers[0].profiles[0]
    assert pa.config == {"model.provider": "custom", "model.default": "model-b",
                         "model.base_url": "http://127.0.0.1:18080/v1", "agent.max_turns": "40",
                         "providers.lab.api_key": "sk-literal-0123456789"}
    assert pa.config_lines["model.default"] == 6 and pa.config_lines["agent.max_turns"] == 9
    assert (pa.soul.source, pa.soul.text, pa.soul.line) == ("text", SOUL, 7)


@pytest.mark.parametrize("body, line, message", [  # the body is line 6 of the file
    ("model: {provider: custom, name: x}", 6, "unknown key 'name'"),
    ("config: {agent.max_turns: [1, 2]}", 6, "config agent.max_turns must be a single value"),
    ("config: {agent.max_turns: }", 6, "config agent.max_turns needs a value"),
    ("config: {agent.max_turns: null}", 6, "config agent.max_turns needs a value"),
    ("config: {'agent..x': 1}", 6, "is not a dotted settings key"),
    ("config: {a-b.key: {from_env: X}, a_b.key: {from_env: Y}}", 6,
     "config a_b.key: a value by reference here and for a-b.key would share the .env variable "
     "HERMESCTL_CONFIG_A_B__KEY"),
    ("env: {HERMESCTL_CONFIG_MODEL__API_KEY: x}\n        model: {api_key: {from_env: K}}", 7,
     "model api_key: its value by reference is kept in env HERMESCTL_CONFIG_MODEL__API_KEY, which env sets too"),
    ("model: {default: a}\n        config: {model.default: b}", 7, "model.default is also given by model: (line 6)"),
    ("soul: {text: a, from_file: b}", 6, "give exactly one of from_file or text"),
    ("soul: {from_url: x}", 6, "unknown key 'from_url'"),
])
def test_malformed_agent_settings_name_file_and_line(tmp_path, body, line, message):
    path = _fleet_file(tmp_path, f"version: 1\ncontainers:\n  h1:\n    profiles:\n      pa:\n        {body}\n")
    with pytest.raises(FleetFileError) as exc:
        load_fleet_file(path)
    assert exc.value.message.startswith(f"{path}:{line}:"), exc.value.message
    assert message in exc.value.message and "\n" not in exc.value.message


def test_a_soul_file_is_read_relative_to_the_fleet_file_and_a_missing_one_is_a_usage_error(tmp_path):
    from hermesctl.core.errors import UsageError
    from hermesctl.config.references import resolve
    (tmp_path / "souls").mkdir()
    (tmp_path / "souls" / "pa.md").write_text(SOUL + "Second line.\n")
    text = "version: 1\ncontainers:\n  h1:\n    profiles:\n      pa:\n        soul: {from_file: souls/pa.md}\n"
    spec = resolve(load_fleet_file(_fleet_file(tmp_path, text)))
    assert spec.containers[0].profiles[0].soul.text == SOUL + "Second line.\n"
    path = _fleet_file(tmp_path, text.replace("pa.md", "gone.md"))
    with pytest.raises(UsageError) as exc:
        resolve(load_fleet_file(path))
    assert exc.value.message == f"{path}:6: soul: from_file 'souls/gone.md': no such file"


def test_diff_shows_drift_per_key_and_never_a_secret(tmp_path, monkeypatch, capsys):
    fleet = AgentFleet(_verdicts())
    code, out, err = cli_on(fleet, monkeypatch, capsys)("diff", "-f", _fleet_file(tmp_path))
    assert code == 1, (out, err)
    flat = " ".join(out.split())
    assert "model.default: model-a → model-b" in flat and "config.agent.max_turns: 90 → 40" in flat
    new = hashlib.sha256(SOUL.encode()).hexdigest()[:12]
    old = hashlib.sha256(b"old soul").hexdigest()[:12]
    assert f"soul: changed (sha256 {old} → {new})" in flat
    assert "config.providers.lab.api_key: <hidden> → <hidden>" in flat
    assert "sk-literal" not in out + err and "sk-old-secret" not in out + err
    assert "model.provider" not in flat and "model.base_url" not in flat  # the same: no drift
    assert "restart" in flat  # pa's gateway is up and its settings change
    # the values went to the agent in the exec environment, as `hermes config set` takes them
    assert fleet.asked["profiles"]["pa"]["agent.max_turns"] == "40"
    assert not fleet.locked  # diff changes nothing
    code, out, _ = cli_on(fleet, monkeypatch, capsys)("diff", "-f", _fleet_file(tmp_path), "--json")
    assert code == 1 and "sk-literal" not in out and SOUL.strip() not in out


def test_hermes_verdict_on_a_value_is_a_one_line_error_before_any_change(tmp_path, monkeypatch, capsys):
    verdicts = _verdicts(**{"agent.max_turns": {"problem": "must be a whole number (0 or more)", "set": True,
                                                "current": 90, "same": False}})
    fleet = AgentFleet(verdicts)
    path = _fleet_file(tmp_path)
    code, out, err = cli_on(fleet, monkeypatch, capsys)("apply", "-f", path)
    assert code == 2, (out, err)
    assert err.strip().splitlines()[-1].endswith(f"{path}:9: config.agent.max_turns: must be a whole number (0 or more)")
    assert not fleet.locked


def test_apply_writes_through_hermes_config_set_and_write_soul_then_restarts(tmp_path, monkeypatch, capsys):
    fleet = AgentFleet(_verdicts())
    code, out, err = cli_on(fleet, monkeypatch, capsys)("apply", "-f", _fleet_file(tmp_path))
    commands = [argv for argv, _ in fleet.locked]
    [(argv, env)] = [(argv, env) for argv, env in fleet.locked if argv[:3] == [AGENT, "config-set", "pa"]]
    # every key of the profile through hermes' own writer in one exec, in the container; the
    # values in the exec's environment, never its argv
    assert argv[3:] == ["agent.max_turns", "model.default", "providers.lab.api_key"]
    assert json.loads(env["HERMESCTL_CONFIG_VALUES"]) == {"agent.max_turns": "40", "model.default": "model-b",
                                                          "providers.lab.api_key": "sk-literal-0123456789"}
    assert not any("sk-literal-0123456789" in part for argv in commands for part in argv)
    soul = [env for argv, env in fleet.locked if argv[:2] == [AGENT, "write-soul"]]
    assert soul == [{"HERMESCTL_SOUL": SOUL}]
    assert any(argv[:2] == ["operate", "restart"] and "pa" in argv for argv in commands), commands
    assert "sk-literal" not in out + err


def test_no_drift_is_no_changes(tmp_path, monkeypatch, capsys):
    same = {k: {**v, "same": True} for k, v in _verdicts()["keys"].items()}
    state = {"exists": True, "soul_sha256": hashlib.sha256(SOUL.encode()).hexdigest(), "keys": same}
    fleet = AgentFleet(state)
    code, out, _ = cli_on(fleet, monkeypatch, capsys)("apply", "-f", _fleet_file(tmp_path))
    assert code == 0 and "no changes" in out and not fleet.locked


def _skill_dir(tmp_path) -> Path:
    root = tmp_path / "skills" / "review"
    (root / "templates").mkdir(parents=True)
    (root / "SKILL.md").write_text("---\nname: review\ndescription: Reviews diffs.\n---\n# Review\n")
    (root / "templates" / "checklist.md").write_text("- tests\n")
    return root


def test_a_skill_directory_is_read_as_files_and_diffed_by_digest(tmp_path, monkeypatch, capsys):
    from hermesctl.agent.contract import tree_digest
    _skill_dir(tmp_path)
    text = FLEET + "        skills: [{from_dir: skills/review}]\n"
    path = _fleet_file(tmp_path, text)
    fleet = AgentFleet({**_verdicts(), "skills": {"review": None}})
    code, out, _ = cli_on(fleet, monkeypatch, capsys)("diff", "-f", path)
    assert code == 1 and "skills: +review" in " ".join(out.split())
    assert fleet.asked["skills"] == {"pa": ["review"]}
    code, out, _ = cli_on(fleet, monkeypatch, capsys)("apply", "-f", path)
    sent = [env for argv, env in fleet.locked if argv[:4] == [AGENT, "write-skill", "pa", "review"]]
    files = {k: base64.b64decode(v) for k, v in json.loads(sent[0]["HERMESCTL_SKILL"]).items()}
    assert files == {"SKILL.md": b"---\nname: review\ndescription: Reviews diffs.\n---\n# Review\n",
                     "templates/checklist.md": b"- tests\n"}
    installed = tree_digest(files)
    same = {k: {**v, "same": True} for k, v in _verdicts()["keys"].items()}
    state = {"exists": True, "soul_sha256": hashlib.sha256(SOUL.encode()).hexdigest(), "keys": same,
             "skills": {"review": installed}}
    code, out, _ = cli_on(AgentFleet(state), monkeypatch, capsys)("diff", "-f", path)
    assert code == 0 and "no changes" in out
    state["skills"]["review"] = "0" * 64
    code, out, _ = cli_on(AgentFleet(state), monkeypatch, capsys)("diff", "-f", path)
    assert code == 1 and f"skills: review changed (sha256 000000000000 → {installed[:12]})" in " ".join(out.split())


@pytest.mark.parametrize("setup, message", [
    (lambda root: (root / "link").symlink_to("/etc/passwd"), "'link' is a symlink: a skill is copied as files"),
    (lambda root: (root / "SKILL.md").unlink(), "no SKILL.md in it"),
    (lambda root: (root / ".hidden").write_text("x"), "file names must be plain"),
    (lambda root: (root / "big.bin").write_bytes(b"x" * 70000), "more than 64 files or 64 KiB"),
])
def test_a_skill_directory_that_cannot_be_copied_is_a_usage_error_with_its_line(tmp_path, setup, message):
    from hermesctl.core.errors import UsageError
    from hermesctl.config.references import resolve
    setup(_skill_dir(tmp_path))
    path = _fleet_file(tmp_path, FLEET + "        skills: [{from_dir: skills/review}]\n")
    with pytest.raises(UsageError) as exc:
        resolve(load_fleet_file(path))
    assert exc.value.message.startswith(f"{path}:11: skill review: from_dir 'skills/review': ")
    assert message in exc.value.message


def test_skills_are_a_list_of_from_dir_with_distinct_names(tmp_path):
    for body, message in (("skills: {from_dir: a}", "must be a list"),
                          ("skills: [{from_dir: a/review}, {from_dir: b/review}]", "skill review is also given on line 11"),
                          ("skills: [{from_dir: 'a/Bad Name'}]", "is not a skill name")):
        with pytest.raises(FleetFileError) as exc:
            load_fleet_file(_fleet_file(tmp_path, FLEET + f"        {body}\n"))
        assert message in exc.value.message


def test_a_failed_config_set_is_reported_without_its_value(tmp_path, monkeypatch, capsys):
    class Refusing(AgentFleet):
        def run(self, c, argv, **kwargs):
            if argv[:2] == [AGENT, "locked"] and AGENT in argv and "config-set" in argv:
                value = json.loads(kwargs["environment"]["HERMESCTL_CONFIG_VALUES"])["providers.lab.api_key"]
                doc = {"schema": SCHEMA, "error": {"code": "failed", "message": f"hermes config set: refused {value}"}}
                return ExecResult(1, json.dumps(doc), "")
            return super().run(c, argv, **kwargs)
    fleet = Refusing(_verdicts())
    code, out, err = cli_on(fleet, monkeypatch, capsys)("apply", "-f", _fleet_file(tmp_path), "--json")
    assert code == 1, (out, err)
    failed = [ch for ch in json.loads(out)["changes"] if ch["action"] == "set-config"]
    assert failed and failed[0]["ok"] is False and "refused <hidden>" in failed[0]["message"]
    assert "sk-literal" not in out + err


def test_a_config_yaml_the_agent_could_not_read_is_a_warning(tmp_path, monkeypatch, capsys):
    fleet = AgentFleet({**_verdicts(), "config_error": "config.yaml is not a regular file"})
    code, out, err = cli_on(fleet, monkeypatch, capsys)("diff", "-f", _fleet_file(tmp_path))
    assert code == 1
    assert "h1:pa: config.yaml is not a regular file: its current settings are taken as hermes' defaults" in err


# --- values by reference in model:/config: (from_env, from_file, from_secret) ---------------------

KEY_VALUE = "sk-model-key-from-file-5e8d"
REF_FLEET = FLEET.replace('base_url: "http://127.0.0.1:18080/v1"}',
                          'base_url: "http://127.0.0.1:18080/v1", api_key: {from_file: secrets/model}}')
KEY_VAR = "HERMESCTL_CONFIG_MODEL__API_KEY"


def _secret_file(tmp_path, value: str = KEY_VALUE) -> None:
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "model").write_text(value + "\n")
    (tmp_path / "secrets" / "model").chmod(0o600)


def test_a_referenced_setting_is_a_dotenv_entry_and_a_template_in_config_yaml(tmp_path):
    from hermesctl.config.references import Reference, resolve
    _secret_file(tmp_path)
    spec = resolve(load_fleet_file(_fleet_file(tmp_path, REF_FLEET)))
    [pa] = spec.containers[0].profiles
    ref = pa.config["model.api_key"]
    assert isinstance(ref, Reference) and ref.value == KEY_VALUE and pa.config_lines["model.api_key"] == 6
    # the value is an .env entry like any env reference (same reading, hashing, swarm attaching)
    assert pa.env[KEY_VAR] is ref and ref.label == "model api_key"


def test_a_referenced_setting_is_diffed_by_keyed_hash_and_written_only_in_exec_environments(
        tmp_path, monkeypatch, capsys):
    _secret_file(tmp_path)
    path = _fleet_file(tmp_path, REF_FLEET)
    fleet = AgentFleet(_verdicts(**{"model.api_key": {"problem": None, "set": False, "current": None,
                                                       "same": False}}))
    code, out, err = cli_on(fleet, monkeypatch, capsys)("diff", "-f", path, "--show-values")
    assert code == 1, (out, err)
    flat = " ".join(out.split())
    # config.yaml gets hermes' own ${VAR} form; the value is a keyed hash, even with --show-values
    assert "model.api_key: unset → ${HERMESCTL_CONFIG_MODEL__API_KEY} (from_file:secrets/model)" in flat
    assert f"{KEY_VAR}=from_file:secrets/model (hmac " in flat and "was unset)" in flat
    assert KEY_VALUE not in out + err
    assert fleet.asked["profiles"]["pa"]["model.api_key"] == "${HERMESCTL_CONFIG_MODEL__API_KEY}"

    code, out, err = cli_on(fleet, monkeypatch, capsys)("apply", "-f", path, "--json")
    done = {ch["action"]: ch["ok"] for ch in json.loads(out)["changes"]}
    assert done["set-env"] and done["set-config"], out  # (the fake's restart has no supervisor)
    assert KEY_VALUE not in out + err
    env_writes = [(argv, env) for argv, env in fleet.locked if argv[:2] == [AGENT, "set-env"]]
    assert env_writes and all(KEY_VALUE not in part for argv, _ in env_writes for part in argv)
    assert env_writes[0][1][f"HERMESCTL_ENV_{KEY_VAR}"] == KEY_VALUE
    [env] = [env for argv, env in fleet.locked if argv[:3] == [AGENT, "config-set", "pa"]]
    assert json.loads(env["HERMESCTL_CONFIG_VALUES"])["model.api_key"] == "${HERMESCTL_CONFIG_MODEL__API_KEY}"


def test_a_reference_for_a_typed_setting_is_refused_with_why(tmp_path, monkeypatch, capsys):
    text = FLEET.replace("agent.max_turns: 40", "agent.max_turns: {from_env: TURNS}")
    monkeypatch.setenv("TURNS", "40")
    fleet = AgentFleet(_verdicts(**{"agent.max_turns": {"problem": "must be a whole number (0 or more)",
                                                        "set": True, "current": 90, "same": False}}))
    path = _fleet_file(tmp_path, text)
    code, out, err = cli_on(fleet, monkeypatch, capsys)("apply", "-f", path)
    assert code == 2, (out, err)
    assert err.strip().splitlines()[-1].endswith(
        f"{path}:9: config.agent.max_turns: a value by reference reaches hermes as text (${{VAR}}), and this "
        "setting must be a whole number (0 or more)")
    assert not fleet.locked


def test_a_config_from_secret_is_attached_as_the_env_entry_it_becomes(tmp_path):
    from test_secret_refs_unit import FakeSwarm, SECRETS
    from hermesctl.config.references import resolve
    path = tmp_path / "fleet.yaml"
    path.write_text("version: 1\ncontainers:\n  h1:\n    profiles:\n      pa:\n"
                    "        model: {api_key: {from_secret: tok-v2}}\n")
    fleet = FakeSwarm([], check={})
    fleet.answers["h1"]["agent-config"] = {"schema": SCHEMA, "verb": "agent-config", "profiles": {"pa": {
        "exists": True, "soul_sha256": None, "keys": {"model.api_key": {"problem": None, "set": False,
                                                                         "current": None, "same": False}}}}}
    [plan] = make_plan_on(fleet, resolve(load_fleet_file(str(path))))
    changes = [(ch.action, ch.detail) for ch in plan.changes]
    assert ("set-secret", f"{KEY_VAR}=from_secret:tok-v2 (secret {SECRETS['tok-v2'][:12]}, was unset)") in changes
    [attached] = [s for s in plan.service_update.secrets if s["SecretName"] == "tok-v2"]
    assert attached["File"]["Name"] == f"hermes-env.pa.{KEY_VAR}"
    # on a fleet that is no swarm: the fleet file's line, named as the file names it
    with pytest.raises(UsageError, match=rf"^{path}:6: model api_key: from_secret is a Docker Swarm secret"):
        make_plan_on(FakeFleet([container("h1")], {}), load_fleet_file(str(path)))


def make_plan_on(fleet, spec):
    from hermesctl.commands.apply import make_plan
    return make_plan(fleet, spec, prune=False)


# --- apply --prune: what apply set earlier and the file no longer lists -------------------------

def _with_record(record, **extra) -> dict:
    same = {k: {**v, "same": True} for k, v in _verdicts()["keys"].items()}
    return {"exists": True, "soul_sha256": hashlib.sha256(SOUL.encode()).hexdigest(), "keys": same,
            "applied": record, **extra}


RECORD = {"config": ["agent.max_turns", "display.compact", "../../etc/passwd", "x\x1b[2J"],
          "skills": ["review", "gone-skill", "a/../b"]}


def test_diff_prune_names_only_what_apply_set_and_the_file_dropped(tmp_path, monkeypatch, capsys):
    fleet = AgentFleet(_with_record(RECORD))
    path = _fleet_file(tmp_path)
    code, out, _ = cli_on(fleet, monkeypatch, capsys)("diff", "-f", path)
    assert code == 0 and "no changes" in out  # without --prune nothing is removed, nor shown
    assert fleet.asked["profiles"]["pa"]  # (asked about pa's keys as before)
    code, out, err = cli_on(fleet, monkeypatch, capsys)("diff", "-f", path, "--prune", "--json")
    assert code == 1, (out, err)
    changes = [(ch["action"], ch["detail"]) for ch in json.loads(out)["changes"]]
    # display.compact and gone-skill were apply's and the file no longer names them; agent.max_turns
    # is still in the file; the record's malformed entries are dropped, never shown or acted on
    assert changes == [("unset-config", "config.display.compact: set by apply, not in the file"),
                       ("remove-skill", "skills: -gone-skill"), ("remove-skill", "skills: -review"),
                       ("restart", "settings changed")], changes
    assert "passwd" not in out and "\x1b" not in out and not fleet.locked


def test_apply_prune_unsets_and_removes_through_the_agent(tmp_path, monkeypatch, capsys):
    fleet = AgentFleet(_with_record({"config": ["display.compact"], "skills": ["gone-skill"]}))
    code, out, err = cli_on(fleet, monkeypatch, capsys)("apply", "-f", _fleet_file(tmp_path), "--prune", "--json")
    commands = [argv for argv, _ in fleet.locked]
    assert [AGENT, "config-unset", "pa", "display.compact"] in commands
    assert [AGENT, "remove-skill", "pa", "gone-skill"] in commands
    assert commands.index([AGENT, "remove-skill", "pa", "gone-skill"]) < \
        next(i for i, argv in enumerate(commands) if argv[:2] == ["operate", "restart"])  # then one restart
    done = {ch["action"]: (ch["ok"], ch["message"]) for ch in json.loads(out)["changes"]}
    assert done["unset-config"] == (True, "unset") and done["remove-skill"] == (True, "removed")


def test_a_refused_prune_step_fails_apply_with_the_agents_words(tmp_path, monkeypatch, capsys):
    class Refusing(AgentFleet):
        def run(self, c, argv, **kwargs):
            if argv[:2] == [AGENT, "locked"] and "config-unset" in argv:
                doc = {"schema": SCHEMA, "error": {"code": "usage", "message": "display.compact was not set by "
                                                   "hermesctl apply in pa: left alone"}}
                return ExecResult(2, json.dumps(doc), "")
            return super().run(c, argv, **kwargs)
    fleet = Refusing(_with_record({"config": ["display.compact"], "skills": []}))
    code, out, _ = cli_on(fleet, monkeypatch, capsys)("apply", "-f", _fleet_file(tmp_path), "--prune", "--json")
    [failed] = [ch for ch in json.loads(out)["changes"] if ch["action"] == "unset-config"]
    assert failed["ok"] is False and "left alone" in failed["message"]
    assert code == 1  # as any failed change of apply (ExitStatus.FAILED)


def test_a_record_the_agent_could_not_read_is_a_warning_and_prunes_nothing(tmp_path, monkeypatch, capsys):
    fleet = AgentFleet(_with_record({"config": [], "skills": []}, applied_error=".hermesctl-applied.json is not JSON"))
    code, out, err = cli_on(fleet, monkeypatch, capsys)("apply", "-f", _fleet_file(tmp_path), "--prune")
    assert code == 0 and "no changes" in out, (out, err)
    assert "h1:pa: .hermesctl-applied.json is not JSON: --prune removes nothing there" in err


def test_prune_asks_about_profiles_that_declare_no_settings_any_more(tmp_path, monkeypatch, capsys):
    fleet = AgentFleet(_with_record({"config": ["agent.max_turns"], "skills": []}))
    path = _fleet_file(tmp_path, "version: 1\ncontainers:\n  h1:\n    profiles:\n      pa:\n        gateway: running\n")
    code, out, _ = cli_on(fleet, monkeypatch, capsys)("diff", "-f", path, "--prune", "--json")
    assert fleet.asked["profiles"] == {"pa": {}}
    assert ("unset-config", "config.agent.max_turns: set by apply, not in the file") in \
        [(ch["action"], ch["detail"]) for ch in json.loads(out)["changes"]]
