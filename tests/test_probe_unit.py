"""Is a gateway serving? Without Docker: the agent's `serving` verb on a temporary HERMES_HOME
against a loopback HTTP server in the test's place of hermes' API server (status codes and
bodies only), the one judgment (hermesctl.agent.serving) on every branch, `probe` through the whole
CLI on recorded answers (tests/fakefleet.py) with its exit codes, and ps' judgment of a gateway
whose every platform is fatal on every ps path."""
import copy
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "image" / "hermes" / "docker"))

from hermes_supervise import agent, serving as agent_serving  # noqa: E402
from hermesctl.agent.serving import judge  # noqa: E402
from hermesctl.core.errors import ExecTimeoutError  # noqa: E402
from hermesctl.model.slots import Slot, SvStatus, GatewayState  # noqa: E402
from fakefleet import FakeFleet, cli_on, container, recorded  # noqa: E402

KEY = "k" * 24
H1 = recorded("status-h1.json")  # pa: up, api_server connected; pb parked


class _Api(BaseHTTPRequestHandler):
    """Answers as hermes' API server does at the HTTP level: /health 200 without auth, chat
    completions with the bearer key only; the reply's text is the test's."""
    reply = "first line \x1b[2J of the answer\nsecond line"
    seen: list = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(200, {"status": "ok"}) if self.path == "/health" else self._send(404, {})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        _Api.seen.append((self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self._send(401, {"error": {"message": "Invalid API key"}})
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": _Api.reply}}]})


@pytest.fixture
def api_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Api.seen = []
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_HOME", str(tmp_path))
    for key in ("API_SERVER_ENABLED", "API_SERVER_KEY", "API_SERVER_PORT", "API_SERVER_HOST", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "profiles" / "coder").mkdir(parents=True)
    (tmp_path / "profiles" / "coder" / "SOUL.md").write_text("x")
    return tmp_path


def _agent(capsys, *argv: str) -> tuple[int, dict]:
    code = agent.main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_the_agent_asks_health_and_chat_on_loopback_and_never_prints_the_key(home, api_server, capsys):
    (home / "profiles" / "coder" / ".env").write_text(
        f"API_SERVER_ENABLED=true\nAPI_SERVER_HOST=127.0.0.1\nAPI_SERVER_PORT={api_server}\nAPI_SERVER_KEY={KEY}\n"
        "TELEGRAM_BOT_TOKEN=123:abc\n")
    code, doc = _agent(capsys, "serving", "coder", "default", "--prompt", "--say hi", "--timeout", "5")
    assert code == 0
    coder = doc["profiles"]["coder"]
    assert coder["configured"] == ["telegram"]
    assert coder["api"]["health"]["ok"] and coder["api"]["health"]["status"] == 200
    assert coder["api"]["chat"]["ok"] and coder["api"]["chat"]["first_line"] == "first line \x1b[2J of the answer"
    assert _Api.seen[0][1]["messages"] == [{"role": "user", "content": "--say hi"}]  # the prompt as given
    assert doc["profiles"]["default"] == {"configured": [], "api": {"enabled": False}, "error": None}
    assert KEY not in json.dumps(doc) and "123:abc" not in json.dumps(doc)


@pytest.mark.parametrize("env, reason", [
    ("API_SERVER_KEY=short-key\n", "shorter than 16"),
    (f"API_SERVER_KEY={KEY}\nAPI_SERVER_HOST=10.1.2.3\n", "not a loopback"),
    (f"API_SERVER_ENABLED=yes\nAPI_SERVER_KEY={KEY}\nAPI_SERVER_PORT=http\n", "not a port"),
])
def test_an_api_server_hermes_would_refuse_or_that_is_off_loopback_is_not_asked(home, capsys, env, reason):
    (home / "profiles" / "coder" / ".env").write_text(env)
    _, doc = _agent(capsys, "serving", "coder")
    api = doc["profiles"]["coder"]["api"]
    assert api["enabled"] and reason in api["reason"] and "health" not in api


def test_a_wrong_key_and_a_closed_port_are_reported_as_what_they_are(home, api_server, capsys):
    (home / "profiles" / "coder" / ".env").write_text(
        f"API_SERVER_KEY={'x' * 20}\nAPI_SERVER_PORT={api_server}\n")
    _, doc = _agent(capsys, "serving", "coder", "--prompt", "hi")
    chat = doc["profiles"]["coder"]["api"]["chat"]
    assert not chat["ok"] and chat["status"] == 401 and "Invalid API key" in chat["error"]
    import socket
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    (home / "profiles" / "coder" / ".env").write_text(f"API_SERVER_KEY={KEY}\nAPI_SERVER_PORT={free}\n")
    _, doc = _agent(capsys, "serving", "coder", "--prompt", "hi")
    health = doc["profiles"]["coder"]["api"]["health"]
    assert not health["ok"] and health["status"] is None and "Connection" in health["error"]
    assert "chat" not in doc["profiles"]["coder"]["api"]  # no chat through a server that is not there


def test_facts_hashes_tokens_under_the_hosts_key_only(home, capsys, monkeypatch):
    (home / ".env").write_text("TELEGRAM_BOT_TOKEN=123:abc\n")
    (home / "profiles" / "coder" / ".env").write_text("TELEGRAM_BOT_TOKEN=123:abc\nSLACK_APP_TOKEN=xapp-1\n")
    monkeypatch.setattr(agent_serving, "effective_env", lambda p: agent_serving.read_env(
        agent_serving.profile_dir(p) / ".env"))  # the host's own environment stays out of it
    from hermes_supervise import queries
    monkeypatch.setattr(queries, "facts", lambda: {"schema": "hermes-contract/v1", "verb": "facts"})
    _, plain = _agent(capsys, "facts")
    assert "platform_tokens" not in plain
    monkeypatch.setenv("HERMESCTL_TOKEN_KEY", "ab" * 16)
    _, doc = _agent(capsys, "facts")
    tokens = doc["platform_tokens"]
    assert tokens["default"]["TELEGRAM_BOT_TOKEN"] == tokens["coder"]["TELEGRAM_BOT_TOKEN"]
    assert set(tokens["coder"]) == {"TELEGRAM_BOT_TOKEN", "SLACK_APP_TOKEN"}
    assert "123:abc" not in json.dumps(doc) and "xapp-1" not in json.dumps(doc)
    monkeypatch.setenv("HERMESCTL_TOKEN_KEY", "cd" * 16)  # another run: other hashes
    _, again = _agent(capsys, "facts")
    assert again["platform_tokens"]["coder"]["TELEGRAM_BOT_TOKEN"] != tokens["coder"]["TELEGRAM_BOT_TOKEN"]
    monkeypatch.setenv("HERMESCTL_TOKEN_KEY", "not hex")
    code, bad = _agent(capsys, "facts")
    assert code == 2 and bad["error"]["code"] == "usage"


# --- the judgment -----------------------------------------------------------------------------

CONNECTED = {"telegram": {"state": "connected"}}
API_OK = {"enabled": True, "host": "127.0.0.1", "port": 8642, "reason": None,
          "health": {"ok": True, "status": 200, "seconds": 0.002, "error": None}}


@pytest.mark.parametrize("state, platforms, answer, prompted, serving, reason, says", [
    ("up", CONNECTED, {"configured": ["telegram"], "api": {"enabled": False}}, False, True, "serving", ""),
    ("up", {}, {"configured": [], "api": API_OK}, False, True, "serving", ""),
    ("down", CONNECTED, None, False, False, "not-up", "the gateway is down"),
    ("platforms-fatal", {"telegram": {"state": "fatal"}}, {}, False, False, "not-up", "platforms-fatal"),
    ("up", {"telegram": {"state": "retrying", "error_message": "409 Conflict"}}, {"configured": ["telegram"]},
     False, False, "platform", "telegram is retrying (409 Conflict)"),
    ("up", {}, {"configured": ["telegram"], "api": {"enabled": False}}, False, False, "not-started",
     "telegram has a token but the gateway did not start it"),
    ("up", {}, {"configured": [], "api": {"enabled": False}}, False, False, "idle", "serves nothing"),
    ("up", {}, {"configured": [], "api": {**API_OK, "health": {"ok": False, "error": "error: refused"}}},
     False, False, "api", "/health: error: refused"),
    ("up", {}, {"configured": [], "api": {**API_OK, "reason": "API_SERVER_KEY is missing"}}, False, False,
     "api", "API_SERVER_KEY is missing"),
    ("up", {}, {"configured": [], "api": API_OK}, True, False, "chat", "chat completion: no answer"),
    ("up", {}, {"configured": [], "api": {**API_OK, "chat": {"ok": True, "seconds": 1.5}}}, True, True, "serving", ""),
    ("up", CONNECTED, None, False, False, "no-answer", "did not say"),
])
def test_the_judgment(state, platforms, answer, prompted, serving, reason, says):
    verdict = judge(state, platforms, answer, prompted=prompted)
    assert (verdict.serving, verdict.reason) == (serving, reason)
    assert says in verdict.detail


# --- ps: a gateway whose every platform is fatal is not `up` ------------------------------------

def _slot(platforms: dict, *, up: bool = True, seconds: int = 100, now: float = 2000.0) -> Slot:
    status = SvStatus(up=up, wanted_up=up, normally_up=False, pid=10 if up else None, exit_code=None,
                      signal=None, seconds=seconds)
    return Slot("coder", status, GatewayState(platforms=platforms), now=now)


def test_every_platform_fatal_is_its_own_state_and_stale_entries_do_not_count():
    fatal = {"state": "fatal", "updated_at": 1950.0}
    assert _slot({"telegram": fatal, "discord": fatal}).run_state == "platforms-fatal"
    assert _slot({"telegram": fatal, "api_server": {"state": "connected", "updated_at": 1950.0}}).run_state == "up"
    assert _slot({}).run_state == "up"  # no platform at all: up (probe says it serves nothing)
    # an entry from before this process started (up 100 s at 2000): not this process' word
    old = {"telegram": fatal, "discord": {"state": "fatal", "updated_at": "1970-01-01T00:15:00+00:00"}}
    slot = _slot(old)
    assert set(slot.platforms) == {"telegram"} and slot.run_state == "platforms-fatal"
    assert _slot({"discord": old["discord"]}).run_state == "up"
    assert _slot({"telegram": fatal}, up=False).run_state == "down"


def _fatal_status() -> dict:
    doc = copy.deepcopy(H1)
    pa = doc["slots"]["pa"]
    for name in ("telegram", "api_server"):
        pa["gateway_state"]["platforms"][name] = {"state": "fatal", "error_code": "x", "error_message": "m",
                                                  "updated_at": pa["gateway_state"]["updated_at"]}
    doc["slots"] = {"pa": pa}
    return doc


def test_every_ps_path_and_gateway_status_say_platforms_fatal(monkeypatch, capsys):
    fleet = FakeFleet([container("h1")], {"h1": {"status": _fatal_status()}})
    run = cli_on(fleet, monkeypatch, capsys)
    code, out, _ = run("ps", "--direct", "--json")
    assert code == 3 and json.loads(out)["gateways"][0]["state"] == "platforms-fatal"
    assert run("gateway", "status", "h1:pa")[0] == 3
    # the served path and the live table: rows made by the same engine (engine.rows.gateway_row)
    from hermesctl.commands.ps_served import render
    from hermesctl.engine.rows import collect
    import io
    rows = collect(fleet, [])
    served = {"gateways": [r.__dict__ | {"target": r.target} for r in rows], "source": {}}
    status = render(served, [], json_output=True, wide=False, quiet=False, no_headers=False,
                    stdout=io.StringIO(), stderr=io.StringIO())
    assert int(status) == 3 and rows[0].state == "platforms-fatal"


# --- probe through the whole CLI ----------------------------------------------------------------

def _serving_answer(**profiles) -> dict:
    return {"schema": "hermes-contract/v1", "verb": "serving", "profiles": profiles}


@pytest.fixture
def probe_fleet():
    healthy = copy.deepcopy(H1)
    healthy["slots"] = {"pa": healthy["slots"]["pa"]}
    api_chat = {**API_OK, "chat": {"ok": True, "status": 200, "seconds": 1.25, "first_line": "hello \x1b]52;c;x\x07",
                                   "error": None}}
    return FakeFleet(
        [container("h1"), container("h2"), container("slow")],
        {"h1": {"status": H1, "serving": _serving_answer(
            pa={"configured": [], "api": api_chat, "error": None},
            pb={"configured": [], "api": API_OK, "error": None})},
         "h2": {"status": healthy, "serving": _serving_answer(pa={"configured": [], "api": api_chat, "error": None})},
         "slow": {"status": healthy, "serving": ExecTimeoutError("slow: no answer within 3s")}})


def test_probe_exit_codes_and_what_it_asks(probe_fleet, monkeypatch, capsys):
    run = cli_on(probe_fleet, monkeypatch, capsys)
    code, out, _ = run("probe", "h2", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "hermesctl.probe/v1" and doc["gateways"][0]["serving"] is True
    assert probe_fleet.calls[-1][1][1:3] == ["serving", "pa"] and "--prompt" not in probe_fleet.calls[-1][1]
    code, out, _ = run("probe", "h1:pa", "h1:pb", "--json")
    by = {g["profile"]: g for g in json.loads(out)["gateways"]}
    assert code == 3 and by["pa"]["serving"] and not by["pb"]["serving"] and by["pb"]["reason"] == "not-up"
    code, out, err = run("probe", "h2", "slow", "--json")
    assert code == 7 and "container slow did not answer in time" in err
    slow = [g for g in json.loads(out)["gateways"] if g["container"] == "slow"][0]
    assert slow["reason"] == "no-answer" and not slow["serving"]


def test_probe_with_a_prompt_shows_latency_and_the_first_line_escaped(probe_fleet, monkeypatch, capsys):
    run = cli_on(probe_fleet, monkeypatch, capsys)
    code, out, _ = run("probe", "h2", "--prompt", "say hello")
    assert code == 0
    assert probe_fleet.calls[-1][1][-2:] == ["--prompt", "say hello"]
    assert "\x1b" not in out and "\x07" not in out and "hello \\x1b]52;c;x\\x07" in out
    assert "200 1250ms" in out and "CHAT" in out.splitlines()[0]
    code, out, _ = run("probe", "h2", "--prompt", "say hello", "--json")
    assert json.loads(out)["gateways"][0]["latency_s"] == 1.25
    assert run("probe", "h2", "--prompt", " ")[0] == 2
    probe_fleet.answers["h2"]["serving"] = _serving_answer(pa={"configured": [], "api": {"enabled": False}})
    code, out, _ = run("probe", "h2", "--prompt", "say hello", "--json")
    gateway = json.loads(out)["gateways"][0]  # pa's api_server entry is connected: it serves, unasked
    assert code == 0 and gateway["problems"] == ["no API server: the prompt was not sent"]


# --- serve: hermes_gateway_serving and hermes_gateway_probe_seconds ------------------------------

def test_serve_looks_in_each_running_container_and_exports_the_same_judgment():
    import threading
    from hermesctl.serve import metrics, serving_feed
    from hermesctl.serve.state import ContainerInfo, FleetState

    running, stopped = container("h1"), container("h9", state="exited", status="Exited (0)")
    live = type("Live", (), {"lock": threading.Lock(), "containers": {"a": running, "b": stopped}})()
    fleet = FakeFleet([running, stopped], {"h1": {"serving": _serving_answer(
        pa={"configured": [], "api": {**API_OK, "health": {"ok": True, "status": 200, "seconds": 0.004}}},
        pb={"configured": ["telegram"], "api": {"enabled": False}})}})
    feed = serving_feed.ServingFeed(live, fleet, interval=30)
    state = FleetState()
    state.serving_feed = feed
    row = {"endpoint": "default", "container": "h1", "service": None, "state": "up", "wanted": "up",
           "platforms": {"api_server": {"state": "connected"}}}
    rows = [{**row, "profile": "pa", "target": "h1:pa"}, {**row, "profile": "pb", "target": "h1:pb", "platforms": {}}]
    state.set_container("default/h1", ContainerInfo("default", "h1", None, True, "healthy"), rows)

    def text() -> str:
        return metrics.render(state).decode()
    assert "hermes_gateway_serving{" not in text()  # nothing claimed before the first look
    feed.look_once()
    assert [(name, argv[1:]) for name, argv in fleet.calls] == [("h1", ["serving", "--timeout", "5"])]  # running only, never a prompt
    body = text()
    assert 'hermes_gateway_serving{container="h1",endpoint="default",profile="pa",service=""} 1.0' in body
    assert 'hermes_gateway_serving{container="h1",endpoint="default",profile="pb",service=""} 0.0' in body
    assert 'hermes_gateway_probe_seconds{container="h1",endpoint="default",profile="pa",service=""} 0.004' in body
    fleet.answers["h1"]["serving"] = ExecTimeoutError("late")
    feed.look_once()  # a container that does not answer: not serving, no latency
    body = text()
    assert 'profile="pa",service=""} 0.0' in body and "hermes_gateway_probe_seconds{" not in body


# --- one bot token, one gateway -----------------------------------------------------------------

def _facts(tokens: dict) -> dict:
    healthy = copy.deepcopy(H1)
    healthy["slots"] = {"pa": healthy["slots"]["pa"]}
    return {"schema": "hermes-contract/v1", "verb": "facts", "command_dir": True, "layout": [],
            "ownership": {"misowned": [], "misowned_count": 0, "refused": []}, "profiles": [],
            "status": healthy, "platform_tokens": tokens}


def test_doctor_names_a_token_two_profiles_hold_across_containers(monkeypatch, capsys):
    same, other = "a" * 64, "b" * 64
    fleet = FakeFleet([container("h1"), container("h2")], {
        "h1": {"facts": _facts({"coder": {"TELEGRAM_BOT_TOKEN": same}, "pa": {"SLACK_APP_TOKEN": other}})},
        "h2": {"facts": _facts({"default": {"TELEGRAM_BOT_TOKEN": same, "SLACK_BOT_TOKEN": other},
                                "x\x1b[2J": {"TELEGRAM_BOT_TOKEN": same}, "pb": {"DISCORD_BOT_TOKEN": "nothex"}})}})
    run = cli_on(fleet, monkeypatch, capsys)
    code, out, _ = run("doctor", "--json")
    found = [f for f in json.loads(out)["findings"] if f["check"] == "platform-token"]
    assert code == 1 and len(found) == 1, found  # SLACK_BOT/APP_TOKEN are different keys: no fight
    assert found[0]["container"] == "h1:coder,h2:default" and "TELEGRAM_BOT_TOKEN" in found[0]["detail"]
    assert same not in out  # the hashes are compared, not shown
    keys = {e["HERMESCTL_TOKEN_KEY"] for e in fleet.docker.environments}
    assert len(keys) == 1 and len(bytes.fromhex(keys.pop())) == 32  # one key for the whole run
    run("doctor", "--json")
    assert len({e["HERMESCTL_TOKEN_KEY"] for e in fleet.docker.environments}) == 2  # a new one next run
    fleet.answers["h2"]["facts"]["platform_tokens"] = {"default": {"TELEGRAM_BOT_TOKEN": other}}
    code, out, _ = run("doctor", "--json")
    assert not [f for f in json.loads(out)["findings"] if f["check"] == "platform-token"]


FLEET = """version: 1
containers:
  h1:
    profiles:
      coder:
        env:
          TELEGRAM_BOT_TOKEN: {from_file: tg}
      writer:
        env:
          TELEGRAM_BOT_TOKEN: %s
  h2:
    profiles:
      default:
        env:
          DISCORD_BOT_TOKEN: {from_secret: dc}
      pa:
        env:
          DISCORD_BOT_TOKEN: {from_secret: %s}
"""


@pytest.mark.parametrize("writer, secret, refused", [
    ("'123:secret-token'", "dc2", "TELEGRAM_BOT_TOKEN is one token for h1:coder (line 7), h1:writer"),
    ("'456:other-token'", "dc", "DISCORD_BOT_TOKEN is one token for h2:default (line 15), h2:pa (line 18)"),
    ("'456:other-token'", "dc2", None),
])
def test_apply_refuses_one_token_for_two_profiles_without_showing_it(tmp_path, monkeypatch, capsys, writer, secret, refused):
    (tmp_path / "tg").write_text("123:secret-token\n")
    (tmp_path / "tg").chmod(0o600)
    (tmp_path / "fleet.yaml").write_text(FLEET % (writer, secret))
    fleet = FakeFleet([container("h1"), container("h2")], {})
    run = cli_on(fleet, monkeypatch, capsys)
    for command in ("apply", "diff"):
        code, out, err = run(command, "-f", str(tmp_path / "fleet.yaml"), "--dry-run" if command == "apply" else "--prune")
        if refused:
            assert code == 2 and refused in err and "409 Conflict" in err, err
            assert "secret-token" not in err + out and fleet.calls == []  # refused before any container
        else:
            assert "one token" not in err


def test_a_fifo_for_env_is_reported_not_waited_on(home, capsys):
    import os
    os.mkfifo(home / "profiles" / "coder" / ".env")
    code, doc = _agent(capsys, "serving", "coder")
    assert code == 0 and "not a regular file" in doc["profiles"]["coder"]["error"]
    assert not judge("up", {}, doc["profiles"]["coder"]).serving


def test_doctor_names_a_gateway_whose_every_platform_is_fatal(monkeypatch, capsys):
    facts = _facts({})
    facts["status"] = _fatal_status()
    run = cli_on(FakeFleet([container("h1")], {"h1": {"facts": facts}}), monkeypatch, capsys)
    code, out, _ = run("doctor", "--json")
    health = [f for f in json.loads(out)["findings"] if f["check"] == "gateway-health"]
    assert code == 1 and len(health) == 1 and "pa: up, but hermes gave up on every platform" in health[0]["detail"]
    assert "telegram: m" in health[0]["detail"]


def test_serving_without_profiles_asks_every_profile(home, capsys):
    code, doc = _agent(capsys, "serving", "--timeout", "2")
    assert code == 0 and sorted(doc["profiles"]) == ["coder", "default"]
    code, bad = _agent(capsys, "serving", "../x")
    assert code == 6 and bad["error"]["code"] == "invalid-name"
