"""Issue 23: gateways that serve, end to end, through the real gateway under s6.

One container, no network: the external services are stand-ins on its loopback (tests/doubles),
and the gateways reach them as they would reach the real ones: the model through `model.provider
custom` + `model.base_url`, Telegram through `platforms.telegram.extra.base_url`, Discord and
Slack through the proxy their SDKs are told to use. Two profiles are served side by side:
`tg` (Telegram, the API server, two stdio MCP servers: Python, and Node through npx) and `chat`
(Discord and Slack).

Every test here fails on the slim image (hermes-agent 0.19.0 + aiohttp only): it has neither
python-telegram-bot, discord.py, slack-bolt nor mcp, nor git, ripgrep or node for the tools.
"""
import json
import secrets
from types import SimpleNamespace

import pytest

import doubles
from conftest import hermesctl, wait_for

ALLOWED_USER = 4242
STRANGER = 5151
API_PORT = 8642
API_KEY = "stand-in-api-key-" + secrets.token_hex(8)  # the API server wants 16+ characters
# Bounds, not timing asserts: a gateway imports for 10 to 30 s before it connects on a loaded 2-core
# machine (hermes' own start-up), and the waits poll the stand-ins' records.
START = 150
TELEGRAM_TOKEN = "123456789:AAstand-in-token-" + secrets.token_hex(8)
MCP_TOOL = "mcp__standin__stand_in_lookup"  # hermes names an MCP tool mcp__<server>__<tool>
NPX_MCP_TOOL = "mcp__npxstandin__stand_in_count"


def write_file(c, path: str, text: str) -> None:
    """Write a profile file as hermes (a new file gets hermes' umask; .env keeps its 0600)."""
    result = c.exec_run([doubles.PYTHON, "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
                         path, text], user="hermes")
    assert result.exit_code == 0, result.output.decode()


def model_config(model) -> str:
    return f"model:\n  provider: custom\n  base_url: {model.base_url}\n  default: {model.model_id}\n"


@pytest.fixture(scope="module")
def served(module_containers, full_image):
    """The container (of the full flavour: the platforms and tools it carries are the point), its
    stand-ins, and both gateways started (not yet known to be connected: each test waits for
    what it needs, so the slow parts overlap)."""
    c = module_containers.start("gw", image=full_image)
    model = doubles.start_model(c)
    telegram = doubles.start_telegram(c)
    proxy = doubles.start_proxy(c)
    for profile in ("tg", "chat"):
        res = hermesctl("profile", "create", f"{c.name}:{profile}")
        assert res.code == 0, res
    home = "/opt/data/profiles"
    write_file(c, f"{home}/tg/config.yaml", model_config(model) + (
        "platforms:\n  telegram:\n    enabled: true\n    extra:\n"
        f"      base_url: {telegram.base_url}\n"
        "mcp_servers:\n  standin:\n"
        f"    command: {doubles.PYTHON}\n    args: [{doubles.MCP_SERVER}, /tmp/mcp-calls.jsonl]\n"
        # As MCP servers are usually started: through npx (offline: its folder holds the package).
        f"  npxstandin:\n    command: npx\n    args: [--yes, --offline, {doubles.NODE_MCP_PACKAGE}]\n"))
    write_file(c, f"{home}/tg/.env", (
        f"TELEGRAM_BOT_TOKEN={TELEGRAM_TOKEN}\nTELEGRAM_ALLOWED_USERS={ALLOWED_USER}\n"
        f"API_SERVER_ENABLED=true\nAPI_SERVER_HOST=127.0.0.1\nAPI_SERVER_PORT={API_PORT}\n"
        f"API_SERVER_KEY={API_KEY}\n"))
    write_file(c, f"{home}/chat/config.yaml", model_config(model))
    # discord.py takes DISCORD_PROXY; slack-sdk the usual HTTPS_PROXY (NO_PROXY keeps the model
    # stand-in direct). Fake tokens of the right shape: the SDKs only get as far as connecting.
    write_file(c, f"{home}/chat/.env", (
        "DISCORD_BOT_TOKEN=MTIzNDU2Nzg5MDEyMzQ1Njc4.Gstand.in-stand-in-stand-in-stand-in-stand\n"
        f"DISCORD_PROXY={proxy.url}\n"
        "SLACK_BOT_TOKEN=xoxb-1-2-stand-in\nSLACK_APP_TOKEN=xapp-1-stand-in\n"
        f"HTTPS_PROXY={proxy.url}\nNO_PROXY=127.0.0.1,localhost\n"))
    res = hermesctl("gateway", "start", f"{c.name}:tg", f"{c.name}:chat")
    assert res.code == 0, res
    return SimpleNamespace(c=c, model=model, telegram=telegram, proxy=proxy)


