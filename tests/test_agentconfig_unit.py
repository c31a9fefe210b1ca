"""The container's half of the agent as code (hermes_supervise.agentconfig), on the host: hermes'
rules applied to proposed values (with a stand-in for hermes_cli.config holding the shapes hermes
0.19.0's DEFAULT_CONFIG has; the real module is judged in tests/test_agent_code.py), the current
values read from a profile's config.yaml over the defaults, and SOUL.md written atomically, never
through a symlink."""
import hashlib
import os
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "image" / "hermes" / "docker"))

from hermes_supervise import agentconfig  # noqa: E402


def _cfg() -> types.SimpleNamespace:
    defaults = {"model": "", "toolsets": ["hermes-cli"], "agent": {"max_turns": 90, "reasoning": "medium"},
                "display": {"compact": False, "ratio": 0.5}, "max_live_sessions": 16}

    def walk(key):
        node = defaults
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return None if isinstance(node, dict) else node

    def validate(key):
        if key.split(".")[0] in ("model", "platforms") or walk(key) is not None or key in ("agent", "display"):
            return True, None
        return False, "agent.max_turns" if key == "agent.max_turnz" else None
    return types.SimpleNamespace(DEFAULT_CONFIG=defaults, _default_value_for_key=walk, _validate_config_key=validate,
                                 _is_env_config_key=lambda key: "." not in key and key.upper().endswith("_API_KEY"))


@pytest.mark.parametrize("key, value, verdict", [
    ("agent.max_turns", "40", (None, 40)),
    ("agent.reasoning", "true", (None, "true")),   # a text default stays text, as config set keeps it
    ("display.compact", "yes", (None, True)),
    ("display.ratio", "0.75", (None, 0.75)),
    ("model.default", "m-1", (None, "m-1")),
    ("agent.max_turns", "-1", ("must be a whole number (0 or more)", None)),
    ("agent.max_turns", "forty", ("must be a whole number (0 or more)", None)),
    ("display.compact", "maybe", ("must be true or false", None)),
    ("display.ratio", "half", ("must be a number (0 or more)", None)),
    ("agent.max_turnz", "4", ("not a setting hermes-agent knows (did you mean agent.max_turns?)", None)),
    ("toolsets", "x", ("a list: hermes config set writes one value, not a list", None)),
    ("agent", "x", ("a section of settings, not one setting: name a key below it", None)),
    ("OPENAI_API_KEY", "sk", ("hermes config set writes this key to .env: give it under env", None)),
])
def test_values_are_judged_by_hermes_rules_and_no_message_repeats_a_value(key, value, verdict):
    assert agentconfig.judge(_cfg(), key, value) == verdict
    if verdict[0]:
        assert value not in verdict[0].replace(key, "").replace("max_turns", "")


def _profile(tmp_path, monkeypatch, config: str | None = None) -> Path:
    home = tmp_path / "data"
    directory = home / "profiles" / "coder"
    directory.mkdir(parents=True)
    (directory / "SOUL.md").write_text("old soul\n")
    if config is not None:
        (directory / "config.yaml").write_text(config)
    monkeypatch.setenv("HERMES_HOME", str(home))
    monkeypatch.setitem(sys.modules, "hermes_cli", types.ModuleType("hermes_cli"))
    monkeypatch.setitem(sys.modules, "hermes_cli.config", _cfg())
    return directory


def test_current_values_are_the_file_over_hermes_defaults(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, "agent:\n  max_turns: 40\nmodel: legacy-name\n")
    wanted = {"coder": {"agent.max_turns": "40", "display.compact": "false", "model.default": "legacy-name",
                        "model.provider": "custom"}, "ghost": {"agent.max_turns": "40"}}
    doc = agentconfig.agent_config({agentconfig.REQUEST_ENV: __import__("json").dumps({"profiles": wanted})})
    keys = doc["profiles"]["coder"]["keys"]
    assert keys["agent.max_turns"] == {"problem": None, "set": True, "current": 40, "same": True}
    assert keys["display.compact"]["same"] and keys["display.compact"]["current"] is False  # hermes' default
    assert keys["model.default"]["same"]  # the older `model: NAME` is model.default to hermes
    assert not keys["model.provider"]["set"] and not keys["model.provider"]["same"]
    assert doc["profiles"]["coder"]["soul_sha256"] == hashlib.sha256(b"old soul\n").hexdigest()
    assert doc["profiles"]["ghost"] == {"exists": False, "soul_sha256": None,
                                        "keys": {"agent.max_turns": {"problem": None, "set": False, "current": None,
                                                                     "same": False}}}


