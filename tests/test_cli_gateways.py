"""hermesctl ps / gateway / status against real Hermes containers.

The Docker half of CI is CPU-bound: the module's first fleet profile is made by `hermes profile
create`, every other one is a byte copy of it (a profile's files carry no name) registered by the
image's renderer, as hermes registers them (put_profiles: a hermes start, ~0.5 s of CPU, saved
each); waits run inside the container, one exec each (`wait_in`)."""
import json

from conftest import hermesctl, profile_archive, put_profiles, sh, svstat, wait_for, wait_in, wait_ready


_TEMPLATE: list[bytes] = []  # one hermes-made profile of this module, as a tar


def make_fleet(containers, *hints, profiles=("coder",)):
    made = [containers.start(hint, wait=False) for hint in hints]  # they boot side by side
    for c in made:
        wait_ready(c)
        if not _TEMPLATE:  # taken before anything starts from it
            sh(c, f"hermes profile create {profiles[0]} >/dev/null")
            _TEMPLATE.append(profile_archive(c, profiles[0]))
            put_profiles(c, _TEMPLATE[0], profiles[1:])
        else:
            put_profiles(c, _TEMPLATE[0], profiles)
    return made


def wait_up(c, profile, timeout=30):
    wait_in(c, f'[ "$(/command/s6-svstat -o up /run/service/gateway-{profile} 2>/dev/null)" = true ]',
            timeout=timeout, what=f"{profile}'s gateway up")


def wait_gateway_state(c, profile, state, timeout=90):
    wait_in(c, f'grep -q "gateway_state.: *.{state}" /opt/data/profiles/{profile}/gateway_state.json',
            timeout=timeout, what=f"{profile}'s gateway_state={state}")


def test_ps_reports_every_gateway_of_every_container_as_json(containers, docker_client):
    a, b = make_fleet(containers, "psa", "psb", profiles=("coder", "writer"))
    stopped = containers.start("psstopped")
    stopped.stop(timeout=10)
    res = hermesctl("ps", "--json", f"{containers.name('ps')}*")
    assert res.code == 0, res
    doc = res.json()
    assert doc["schema"] == "hermesctl.ps/v1"
    rows = {(g["container"], g["profile"]): g for g in doc["gateways"]}
    for c in (a, b):
        assert {p for (n, p) in rows if n == c.name} == {"coder", "default", "writer"}
        row = rows[(c.name, "coder")]
        assert row["state"] == "down" and row["wanted"] == "down" and row["pid"] is None
        assert row["target"] == f"{c.name}:coder" and row["endpoint"] == "default"
    gone = rows[(stopped.name, None)]
    assert gone["state"].startswith("exited")
    # -q prints only ids of gateways; --no-headers drops the header
    quiet = hermesctl("ps", "-q", a.name)
    assert quiet.stdout.split() == [f"{a.name}:coder", f"{a.name}:default", f"{a.name}:writer"]
    table = hermesctl("--no-headers", "ps", f"{a.name}:coder")
    assert "CONTAINER" not in table.stdout and f"{a.name}" in table.stdout


def test_start_stop_restart_and_status(containers):
    a, b = make_fleet(containers, "lca", "lcb")
    glob = f"{containers.name('lc')}*:coder"

    res = hermesctl("gateway", "start", glob, "--json")
    assert res.code == 0, res
    results = res.json()["results"]
    assert [r["ok"] for r in results] == [True, True] and all(r["pid"] for r in results)
    for c in (a, b):
        assert svstat(c, "coder")["up"]
        assert json.loads(sh(c, "cat /opt/data/profiles/coder/gateway_state.json"))["desired_state"] == "running"
    assert hermesctl("gateway", "status", glob).code == 0

    old_pid = svstat(a, "coder")["pid"]
    res = hermesctl("gateway", "restart", f"{a.name}:coder", "--json")
    assert res.code == 0, res
    assert res.json()["results"][0]["pid"] not in (None, old_pid)

    # a gateway records its clean stop once it has started; on a loaded host a start reported
    # `up` can still be importing hermes, and a SIGTERM then ends it before it records anything
    wait_gateway_state(b, "coder", "running")
    res = hermesctl("gateway", "stop", f"{b.name}:coder")
    assert res.code == 0, res
    assert not svstat(b, "coder")["up"]
    state = json.loads(sh(b, "cat /opt/data/profiles/coder/gateway_state.json"))
    assert state["desired_state"] == "stopped"
    # hermes' planned-stop marker made the gateway record a clean stop
    wait_gateway_state(b, "coder", "stopped")  # a loaded host stops slowly
    assert json.loads(sh(b, "cat /opt/data/profiles/coder/gateway_state.json"))["gateway_state"] == "stopped"
    status = hermesctl("gateway", "status", glob)
    assert status.code == 3 and "down" in status.stdout

    # restart of a stopped gateway starts it
    res = hermesctl("gateway", "restart", f"{b.name}:coder", "--json")
    assert res.code == 0, res
    assert svstat(b, "coder")["up"]