def platforms(c, profile: str) -> dict:
    """The platform states `hermesctl ps --json` reports for one gateway."""
    res = hermesctl("ps", "--json", f"{c.name}:{profile}")
    assert res.code == 0, res
    (gateway,) = res.json()["gateways"]
    return {name: p.get("state") for name, p in (gateway.get("platforms") or {}).items()}


def chat_completion(c, body: dict, key: str = API_KEY) -> tuple[int, dict]:
    """POST /v1/chat/completions to the gateway's API server, from inside the container."""
    script = ("import json, sys, urllib.error, urllib.request\n"
              "req = urllib.request.Request(f'http://127.0.0.1:{sys.argv[1]}/v1/chat/completions',\n"
              "    data=sys.argv[2].encode(), headers={'Authorization': 'Bearer ' + sys.argv[3],\n"
              "    'Content-Type': 'application/json'})\n"
              "try:\n"
              "    r = urllib.request.urlopen(req, timeout=120); print(r.status); print(r.read().decode())\n"
              "except urllib.error.HTTPError as e:\n"
              "    print(e.code); print(e.read().decode())\n")
    result = c.exec_run([doubles.PYTHON, "-c", script, str(API_PORT), json.dumps(body), key], user="hermes")
    assert result.exit_code == 0, result.output.decode()
    status, _, text = result.output.decode().partition("\n")
    return int(status), json.loads(text or "null")


def api_server_up(served) -> None:
    wait_for(lambda: platforms(served.c, "tg").get("api_server") == "connected", timeout=START,
             what="the tg gateway's API server")


def tool_results(request: dict) -> list[dict]:
    return [m for m in request.get("messages", []) if m.get("role") == "tool"]


def test_a_telegram_message_from_an_allowed_user_is_answered_by_the_model(served):
    """A private message injected at the Telegram stand-in reaches the agent, the model's reply
    comes back as the bot's sendMessage to that chat (a user not on the allowlist reaches no
    model); `ps` shows telegram:connected and `usage`
    counts the Telegram session. Fails on the slim image: no python-telegram-bot, the adapter is
    never created ("requirements not met") and getUpdates is never called."""
    c, model, tg = served.c, served.model, served.telegram
    # The adapter drops updates queued before its first poll (a cold start): inject after it.
    doubles.wait_until(lambda: tg.calls("getUpdates"), timeout=START, what="the Telegram adapter polling the stand-in")
    token = "tg-" + secrets.token_hex(4)
    stranger = "tg-stranger-" + secrets.token_hex(4)
    model.queue_for(token, {"content": "pong from the stand in model"})
    # First a user the allowlist does not name: the gateway must not hand their text to the model.
    tg.inject(f"ping {stranger}", user_id=STRANGER)
    message_id = tg.inject(f"ping {token}", user_id=ALLOWED_USER)
    sent = doubles.wait_until(
        lambda: [r for r in tg.calls("sendMessage") if "pong from the stand in model" in str(r["params"].get("text"))],
        timeout=START, what="the model's reply sent to Telegram")
    assert sent[0]["params"]["chat_id"] == ALLOWED_USER
    assert sent[0]["params"]["reply_parameters"]["message_id"] == message_id  # an answer to that message
    # The stranger's update came first (same poll or an earlier one) and was dropped before any
    # agent ran: had it reached one, its model call would have begun by now.
    assert not [r for r in model.completions() if stranger in json.dumps(r)]
    (asked,) = [r for r in model.completions() if token in json.dumps(r.get("messages")) and r.get("tools")]
    roles = [m["role"] for m in asked["messages"]]
    assert roles[0] == "system" and asked["messages"][0]["content"]  # the gateway's system prompt
    assert any(m["role"] == "user" and token in json.dumps(m["content"]) for m in asked["messages"])

    assert platforms(c, "tg").get("telegram") == "connected"
    ps = hermesctl("ps", f"{c.name}:tg")
    assert ps.code == 0 and "telegram:connected" in ps.stdout, ps

    def telegram_sessions():
        res = hermesctl("usage", f"{c.name}:tg", "--source", "telegram", "--json")
        assert res.code == 0, res
        return res.json()["profiles"][0]["sessions"]
    assert wait_for(telegram_sessions, timeout=30, what="usage counting the Telegram session") >= 1