def test_a_symlinked_config_or_soul_is_not_followed(tmp_path, monkeypatch):
    directory = _profile(tmp_path, monkeypatch)
    secret = tmp_path / "root-only"
    secret.write_text("agent:\n  max_turns: 7\n")
    (directory / "config.yaml").symlink_to(secret)
    (directory / "SOUL.md").unlink()
    (directory / "SOUL.md").symlink_to(secret)
    doc = agentconfig.agent_config({agentconfig.REQUEST_ENV: '{"profiles": {"coder": {"agent.max_turns": "7"}}}'})
    entry = doc["profiles"]["coder"]
    assert entry["soul_sha256"] == "unreadable" and "config_error" in entry
    assert entry["keys"]["agent.max_turns"]["current"] == 90 and not entry["keys"]["agent.max_turns"]["same"]


def test_write_soul_replaces_the_file_atomically_and_refuses_a_symlinked_profile(tmp_path, monkeypatch):
    directory = _profile(tmp_path, monkeypatch)
    doc = agentconfig.write_soul("coder", {agentconfig.SOUL_ENV: "new soul ✓\n"})
    assert (directory / "SOUL.md").read_text() == "new soul ✓\n"
    assert doc["sha256"] == hashlib.sha256("new soul ✓\n".encode()).hexdigest()
    assert sorted(os.listdir(directory)) == ["SOUL.md"]  # no temporary file left
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (directory.parent / "evil").symlink_to(elsewhere)
    with pytest.raises(FileNotFoundError):
        agentconfig.write_soul("evil", {agentconfig.SOUL_ENV: "x"})
    assert os.listdir(elsewhere) == []
    with pytest.raises(ValueError):
        agentconfig.write_soul("coder", {agentconfig.SOUL_ENV: "x" * (agentconfig.MAX_SOUL_BYTES + 1)})


def _stand_in_hermes_cli(tmp_path, monkeypatch) -> Path:
    """config-set's writer run by this Python against a stand-in hermes_cli.config whose
    set_config_value logs (HERMES_HOME, key, value) and refuses the key `refuse` as hermes
    refuses: a message, then sys.exit(1)."""
    package = tmp_path / "stand-in" / "hermes_cli"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    log = tmp_path / "set.log"
    (package / "config.py").write_text(
        "import json, os, sys\n"
        "def set_config_value(key, value):\n"
        "    print('noise on stdout')\n"
        "    if key == 'refuse':\n"
        "        print(f'Error: cannot take {value} for {key}', file=sys.stderr); sys.exit(1)\n"
        f"    with open({str(log)!r}, 'a') as f: f.write(json.dumps([os.environ['HERMES_HOME'], key, value]) + '\\n')\n")
    monkeypatch.setattr(agentconfig, "_writer_argv",
                        lambda: [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(package.parent)!r})\n"
                                 + agentconfig.WRITER])
    return log


def _values(**pairs) -> dict:
    return {**os.environ, agentconfig.VALUES_ENV: __import__("json").dumps(pairs)}


def test_config_set_writes_every_key_in_one_process_of_hermes_writer_and_records_them(tmp_path, monkeypatch):
    import json
    directory = _profile(tmp_path, monkeypatch)
    log = _stand_in_hermes_cli(tmp_path, monkeypatch)
    doc = agentconfig.config_set("coder", ["agent.max_turns", "model.default"],
                                 {**_values(**{"agent.max_turns": "-40", "model.default": "m"}), "HERMES_HOME": "x"})
    assert doc["keys"] == ["agent.max_turns", "model.default"]  # hermes' own printing is not the answer
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        [str(directory), "agent.max_turns", "-40"], [str(directory), "model.default", "m"]]  # HERMES_HOME: the profile
    assert agentconfig.read_record(str(directory))[0]["config"] == ["agent.max_turns", "model.default"]


def test_config_set_stops_at_the_key_hermes_refuses_hides_its_value_and_records_only_what_it_wrote(
        tmp_path, monkeypatch):
    directory = _profile(tmp_path, monkeypatch)
    _stand_in_hermes_cli(tmp_path, monkeypatch)
    with pytest.raises(RuntimeError) as exc:
        agentconfig.config_set("coder", ["agent.max_turns", "refuse", "zz.later"],
                               _values(**{"agent.max_turns": "4", "refuse": "sk-secret-1", "zz.later": "x"}))
    assert str(exc.value) == "hermes config set refuse: Error: cannot take <hidden> for refuse"
    assert agentconfig.read_record(str(directory))[0]["config"] == ["agent.max_turns"]
    with pytest.raises(ValueError):
        agentconfig.config_set("coder", ["a..b"], _values(**{"a..b": "1"}))
    with pytest.raises(ValueError):
        agentconfig.config_set("coder", ["agent.max_turns"], _values())  # no value for a key


