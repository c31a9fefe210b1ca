"""Issue 11, points 1-10: the image behaves as the upstream hermes-agent image does on a user's
existing /opt/data (and closes the holes upstream leaves open)."""
import json
import os
import socket
import stat
import time

import pytest

from conftest import sh, svstat, wait_in
from test_image_init import run_once

HERMES = "/opt/data"


def boot_log(c):
    return sh(c, f"cat {HERMES}/logs/container-boot.log")


def up(*profiles: str) -> str:
    """A wait_in condition: every named profile's gateway is up."""
    return " && ".join(f"/command/s6-svstat -o up /run/service/gateway-{p} | grep -qx true" for p in profiles)


def recreate(containers, old, hint, volume, **kwargs):
    old.remove(force=True)
    return containers.start(hint, volume=volume, **kwargs)


# The container env of point 9 (the default gateway runs and serves the API) is an ordinary
# running container for points 1 and 5 too: one boot and one gateway start for the three.
API_ENV = {"API_SERVER_ENABLED": "true", "API_SERVER_HOST": "127.0.0.1", "API_SERVER_PORT": "8642",
           "API_SERVER_KEY": "k" * 32, "HERMES_GATEWAY_BOOTSTRAP_STATE": "running"}


@pytest.fixture(scope="module")
def running(module_containers):
    c = module_containers.start("running", env=API_ENV)
    wait_in(c, up("default"), what="default gateway up")
    return c


# 1. A privilege-dropping `hermes` for root execs.
def test_root_exec_of_hermes_runs_as_hermes_and_the_gateway_keeps_running(running):
    c = running
    pid = svstat(c, "default")["pid"]
    # As root, the Docker default: the wrapper first on PATH drops to hermes.
    result = c.exec_run(["hermes", "config", "set", "display.compact", "true"])
    assert result.exit_code == 0, result.output.decode()
    assert sh(c, "id -un; hermes --version >/dev/null; echo ok", user="root").split() == ["root", "ok"]
    assert sh(c, f"find {HERMES} -user root | head -5", user="root").strip() == ""
    time.sleep(2)
    assert svstat(c, "default")["up"] and svstat(c, "default")["pid"] == pid


# 2. Ownership repair touches only what is ours, by name-safe means.
def test_repair_leaves_host_files_and_newline_names_alone_across_remap_and_doctor_fix(containers):
    volume = containers.volume("own")
    c = containers.start("own1", volume=volume)
    sh(c, "hermes profile create coder >/dev/null")
    # hermes plants names built to be split into /etc and /etc/shadow by a line-based walk...
    sh(c, f"""mkdir -p '{HERMES}/x
/etc
' '{HERMES}/profiles/coder/y
/etc/shadow
'""")
    # ...and the host leaves a file of its own; root leaves a state file and a profile file.
    sh(c, f"""echo secret > {HERMES}/host_secret.json && chmod 600 {HERMES}/host_secret.json
touch {HERMES}/state.db '{HERMES}/profiles/coder/y
/etc/shadow
/root-file'
ln -s /etc/debian_version {HERMES}/auth.json""", user="root")
    c = recreate(containers, c, "own2", volume, env={"HERMES_UID": "12345", "HERMES_GID": "12345"})
    from conftest import hermesctl
    fixed = hermesctl("doctor", "--fix", c.name)
    assert fixed.code in (0, 1, 3), fixed
    owners = sh(c, "stat -c '%u %n' /etc /etc/shadow /etc/debian_version " + HERMES + "/host_secret.json "
                + HERMES + "/state.db", user="root").splitlines()
    assert owners == ["0 /etc", "0 /etc/shadow", "0 /etc/debian_version",
                      f"0 {HERMES}/host_secret.json", f"12345 {HERMES}/state.db"]
    inner = sh(c, f"find {HERMES}/profiles/coder -name root-file -printf '%U'", user="root")
    assert inner == "12345"
    assert "refusing to re-own symlink /opt/data/auth.json" in c.logs().decode()
    assert "refusing to re-own symlink /opt/data/auth.json" in boot_log(c)


