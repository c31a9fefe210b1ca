"""`hermesctl probe` on real containers: a gateway that serves (its API server answers /health
and, with --prompt, a chat completion through a model stand-in on the container's loopback,
tests/doubles) is told from gateways that merely run (no platform at all; a platform token set
whose adapter never started), and the API key never reaches the host's output."""
import pytest

from conftest import hermesctl, sh, wait_for, wait_ready
from doubles import start_model

pytestmark = pytest.mark.docker

KEY = "probe-key-0123456789abcdef"
API_ENV = f"API_SERVER_ENABLED=true\nAPI_SERVER_HOST=127.0.0.1\nAPI_SERVER_PORT=8671\nAPI_SERVER_KEY={KEY}\n"
TOKEN = "123456:probe-token-ABCdefGhIJKlmNoPQRsTUVwxyZ"


def test_probe_tells_a_serving_gateway_from_running_ones(containers):
    c = containers.start("probe", wait=False)
    wait_ready(c)
    for p in ("web", "idle", "tele"):
        sh(c, f"hermes profile create {p} >/dev/null")
    model = start_model(c)
    model.queue({"content": "Pong \x1b[2J from the stand-in\nsecond line", "match": "ping-7f3"})
    config = f"model:\n  provider: custom\n  base_url: {model.base_url}\n  default: {model.model_id}\n"
    sh(c, f"printf '%s' '{API_ENV}' > /opt/data/profiles/web/.env && "
          f"printf '%s' '{config}' > /opt/data/profiles/web/config.yaml && "
          f"printf 'TELEGRAM_BOT_TOKEN={TOKEN}\\n' > /opt/data/profiles/tele/.env")
    assert hermesctl("gateway", "start", f"{c.name}:web", f"{c.name}:idle", f"{c.name}:tele").code == 0
    health = "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8671/health').status)\""
    wait_for(lambda: sh(c, health, check=False).strip() == "200", timeout=90, what="web's API server")

    res = hermesctl("probe", f"{c.name}:*", "--json")
    assert res.code == 3, res  # idle, tele and the stopped default do not serve
    by = {g["profile"]: g for g in res.json()["gateways"]}
    assert by["web"]["serving"] and by["web"]["api"]["health"]["status"] == 200, by["web"]
    assert by["web"]["platforms"]["api_server"]["state"] == "connected"
    assert (by["idle"]["serving"], by["idle"]["reason"]) == (False, "idle")
    assert by["tele"]["state"] == "up" and by["tele"]["configured"] == ["telegram"]
    assert not by["tele"]["serving"] and by["tele"]["reason"] in ("not-started", "platform"), by["tele"]
    assert by["default"]["reason"] == "not-up"
    assert hermesctl("probe", f"{c.name}:web").code == 0

    res = hermesctl("probe", f"{c.name}:web", "--prompt", "ping-7f3", "--timeout", "60")
    assert res.code == 0, res
    assert "Pong \\x1b[2J from the stand-in" in res.stdout and "\x1b" not in res.stdout  # escaped
    assert "second line" not in res.stdout
    asked = [b for b in model.completions() if "ping-7f3" in str(b)]
    assert asked, model.completions()  # the real gateway called the model with the prompt
    doc = hermesctl("probe", f"{c.name}:web", "--prompt", "ping-again", "--json", "--timeout", "60").json()
    gateway = doc["gateways"][0]
    assert gateway["serving"] and gateway["latency_s"] > 0 and gateway["api"]["chat"]["status"] == 200
    for text in (res.stdout, res.stderr, str(doc)):
        assert KEY not in text and TOKEN not in text


def test_doctor_finds_one_bot_token_in_two_containers_without_showing_it(containers):
    a, b = containers.start("tok-a", wait=False), containers.start("tok-b", wait=False)
    for c in (a, b):
        wait_ready(c)
    sh(a, "hermes profile create coder >/dev/null")
    sh(a, f"printf 'TELEGRAM_BOT_TOKEN={TOKEN}\\n' > /opt/data/profiles/coder/.env")
    sh(b, f"printf 'TELEGRAM_BOT_TOKEN=\"{TOKEN}\"\\n' >> /opt/data/.env")  # quoted: the same token to hermes
    res = hermesctl("doctor", a.name, b.name, "--json")
    found = [f for f in res.json()["findings"] if f["check"] == "platform-token"]
    assert res.code == 1 and len(found) == 1, res
    assert found[0]["container"] == f"{a.name}:coder,{b.name}:default", found
    table = hermesctl("doctor", a.name, b.name)
    assert "platform-token" in table.stdout
    for text in (res.stdout, res.stderr, table.stdout, table.stderr):
        assert TOKEN not in text and TOKEN.split(":")[1] not in text
    sh(b, "sed -i 's/probe-token/other-token/' /opt/data/.env")
    again = hermesctl("doctor", a.name, b.name, "--json")
    assert not [f for f in again.json()["findings"] if f["check"] == "platform-token"], again
