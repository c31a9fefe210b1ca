"""The image boots as the contract says: s6 as PID 1, /command, readiness, static services."""
import time

from conftest import sh, wait_for


def test_pid1_is_s6_and_command_works_as_hermes(containers):
    c = containers.start("pid1")
    assert sh(c, "cat /proc/1/comm").strip() == "s6-svscan"
    assert sh(c, "test -d /run/s6/basedir && echo yes").strip() == "yes"
    # /command is not on docker exec's PATH, but its programs work by absolute path, as hermes.
    assert "/command" not in sh(c, "echo $PATH")
    out = sh(c, "id -un; /command/s6-svstat /run/service/gateway-default")
    assert out.splitlines()[0] == "hermes"
    assert out.splitlines()[1].startswith("down")
    # The venv is root's and not writable by hermes.
    assert sh(c, "stat -c %U /opt/hermes/.venv/bin/python3; test -w /opt/hermes/.venv/bin || echo ro").split() == ["root", "ro"]


def test_readiness_line_in_container_boot_log(containers):
    c = containers.start("ready", wait=False)
    line = wait_for(lambda: [l for l in sh(c, "cat /opt/data/logs/container-boot.log 2>/dev/null || true").splitlines()
                             if "profile=default" in l], timeout=60, what="default line")[0]
    stamp, *fields = line.split()
    assert fields == ["profile=default", "prior_state=None", "action=registered"]
    assert time.strftime("%Y-%m-%dT", time.gmtime()) in stamp


def test_static_services_and_dashboard_parked(containers):
    c = containers.start("static")
    main = sh(c, "/command/s6-svstat -o up /run/service/main-hermes").strip()
    assert main == "true"
    # Without HERMES_DASHBOARD the dashboard slot is registered down: it never runs.
    dash = sh(c, "/command/s6-svstat -o up,wantedup /run/service/dashboard").split()
    assert dash == ["false", "false"]
    # Started by hand anyway, it parks (runs once, exits) and stays down: s6 does not restart it.
    sh(c, "/command/s6-svc -u /run/service/dashboard")
    time.sleep(2)
    assert sh(c, "/command/s6-svdt /run/service/dashboard | wc -l").strip() == "1"
    assert sh(c, "/command/s6-svstat -o up /run/service/dashboard").strip() == "false"


def test_dashboard_runs_when_enabled(containers):
    c = containers.start("dash", env={"HERMES_DASHBOARD": "true"})
    status = wait_for(lambda: sh(c, "/command/s6-svstat -o up,wantedup /run/service/dashboard").split()
                      == ["true", "true"], what="dashboard up")
    assert status
    proc = sh(c, "ps -eo user:12,args | grep '[h]ermes dashboard'")
    assert proc.startswith("hermes") and "--port 9119" in proc


def test_static_service_added_by_the_seed_recipe(containers, docker_client, hermes_image, tmp_path):
    """The recipe 'Add a new static service': type, run, dependencies.d/base, user/contents.d."""
    svc = tmp_path / "s6-rc.d" / "heartbeat"
    (svc / "dependencies.d").mkdir(parents=True)
    (svc / "type").write_text("longrun\n")
    (svc / "run").write_text("#!/command/with-contenv sh\n# shellcheck shell=sh\n"
                             "exec s6-setuidgid hermes sh -c 'while :; do date +%s > /tmp/heartbeat; sleep 1; done'\n")
    (svc / "run").chmod(0o755)
    (svc / "dependencies.d" / "base").write_text("")
    (tmp_path / "s6-rc.d" / "user" / "contents.d").mkdir(parents=True)
    (tmp_path / "s6-rc.d" / "user" / "contents.d" / "heartbeat").write_text("")
    (tmp_path / "Dockerfile").write_text(f"FROM {hermes_image}\nCOPY s6-rc.d/ /etc/s6-overlay/s6-rc.d/\n")
    tag = f"hermes-agent-recipe:{containers.name('x')[-6:]}"
    docker_client.images.build(path=str(tmp_path), tag=tag, rm=True)
    try:
        c = containers.start("recipe", image=tag)
        assert sh(c, "/command/s6-svstat -o up /run/s6/services/heartbeat").strip() == "true"
        pid = sh(c, "/command/s6-svstat -o pid /run/s6/services/heartbeat").strip()
        sh(c, f"kill {pid}", user="root")
        wait_for(lambda: sh(c, "/command/s6-svstat -o pid /run/s6/services/heartbeat").strip() not in (pid, "-1"),
                 what="supervised restart")
        assert sh(c, "stat -c %U /tmp/heartbeat").strip() == "hermes"
    finally:
        for cont in containers.started:
            cont.get_wrapped_container().remove(force=True, v=True)
        containers.started.clear()
        docker_client.images.remove(tag, force=True)


def test_healthcheck_tells_the_truth(containers):
    c = containers.start("health")
    assert c.exec_run(["/opt/hermes/docker/healthcheck.sh"]).exit_code == 0
    sh(c, "hermes profile create hc >/dev/null 2>&1; chmod 000 /opt/data/profiles/hc", user="root")
    sh(c, "/command/s6-svc -u /run/service/gateway-hc")
    wait_for(lambda: c.exec_run(["/opt/hermes/docker/healthcheck.sh"]).exit_code == 1, what="unhealthy")
    assert b"hc:down-but-wanted-up" in c.exec_run(["/opt/hermes/docker/healthcheck.sh"]).output
    # A gateway stopped on purpose is fine.
    sh(c, "/command/s6-svc -d /run/service/gateway-hc")
    wait_for(lambda: c.exec_run(["/opt/hermes/docker/healthcheck.sh"]).exit_code == 0, what="healthy again")


def test_with_contenv_restores_the_container_environment(containers):
    c = containers.start("contenv", env={"HERMES_TEST_VALUE": "two words\nand a line"})
    # An empty environment, as a supervised service may have: with-contenv brings the container's back.
    out = sh(c, "env -i /command/with-contenv sh -c 'printf %s \"$HERMES_TEST_VALUE\"; echo; echo $PATH'")
    lines = out.splitlines()
    assert lines[:2] == ["two words", "and a line"]
    assert lines[2].startswith("/command:")
