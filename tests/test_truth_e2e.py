"""Issue 14 on real containers: a `logs` that times out is exit 7 (it was 0), and doctor calls
/command ok only when /command/s6-svc is there (its JSON said ok with "missing" beside it)."""
from conftest import hermesctl, sh


def test_logs_that_time_out_exit_7(containers):
    c = containers.start("lgt")
    sh(c, "hermes profile create coder >/dev/null")
    # A FIFO where the log should be: tail(1) blocks opening it, until the deadline.
    sh(c, "d=/opt/data/logs/gateways/coder; mkdir -p $d && rm -f $d/current && mkfifo $d/current")
    res = hermesctl("--timeout", "2", "logs", f"{c.name}:coder", timeout=60)
    assert res.code == 7 and "did not answer in time" in res.stderr, res


def test_doctor_says_ok_for_command_only_when_s6_svc_is_there(containers):
    c = containers.start("cmd")
    good = hermesctl("doctor", c.name, "--json")
    [finding] = [f for f in good.json()["findings"] if f["check"] == "command-dir"]
    assert finding["ok"] is True and finding["detail"] == "", finding
    sh(c, "mv /command/s6-svc /command/s6-svc.moved", user="root")
    bad = hermesctl("doctor", c.name, "--json")
    assert bad.code == 1, bad
    [finding] = [f for f in bad.json()["findings"] if f["check"] == "command-dir"]
    assert finding["ok"] is False and "s6-svc missing" in finding["detail"]
    assert bad.json()["ok"] is False