# 3. Boots without CAP_CHOWN; a failed chown is a warning in the boot log.
def test_boots_without_cap_chown_and_warns(containers):
    volume = containers.volume("nochown")
    c = containers.start("nochown1", volume=volume)
    sh(c, "hermes profile create coder >/dev/null")
    sh(c, f"touch {HERMES}/profiles/coder/root-file", user="root")
    c = recreate(containers, c, "nochown2", volume, cap_drop=["CHOWN"])
    assert "cannot re-own" in boot_log(c)
    assert "profile=coder prior_state=None action=registered" in boot_log(c)
    assert svstat(c, "coder")["up"] is False  # supervised, down as it was
    sh(c, "/command/s6-svc -u /run/service/gateway-coder")
    wait_in(c, up("coder"), what="coder up without CAP_CHOWN")


# 4. cont-init as s6-overlay runs it.
@pytest.mark.parametrize("behaviour", ["0", "1", "2"])
def test_every_cont_init_script_runs_then_the_behaviour_decides(docker_client, hermes_image, behaviour):
    code, out, err = run_once(docker_client, hermes_image, ["echo", "cmd-ran"],
                              environment={"HERMES_UID": "bad", "S6_BEHAVIOUR_IF_STAGE2_FAILS": behaviour})
    assert "cont-init: 01-hermes-setup exited 1" in err
    assert "cont-init: running 02-reconcile-profiles" in err   # the next script still ran
    if behaviour == "2":
        assert code == 1 and "cmd-ran" not in out
    else:
        assert code == 0 and out.strip() == "cmd-ran"
        assert ("warning: cont-init failed: 01-hermes-setup" in err) == (behaviour == "1")


# 5. Login shells and install identity.
def test_login_shell_install_identity_and_private_tmp(running):
    c = running
    assert sh(c, "bash -l -c 'python3 -c \"import aiohttp, sys; print(sys.prefix)\"'").strip() == "/opt/hermes/.venv"
    assert "Install method: docker" in sh(c, "hermes --version")
    env = dict(l.split("=", 1) for l in sh(c, "env").splitlines() if "=" in l)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["HERMES_DISABLE_LAZY_INSTALLS"] == "1"
    assert env["HERMES_WRITE_SAFE_ROOT"] == "/opt/data:/tmp/hermes-files"
    assert sh(c, "stat -c '%U %a %F' /tmp/hermes-files").strip() == "hermes 700 directory"
    assert sh(c, "cat /opt/hermes/.install_method").strip() == "docker"


# Points 5 (the stamp) and 8 (auth bootstrap, multiplex): what one container leaves in its volume and
# what the next boot on that volume makes of it. One pair of containers for the three tests: each
# plants its own state in the first and reads its own outcome in the second (the second's env is
# the union of theirs: the auth seed and the multiplex switch, neither of which touches the others).
AUTH_SEED = json.dumps({"providers": {"nous": {"token": "t0"}}})


@pytest.fixture(scope="module")
def reboot(module_containers):
    volume = module_containers.volume("reboot")
    c = module_containers.start("reboot1", volume=volume, env={"HERMES_AUTH_JSON_BOOTSTRAP": AUTH_SEED})
    first = {"modes": sh(c, f"stat -c '%U %a' {HERMES}/auth.json {HERMES}/.env {HERMES}/config.yaml").splitlines(),
             "auth": json.loads(sh(c, f"cat {HERMES}/auth.json"))}
    sh(c, f"echo docker > {HERMES}/.install_method")                                       # the stamp
    sh(c, f"echo '{{}}' > {HERMES}/auth.json && chmod 644 {HERMES}/.env {HERMES}/config.yaml")  # auth
    sh(c, "hermes profile create coder >/dev/null && /opt/hermes/docker/hermes-slots desire running coder")  # mux
    c.remove(force=True)
    again = module_containers.start("reboot2", volume=volume,
                                    env={"HERMES_AUTH_JSON_BOOTSTRAP": AUTH_SEED, "GATEWAY_MULTIPLEX_PROFILES": "1"})
    return first, again


