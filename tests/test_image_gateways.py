"""Gateway slots and the boot reconciler, against the real hermes-agent gateway."""
import json
import os
import stat

from conftest import sh, svstat, wait_for

HERMES = "/opt/data"


def boot_lines(c):
    return sh(c, f"cat {HERMES}/logs/container-boot.log").splitlines()


def restart(c):
    from conftest import wait_ready
    c.restart(timeout=20)
    wait_ready(c)


def state_file(c, profile):
    return json.loads(sh(c, f"cat {HERMES}/profiles/{profile}/gateway_state.json"))


def test_profile_create_registers_a_down_slot_and_start_records_intent(containers):
    c = containers.start("create")
    sh(c, "hermes profile create coder")
    slot = "/run/service/gateway-coder"
    layout = sh(c, f"cd {slot} && ls -a . log supervise && cat type && stat -c '%U %a %F' supervise supervise/control event")
    assert "down" in layout.split() and "longrun" in layout
    assert "hermes 755 directory" in layout and "hermes 660 fifo" in layout
    assert svstat(c, "coder")["up"] is False

    sh(c, f"/opt/hermes/docker/hermes-slots desire running coder && /command/s6-svc -u {slot}")
    wait_for(lambda: svstat(c, "coder")["up"], what="coder up")
    assert state_file(c, "coder")["desired_state"] == "running"
    wait_for(lambda: state_file(c, "coder").get("gateway_state") == "running", what="gateway running")


def test_restart_brings_running_gateways_back_and_keeps_stopped_ones_down(containers):
    c = containers.start("restart")
    for p in ("alpha", "beta"):
        sh(c, f"hermes profile create {p} >/dev/null")
    sh(c, "/opt/hermes/docker/hermes-slots desire running alpha && /command/s6-svc -u /run/service/gateway-alpha")
    sh(c, "/opt/hermes/docker/hermes-slots desire stopped beta")
    wait_for(lambda: svstat(c, "alpha")["up"], what="alpha up")
    restart(c)
    wait_for(lambda: svstat(c, "alpha")["up"], what="alpha back up")
    assert svstat(c, "beta")["up"] is False
    assert sh(c, "test -e /run/service/gateway-beta/down && echo down").strip() == "down"
    lines = boot_lines(c)[-3:]
    assert any("profile=alpha prior_state=running action=started" in l for l in lines)
    assert any("profile=beta prior_state=stopped action=registered" in l for l in lines)
    assert "profile=default" in lines[-1]


def test_reconciler_skips_strays_survives_corrupt_state_and_cleans_stale_pids(containers):
    c = containers.start("recon")
    sh(c, f"""hermes profile create good >/dev/null && hermes profile create broken >/dev/null
mkdir -p {HERMES}/profiles/stray {HERMES}/profiles/Upper {HERMES}/profiles/default
touch {HERMES}/profiles/Upper/SOUL.md {HERMES}/profiles/default/SOUL.md
echo '{{not json' > {HERMES}/profiles/broken/gateway_state.json
echo '{{"gateway_state": "draining"}}' > {HERMES}/profiles/good/gateway_state.json
echo 4242 > {HERMES}/profiles/good/gateway.pid && echo '{{}}' > {HERMES}/profiles/good/processes.json""")
    restart(c)
    log = "\n".join(boot_lines(c))
    assert "profile=stray action=skipped reason=no-SOUL.md" in log
    assert "profile=Upper action=skipped reason=invalid-name" in log
    assert "profile=default action=skipped reason=reserved-name" in log
    assert "profile=broken prior_state=None action=registered" in log
    # draining counts as running
    assert "profile=good prior_state=running action=started" in log
    assert sh(c, f"ls {HERMES}/profiles/good").split().count("gateway.pid") == 0 or \
        sh(c, f"cat {HERMES}/profiles/good/gateway.pid").strip() != "4242"
    assert sh(c, "test -d /run/service/gateway-stray || echo absent").strip() == "absent"
    wait_for(lambda: svstat(c, "good")["up"], what="good up")


def test_bootstrap_state_seeds_a_running_default_gateway(containers):
    c = containers.start("bootstrap", env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})
    assert json.loads(sh(c, f"cat {HERMES}/gateway_state.json"))["desired_state"] == "running"
    wait_for(lambda: svstat(c, "default")["up"], what="default gateway up")


def test_puid_pgid_remap_with_a_bind_mounted_host_directory(containers, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "profiles").mkdir()
    os.chown(data, 0, 0)
    c = containers.start("puid", env={"PUID": "2345", "PGID": "3456"}, binds={str(data): "/opt/data"})
    assert sh(c, "id -u hermes; id -g hermes").split() == ["2345", "3456"]
    st = os.stat(data / "profiles")
    assert (st.st_uid, st.st_gid) == (2345, 3456)
    assert os.stat(data / ".env").st_uid == 2345
    assert stat.S_IMODE(os.stat(data / ".env").st_mode) == 0o600
    sh(c, "hermes profile create remapped >/dev/null")
    assert os.stat(data / "profiles" / "remapped" / "SOUL.md").st_uid == 2345


