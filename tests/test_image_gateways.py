"""Gateway slots and the boot reconciler, against the real hermes-agent gateway.

The Docker half of CI is CPU-bound, so the tests that need no container environment of their own
share one container (`box`), each with its own profiles, and the tests of what a container restart
does share ONE restart (`restarted` sets up each one's state, restarts, and keeps what each reads
right after it). Profiles that a test does not create through hermes are byte copies of one that
hermes made (`clone`), registered by the image's renderer: a hermes start saved each. Waits run
inside the container, one exec each (`wait_in`)."""
import json
import os
import re
import stat

import pytest

from conftest import sh, svstat, wait_in

HERMES = "/opt/data"
TEMPLATE = "template"  # made by `hermes profile create`, never started: the source of every clone


def boot_lines(c):
    return sh(c, f"cat {HERMES}/logs/container-boot.log").splitlines()


def restart(c):
    from conftest import wait_ready
    c.restart(timeout=20)
    wait_ready(c)


def state_file(c, profile):
    return json.loads(sh(c, f"cat {HERMES}/profiles/{profile}/gateway_state.json"))


def wait_up(c, profile, timeout=60):
    wait_in(c, f'[ "$(/command/s6-svstat -o up /run/service/gateway-{profile} 2>/dev/null)" = true ]',
            timeout=timeout, what=f"{profile}'s gateway up")


def clone(c, *names):
    """Profiles as `hermes profile create` leaves them, without its hermes start (~0.5 s of CPU):
    copies of the template (a profile's files carry no name), each slot registered `down` by the
    image's renderer, the one hermes' own registration and the boot use."""
    sh(c, " && ".join(f"cp -a {HERMES}/profiles/{TEMPLATE} {HERMES}/profiles/{n} && "
                      f"/opt/hermes/docker/hermes-slots register {n}" for n in names))


@pytest.fixture(scope="module")
def box(module_containers):
    c = module_containers.start("box")
    sh(c, f"hermes profile create {TEMPLATE} >/dev/null")
    return c


@pytest.fixture(scope="module")
def restarted(box):
    """The box after one restart, set up before it for each restart test (each block says whose),
    with what they read right after it."""
    c, seen = box, {}
    clone(c, "alpha", "beta", "good", "broken", "owned", "rr")
    # restart: alpha running, beta chosen stopped
    sh(c, "/opt/hermes/docker/hermes-slots desire running alpha && /command/s6-svc -u /run/service/gateway-alpha")
    sh(c, "/opt/hermes/docker/hermes-slots desire stopped beta")
    # reconciler: strays, a corrupt state file, a draining state, stale pid files
    sh(c, f"""mkdir -p {HERMES}/profiles/stray {HERMES}/profiles/Upper {HERMES}/profiles/default
touch {HERMES}/profiles/Upper/SOUL.md {HERMES}/profiles/default/SOUL.md
echo '{{not json' > {HERMES}/profiles/broken/gateway_state.json
echo '{{"gateway_state": "draining"}}' > {HERMES}/profiles/good/gateway_state.json
echo 4242 > {HERMES}/profiles/good/gateway.pid && echo '{{}}' > {HERMES}/profiles/good/processes.json""")
    # owner: root-owned entries and a symlink to a root file in a profile
    sh(c, f"""touch {HERMES}/profiles/owned/root-file && mkdir {HERMES}/profiles/owned/root-dir
touch /etc/hermes-canary && ln -s /etc/hermes-canary {HERMES}/profiles/owned/evil-link""", user="root")
    # runtime register: unregistered, registered again, its run script kept
    sh(c, "/opt/hermes/docker/hermes-slots unregister rr")
    seen["rr_gone"] = sh(c, "test -e /run/service/gateway-rr || echo gone").strip()
    sh(c, "/opt/hermes/docker/hermes-slots register rr")
    seen["rr_run"] = sh(c, "cat /run/service/gateway-rr/run")
    # rotation: a boot log past 256 KiB (its lines so far replaced: the next ones are the restart's)
    sh(c, f"head -c 270000 /dev/zero | tr '\\0' x > {HERMES}/logs/container-boot.log")
    wait_up(c, "alpha")
    restart(c)
    seen["boot"] = boot_lines(c)
    seen["logs"] = c.logs().decode()
    return c, seen