def test_a_stale_install_stamp_in_the_volume_is_removed(reboot):
    _, c = reboot
    assert c.exec_run(["test", "-e", f"{HERMES}/.install_method"]).exit_code != 0


# 6. Main wrapper routing and the tini shim.
def test_hermes_subcommands_reach_hermes_even_when_a_program_has_their_name(docker_client, hermes_image):
    code, out, err = run_once(docker_client, hermes_image, ["login", "--help"])
    assert code == 0, err
    assert "usage: hermes login" in out


def test_tini_compat_shim(docker_client, hermes_image):
    code, out, err = run_once(docker_client, hermes_image, ["-g", "--", "sh", "-c", "cat /proc/1/comm; echo $0"],
                              entrypoint=["/usr/bin/tini"])
    assert code == 0, err
    assert out.split() == ["s6-svscan", "sh"]


# 7. Device and --group-add groups survive the drop to hermes; root's group never does.
def test_socket_dri_and_group_add_gids_join_hermes(docker_client, hermes_image, tmp_path):
    sock_path = tmp_path / "docker.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    os.chown(sock_path, 0, 4343)
    render = tmp_path / "renderD128"
    os.mknod(render, 0o660 | stat.S_IFCHR, os.makedev(1, 3))
    os.chown(render, 0, 4444)
    card = tmp_path / "card0"
    os.mknod(card, 0o660 | stat.S_IFCHR, os.makedev(1, 3))
    volumes = {str(sock_path): {"bind": "/var/run/docker.sock", "mode": "rw"},
               str(render): {"bind": "/dev/dri/renderD128", "mode": "rw"},
               str(card): {"bind": "/dev/dri/card0", "mode": "rw"}}
    try:
        code, out, err = run_once(docker_client, hermes_image, ["id", "-G"], volumes=volumes, group_add=["4242"])
    finally:
        sock.close()
    assert code == 0, err
    groups = out.split()
    assert {"4242", "4343", "4444"} <= set(groups)
    assert "0" not in groups


# 8. Reconciler parity with hermes-agent 0.19.0.
def test_dashboard_container_and_opt_out_run_no_gateways(containers):
    volume = containers.volume("roles")
    c = containers.start("roles1", volume=volume, env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})
    wait_in(c, up("default"), what="default gateway up")
    c.remove(force=True)
    dash = containers.start("roles2", volume=volume, command=("dashboard", "--skip-build", "--no-open"))
    assert "action=skipped reason=dashboard-container" in boot_log(dash)
    assert sh(dash, "ls /run/service").split() == ["ctl-agent", "dashboard", "main-hermes"]  # no gateway slot
    dash.remove(force=True)
    other = containers.start("roles3", volume=volume, env={"HERMES_RECONCILE_GATEWAYS": "0"})
    assert "action=skipped reason=HERMES_RECONCILE_GATEWAYS=0" in boot_log(other)
    assert sh(other, "ls /run/service").split() == ["ctl-agent", "dashboard", "main-hermes"]


def test_multiplex_keeps_named_slots_down(reboot):
    _, c = reboot
    assert "profile=coder prior_state=running action=registered" in boot_log(c)
    assert svstat(c, "coder")["up"] is False


def test_auth_bootstrap_and_modes_every_boot(reboot):
    first, c = reboot
    assert first["modes"] == ["hermes 600", "hermes 600", "hermes 640"]
    assert first["auth"] == json.loads(AUTH_SEED)
    assert sh(c, f"cat {HERMES}/auth.json").strip() == "{}"   # first boot only
    assert sh(c, f"stat -c '%a' {HERMES}/.env {HERMES}/config.yaml").split() == ["600", "640"]


