"""The agent in a real container: what it reads from s6's files is what s6's own tools print,
the resident agent answers the same document through the C fast path, the host falls back to
the one-shot agent when it does not, and failures are JSON with a code."""
import json

from conftest import hermesctl, sh, svstat, wait_for

from hermesctl.agent.contract import AGENT, FAST_STATUS_ARGV, SLOTS_TOOL


def _agent(c, *args):
    res = c.exec_run([AGENT, *args], user="hermes", demux=True)
    return res.exit_code, json.loads(res.output[0])


def test_status_matches_s6_tools_and_the_fast_path_and_falls_back(containers):
    c = containers.start("ct")
    sh(c, "hermes profile create coder >/dev/null && /command/s6-svc -u /run/service/gateway-coder")
    first = wait_for(lambda: svstat(c, "coder")["pid"] > 0 and svstat(c, "coder")["pid"], what="coder up")
    sh(c, f"kill -9 {first}")  # a death for the tally
    wait_for(lambda: svstat(c, "coder")["pid"] not in (-1, first), what="coder back up")
    code, doc = _agent(c, "status")
    assert code == 0 and doc["schema"] == "hermes-contract/v1" and doc["pid1"] == "s6-svscan" and doc["booted"]
    for profile in ("coder", "default"):
        slot = f"/run/service/gateway-{profile}"
        fields = sh(c, f"/command/s6-svstat -o up,wantedup,normallyup,pid,exitcode,signal {slot}").split()
        s = doc["slots"][profile]["status"]
        assert [str(s["up"]).lower(), str(s["wanted_up"]).lower(), str(s["normally_up"]).lower(),
                str(s["pid"] or -1), str(-1 if s["exit_code"] is None else s["exit_code"]),
                s["signal"] or "NA"] == fields, (profile, s, fields)
        tally = [line.split(" ", 1)[1] for line in sh(c, f"/command/s6-svdt {slot}").splitlines()]
        assert [d["how"] for d in doc["slots"][profile]["deaths"]] == tally
    assert doc["slots"]["coder"]["deaths"][-1]["how"] == "signal SIGKILL"
    assert [p["pid"] for p in doc["processes"] if p["profile"] == "coder"] == [svstat(c, "coder")["pid"]]

    fast = json.loads(c.exec_run(list(FAST_STATUS_ARGV), user="hermes").output)
    assert {p: s["status"]["pid"] for p, s in fast["slots"].items()} == \
        {p: s["status"]["pid"] for p, s in doc["slots"].items()}

    # the resident agent down (or an image without it): the host asks the one-shot agent
    sh(c, "/command/s6-svc -d /run/service/ctl-agent")
    res = hermesctl("ps", c.name, "--json")
    assert res.code == 0, res
    assert {g["profile"]: g["state"] for g in res.json()["gateways"]} == {"coder": "up", "default": "down"}


def test_failures_are_json_with_a_code_and_hermes_slots_keeps_its_text(containers):
    c = containers.start("cterr")
    code, doc = _agent(c, "register", "ghost")
    assert code == 4 and doc["error"]["code"] == "not-found" and "ghost" in doc["error"]["message"]
    code, doc = _agent(c, "tail", "../x")
    assert code == 6 and doc["error"]["code"] == "invalid-name"
    code, doc = _agent(c, "no-such-verb")
    assert code == 2 and doc["error"]["code"] == "usage"
    res = c.exec_run([SLOTS_TOOL, "register", "ghost"], user="hermes", demux=True)
    assert res.exit_code == 4 and res.output[1].decode().startswith("hermes-slots: no profile ghost")
    code, doc = _agent(c, "health")
    assert code == 0 and doc["healthy"] is True