def test_the_api_server_answers_and_the_terminal_tool_runs_git_and_rg_in_the_container(served):
    """POST /v1/chat/completions on the gateway's API server (key required) runs an agent turn:
    the model asks for the terminal tool, the tool runs `git --version` and `rg --version` in the
    container, its output goes back to the model, and the model's final answer is the API's
    answer. Fails on the slim image: it has neither git nor ripgrep (the tool result says so)."""
    c, model = served.c, served.model
    api_server_up(served)
    status, doc = chat_completion(c, {"model": "hermes", "messages": [{"role": "user", "content": "hi"}]},
                                  key="wrong-key-wrong-key-wrong")
    assert status == 401, doc
    token = "api-" + secrets.token_hex(4)
    model.queue_for(token, {"tool_calls": [{"name": "terminal",
                                            "arguments": {"command": "git --version && rg --version"}}]},
                    {"content": "both tools are installed"})
    status, doc = chat_completion(c, {"model": "hermes", "messages": [{"role": "user", "content": f"check {token}"}]})
    assert status == 200, doc
    assert doc["choices"][0]["message"]["content"] == "both tools are installed"
    turns = [r for r in model.completions() if token in json.dumps(r.get("messages")) and r.get("tools")]
    assert len(turns) == 2 and not tool_results(turns[0])
    (result,) = tool_results(turns[1])
    assert result["name"] == "terminal"
    output = json.loads(result["content"])
    assert output["exit_code"] == 0, output
    assert "git version" in output["output"] and "ripgrep" in output["output"], output


def test_model_tool_calls_reach_mcp_servers_python_and_npx_and_their_answers_go_back(served):
    """The profile's two stdio MCP servers, started by the gateway (tests/doubles/mcp_stdio.py
    with the system Python, and tests/doubles/node-mcp through `npx`), are offered to the model
    as tools; the model calls both in one API-server turn, each server runs its call, and both
    answers are in the model's next request. Fails on the slim image: without the `mcp` package
    hermes offers no MCP tool (and it has no node/npx)."""
    c, model = served.c, served.model
    api_server_up(served)
    token = "mcp-" + secrets.token_hex(4)
    model.queue_for(token, {"tool_calls": [{"name": MCP_TOOL, "arguments": {"word": token}},
                                           {"name": NPX_MCP_TOOL, "arguments": {"word": token}}]},
                    {"content": "looked it up"})
    status, doc = chat_completion(c, {"model": "hermes", "messages": [{"role": "user", "content": f"look up {token}"}]})
    assert status == 200, doc
    turns = [r for r in model.completions() if token in json.dumps(r.get("messages")) and r.get("tools")]
    offered = [t["function"]["name"] for t in turns[0]["tools"]]
    assert MCP_TOOL in offered and NPX_MCP_TOOL in offered, offered
    results = {m["name"]: m["content"] for m in tool_results(turns[1])}
    assert f"{doubles.MCP_MARKER}: {token} means stand-in" in results[MCP_TOOL]
    assert f"{doubles.NODE_MCP_MARKER}: {token} has {len(token)} letters (node v" in results[NPX_MCP_TOOL]
    calls = c.exec_run(["cat", "/tmp/mcp-calls.jsonl"], user="hermes").output.decode().splitlines()
    assert {"name": "stand_in_lookup", "arguments": {"word": token}} in [json.loads(l) for l in calls]
    assert doc["choices"][0]["message"]["content"] == "looked it up"


def test_discord_and_slack_adapters_are_created_and_try_to_connect(served):
    """The `chat` gateway's Discord and Slack adapters are created and make their first network
    call (to discord.com and slack.com, through the proxy stand-in that refuses it); `ps` lists
    both platforms. Fails on the slim image: without discord.py and slack-bolt neither adapter is
    created and nothing connects."""
    c, proxy = served.c, served.proxy
    targets = doubles.wait_until(
        lambda: (lambda t: t if {"discord.com:443", "slack.com:443"} <= set(t) else None)(proxy.targets()),
        timeout=START, what="Discord and Slack connecting through the proxy stand-in")
    assert "discord.com:443" in targets and "slack.com:443" in targets
    states = wait_for(lambda: (lambda p: p if {"discord", "slack"} <= set(p) else None)(platforms(c, "chat")),
                      timeout=30, what="ps listing discord and slack")
    assert states["discord"] != "connected" and states["slack"] != "connected"  # nothing real to reach
