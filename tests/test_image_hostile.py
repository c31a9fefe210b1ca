"""Issue 15, items 7, 8 and 9 (container side): a hostile /opt/data layout never stops a boot, a
held-open exec never outlives its consumer, and the .env writer refuses what UTF-8 cannot carry."""
import json
import signal

import pytest

from conftest import close_and_collect, hermesctl, popen_hermesctl, second_dockerd, sh, wait_for, wait_ready
from support.containers import _started_at
from support.exec_events import ExecStarts

HERMES = "/opt/data"
LAYOUTS = {
    "logs-symlink": f"rm -rf {HERMES}/logs && ln -s /etc {HERMES}/logs",
    "logs-file": f"rm -rf {HERMES}/logs && echo x > {HERMES}/logs",
    "profiles-symlink": f"rm -rf {HERMES}/profiles && ln -s /etc {HERMES}/profiles",
    "sessions-file": f"rm -rf {HERMES}/sessions && : > {HERMES}/sessions",
}


@pytest.fixture(scope="module")
def layout_container(module_containers):
    """One container for the four layouts, each made, booted on, fixed and booted clean in turn:
    every test starts from the clean boot the previous one ended with (and checks that it is),
    which is what a fresh container gave each before, at three boots fewer and one container
    instead of four. The default gateway is wanted up, so each boot starts it on the layout."""
    volume = module_containers.volume("layouts")
    return module_containers.start("layouts", volume=volume, env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})


def _restart(c) -> float:
    """Restart the container and wait for its boot; returns when this run started (epoch s)."""
    c.restart()
    wait_ready(c, timeout=90)
    c.reload()
    assert c.status == "running"
    return _started_at(c)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_hostile_data_layout_boots_says_why_and_doctor_names_the_fix(layout_container, layout):
    c = layout_container
    assert json.loads(sh(c, "/opt/hermes/docker/hermes-ctl-agent facts"))["layout"] == []  # clean to begin with
    sh(c, LAYOUTS[layout])
    started = _restart(c)
    name = layout.split("-")[0]
    assert f"{HERMES}/{name} is a" in c.logs(since=started).decode()  # this boot's: the log spans restarts
    facts = json.loads(sh(c, "/opt/hermes/docker/hermes-ctl-agent facts"))
    assert [p["name"] for p in facts["layout"]] == [name]
    # The host's doctor names the directory and the fix.
    res = hermesctl("doctor", c.name, "--json")
    found = [f for f in res.json()["findings"] if f["check"] == "data-layout"]
    assert len(found) == 1 and f"$HERMES_HOME/{name} is a" in found[0]["detail"], res
    assert "rm $HERMES_HOME/" + name in found[0]["fix"]
    # Following the fix gives a clean boot again.
    sh(c, f"rm {HERMES}/{name}")
    started = _restart(c)
    assert json.loads(sh(c, "/opt/hermes/docker/hermes-ctl-agent facts"))["layout"] == []
    assert sh(c, f"test -d {HERMES}/{name} && echo dir").strip() == "dir"
    assert f"{HERMES}/{name} is a" not in c.logs(since=started).decode()


SET_ENV_WITH_BYTES = r"""
import os, subprocess, sys
env = dict(os.environb)
env[b"HERMESCTL_ENV_TOKEN"] = bytes.fromhex(sys.argv[1])
r = subprocess.run(["/opt/hermes/docker/hermes-ctl-agent", "set-env", "coder", "TOKEN"], env=env,
                   capture_output=True)
print(r.returncode)
print(r.stdout.decode())
"""


def test_the_env_writer_refuses_values_utf8_cannot_carry_before_writing(containers):
    c = containers.start("surrogate")
    sh(c, "hermes profile create coder >/dev/null 2>&1 && printf 'KEEP=1\\n' >> /opt/data/profiles/coder/.env")
    before = sh(c, "sha256sum /opt/data/profiles/coder/.env; ls -a /opt/data/profiles/coder")
    # Undecodable bytes reach Python as lone surrogates (\udcXX), as would "\ud800" decoded from JSON.
    for raw in (b"a\xed\xa0\x80b", b"a\xffb", b"\xed\xb2\x80"):
        out = c.exec_run(["/usr/bin/python3", "-c", SET_ENV_WITH_BYTES, raw.hex()], user="hermes").output.decode()
        code, doc = out.split("\n", 1)
        assert code == "2", out
        error = json.loads(doc)["error"]
        assert error["code"] == "usage" and "refusing to write TOKEN" in error["message"], error
        assert "surrogate" in error["message"]
    assert sh(c, "sha256sum /opt/data/profiles/coder/.env; ls -a /opt/data/profiles/coder") == before
    # A value that round-trips is still written.
    ok = c.exec_run(["/usr/bin/python3", "-c", SET_ENV_WITH_BYTES, "caf\u00e9 \u2603".encode().hex()], user="hermes")
    assert ok.output.decode().startswith("0\n"), ok.output
    assert "TOKEN=" in sh(c, "cat /opt/data/profiles/coder/.env")


@pytest.fixture(scope="module")
def lone_daemon(hermes_image):
    """A daemon nobody else's hermesctl watches: every watcher in its containers is ours."""
    with second_dockerd("ev", hermes_image) as daemon:
        yield daemon


def _agent_streams(c) -> list[str]:
    out = c.exec_run(["sh", "-c", "pgrep -af '[h]ermes-ctl-agent (watch|tail)|[t]ail -n' || true"]).output.decode()
    return [line for line in out.splitlines() if line.strip()]


def _start(url: str, *args: str):
    return popen_hermesctl("-H", url, *args)


def test_100_interrupted_events_and_followers_leave_no_process_in_the_container(lone_daemon, containers):
    url, client, _ = lone_daemon
    c = client.containers.run(containers.image, ["sleep", "infinity"], detach=True,
                              name=containers.name("leak"), network_mode="none",
                              environment={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})
    try:
        wait_ready(c)
        assert _agent_streams(c) == []
        execs = ExecStarts(client, c)
        # Ctrl-C and kill -9, alternately, each once hermesctl's watcher in the container has started.
        for i in range(100):
            proc = _start(url, "events", c.name)
            execs.wait_running("hermes-ctl-agent watch")
            proc.send_signal(signal.SIGINT if i % 2 == 0 else signal.SIGKILL)
            close_and_collect(proc)
        execs.close()
        # A follower of the logs, killed -9: its tail goes too.
        proc = _start(url, "logs", "-f", f"{c.name}:default")
        wait_for(lambda: any("tail" in line for line in _agent_streams(c)), timeout=60, what="the follower")
        proc.kill()
        close_and_collect(proc)
        # Within 5 s of the last consumer going, nothing of theirs is left.
        wait_for(lambda: _agent_streams(c) == [], timeout=5, interval=0.1, what="no watcher or tail left")
    finally:
        c.remove(force=True, v=True)