def _skill_env(files: dict) -> dict:
    import base64
    import json
    return {agentconfig.SKILL_ENV: json.dumps({k: base64.b64encode(v).decode() for k, v in files.items()})}


def test_write_skill_installs_the_files_and_its_digest_is_the_hosts(tmp_path, monkeypatch):
    from hermes_supervise import contract
    directory = _profile(tmp_path, monkeypatch)
    files = {"SKILL.md": b"---\nname: review\n---\n", "templates/a.md": b"a\n"}
    assert agentconfig.installed_digest(str(directory), "review") is None
    doc = agentconfig.write_skill("coder", "review", _skill_env(files))
    assert doc["sha256"] == contract.tree_digest(files) == agentconfig.installed_digest(str(directory), "review")
    # replaced whole: a file the new version does not have is gone, nothing staged is left
    agentconfig.write_skill("coder", "review", _skill_env({"SKILL.md": b"v2\n"}))
    assert sorted(p.name for p in (directory / "skills").iterdir()) == ["review"]
    assert sorted(p.name for p in (directory / "skills" / "review").iterdir()) == ["SKILL.md"]
    # a symlink hermes put in its place is replaced, never followed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (directory / "skills" / "other").symlink_to(elsewhere)
    assert agentconfig.installed_digest(str(directory), "other") == "unreadable"
    agentconfig.write_skill("coder", "other", _skill_env({"SKILL.md": b"x\n"}))
    assert os.listdir(elsewhere) == [] and not (directory / "skills" / "other").is_symlink()


@pytest.mark.parametrize("files", [{"../x": b"1", "SKILL.md": b""}, {"a//b": b"1", "SKILL.md": b""},
                                   {"/etc/x": b"1", "SKILL.md": b""}, {"other.md": b"no SKILL.md"}])
def test_write_skill_refuses_paths_outside_plain_names(tmp_path, monkeypatch, files):
    directory = _profile(tmp_path, monkeypatch)
    with pytest.raises(ValueError):
        agentconfig.write_skill("coder", "review", _skill_env(files))
    assert not (directory / "skills").exists() or list((directory / "skills").iterdir()) == []


# --- what apply set (the record `apply --prune` goes by) ----------------------------------------

def _fake_hermes(tmp_path, monkeypatch, *, unset_says: str = "") -> Path:
    """A stand-in for the image's hermes: logs its argv; `config unset` says `unset_says` on
    stderr and fails when told to."""
    fake, log = tmp_path / "hermes", tmp_path / "argv"
    script = "#!/bin/sh\nprintf '%s\\n' \"$@\" >> " + str(log) + "\n"
    if unset_says:
        script += f"[ \"$4\" = unset ] && {{ echo '{unset_says}' >&2; exit 1; }}\n"
    fake.write_text(script + "exit 0\n")
    fake.chmod(0o755)
    monkeypatch.setattr(agentconfig, "HERMES", str(fake))
    return log


def test_config_set_and_write_skill_record_what_they_set_and_agent_config_reports_it(tmp_path, monkeypatch):
    directory = _profile(tmp_path, monkeypatch)
    _stand_in_hermes_cli(tmp_path, monkeypatch)
    agentconfig.config_set("coder", ["agent.max_turns"], _values(**{"agent.max_turns": "40"}))
    agentconfig.write_skill("coder", "review", _skill_env({"SKILL.md": b"x\n"}))
    record = directory / agentconfig.RECORD_FILE
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    doc = agentconfig.agent_config({agentconfig.REQUEST_ENV: '{"profiles": {"coder": {}}}'})
    assert doc["profiles"]["coder"]["applied"] == {"config": ["agent.max_turns"], "skills": ["review"]}
    assert "applied_error" not in doc["profiles"]["coder"]