def test_choices_survive_a_container_restart(containers):
    a, = make_fleet(containers, "keep", profiles=("on", "off"))
    assert hermesctl("gateway", "start", f"{a.name}:on").code == 0
    assert hermesctl("gateway", "start", f"{a.name}:off").code == 0
    assert hermesctl("gateway", "stop", f"{a.name}:off").code == 0
    a.restart(timeout=20)
    wait_ready(a)
    wait_up(a, "on")
    assert not svstat(a, "off")["up"]
    ps = hermesctl("ps", "--json", a.name).json()["gateways"]
    assert {g["profile"]: g["desired_state"] for g in ps} == {"default": None, "off": "stopped", "on": "running"}


def test_rolling_restart_stops_at_the_first_gateway_that_does_not_come_back(containers):
    a, b, c = make_fleet(containers, "rolla", "rollb", "rollc")
    glob = f"{containers.name('roll')}*:coder"
    assert hermesctl("gateway", "start", glob).code == 0
    pids = {x.name: svstat(x, "coder")["pid"] for x in (a, b, c)}
    # b's gateway will die on its next start: its profile becomes unreadable.
    sh(b, "chmod 000 /opt/data/profiles/coder", user="root")
    res = hermesctl("gateway", "restart", "--rolling", glob, "--json", "--timeout", "8", "--settle", "3")
    assert res.code == 1, res
    results = {r["container"]: r for r in res.json()["results"]}
    assert results[a.name]["ok"] is True and results[b.name]["ok"] is False
    assert c.name not in results
    assert svstat(a, "coder")["pid"] != pids[a.name]
    assert svstat(c, "coder")["pid"] == pids[c.name]  # never touched
    assert "not touched" in res.stderr and c.name in res.stderr


def test_ps_flags_parked_and_crash_looping_gateways(containers):
    a, = make_fleet(containers, "flags", profiles=("one", "two", "loop"))
    env = "API_SERVER_ENABLED=true\nAPI_SERVER_HOST=127.0.0.1\nAPI_SERVER_PORT=8651\nAPI_SERVER_KEY=0123456789abcdef0123\n"
    sh(a, f"printf '{env}' > /opt/data/profiles/one/.env && printf '{env}' > /opt/data/profiles/two/.env")
    assert hermesctl("gateway", "start", f"{a.name}:one").code == 0
    # listening on 127.0.0.1:8651 (0x21CB), looked for in /proc: no Python start per look
    wait_in(a, 'grep -q ":21CB 00000000:0000 0A" /proc/net/tcp', timeout=60, what="one listening")
    health = "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8651/health').status)\""
    assert sh(a, health).strip() == "200"
    # long enough for a gateway on a loaded host to reach its bind and be refused (exit 78)
    res = hermesctl("gateway", "start", f"{a.name}:two", "--settle", "12")
    assert res.code == 1 and "parked" in res.stdout, res
    sh(a, "chmod 000 /opt/data/profiles/loop", user="root")
    sh(a, "/command/s6-svc -u /run/service/gateway-loop")
    wait_in(a, "[ $(/command/s6-svdt /run/service/gateway-loop | wc -l) -ge 3 ]", what="3 deaths")
    ps = hermesctl("ps", "--json", a.name)
    sh(a, "/command/s6-svc -d /run/service/gateway-loop")  # seen: no more restarts until the teardown
    assert ps.code == 3  # something wanted up is not up
    rows = {g["profile"]: g for g in ps.json()["gateways"]}
    assert rows["two"]["parked"] and rows["two"]["state"] == "parked" and rows["two"]["exit_code"] == 78
    assert rows["two"]["gateway_state"] == "startup_failed"
    assert rows["two"]["platforms"]["api_server"]["state"] == "fatal"
    assert rows["loop"]["crash_looping"] and rows["loop"]["state"] == "crash-loop"
    assert rows["one"]["state"] == "up"


