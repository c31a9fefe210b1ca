"""Issue 15 item 1 and issue 16: where the static services live and who supervises them, `hermes
gateway run` in every form, the dashboard's role, HOME and HERMES_HOME, and a refused dashboard on a
slow host (a boot that says "ready" only when /run/service answers: test_image_boot_load.py).

The Docker half of CI is CPU-bound: a container serves every test its environment fits (module
fixtures that read what each test needs, whatever the order), and waits run inside the container,
one exec each (`wait_in`)."""
import json
import time

import pytest

from conftest import sh, svstat, wait_for, wait_in

CANARY = "/root/canary"
VICTIMS = ("/init", "/etc/passwd", CANARY)
# As in the issue: an entry of an event/ directory that s6-supervise writes each event byte into
# (ftrigw_notify opens every `ftrig1*` entry for writing, following symlinks).
ATTACK = r"""
for ev in /run/s6/services/*/event /run/s6/services/*/supervise/event \
          /run/service/*/event /run/service/*/supervise/event /run/service/*/log/event; do
  [ -d "$ev" ] || continue
  i=0
  for victim in /init /etc/passwd /root/canary; do
    i=$((i + 1))
    ln -s "$victim" "$ev/ftrig1:@400000006b0fb8761fa8acfa:aaaaa$i" 2>/dev/null && echo "planted $ev"
  done
done
for svc in /run/s6/services/* /run/service/*; do
  /command/s6-svc -d "$svc" 2>/dev/null; /command/s6-svc -u "$svc" 2>/dev/null
done
sleep 2
"""


def _fingerprints(c) -> list[str]:
    return sh(c, "sha256sum /init /etc/passwd /root/canary; cat /root/canary", user="root").splitlines()


def wait_dashboard_up(c, timeout=30):
    wait_in(c, '[ "$(/command/s6-svstat -o up /run/service/dashboard)" = true ]', timeout=timeout, what="dashboard up")


