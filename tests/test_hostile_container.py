"""What a hostile container (hermes runs whatever its agent's shell runs) can make the host do,
in real containers: escape sequences in slot names, labels, gateway state and log lines never
reach the operator's terminal raw; a slot that is not a profile name is a `doctor` finding, never
a profile; a server hermes puts at the resident agent's socket costs one bounded read."""
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import ROOT, hermesctl, sh, wait_for, wait_in

CLEAR = "\x1b[2J\x1b[H"                # clear the screen, cursor home: room for fake rows
CLIPBOARD = "\x1b]52;c;Zm9v\x07"       # OSC 52: write the operator's clipboard
ERASE_ABOVE = "\x1b[1A\x1b[2K"         # up one line, erase it


def _hostile_state(c) -> None:
    """As hermes: a slot whose name is an escape sequence, a profile directory likewise, and a
    gateway_state.json whose strings carry escapes."""
    script = r"""
import json, os, sys
bad = sys.argv[1]
os.makedirs("/run/service/gateway-" + bad, exist_ok=True)
os.makedirs("/opt/data/profiles/" + bad, exist_ok=True)
open("/opt/data/profiles/" + bad + "/SOUL.md", "w").write("x")
state = json.load(open("/opt/data/gateway_state.json")) if os.path.exists("/opt/data/gateway_state.json") else {}
state.update({"gateway_state": "running" + sys.argv[2],
              "platforms": {"tele" + sys.argv[3]: {"state": "connected" + sys.argv[2], "error_message": sys.argv[4]}}})
tmp = "/opt/data/.gs.tmp"
json.dump(state, open(tmp, "w"))
os.replace(tmp, "/opt/data/gateway_state.json")
"""
    c.exec_run(["/usr/bin/python3", "-c", script, "x" + CLEAR + "fake", CLEAR, CLIPBOARD,
                                        ERASE_ABOVE], user="hermes")


DEFAULT_UP = "/command/s6-svstat -o up /run/service/gateway-default | grep -qx true"


@pytest.fixture(scope="module")
def hostile(module_containers):
    """One container for the tests that need a running default gateway, in file order: the escaped
    text (its label, slot, profile directory and state file are the hostile ones), the escaped
    logs, then the servers at the agent's socket (last: they take the socket over). Each test's
    assertions are about its own hostile input; the others' are escaped or ignored alike."""
    c = module_containers.start("hostile", env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"},
                                labels={"io.hermes-agent.managed": "true", "com.docker.compose.service": "svc" + CLEAR})
    wait_in(c, DEFAULT_UP, what="default gateway up")
    return c


def test_container_text_reaches_the_terminal_escaped_and_a_bad_slot_is_no_profile(hostile):
    c = hostile
    _hostile_state(c)
    time.sleep(0.5)
    for args in (["ps", c.name], ["ps", c.name, "--wide"], ["ps", f"{c.name}:*"], ["profile", "list", c.name],
                 ["doctor", c.name], ["gateway", "status", f"{c.name}:*"]):
        res = hermesctl(*args)
        assert "\x1b" not in res.stdout + res.stderr, (args, res)
    table = hermesctl("ps", c.name, "--wide")
    assert "\\x1b[2J" in table.stdout and "\\x1b]52" in table.stdout, table
    # The slot named with an escape sequence is no gateway of this container: not a row, not a
    # profile, not a target; `doctor` names it.
    doc = hermesctl("ps", c.name, "--json").json()
    assert [g["profile"] for g in doc["gateways"]] == ["default"], doc
    profiles = hermesctl("profile", "list", c.name, "--json").json()["profiles"]
    assert [p["name"] for p in profiles] == [], profiles
    findings = hermesctl("doctor", c.name, "--json").json()["findings"]
    checks = {f["check"]: f for f in findings if not f["ok"]}
    assert "slot-name" in checks and "profile-name" in checks, findings
    assert "\\x1b" in checks["slot-name"]["detail"]
    # Errors that quote what the container said are one escaped line too.
    missing = hermesctl("gateway", "status", f"{c.name}:nosuch")
    assert missing.code == 4 and "\x1b" not in missing.stderr, missing
    # events: the state change is printed escaped, as one line.
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "events", c.name], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        time.sleep(3)
        sh(c, "/command/s6-svc -r /run/service/gateway-default")
        time.sleep(3)
    finally:
        proc.send_signal(2)
        out, err = proc.communicate(timeout=10)
    assert b"\x1b" not in out + err and b"default" in out, (out, err)