def test_register_and_unregister(containers):
    a, = make_fleet(containers, "regs", profiles=("slotty",))
    assert hermesctl("gateway", "unregister", f"{a.name}:slotty").code == 0
    assert sh(a, "test -e /run/service/gateway-slotty || echo gone").strip() == "gone"
    res = hermesctl("gateway", "register", f"{a.name}:slotty", "--up")
    assert res.code == 0, res
    wait_up(a, "slotty")
    missing = hermesctl("gateway", "register", f"{a.name}:nothere")
    assert missing.code == 4 and "no profile nothere" in missing.stderr
    assert hermesctl("gateway", "unregister", f"{a.name}:nothere").code == 4


def exec_counts(docker_client, names, since, until):
    """exec_create events per container between two instants, from the daemon's event stream, with
    what each exec ran (an assertion's message then says where an unexpected one came from)."""
    counts, ran = dict.fromkeys(names, 0), []
    for event in docker_client.events(since=since, until=until, decode=True, filters={"event": "exec_create"}):
        name = event.get("Actor", {}).get("Attributes", {}).get("name")
        # Docker's own HEALTHCHECK runs as an exec too ("exec_create: /opt/hermes/docker/healthcheck.sh").
        action = event.get("Action", event.get("status", ""))
        if name in counts and "healthcheck.sh" not in action:
            counts[name] += 1
            ran.append((name, action))
    return counts, ran


def test_one_exec_per_container_whatever_the_number_of_gateways(containers, docker_client):
    import time
    # Two containers of two gateways each tell a count per container (1, then 2) from one per
    # gateway (2, then 3 or more); each gateway more was a hermes start and stop more.
    fleet = make_fleet(containers, "exa", "exb", profiles=("p1", "p2"))
    names = [c.name for c in fleet]
    glob = f"{containers.name('ex')}*"
    time.sleep(1.1)  # event times are whole seconds: keep the setup's execs out of the window
    since = int(time.time())
    assert hermesctl("ps", "--json", glob).code == 0
    time.sleep(1.1)
    until = int(time.time()) + 1
    counts, ran = exec_counts(docker_client, names, since, until)
    assert counts == dict.fromkeys(names, 1), ran
    # A lifecycle command costs a fixed number of execs per container, not per gateway:
    # the probe, then one `hermes-slots operate` (lock, intent, s6-svlisten+s6-svc, before/after).
    time.sleep(1.1)
    since = int(time.time())
    assert hermesctl("gateway", "start", f"{glob}:p*", "--settle", "0").code == 0
    time.sleep(1.1)
    until = int(time.time()) + 1
    counts, ran = exec_counts(docker_client, names, since, until)
    assert counts == dict.fromkeys(names, 2), ran
    # ... and every one of the three gateways per container was started by it, and stops.
    assert all(svstat(c, p)["up"] for c in fleet for p in ("p1", "p2"))
    assert hermesctl("gateway", "stop", f"{glob}:p*").code == 0
    assert not any(svstat(c, p)["up"] for c in fleet for p in ("p1", "p2"))


