"""Test doubles of the external services a gateway talks to (a model provider, Telegram's Bot API,
the proxy a Discord/Slack SDK connects through, an MCP server), run INSIDE a Hermes container on
its loopback: test containers have no network, and the gateway under test reaches them as it
would reach the real services. They are stdlib-only Python run by the image's /usr/bin/python3,
as hermes, so they need nothing from the image under test but a Python.

Host-side API (everything goes through the Docker API: put_archive and exec):
    model = start_model(container)            # ModelDouble; model.base_url for model.base_url
    model.queue({"content": "hi"}, {"tool_calls": [{"name": "terminal", "arguments": {...}}]})
    model.completions()                       # the chat-completion request bodies it received
    tg = start_telegram(container)            # TelegramDouble; tg.base_url for extra.base_url
    tg.inject("hello", user_id=4242); tg.calls("sendMessage")
    proxy = start_proxy(container)            # ProxyDouble; proxy.url for DISCORD_PROXY / HTTPS_PROXY
    wait_until(lambda: model.completions(), what="a model call")
    MCP_SERVER (path of the stdio MCP server inside the container, after install())
"""
import io
import json
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEST = "/tmp/hermes-doubles"
PYTHON = "/usr/bin/python3"  # the system Python: stdlib only, not the venv under test
FILES = ("serve.py", "common.py", "model.py", "telegram.py", "proxy.py", "mcp_stdio.py",
         "node-mcp/package.json", "node-mcp/server.js")
MCP_SERVER = f"{DEST}/mcp_stdio.py"
MCP_MARKER = "mcp-stand-in-answer-7d41"  # mcp_stdio.MARKER: in every answer of its tool
# The Node twin, a dependency-free package `npx --offline` runs from its folder (no registry).
NODE_MCP_PACKAGE = f"{DEST}/node-mcp"
NODE_MCP_MARKER = "node-mcp-stand-in-answer-3c9e"  # node-mcp/server.js MARKER


def install(container) -> None:
    """Copy the doubles into DEST, root-owned and read-only to hermes (who runs them)."""
    parent, base = DEST.rsplit("/", 1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in sorted({base} | {f"{base}/{name.rsplit('/', 1)[0]}" for name in FILES if "/" in name}):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
        for name in FILES:
            data = (HERE / name).read_bytes()
            info = tarfile.TarInfo(f"{base}/{name}")
            # server.js is the Node package's bin: npx runs it, so it keeps its execute bit.
            info.size, info.mtime = len(data), int(time.time())
            info.mode = 0o755 if name.endswith("server.js") else 0o644
            tar.addfile(info, io.BytesIO(data))
    assert container.put_archive(parent, buf.getvalue()), "put_archive of the doubles failed"


def _installed(container) -> bool:
    return container.exec_run(["test", "-f", f"{DEST}/serve.py"]).exit_code == 0


class Double:
    """One running stand-in: its port on the container's loopback and its records."""

    def __init__(self, container, name: str, port: int):
        self.container, self.name, self.port = container, name, port

    def _ctl(self, method: str, path: str, doc=None):
        argv = [PYTHON, f"{DEST}/serve.py", "ctl", str(self.port), method, path]
        if doc is not None:
            argv.append(json.dumps(doc))
        result = self.container.exec_run(argv, user="hermes")
        output = result.output.decode()
        if result.exit_code != 0:
            raise AssertionError(f"{self.name} stand-in: {method} {path} failed ({result.exit_code}):\n"
                                 f"{output[-2000:]}\n{self.log()[-2000:]}")
        return json.loads(output)

    def records(self, since: int = 0) -> list[dict]:
        return self._ctl("GET", f"/_double/records?since={int(since)}")

    def control(self, verb: str, doc):
        return self._ctl("POST", f"/_double/{verb}", doc)

    def log(self) -> str:
        """The stand-in's own log (its request lines and any traceback), for failure messages."""
        result = self.container.exec_run(["cat", f"/tmp/double-{self.name}-{self.port}.log"], user="hermes")
        return result.output.decode(errors="replace")


class ModelDouble(Double):
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    model_id = "stand-in-model"

    def queue(self, *replies: dict) -> None:
        """Script the next answers, in order (see model.py for their shape)."""
        self.control("replies", list(replies))

    def queue_for(self, token: str, *replies: dict) -> None:
        """Script answers only for the agent's turns (requests offering tools) whose messages
        carry `token`: a test's own conversation, not a side call or another test's session."""
        self.queue(*({**reply, "match": [token, '"tools"']} for reply in replies))

    def completions(self) -> list[dict]:
        """The JSON bodies of the chat completions received, oldest first."""
        return [r["body"] for r in self.records() if r["method"] == "POST" and r["path"].endswith("/chat/completions")]


class TelegramDouble(Double):
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def calls(self, method: str | None = None) -> list[dict]:
        return [r for r in self.records() if method is None or r["method"] == method]

    def inject(self, text: str, user_id: int, first_name: str = "Tester") -> int:
        """A private message from user_id for the bot's next getUpdates; returns its message_id
        (what a reply to it names in reply_parameters)."""
        return self.control("inject", {"text": text, "user_id": user_id, "first_name": first_name})["message_id"]


class ProxyDouble(Double):
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def targets(self) -> list[str]:
        """What the clients asked the proxy for (`host:port` for HTTPS), in order."""
        return [r["target"] for r in self.records()]


def start(container, name: str, *args: str, cls=Double) -> Double:
    """Start the stand-in `name` (model, telegram, proxy) in the container as hermes; returns once
    it listens. Installs the doubles first when they are not there yet."""
    if not _installed(container):
        install(container)
    result = container.exec_run([PYTHON, f"{DEST}/serve.py", "start", name, *args], user="hermes")
    output = result.output.decode().strip()
    if result.exit_code != 0 or not output.isdigit():
        raise AssertionError(f"stand-in {name} did not start ({result.exit_code}): {output[-2000:]}")
    return cls(container, name, int(output))


def start_model(container, default_reply: str = "stand-in reply") -> ModelDouble:
    return start(container, "model", default_reply, cls=ModelDouble)


def start_telegram(container) -> TelegramDouble:
    return start(container, "telegram", cls=TelegramDouble)


def start_proxy(container) -> ProxyDouble:
    return start(container, "proxy", cls=ProxyDouble)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.5, what: str = "condition"):
    """Poll a stand-in's records (each look is one exec) until predicate() is truthy; returns it."""
    from conftest import wait_for  # the suite's one poller
    return wait_for(predicate, timeout=timeout, interval=interval, what=what)