def test_root_owned_files_are_reowned_and_symlinks_refused(containers):
    c = containers.start("owner")
    sh(c, "hermes profile create owned >/dev/null")
    sh(c, f"""touch {HERMES}/profiles/owned/root-file && mkdir {HERMES}/profiles/owned/root-dir
touch /etc/hermes-canary && ln -s /etc/hermes-canary {HERMES}/profiles/owned/evil-link""", user="root")
    restart(c)
    owners = sh(c, f"stat -c '%n %U' {HERMES}/profiles/owned/root-file {HERMES}/profiles/owned/root-dir /etc/hermes-canary")
    assert f"{HERMES}/profiles/owned/root-file hermes" in owners
    assert f"{HERMES}/profiles/owned/root-dir hermes" in owners
    assert "/etc/hermes-canary root" in owners
    assert "refusing to re-own symlink /opt/data/profiles/owned/evil-link" in c.logs().decode()


def test_fatal_config_parks_and_a_dying_gateway_is_restarted(containers):
    c = containers.start("park")
    env = "API_SERVER_ENABLED=true\nAPI_SERVER_HOST=127.0.0.1\nAPI_SERVER_PORT=8650\nAPI_SERVER_KEY=0123456789abcdef0123\n"
    for p in ("first", "second"):
        sh(c, f"hermes profile create {p} >/dev/null && printf '{env}' > {HERMES}/profiles/{p}/.env")
    sh(c, "/command/s6-svc -u /run/service/gateway-first")
    health = "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8650/health').status)\""
    wait_for(lambda: sh(c, health, check=False).strip() == "200", timeout=60, what="first /health")
    sh(c, "/command/s6-svc -u /run/service/gateway-second")
    parked = wait_for(lambda: (s := svstat(c, "second"))["exitcode"] == 78 and not s["up"] and not s["wantedup"] and s,
                      timeout=60, what="second parked")
    assert parked
    assert state_file(c, "second")["gateway_state"] == "startup_failed"
    # An unreadable profile makes its gateway die at once: s6 keeps restarting it, want up.
    sh(c, "hermes profile create dying >/dev/null")
    sh(c, f"chmod 000 {HERMES}/profiles/dying", user="root")
    sh(c, "/command/s6-svc -u /run/service/gateway-dying")
    wait_for(lambda: int(sh(c, "/command/s6-svdt /run/service/gateway-dying | wc -l")) >= 3, what="3 deaths")
    s = svstat(c, "dying")
    assert s["wantedup"] is True


def test_gateway_output_reaches_docker_logs_and_the_persistent_log(containers):
    c = containers.start("logs")
    sh(c, "hermes profile create talker >/dev/null && /opt/hermes/docker/hermes-slots unregister talker")
    sh(c, "/opt/hermes/docker/hermes-slots register talker --up")
    current = f"{HERMES}/logs/gateways/talker/current"
    line = wait_for(lambda: [l for l in sh(c, f"cat {current} 2>/dev/null || true").splitlines()
                             if "No messaging platforms enabled" in l], timeout=60, what="gateway log line")[0]
    assert line[:4].isdigit() and line[4] == "-"  # s6-log's ISO 8601 timestamp
    assert "No messaging platforms enabled" in c.logs().decode()
    assert sh(c, f"stat -c %U {current}").strip() == "hermes"


def test_runtime_register_and_unregister_use_the_boot_renderer(containers):
    c = containers.start("reg")
    sh(c, "hermes profile create rr >/dev/null && /opt/hermes/docker/hermes-slots unregister rr")
    assert sh(c, "test -e /run/service/gateway-rr || echo gone").strip() == "gone"
    sh(c, "/opt/hermes/docker/hermes-slots register rr")
    run_runtime = sh(c, "cat /run/service/gateway-rr/run")
    restart(c)
    assert sh(c, "cat /run/service/gateway-rr/run") == run_runtime
    assert "exec /command/s6-setuidgid hermes hermes -p rr gateway run --replace" in run_runtime
    assert "HERMES_S6_SUPERVISED_CHILD=1" in run_runtime
    # Not a profile: refused with exit 4, nothing created.
    res = c.exec_run(["/opt/hermes/docker/hermes-slots", "register", "ghost"], user="hermes")
    assert res.exit_code == 4 and sh(c, "test -e /run/service/gateway-ghost || echo none").strip() == "none"


def test_boot_log_rotates_at_256_kib(containers):
    c = containers.start("rotate")
    sh(c, f"head -c 270000 /dev/zero | tr '\\0' x > {HERMES}/logs/container-boot.log")
    restart(c)
    sizes = sh(c, f"stat -c '%n %s' {HERMES}/logs/container-boot.log {HERMES}/logs/container-boot.log.1")
    current, rotated = (int(line.split()[1]) for line in sizes.splitlines())
    assert rotated == 270000 and current < 1000
    assert "profile=default" in sh(c, f"cat {HERMES}/logs/container-boot.log")