def test_restart_brings_running_gateways_back_and_keeps_stopped_ones_down(restarted):
    c, seen = restarted
    wait_up(c, "alpha")
    assert svstat(c, "beta")["up"] is False
    assert sh(c, "test -e /run/service/gateway-beta/down && echo down").strip() == "down"
    lines = seen["boot"]  # this boot's alone: the one before rotated away
    assert any("profile=alpha prior_state=running action=started" in l for l in lines)
    assert any("profile=beta prior_state=stopped action=registered" in l for l in lines)
    assert "profile=default" in lines[-1]


def test_reconciler_skips_strays_survives_corrupt_state_and_cleans_stale_pids(restarted):
    c, seen = restarted
    log = "\n".join(seen["boot"])
    assert "profile=stray action=skipped reason=no-SOUL.md" in log
    assert "profile=Upper action=skipped reason=invalid-name" in log
    assert "profile=default action=skipped reason=reserved-name" in log
    assert "profile=broken prior_state=None action=registered" in log
    # draining counts as running
    assert "profile=good prior_state=running action=started" in log
    assert sh(c, f"ls {HERMES}/profiles/good").split().count("gateway.pid") == 0 or \
        sh(c, f"cat {HERMES}/profiles/good/gateway.pid").strip() != "4242"
    assert sh(c, "test -d /run/service/gateway-stray || echo absent").strip() == "absent"
    wait_up(c, "good")


def test_root_owned_files_are_reowned_and_symlinks_refused(restarted):
    c, seen = restarted
    owners = sh(c, f"stat -c '%n %U' {HERMES}/profiles/owned/root-file {HERMES}/profiles/owned/root-dir /etc/hermes-canary")
    assert f"{HERMES}/profiles/owned/root-file hermes" in owners
    assert f"{HERMES}/profiles/owned/root-dir hermes" in owners
    assert "/etc/hermes-canary root" in owners
    assert "refusing to re-own symlink /opt/data/profiles/owned/evil-link" in seen["logs"]


def test_runtime_register_and_unregister_use_the_boot_renderer(restarted):
    c, seen = restarted
    assert seen["rr_gone"] == "gone"
    run_runtime = seen["rr_run"]
    assert sh(c, "cat /run/service/gateway-rr/run") == run_runtime  # rendered again by the boot
    assert "exec /command/s6-setuidgid hermes hermes -p rr gateway run --replace" in run_runtime
    assert "HERMES_S6_SUPERVISED_CHILD=1" in run_runtime
    # Not a profile: refused with exit 4, nothing created.
    res = c.exec_run(["/opt/hermes/docker/hermes-slots", "register", "ghost"], user="hermes")
    assert res.exit_code == 4 and sh(c, "test -e /run/service/gateway-ghost || echo none").strip() == "none"


def test_boot_log_rotates_at_256_kib(restarted):
    c, seen = restarted
    sizes = sh(c, f"stat -c '%n %s' {HERMES}/logs/container-boot.log.1")
    assert int(sizes.split()[1]) == 270000
    # the current log holds this boot's lines (one per profile, one per stage warning) and nothing
    # of the rotated one
    line = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9]{4} (profile|stage)=[^x]")
    assert seen["boot"] and all(line.match(l) for l in seen["boot"]), seen["boot"]
    assert "profile=default" in seen["boot"][-1]


def test_profile_create_registers_a_down_slot_and_start_records_intent(box):
    c = box
    sh(c, "hermes profile create coder")
    slot = "/run/service/gateway-coder"
    layout = sh(c, f"cd {slot} && ls -a . log supervise && cat type && stat -c '%U %a %F' supervise supervise/control event")
    assert "down" in layout.split() and "longrun" in layout
    assert "hermes 755 directory" in layout and "hermes 660 fifo" in layout
    assert svstat(c, "coder")["up"] is False

    sh(c, f"/opt/hermes/docker/hermes-slots desire running coder && /command/s6-svc -u {slot}")
    wait_up(c, "coder", timeout=30)
    assert state_file(c, "coder")["desired_state"] == "running"
    wait_in(c, f'grep -q "gateway_state.: *.running" {HERMES}/profiles/coder/gateway_state.json',
            what="gateway running")
    assert state_file(c, "coder")["gateway_state"] == "running"