def test_ps_shows_booting_and_unhealthy_containers(containers, tmp_path):
    slow = tmp_path / "00-slow"
    slow.write_text("#!/bin/sh\nsleep 45\n")  # long enough to be seen booting on a loaded host
    slow.chmod(0o755)
    booting = containers.start("boot", binds={str(slow): "/etc/cont-init.d/00-slow"}, wait=False)
    # The image's healthcheck, every half second, so that health is seen within the test.
    fast_health = {"test": ["CMD", "/opt/hermes/docker/healthcheck.sh"], "interval": 500_000_000,
                   "timeout": 2_000_000_000, "retries": 1, "start_period": 0}
    sick = containers.start("sick", healthcheck=fast_health)
    sh(sick, "hermes profile create broken >/dev/null")  # a real profile (a SOUL.md-only one made this flaky)
    # A gateway that dies at once, every time: wanted up, (almost) never up, so the health
    # check does not flap while a slow start would count as up.
    sh(sick, "printf '#!/bin/sh\\nexit 1\\n' > /run/service/gateway-broken/run.new && chmod +x "
             "/run/service/gateway-broken/run.new && mv /run/service/gateway-broken/run.new /run/service/gateway-broken/run")
    sh(sick, "/command/s6-svc -u /run/service/gateway-broken")

    rows = wait_for(lambda: (r := {(g["container"], g["profile"]): g for g in
                                   hermesctl("ps", "--json", f"{containers.name('')}*").json()["gateways"]})
                    and r.get((booting.name, None), {}).get("state") == "booting" and r, interval=1.0,
                    what="booting row")
    assert rows[(booting.name, None)]["state"] == "booting"
    # unhealthy, and the broken gateway judged a crash loop: on a loaded host its `exit 1` script
    # spends long enough `up` that a table taken before its third death could show it up
    wait_for(lambda: '"unhealthy"' in (doc := hermesctl("ps", "--json", sick.name)).stdout and any(
        g["profile"] == "broken" and g["crash_looping"] for g in doc.json()["gateways"]),
        what="unhealthy, crash loop")  # every 0.5 s: a look every second can keep meeting the 1 s restart's `up`
    table = hermesctl("ps", sick.name)
    assert f"{sick.name} (unhealthy)" in table.stdout and table.code == 3


def test_a_profile_made_since_the_boot_is_listed_and_either_gateway_start_starts_it(containers):
    """Issue 29: a profile that exists but has no slot (copied in by hand, as `hermes profile
    install` or a bind-mounted home leaves it: SOUL.md, no /run/service/gateway-P) was invisible
    and `gateway start` said it did not exist. ps lists it (`no slot`); `hermesctl gateway start
    C:P` and, inside, `hermes -p P gateway start` register its slot and start it, under the
    reconciler's rule (no SOUL.md: nothing is registered, upstream's own error stands)."""
    c = containers.start("slotless")
    sh(c, "for p in fresh inside nosoul; do mkdir -p /opt/data/profiles/$p; done; "
          "echo soul > /opt/data/profiles/fresh/SOUL.md; echo soul > /opt/data/profiles/inside/SOUL.md")
    ps = hermesctl("ps", c.name, "--json")
    assert ps.code == 0, ps
    rows = {g["profile"]: g["state"] for g in ps.json()["gateways"]}
    assert rows["fresh"] == "no slot" and rows["inside"] == "no slot" and "nosoul" not in rows, rows
    assert "no slot" in hermesctl("ps", f"{c.name}:fresh").stdout

    res = hermesctl("gateway", "start", f"{c.name}:fresh", "--json")
    assert res.code == 0, res
    [result] = res.json()["results"]
    assert result["ok"] and result["message"].startswith("slot registered; started"), result
    assert svstat(c, "fresh")["up"]

    # inside, as an operator types it: a root exec becomes hermes, the wrapper registers the slot
    done = c.exec_run(["hermes", "-p", "inside", "gateway", "start"])
    assert done.exit_code == 0, done.output.decode()
    wait_up(c, "inside", timeout=60)
    # both slots are ours, rendered as the reconciler renders them, owned by hermes
    assert sh(c, "cat /run/service/gateway-inside/run").replace("inside", "P") == \
        sh(c, "cat /run/service/gateway-fresh/run").replace("fresh", "P")
    assert sh(c, "stat -c %U /run/service/gateway-inside/run /run/service/gateway-fresh/run").split() == ["hermes"] * 2

    refused = c.exec_run(["hermes", "-p", "nosoul", "gateway", "start"], user="hermes")
    assert refused.exit_code != 0
    assert sh(c, "test -e /run/service/gateway-nosoul && echo made || echo none").strip() == "none"
    rows = {g["profile"]: g["state"] for g in hermesctl("ps", c.name, "--json").json()["gateways"]}
    assert rows["fresh"] == "up" and rows["inside"] == "up", rows
