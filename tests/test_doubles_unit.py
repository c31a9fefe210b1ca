"""The stand-ins of tests/doubles, daemon-free: run on this machine's loopback with its python3, they
speak what their clients expect (OpenAI's chat completions, streamed or not, with tool calls;
Telegram's Bot API with a long poll; a proxy's CONNECT; MCP over stdio), so a failing e2e test
points at hermes or the image, not at a stand-in."""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

DOUBLES = Path(__file__).resolve().parent / "doubles"


@pytest.fixture
def start(tmp_path):
    """start(name, *args) -> base URL of a stand-in on 127.0.0.1; every one is ended after the test."""
    ports = []

    def _start(name: str, *args: str) -> str:
        out = subprocess.run([sys.executable, str(DOUBLES / "serve.py"), "start", name, *args], capture_output=True,
                             text=True, timeout=30, env={**os.environ, "DOUBLES_LOG_DIR": str(tmp_path)}, check=True)
        ports.append(int(out.stdout))
        return f"http://127.0.0.1:{ports[-1]}"

    yield _start
    for port in ports:
        try:
            post(f"http://127.0.0.1:{port}/_double/exit", {})
        except (urllib.error.URLError, ConnectionError):
            pass  # it ends as it answers


def post(url: str, doc, form: bool = False, timeout: float = 30):
    if form:  # as python-telegram-bot sends: form fields, non-strings JSON-encoded
        data = urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}).encode()
        ctype = "application/x-www-form-urlencoded"
    else:
        data, ctype = json.dumps(doc).encode(), "application/json"
    request = urllib.request.Request(url, data=data, headers={"Content-Type": ctype})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


def get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def sse_chunks(text: str) -> list:
    events = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_model_scripts_replies_streams_tool_calls_and_records_requests(start):
    base = start("model", "the default")
    assert get(f"{base}/v1/models")["data"][0]["id"] == "stand-in-model"
    post(f"{base}/_double/replies", [
        {"match": ["tok-1", '"tools"'], "tool_calls": [{"name": "terminal", "arguments": {"command": "git --version"}}]},
        {"content": "plain"}])
    tools = [{"type": "function", "function": {"name": "terminal", "parameters": {}}}]
    # A side call (no tools, no token) skips the matched reply and takes the next unmatched one.
    side = json.loads(post(f"{base}/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "title?"}]}))
    assert side["choices"][0]["message"]["content"] == "plain"
    streamed = post(f"{base}/v1/chat/completions", {"model": "m", "stream": True, "stream_options": {"include_usage": True},
                                                    "tools": tools, "messages": [{"role": "user", "content": "tok-1"}]})
    chunks = sse_chunks(streamed)
    calls = [c for ch in chunks for choice in ch["choices"] for c in choice["delta"].get("tool_calls", [])]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == \
        [("terminal", {"command": "git --version"})]
    assert [choice["finish_reason"] for ch in chunks for choice in ch["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    # The queue is empty: the default reply, streamed as content.
    text = "".join(choice["delta"].get("content") or "" for ch in sse_chunks(post(
        f"{base}/v1/chat/completions", {"model": "m", "stream": True, "messages": []})) for choice in ch["choices"])
    assert text == "the default"
    records = get(f"{base}/_double/records")
    assert [r["method"] for r in records] == ["GET", "POST", "POST", "POST"]
    assert records[2]["body"]["messages"] == [{"role": "user", "content": "tok-1"}]
    assert len(get(f"{base}/_double/records?since=3")) == 1


def test_telegram_long_poll_returns_an_injected_message_and_records_the_bots_calls(start):
    base = start("telegram")
    bot = f"{base}/bot123:abc"
    assert json.loads(post(f"{bot}/getMe", {}, form=True))["result"]["is_bot"] is True
    got = {}

    def poll():
        got["answer"] = json.loads(post(f"{bot}/getUpdates", {"offset": 0, "timeout": 4}, form=True))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)  # let the poll be waiting (it must return the update whenever it comes)
    injected = json.loads(post(f"{base}/_double/inject", {"text": "hello", "user_id": 4242}))
    poller.join(10)
    (update,) = got["answer"]["result"]
    assert update["message"]["text"] == "hello" and update["message"]["from"]["id"] == 4242
    assert (update["update_id"], update["message"]["message_id"]) == (injected["update_id"], injected["message_id"])
    # An offset past it confirms it: the next poll has nothing (and returns when its timeout ends).
    again = json.loads(post(f"{bot}/getUpdates", {"offset": update["update_id"] + 1, "timeout": 0}, form=True))
    assert again["result"] == []
    sent = json.loads(post(f"{bot}/sendMessage", {"chat_id": 4242, "text": "hi back", "reply_parameters": {"message_id": 1}},
                           form=True))["result"]
    assert sent["chat"]["id"] == 4242 and sent["text"] == "hi back"
    with pytest.raises(urllib.error.HTTPError) as unknown:
        post(f"{bot}/sendRichMessage", {"chat_id": 4242}, form=True)
    assert unknown.value.code == 404 and json.loads(unknown.value.read())["ok"] is False
    calls = get(f"{base}/_double/records")
    assert [c["method"] for c in calls] == ["getMe", "getUpdates", "getUpdates", "sendMessage", "sendRichMessage"]
    assert calls[3]["params"] == {"chat_id": 4242, "text": "hi back", "reply_parameters": {"message_id": 1}}


def test_proxy_records_the_connect_target_and_refuses_it(start):
    base = start("proxy")
    port = int(base.rsplit(":", 1)[1])
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("CONNECT", "discord.com:443")
    assert conn.getresponse().status == 502
    conn.close()
    assert [r["target"] for r in get(f"{base}/_double/records")] == ["discord.com:443"]


def test_mcp_server_answers_initialize_list_and_call_over_stdio():
    # Its Node twin (node-mcp/server.js) is exercised in the image, through npx (test_gateway_e2e).
    server = [sys.executable, str(DOUBLES / "mcp_stdio.py")]
    lines = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
             {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "x", "arguments": {"word": "abc"}}},
             {"jsonrpc": "2.0", "id": 4, "method": "nope"}]
    out = subprocess.run(server, input="".join(json.dumps(l) + "\n" for l in lines), capture_output=True, text=True,
                         timeout=30, check=True).stdout
    answers = [json.loads(l) for l in out.splitlines()]
    assert [a["id"] for a in answers] == [1, 2, 3, 4]  # no answer to the notification
    assert answers[0]["result"]["protocolVersion"] == "2025-06-18"
    (tool,) = answers[1]["result"]["tools"]
    assert tool["inputSchema"]["required"] == ["word"]
    assert "stand-in-answer" in answers[2]["result"]["content"][0]["text"]
    assert answers[3]["error"]["code"] == -32601
