"""The main wrapper and our /init: routing, exit codes, TTY, reaping, shutdown, the user guard."""
import time

from conftest import sh, wait_for


def run_once(docker_client, image, command=None, **kwargs):
    """docker run --rm-like: returns (exit code, output)."""
    c = docker_client.containers.run(image, command, detach=True, **kwargs)
    try:
        code = c.wait(timeout=120)["StatusCode"]
        return code, c.logs(stdout=True, stderr=False).decode(), c.logs(stdout=False, stderr=True).decode()
    finally:
        c.remove(force=True, v=True)


def test_cmd_exit_code_is_the_container_exit_code(docker_client, hermes_image):
    assert run_once(docker_client, hermes_image, ["sh", "-c", "exit 7"])[0] == 7
    assert run_once(docker_client, hermes_image, ["true"])[0] == 0


def test_leading_dash_arguments_reach_hermes(docker_client, hermes_image):
    code, out, _ = run_once(docker_client, hermes_image, ["--version"])
    assert code == 0 and out.startswith("Hermes Agent v0.19.0")


def test_program_on_path_runs_as_hermes(docker_client, hermes_image):
    code, out, _ = run_once(docker_client, hermes_image, ["sh", "-c", "id -un; echo $HOME; test -t 0 || echo notty"])
    assert code == 0 and out.split() == ["hermes", "/opt/data", "notty"]


def test_docker_run_init_works_without_pid1(docker_client, hermes_image):
    code, out, err = run_once(docker_client, hermes_image, ["--help"], init=True)
    assert code == 0, err
    assert "usage" in out.lower()
    assert "not PID 1" in err


def test_tty_reaches_the_cmd(docker_client, hermes_image):
    code, out, _ = run_once(docker_client, hermes_image, ["sh", "-c", "tty; test -t 1 && echo tty-out"], tty=True)
    assert code == 0
    assert "/dev/pts/" in out and "tty-out" in out


def test_orphaned_zombies_are_reaped(containers):
    c = containers.start("zombie")
    # The subshell exits at once, orphaning a short sleep: PID 1 inherits and must reap it.
    sh(c, "(sleep 0.3 &) ; exit 0")
    time.sleep(1.5)
    states = sh(c, "cat /proc/[0-9]*/stat 2>/dev/null | sed 's/.*) //' | cut -d' ' -f1", user="root").split()
    assert "Z" not in states


def test_docker_stop_is_prompt_even_when_a_service_ignores_sigterm(containers):
    c = containers.start("stop")
    # A supervised service that ignores SIGTERM (SIG_IGN survives exec).
    sh(c, "mkdir /run/service/.stubborn && printf '#!/bin/sh\\ntrap \"\" TERM\\nexec sleep 1000\\n' "
          "> /run/service/.stubborn/run && chmod +x /run/service/.stubborn/run && "
          "mv /run/service/.stubborn /run/service/stubborn && /command/s6-svscanctl -a /run/service")
    wait_for(lambda: sh(c, "/command/s6-svstat -o up /run/service/stubborn").strip() == "true",
             what="stubborn up")
    started = time.monotonic()
    c.stop(timeout=20)
    elapsed = time.monotonic() - started
    c.reload()
    assert c.attrs["State"]["ExitCode"] == 0   # a requested stop, not a SIGKILL (137)
    assert elapsed < 10, f"docker stop took {elapsed:.1f}s"


def test_user_guard_refuses_other_users(docker_client, hermes_image):
    code, _, err = run_once(docker_client, hermes_image, ["true"], user="1234")
    assert code != 0
    assert "HERMES_UID" in err and "PUID" in err


def test_running_as_hermes_is_allowed(docker_client, hermes_image):
    code, out, err = run_once(docker_client, hermes_image, ["id", "-un"], user="hermes")
    assert code == 0, err
    assert out.strip() == "hermes"


def test_failing_cont_init_stops_the_container_when_asked(docker_client, hermes_image):
    code, _, err = run_once(docker_client, hermes_image, ["sleep", "infinity"],
                            environment={"HERMES_UID": "notanumber", "S6_BEHAVIOUR_IF_STAGE2_FAILS": "2"})
    assert code == 1
    assert "HERMES_UID/PUID must be digits" in err


def test_failing_cont_init_is_logged_and_boot_continues_by_default(docker_client, hermes_image):
    code, out, err = run_once(docker_client, hermes_image, ["echo", "cmd-ran"],
                              environment={"HERMES_UID": "0", "S6_BEHAVIOUR_IF_STAGE2_FAILS": "0"})
    assert code == 0 and out.strip() == "cmd-ran"
    assert "01-hermes-setup exited 1" in err


def test_entrypoint_shim_still_prepares_the_volume(docker_client, hermes_image):
    code, out, err = run_once(docker_client, hermes_image, ["-c", "/opt/hermes/docker/entrypoint.sh && ls -a /opt/data"],
                              entrypoint=["sh"])
    assert code == 0, err
    assert ".env" in out.split() and "SOUL.md" in out.split()
