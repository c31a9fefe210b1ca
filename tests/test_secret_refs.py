"""Issue 19 in real containers: fleet-file env values from the operator's environment and from
files, never shown; a rotated value applied once (one restart); bad references refused first."""
import hashlib
import hmac
import json

import pytest

from conftest import hermesctl, sh, svstat, wait_in

FLEET = """version: 1
containers:
  {name}:
    profiles:
      coder:
        gateway: running
        env:
          OPENROUTER_API_KEY: {{from_env: HCT_TEST_OPENROUTER}}
          TELEGRAM_BOT_TOKEN: {{from_file: secrets/telegram}}
          OPENROUTER_MODEL: plain-model
"""

ENV_VALUE = "sk-or-env-6f1d9a2b7c"
FILE_VALUE = "7311:telegram-file-value-a8e2"


def _env_of(container, profile: str) -> dict:
    text = sh(container, f"cat /opt/data/profiles/{profile}/.env")
    return dict(l.split("=", 1) for l in text.splitlines() if "=" in l and not l.startswith("#"))


def _key_of(container) -> bytes:
    return bytes.fromhex(sh(container, "cat /var/lib/hermesctl/env-hmac.key", user="root").strip())


def _fleet(tmp_path, name: str, file_value: str = FILE_VALUE):
    (tmp_path / "secrets").mkdir(exist_ok=True)
    secret = tmp_path / "secrets" / "telegram"
    secret.write_text(file_value + "\n")
    secret.chmod(0o600)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.format(name=name))
    return fleet, secret


CODER_UP = "/command/s6-svstat -o up /run/service/gateway-coder | grep -qx true"


@pytest.fixture(scope="module")
def fleet_box(module_containers):
    """One container for the tests that apply: in file order the first apply (values unset
    before), the rotation (its own apply first, a no-op after the first test's), the literal."""
    return module_containers.start("fleet")


def test_env_and_file_references_are_written_and_never_shown(fleet_box, tmp_path):
    c = fleet_box
    fleet, _ = _fleet(tmp_path, c.name)
    env = {"HCT_TEST_OPENROUTER": ENV_VALUE}

    plan = hermesctl("diff", "-f", str(fleet), "--show-values", "--json", env=env)
    assert plan.code == 1, plan
    details = " ".join(ch["detail"] for ch in plan.json()["changes"])
    key = _key_of(c)
    digest = hmac.new(key, ENV_VALUE.encode(), hashlib.sha256).hexdigest()[:12]
    assert f"OPENROUTER_API_KEY=from_env:HCT_TEST_OPENROUTER (hmac {digest}, was unset)" in details
    assert "TELEGRAM_BOT_TOKEN=from_file:secrets/telegram (hmac " in details
    assert "OPENROUTER_MODEL=plain-model" in details  # --show-values shows literals only

    res = hermesctl("apply", "-f", str(fleet), "--show-values", env=env)
    assert res.code == 0, res
    for value in (ENV_VALUE, FILE_VALUE):
        assert value not in res.stdout and value not in res.stderr
    got = _env_of(c, "coder")
    assert got["OPENROUTER_API_KEY"] == ENV_VALUE and got["TELEGRAM_BOT_TOKEN"] == FILE_VALUE
    assert sh(c, "stat -c '%U %a' /opt/data/profiles/coder/.env").strip() == "hermes 600"
    # The key is root's: hermes (whatever the agent runs) can neither read nor replace it.
    assert sh(c, "stat -c '%U %a' /var/lib/hermesctl /var/lib/hermesctl/env-hmac.key", user="root").split() == \
        ["root", "700", "root", "600"]
    assert "Permission denied" in sh(c, "cat /var/lib/hermesctl/env-hmac.key", check=False)
    # The values reached the container through the exec's environment, never its argv, and
    # docker inspect shows neither.
    assert ENV_VALUE not in json.dumps(c.client.api.inspect_container(c.id))

    again = hermesctl("diff", "-f", str(fleet), "--json", env=env)
    assert again.code == 0 and again.json()["changes"] == [], again