def test_fatal_config_parks_and_a_dying_gateway_is_restarted(box):
    c = box
    env = "API_SERVER_ENABLED=true\nAPI_SERVER_HOST=127.0.0.1\nAPI_SERVER_PORT=8650\nAPI_SERVER_KEY=0123456789abcdef0123\n"
    clone(c, "first", "second", "dying")
    sh(c, " && ".join(f"printf '{env}' > {HERMES}/profiles/{p}/.env" for p in ("first", "second")))
    sh(c, "/command/s6-svc -u /run/service/gateway-first")
    # listening on 127.0.0.1:8650 (0x21CA), looked for in /proc: no Python start per look
    wait_in(c, 'grep -q ":21CA 00000000:0000 0A" /proc/net/tcp', timeout=60, what="first listening")
    health = "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8650/health').status)\""
    assert sh(c, health).strip() == "200"
    sh(c, "/command/s6-svc -u /run/service/gateway-second")
    wait_in(c, '[ "$(/command/s6-svstat -o exitcode,up,wantedup /run/service/gateway-second)" = "78 false false" ]',
            timeout=60, what="second parked")
    s = svstat(c, "second")
    assert s["exitcode"] == 78 and not s["up"] and not s["wantedup"]
    assert state_file(c, "second")["gateway_state"] == "startup_failed"
    # An unreadable profile makes its gateway die at once: s6 keeps restarting it, want up.
    sh(c, f"chmod 000 {HERMES}/profiles/dying", user="root")
    sh(c, "/command/s6-svc -u /run/service/gateway-dying")
    wait_in(c, "[ $(/command/s6-svdt /run/service/gateway-dying | wc -l) -ge 3 ]", what="3 deaths")
    s = svstat(c, "dying")
    assert s["wantedup"] is True
    sh(c, "/command/s6-svc -d /run/service/gateway-dying")  # proven: no more restarts for the module's rest


def test_gateway_output_reaches_docker_logs_and_the_persistent_log(box):
    c = box
    sh(c, f"cp -a {HERMES}/profiles/{TEMPLATE} {HERMES}/profiles/talker && "
          "/opt/hermes/docker/hermes-slots register talker --up")
    current = f"{HERMES}/logs/gateways/talker/current"
    wait_in(c, f'grep -q "No messaging platforms enabled" {current} 2>/dev/null', timeout=60, what="gateway log line")
    lines = sh(c, f"cat {current}").splitlines()
    line = [l for l in lines if "No messaging platforms enabled" in l][0]
    assert line[:4].isdigit() and line[4] == "-"  # s6-log's ISO 8601 timestamp
    # Other gateways of the box say the same: talker's own line proves its output reached docker logs.
    own = [l for l in lines if "gateway talker: starting under s6 supervision" in l][0]
    logs = c.logs().decode()
    assert own.split("  ", 1)[1] in logs and "No messaging platforms enabled" in logs
    assert sh(c, f"stat -c %U {current}").strip() == "hermes"


@pytest.fixture(scope="module")
def remapped(module_containers, tmp_path_factory):
    """A container with its own environment: hermes remapped, /opt/data a host directory, the
    default gateway seeded running."""
    data = tmp_path_factory.mktemp("puid") / "data"
    data.mkdir()
    (data / "profiles").mkdir()
    os.chown(data, 0, 0)
    c = module_containers.start("puid", env={"PUID": "2345", "PGID": "3456", "HERMES_GATEWAY_BOOTSTRAP_STATE": "running"},
                                binds={str(data): "/opt/data"})
    return c, data


def test_bootstrap_state_seeds_a_running_default_gateway(remapped):
    c, _ = remapped
    assert json.loads(sh(c, f"cat {HERMES}/gateway_state.json"))["desired_state"] == "running"
    wait_up(c, "default", timeout=30)


def test_puid_pgid_remap_with_a_bind_mounted_host_directory(remapped):
    c, data = remapped
    assert sh(c, "id -u hermes; id -g hermes").split() == ["2345", "3456"]
    st = os.stat(data / "profiles")
    assert (st.st_uid, st.st_gid) == (2345, 3456)
    assert os.stat(data / ".env").st_uid == 2345
    assert stat.S_IMODE(os.stat(data / ".env").st_mode) == 0o600
    sh(c, "hermes profile create remapped >/dev/null")
    assert os.stat(data / "profiles" / "remapped" / "SOUL.md").st_uid == 2345
