"""Issue 9, points 2 and 7 against real containers: .env values reach hermes exactly as written
(python-dotenv in the image reads them back), dangerous values are refused with .env untouched,
every value is masked unless --show-values, and hostile command-line input is a usage error."""
import json

import pytest
import yaml

from conftest import hermesctl, sh

READ_DOTENV = ("import json, sys; from dotenv import dotenv_values; "
               "print(json.dumps(dotenv_values(sys.argv[1])))")
ENV_PATH = "/opt/data/profiles/coder/.env"


def hermes_sees(container, path: str = ENV_PATH) -> dict:
    """The .env as hermes loads it: python-dotenv from the image's own venv."""
    res = container.exec_run(["/opt/hermes/.venv/bin/python", "-I", "-c", READ_DOTENV, path], user="hermes")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def digest(container, path: str = ENV_PATH) -> str:
    return sh(container, f"sha256sum {path}").split()[0]


def fleet_file(tmp_path, name: str, env: dict):
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "containers": {name: {"profiles": {"coder": {"env": env}}}}}))
    return path


def test_env_values_reach_hermes_exactly_and_are_never_printed(containers, tmp_path):
    c = containers.start("envrt")
    values = {"TRICKY": "a #b 'q' \"d\" \\ $HOME $ end\\", "SMTP_PASS": "hunter2-not-a-KEY-name",
              "DATABASE_URL": "postgres://app:s3cr3t-pw@db/app", "EMPTY": "", "LEAD": "  spaced  "}
    fleet = fleet_file(tmp_path, c.name, values)
    res = hermesctl("apply", "-f", str(fleet), "--json")
    assert res.code == 0, res
    assert hermes_sees(c) == values
    assert sh(c, f"stat -c '%U %a' {ENV_PATH}").strip() == "hermes 600"
    for secret in ("hunter2-not-a-KEY-name", "s3cr3t-pw", "end\\\\"):
        assert secret not in res.stdout and secret not in res.stderr
    detail = next(ch["detail"] for ch in res.json()["changes"] if ch["action"] == "set-env")
    assert "SMTP_PASS=<hidden>" in detail and "DATABASE_URL=<hidden>" in detail

    # A hand-written line with a comment: hermes reads 8642, so 8642 in the file is no change.
    sh(c, f"printf 'NOTE=8642 # note\\n' >> {ENV_PATH}")
    again = hermesctl("apply", "-f", str(fleet_file(tmp_path, c.name, {**values, "NOTE": "8642"})), "--json")
    assert again.code == 0 and again.json()["changes"] == [], again
    assert "NOTE=8642 # note" in sh(c, f"cat {ENV_PATH}")

    # Tables and JSON of diff mask every value; --show-values shows them.
    changed = fleet_file(tmp_path, c.name, {**values, "SMTP_PASS": "new-pass-123456"})
    for args in (["diff", "-f", str(changed)], ["diff", "-f", str(changed), "--json"]):
        masked = hermesctl(*args)
        assert "new-pass-123456" not in masked.stdout and "SMTP_PASS=<hidden>" in masked.stdout, masked
    shown = hermesctl("diff", "-f", str(changed), "--json", "--show-values")
    assert "SMTP_PASS=new-pass-123456" in shown.stdout, shown


@pytest.fixture(scope="module")
def refusing(module_containers):
    """One container for the refusal tests: each applies A=1 (the first creates `coder`, the
    others find it so), then its refused value must leave that .env byte for byte."""
    return module_containers.start("refusing")


@pytest.mark.parametrize("value", ["x\rINJECTED_KEY=y", "x\0y", "x\nINJECTED_KEY=y", "${HOME}"])
def test_dangerous_fleet_values_are_refused_and_env_unchanged(refusing, tmp_path, value):
    c = refusing
    assert hermesctl("apply", "-f", str(fleet_file(tmp_path, c.name, {"A": "1"}))).code == 0
    before = digest(c)
    res = hermesctl("apply", "-f", str(fleet_file(tmp_path, c.name, {"A": value, "B": "2"})))
    assert res.code == 2, res
    assert len(res.stderr.strip().splitlines()) == 1 and "fleet.yaml:" in res.stderr
    assert digest(c) == before and "INJECTED_KEY" not in sh(c, f"cat {ENV_PATH}")


def test_in_container_writer_refuses_control_characters_before_writing(refusing, tmp_path):
    """The second line of defence: hermes-slots set-env itself, given a CR through the exec
    environment, and the module given a NUL (which no environment can carry)."""
    c = refusing
    assert hermesctl("apply", "-f", str(fleet_file(tmp_path, c.name, {"A": "1"}))).code == 0
    before = digest(c)
    res = c.exec_run(["/opt/hermes/docker/hermes-slots", "set-env", "coder", "A", "B"], user="hermes",
                     environment={"HERMESCTL_ENV_A": "x\rINJECTED_KEY=y", "HERMESCTL_ENV_B": "2"})
    assert res.exit_code == 2, res.output
    assert b"control characters" in res.output and b"INJECTED" not in res.output
    script = ("import sys; sys.path.insert(0, '/opt/hermes/docker'); from pathlib import Path; "
              "from hermes_supervise.envfile import set_env, EnvValueError\n"
              "try:\n    set_env(Path(sys.argv[1]), {'B': '2', 'A': 'x\\0y'})\n"
              "except EnvValueError as e:\n    print('refused:', e); sys.exit(2)\n")
    res = c.exec_run(["/opt/hermes/.venv/bin/python", "-I", "-c", script, ENV_PATH], user="hermes")
    assert res.exit_code == 2 and b"refused" in res.output, res.output
    assert digest(c) == before
    assert hermes_sees(c) == {"A": "1"}


@pytest.mark.parametrize("args", [
    ["-H", "", "ps"], ["-c", "", "ps"], ["-H", "tcp://[::1", "ps"], ["-H", "http://localhost:99999", "ps"],
    ["-H", "ssh://u@h:-oProxyCommand=touch", "ps"], ["profile", "create", "c:coder\n"],
    ["profile", "create", "c:\u212aey"], ["gateway", "status", "c:coder\n"],
])
def test_hostile_command_lines_are_one_line_usage_errors(args, tmp_path):
    res = hermesctl(*args, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert res.code == 2, res
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content,text", [
    (b"\xff\xfev\x00e\x00r\x00", "not UTF-8"),
    ("version: 1\ncontainers:\n  c\xe9: {}\n".encode("latin-1"), "not UTF-8"),
    (b"version: 1\ncontainers: " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested deeper"),
    (b"root:$y$j9T$secretsecret:20228:0:99999:7:::\n", "unknown key"),
    (b"\x7fELF\x02\x01\x01\x00\x00", "binary"),
])
def test_hostile_fleet_files_are_one_line_usage_errors(tmp_path, content, text):
    path = tmp_path / "fleet.yaml"
    path.write_bytes(content)
    res = hermesctl("apply", "-f", str(path), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert res.code == 2 and text in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1 and "secretsecret" not in res.stderr


def test_dev_zero_is_not_read_forever():
    res = hermesctl("apply", "-f", "/dev/zero", env={"DOCKER_HOST": "unix:///nonexistent.sock"}, timeout=30)
    assert res.code == 2 and "larger than" in res.stderr, res