@pytest.fixture(scope="module")
def dashboard(module_containers):
    """A dashboard container with a running default gateway, HOME of its dashboard given by
    HERMES_REAL_HOME; that HOME is read here, while the dashboard is up (tests stop it, restart
    the container)."""
    c = module_containers.start("dash", env={"HERMES_DASHBOARD": "1", "HERMES_REAL_HOME": "/tmp",
                                             "HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})
    wait_dashboard_up(c)
    pid = sh(c, "/command/s6-svstat -o pid /run/service/dashboard").strip()
    return c, sh(c, f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines()


@pytest.fixture(scope="module")
def gwrun(module_containers):
    """A container whose CMD is `gateway run`, without HERMES_DASHBOARD."""
    c = module_containers.start("gwrun", command=("gateway", "run"))
    return c, sh(c, "/command/s6-svstat -o up,normallyup /run/service/dashboard").split()


def test_hermes_cannot_make_root_write_through_an_event_entry(dashboard):
    c, _ = dashboard  # a dashboard and a gateway: every kind of service's event directories
    sh(c, f"echo ROOTONLY > {CANARY} && chmod 600 {CANARY}", user="root")
    before = _fingerprints(c)
    planted = sh(c, ATTACK)
    assert _fingerprints(c) == before
    assert sh(c, f"cat {CANARY}", user="root").strip() == "ROOTONLY"
    assert "planted" in planted  # hermes' own event directories take entries; root's must not
    assert "/run/s6/services" not in planted
    # Nothing under root's runtime tree is writable by hermes, and root's scan directory holds
    # only the scanner of /run/service.
    assert sh(c, "find /run/s6 -writable 2>/dev/null", check=False) == ""
    assert sh(c, "ls /run/s6/services").split() == ["gateway-scanner"]
    c.restart()
    from conftest import wait_ready
    wait_ready(c)
    assert _fingerprints(c) == before


def test_static_services_answer_s6_svstat_and_hermes_doctor_in_run_service(dashboard, gwrun):
    c, _ = dashboard
    wait_dashboard_up(c, timeout=60)  # after the event test's restart, if it ran first
    assert sh(c, "/command/s6-svstat -o up /run/service/main-hermes").strip() == "true"
    assert sh(c, "/command/s6-svstat -o up /run/service/ctl-agent").strip() == "true"
    doctor = sh(c, "hermes doctor 2>&1", check=False)
    assert "main-hermes: up" in doctor and "dashboard: up" in doctor, doctor
    sh(c, "/command/s6-svc -d /run/service/dashboard && /command/s6-svwait -D -t 20000 /run/service/dashboard")
    doctor = sh(c, "hermes doctor 2>&1", check=False)
    assert "dashboard: down" in doctor and "main-hermes: up" in doctor, doctor
    # Their supervisors run as hermes: rewriting one only ever runs something as hermes.
    procs = sh(c, "ps -eo user:10,args", user="root").splitlines()
    for name in ("main-hermes", "dashboard", "ctl-agent"):
        assert [line.split()[0] for line in procs if f"s6-supervise {name}" in line] == ["hermes"], procs
    # Without HERMES_DASHBOARD the slot is registered down, and says so (read at gwrun's boot).
    assert gwrun[1] == ["false", "false"]


def _gateways(c) -> dict[str, list[tuple[int, str]]]:
    """profile -> [(pid, parent's command)] for every `hermes ... gateway run` process."""
    doc = json.loads(sh(c, "/opt/hermes/docker/hermes-ctl-agent status"))
    # every parent's command line in one exec: one line each, empty for a parent gone since
    ppids = [int(p["ppid"]) for p in doc["processes"]]
    parents = sh(c, "".join(f"echo $(tr '\\0' ' ' < /proc/{pp}/cmdline 2>/dev/null); " for pp in ppids),
                 check=False).split("\n") if ppids else []
    out: dict[str, list] = {}
    for p, parent in zip(doc["processes"], parents):
        out.setdefault(p["profile"], []).append((p["pid"], parent.strip()))
    return out


def _one_supervised_gateway_each(c, profiles):
    def settled():
        found = _gateways(c)
        return found if sorted(found) == sorted(profiles) and all(
            len(v) == 1 and v[0][1].startswith(f"s6-supervise gateway-{p}") for p, v in found.items()) else None
    return wait_for(settled, timeout=60, what=f"one supervised gateway for each of {profiles}")


def test_gateway_run_in_any_form_ends_with_one_supervised_gateway_and_a_breadcrumb(gwrun):
    c, _ = gwrun
    _one_supervised_gateway_each(c, ["default"])
    sh(c, "hermes profile create coder >/dev/null 2>&1")
    for argv, user in ((["hermes", "gateway", "run"], "root"),
                       (["hermes", "gateway", "run", "--replace"], "hermes"),
                       (["/opt/hermes/.venv/bin/hermes", "gateway", "run"], "hermes"),
                       (["hermes", "-p", "coder", "gateway", "run"], "root"),
                       (["hermes", "-p", "coder", "gateway", "run"], "hermes")):
        c.client.api.exec_start(c.client.api.exec_create(c.id, argv, user=user)["Id"], detach=True)
    time.sleep(5)
    _one_supervised_gateway_each(c, ["default", "coder"])
    time.sleep(3)
    _one_supervised_gateway_each(c, ["default", "coder"])
    logs = c.logs().decode()
    assert "gateway default: starting under s6 supervision" in logs
    assert "gateway coder: starting under s6 supervision" in logs  # a slot hermes registered itself


def test_a_dashboard_container_runs_no_gateway_whatever_the_volume_wants(containers):
    volume = containers.volume("dashrole")
    # The volume wants default and coder running, recorded as `gateway start` records it; neither
    # is started here (a gateway start for nothing: this container is only the volume's writer).
    c = containers.start("dashrole1", volume=volume)
    sh(c, "hermes profile create coder >/dev/null 2>&1 && /opt/hermes/docker/hermes-slots desire running coder"
          " && /opt/hermes/docker/hermes-slots desire running default")
    assert json.loads(sh(c, "cat /opt/data/gateway_state.json"))["desired_state"] == "running"
    c.remove(force=True)
    # The role comes from the CMD alone. (HERMES_DASHBOARD=1 as well would start a second dashboard
    # on the same port: whichever lost the race exited, and with it, at times, the container.)
    dash = containers.start("dashrole2", volume=volume, command=("dashboard", "--skip-build", "--no-open"))
    time.sleep(5)
    assert _gateways(dash) == {}, sh(dash, "ps -eo pid,ppid,user,args")
    assert sorted(sh(dash, "ls /run/service").split()) == ["ctl-agent", "dashboard", "main-hermes"], \
        sh(dash, "ls -la /run/service; cat /opt/data/logs/container-boot.log")
    # hermes' own redirect finds no slot to start: it says so and ends; still no gateway here.
    res = dash.exec_run(["timeout", "120", "hermes", "gateway", "run"], user="hermes")
    assert res.exit_code == 1, res.output
    assert _gateways(dash) == {}, sh(dash, "ps -eo pid,ppid,user,args")


def test_dashboard_home_follows_hermes_real_home(dashboard):
    _, environ = dashboard
    assert "HOME=/tmp" in environ


def test_a_hermes_home_only_root_can_create_boots_owned_by_hermes(containers):
    c = containers.start("customhome", env={"HERMES_HOME": "/home/hermes/.hermes",
                                            "HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})
    assert sh(c, "stat -c '%U' /home/hermes /home/hermes/.hermes /home/hermes/.hermes/profiles").split() == \
        ["root", "hermes", "hermes"]
    assert "profile=default prior_state=running action=started" in \
        sh(c, "cat /home/hermes/.hermes/logs/container-boot.log")
    wait_in(c, '[ "$(/command/s6-svstat -o up /run/service/gateway-default)" = true ]', what="default gateway up")
    sh(c, "hermes profile create coder >/dev/null 2>&1 && test -f /home/hermes/.hermes/profiles/coder/SOUL.md")
    assert svstat(c, "coder")["up"] is False


def _deaths(c) -> int:
    return len(sh(c, "/command/s6-svdt /run/service/dashboard", check=False).splitlines())


def test_a_slow_refused_dashboard_is_parked_after_3_and_a_crashed_one_restarts(containers):
    c = containers.start("slowdash", cpu_quota=25000, cpu_period=100000,  # --cpus 0.25, as in #49567
                         env={"HERMES_DASHBOARD": "1", "HERMES_DASHBOARD_HOST": "0.0.0.0"}, wait=False)
    from conftest import wait_ready
    wait_ready(c, timeout=180)
    log = "/opt/data/logs/container-boot.log"
    # one exec, its look a grep every 2 s: the container has a quarter of a CPU
    wait_in(c, f'grep -q "service=dashboard action=parked" {log}', timeout=300, interval=2, what="dashboard parked")
    deaths = _deaths(c)
    assert deaths == 3
    time.sleep(5)
    assert _deaths(c) == deaths and sh(c, "/command/s6-svstat -o up /run/service/dashboard").strip() == "false"
    assert sh(c, f"cat {log}").count("service=dashboard action=parked") == 1
    assert "needs an auth provider" in sh(c, f"cat {log}")

    ok = containers.start("okdash", env={"HERMES_DASHBOARD": "1"})
    for _ in range(4):
        wait_in(ok, "test -e /run/service/dashboard/served", timeout=90, what="dashboard listening")
        pid = sh(ok, "/command/s6-svstat -o pid /run/service/dashboard").strip()
        sh(ok, f"kill -KILL {pid}")
        wait_in(ok, f'p=$(/command/s6-svstat -o pid /run/service/dashboard); [ "$p" != {pid} ] && [ "$p" != -1 ]',
                timeout=30, what="dashboard restarted")
    assert "service=dashboard action=parked" not in sh(ok, f"cat {log}")