def _on_a_tty(args: list[str], timeout: float = 30) -> bytes:
    """hermesctl with its stdout on a pseudo-terminal (what the operator sees), 120 columns."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", *args], cwd=ROOT, stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"})
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return b"".join(chunks)


def test_logs_escape_control_characters_on_a_terminal_and_raw_passes_them(hostile):
    c = hostile
    wait_in(c, DEFAULT_UP, what="default gateway up")
    line = f"2026-12-02 07:00:00.000000000 hello {CLIPBOARD} and {ERASE_ABOVE} bye"
    c.exec_run(
        ["/usr/bin/python3", "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')",
         "/opt/data/logs/gateways/default/current", line], user="hermes")
    target = f"{c.name}:default"
    shown = _on_a_tty(["logs", target, "-n", "1000"])
    assert b"hello" in shown and b"bye" in shown, shown
    for sequence in (CLIPBOARD, ERASE_ABOVE, "\x1b]", "\x1b[1A", "\x1b[2K", "\x07"):
        assert sequence.encode() not in shown, (sequence, shown)
    assert b"\\x1b]52;c;Zm9v\\x07" in shown and b"\\x1b[1A\\x1b[2K" in shown, shown
    raw = _on_a_tty(["logs", target, "-n", "1000", "--raw"])
    assert CLIPBOARD.encode() in raw and ERASE_ABOVE.encode() in raw, raw
    piped = hermesctl("logs", target, "-n", "1000")
    assert piped.code == 0 and CLIPBOARD in piped.stdout, piped  # a pipe gets the lines as they are
    followed = _on_a_tty(["logs", target, "-n", "1000", "-f"], timeout=6)
    assert b"hello" in followed and CLIPBOARD.encode() not in followed and b"\\x1b]52" in followed, followed


SERVER = r"""
import os, socket, sys, threading, time
path = "/run/service/.hermes-ctl-agent.sock"
server = socket.socket(socket.AF_UNIX)
tmp = path + ".evil"
server.bind(tmp)
os.replace(tmp, path)
server.listen(16)
open("/tmp/agent-sock-" + sys.argv[1], "w").close()
chunk = b"{" + b"x" * 65535
def flood(conn):
    try:
        while True:
            conn.sendall(chunk)  # a document that never ends
    except OSError:
        conn.close()
def silent(conn):
    time.sleep(3600)  # connected, and never a byte
while True:
    conn, _ = server.accept()
    threading.Thread(target=flood if sys.argv[1] == "flood" else silent, args=(conn,), daemon=True).start()
"""


@pytest.mark.parametrize("kind", ["flood", "silent"])
def test_a_server_hermes_puts_at_the_agent_socket_costs_one_bounded_read(hostile, kind):
    c = hostile
    wait_in(c, DEFAULT_UP, what="default gateway up")
    c.exec_run(["/usr/bin/python3", "-c", SERVER, kind], user="hermes", detach=True)
    try:
        wait_in(c, f"test -e /tmp/agent-sock-{kind}", what="the server bound at the agent's socket")
        if kind == "flood":
            wait_for(lambda: b"xxxx" in c.exec_run(
                ["/usr/bin/timeout", "1", "/command/s6-ipcclient", "/run/service/.hermes-ctl-agent.sock",
                 "/usr/lib/execline/bin/fdmove", "0", "6", "/usr/bin/head", "-c", "100"], user="hermes").output,
                what="the flooding server answers")
        # Flood: 4 MiB read, not JSON; silent: 5 s waited. Then the one-shot agent answers, within
        # --timeout: an unbounded read would have made the container one that did not answer (exit 7).
        res = hermesctl("--timeout", "20", "ps", c.name, "--json", timeout=60)
        assert res.code == 0 and [g["profile"] for g in res.json()["gateways"]] == ["default"], res
        assert res.json()["gateways"][0]["state"] == "up", res
    finally:  # the next kind's server takes the socket over from a clean slate
        sh(c, "pkill -f '[i]mport os, socket' || true")


def test_a_fleet_value_with_a_lone_surrogate_is_refused_before_anything_is_written(containers, tmp_path):
    c = containers.start("surr")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f'version: 1\ncontainers:\n  {c.name}:\n    profiles:\n      coder:\n'
                     f'        gateway: stopped\n        env: {{HERMES_NOTE: "a\\ud800b"}}\n', encoding="utf-8")
    before = c.exec_run(["/usr/bin/find", "/opt/data", "-newer", "/opt/data/.env", "-o", "-name", ".env", "-print"],
                        user="hermes").output
    res = hermesctl("apply", "-f", str(fleet))
    assert res.code == 2 and "fleet.yaml:7" in res.stderr and "surrogate" in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1, res
    assert hermesctl("profile", "list", c.name, "--json").json()["profiles"] == []
    assert c.exec_run(["/usr/bin/test", "-e", "/opt/data/profiles/coder"]).exit_code == 1
    assert c.exec_run(["/usr/bin/find", "/opt/data", "-newer", "/opt/data/.env", "-o", "-name", ".env", "-print"],
                      user="hermes").output == before