@pytest.mark.parametrize("content, why", [
    (b"[1, 2]", "is not an object"),
    (b'{"config": ["../../etc"]}', "config is not a list of names"),
    (b'{"skills": ["a/b"]}', "skills is not a list of names"),
    (b'{"config": "agent.max_turns"}', "config is not a list of names"),
    (b'{"config": ["k%d"]}' % 0 + b" " * (64 * 1024), "larger than"),
    (b"\xff", "is not JSON"),
])
def test_a_record_hermes_spoiled_counts_as_empty_and_says_why(tmp_path, monkeypatch, content, why):
    directory = _profile(tmp_path, monkeypatch)
    (directory / agentconfig.RECORD_FILE).write_bytes(content)
    record, problem = agentconfig.read_record(str(directory))
    assert record == {"config": [], "skills": []} and why in problem
    # a set after that starts the record over rather than keeping what cannot be trusted
    agentconfig.update_record(str(directory), "config", "agent.max_turns", present=True)
    assert agentconfig.read_record(str(directory)) == ({"config": ["agent.max_turns"], "skills": []}, None)


def test_a_symlinked_record_is_not_followed(tmp_path, monkeypatch):
    directory = _profile(tmp_path, monkeypatch)
    outside = tmp_path / "outside.json"
    outside.write_text('{"config": ["agent.max_turns"]}')
    (directory / agentconfig.RECORD_FILE).symlink_to(outside)
    record, problem = agentconfig.read_record(str(directory))
    assert record == {"config": [], "skills": []} and problem
    agentconfig.update_record(str(directory), "skills", "review", present=True)  # replaces the link itself
    assert outside.read_text() == '{"config": ["agent.max_turns"]}'
    assert not (directory / agentconfig.RECORD_FILE).is_symlink()


def test_config_unset_touches_only_keys_apply_set(tmp_path, monkeypatch):
    directory = _profile(tmp_path, monkeypatch)
    log = _fake_hermes(tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="was not set by hermesctl apply"):
        agentconfig.config_unset("coder", "agent.max_turns", dict(os.environ))
    assert not log.exists()  # hermes was not even asked
    agentconfig.update_record(str(directory), "config", "agent.max_turns", present=True)
    assert agentconfig.config_unset("coder", "agent.max_turns", dict(os.environ))["key"] == "agent.max_turns"
    assert log.read_text().split("\n")[:-1] == ["-p", "coder", "config", "unset", "--", "agent.max_turns"]
    assert agentconfig.read_record(str(directory))[0]["config"] == []


def test_config_unset_of_a_key_hermes_no_longer_has_is_done_and_other_failures_are_not(tmp_path, monkeypatch):
    directory = _profile(tmp_path, monkeypatch)
    agentconfig.update_record(str(directory), "config", "agent.max_turns", present=True)
    _fake_hermes(tmp_path, monkeypatch, unset_says="Config key not set: agent.max_turns")
    agentconfig.config_unset("coder", "agent.max_turns", dict(os.environ))
    assert agentconfig.read_record(str(directory))[0]["config"] == []
    agentconfig.update_record(str(directory), "config", "agent.max_turns", present=True)
    _fake_hermes(tmp_path, monkeypatch, unset_says="Cannot unset: it is managed by your administrator")
    with pytest.raises(RuntimeError, match="managed by your administrator"):
        agentconfig.config_unset("coder", "agent.max_turns", dict(os.environ))
    assert agentconfig.read_record(str(directory))[0]["config"] == ["agent.max_turns"]  # still ours


def test_remove_skill_removes_only_recorded_skills_and_never_follows_a_symlink(tmp_path, monkeypatch):
    directory = _profile(tmp_path, monkeypatch)
    agentconfig.write_skill("coder", "review", _skill_env({"SKILL.md": b"x\n", "t/a.md": b"a\n"}))
    (directory / "skills" / "hermes-own").mkdir()  # a skill apply did not install
    (directory / "skills" / "hermes-own" / "SKILL.md").write_text("mine\n")
    with pytest.raises(ValueError, match="was not set by hermesctl apply"):
        agentconfig.remove_skill("coder", "hermes-own")
    agentconfig.remove_skill("coder", "review")
    assert sorted(p.name for p in (directory / "skills").iterdir()) == ["hermes-own"]
    assert agentconfig.read_record(str(directory))[0]["skills"] == []
    # hermes swapped a recorded skill for a symlink: the link goes, what it points at stays
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("k")
    agentconfig.update_record(str(directory), "skills", "linked", present=True)
    (directory / "skills" / "linked").symlink_to(elsewhere)
    agentconfig.remove_skill("coder", "linked")
    assert not os.path.lexists(directory / "skills" / "linked") and (elsewhere / "keep").read_text() == "k"
    with pytest.raises(ValueError):
        agentconfig.remove_skill("coder", "../x")