def test_hermes_controls_the_dashboard_slot(containers):
    c = containers.start("dashctl", env={"HERMES_DASHBOARD": "1"})
    svc = "/run/service/dashboard"
    wait_in(c, f"/command/s6-svstat -o up {svc} | grep -qx true", what="dashboard up")
    sh(c, f"/command/s6-svc -d {svc} && /command/s6-svwait -D -t 10000 {svc}")
    assert sh(c, f"/command/s6-svstat -o up {svc}").strip() == "false"
    sh(c, f"/command/s6-svc -u {svc} && /command/s6-svwait -u -t 10000 {svc}")
    assert sh(c, f"/command/s6-svstat -o up {svc}").strip() == "true"


def test_a_refused_public_dashboard_is_parked_with_one_line(containers):
    c = containers.start("dashpub", env={"HERMES_DASHBOARD": "1", "HERMES_DASHBOARD_HOST": "0.0.0.0"})
    wait_in(c, f"grep -q service=dashboard.action=parked {HERMES}/logs/container-boot.log", timeout=60,
            what="dashboard parked")
    svc = "/run/service/dashboard"
    deaths = sh(c, f"/command/s6-svdt {svc} | wc -l")
    time.sleep(4)
    assert sh(c, f"/command/s6-svdt {svc} | wc -l") == deaths   # no longer restarted
    assert sh(c, f"/command/s6-svstat -o up {svc}").strip() == "false"
    assert boot_log(c).count("service=dashboard action=parked") == 1
    assert "needs an auth provider" in boot_log(c)


# 9. What upstream users ask for: named profiles do not inherit container API_SERVER_* settings.
def test_named_profiles_do_not_inherit_container_api_server_settings(running):
    c = running
    # Slots made by hand (hermes-agent's own scripts) and ours behave alike.
    sh(c, "hermes profile create coder >/dev/null && /command/s6-svc -u /run/service/gateway-coder")
    sh(c, "hermes profile create writer >/dev/null && /opt/hermes/docker/hermes-slots adopt writer"
          " && /command/s6-svc -u /run/service/gateway-writer")
    wait_in(c, up("coder", "writer", "default"), what="all up")

    def environ(profile):
        pid = svstat(c, profile)["pid"]
        return sh(c, f"tr '\\0' '\\n' < /proc/{pid}/environ")

    wait_in(c, "grep -qzx API_SERVER_PORT=8642 /proc/$(/command/s6-svstat -o pid /run/service/gateway-default)/environ",
            what="default keeps its settings")
    assert "API_SERVER_" not in environ("coder")
    assert "API_SERVER_" not in environ("writer")
    # The default gateway serves the API; the named one did not fight it for the port.
    time.sleep(2)
    assert svstat(c, "coder")["up"] and svstat(c, "writer")["up"]


# 10. Size.
# The slim flavour keeps its 450 MB cap (445 MB measured). The full one (2.08 GB measured, README
# "The image") is mostly Debian's chromium and ffmpeg with their libraries; its cap leaves room for
# security updates, not for another stack.
SIZE_CAPS_MB = {"slim": 450, "full": 2400}


def _under_its_cap(docker_client, tag: str) -> None:
    image = docker_client.images.get(tag)
    cap = SIZE_CAPS_MB[image.labels["io.hermes-agent.flavour"]]
    assert image.attrs["Size"] <= cap * 1000 * 1000, f"{image.attrs['Size'] / 1e6:.0f} MB > {cap} MB"


def test_image_stays_under_its_flavours_size_cap(docker_client, hermes_image):
    _under_its_cap(docker_client, hermes_image)


def test_the_full_image_stays_under_its_size_cap(docker_client, full_image):
    _under_its_cap(docker_client, full_image)