def test_a_rotated_file_value_is_applied_once_with_one_restart(fleet_box, tmp_path):
    c = fleet_box
    fleet, secret = _fleet(tmp_path, c.name)
    env = {"HCT_TEST_OPENROUTER": ENV_VALUE}
    assert hermesctl("apply", "-f", str(fleet), env=env).code == 0
    wait_in(c, CODER_UP, what="coder up")
    before = svstat(c, "coder")["pid"]

    secret.write_text("7311:rotated-value-55c0\n")
    key = _key_of(c)
    old, new = (hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:12]
                for v in (FILE_VALUE, "7311:rotated-value-55c0"))
    drift = hermesctl("diff", "-f", str(fleet), "--json", env=env)
    assert drift.code == 1
    assert [(ch["action"], ch["detail"]) for ch in drift.json()["changes"]] == [
        ("set-env", f"TELEGRAM_BOT_TOKEN=from_file:secrets/telegram (hmac {new}, was {old})"),
        ("restart", "settings changed")]

    res = hermesctl("apply", "-f", str(fleet), "--json", env=env)
    assert res.code == 0, res
    assert [ch["action"] for ch in res.json()["changes"]] == ["set-env", "restart"]
    assert _env_of(c, "coder")["TELEGRAM_BOT_TOKEN"] == "7311:rotated-value-55c0"
    wait_in(c, CODER_UP, what="coder up again")
    after = svstat(c, "coder")["pid"]
    assert after != before
    # Once: the next apply finds nothing to do and the gateway keeps running as it is.
    assert hermesctl("apply", "-f", str(fleet), "--json", env=env).json()["changes"] == []
    assert svstat(c, "coder")["pid"] == after


def test_missing_and_unsafe_references_are_refused_before_any_change(containers, tmp_path):
    c = containers.start("badref")
    fleet, secret = _fleet(tmp_path, c.name)
    missing = hermesctl("apply", "-f", str(fleet))
    assert missing.code == 2, missing
    assert missing.stderr.strip() == (f"hermesctl: {fleet}:8: env OPENROUTER_API_KEY: HCT_TEST_OPENROUTER "
                                      "is not set in the environment")

    env = {"HCT_TEST_OPENROUTER": ENV_VALUE}
    secret.chmod(0o644)
    readable = hermesctl("apply", "-f", str(fleet), env=env)
    assert readable.code == 2, readable
    assert readable.stderr.strip() == (f"hermesctl: {fleet}:9: env TELEGRAM_BOT_TOKEN: from_file "
                                       "'secrets/telegram': mode 0644 lets group or others read or write it; "
                                       "chmod 600 it")
    secret.unlink()
    gone = hermesctl("apply", "-f", str(fleet), env=env)
    assert gone.code == 2 and f"{fleet}:9: env TELEGRAM_BOT_TOKEN: from_file 'secrets/telegram': no such file" \
        in gone.stderr, gone

    _fleet(tmp_path, c.name)
    fleet.write_text(fleet.read_text() + "          DISCORD_BOT_TOKEN: {from_secret: discord-v1}\n")
    not_swarm = hermesctl("apply", "-f", str(fleet), env=env)
    assert not_swarm.code == 2, not_swarm
    assert f"{fleet}:11: env DISCORD_BOT_TOKEN: from_secret is a Docker Swarm secret: use --swarm" in not_swarm.stderr
    assert sh(c, "ls /opt/data/profiles").strip() == ""  # nothing was created by any of them


def test_a_literal_that_looks_like_a_secret_is_warned_about(fleet_box, tmp_path):
    c = fleet_box
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"version: 1\ncontainers:\n  {c.name}:\n    profiles:\n      coder:\n        env:\n"
                     "          SLACK_BOT_TOKEN: xoxb-literal-1\n          OPENROUTER_MODEL: m\n")
    res = hermesctl("apply", "-f", str(fleet))
    assert res.code == 0, res
    warnings = [l for l in res.stderr.splitlines() if "literal" in l]
    assert warnings == [f"hermesctl: {fleet}:7: env SLACK_BOT_TOKEN is a literal value in the fleet file; "
                        "use {from_env: NAME}, {from_file: PATH} or {from_secret: NAME}"]
    assert "xoxb-literal-1" not in res.stdout + res.stderr
