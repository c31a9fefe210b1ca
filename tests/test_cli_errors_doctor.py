"""Bad input: one clear line, a distinct exit code, nothing changed. And doctor."""
import pytest

from conftest import hermesctl, profile_archive, put_profiles, sh, svstat, wait_in


def snapshot(c):
    """Everything a command could change: profiles and slots, with sizes and mtimes."""
    return sh(c, "find /opt/data/profiles /run/service -printf '%p %s %T@\\n' | sort", user="root")


def test_bad_input_exit_codes_and_nothing_changes(containers, docker_client):
    c = containers.start("errs")
    sh(c, "hermes profile create coder >/dev/null")
    before = snapshot(c)
    cases = {
        ("gateway", "start", "nosuchbox:coder"): (4, "no Hermes container matches"),
        ("gateway", "start", f"{c.name[:-1]}x:coder"): (4, "did you mean"),
        ("gateway", "start", f"{c.name}:nosuch"): (4, "no gateway 'nosuch'"),
        ("gateway", "start", f"{c.name}:a:b"): (2, "malformed target"),
        ("gateway", "start", ":coder"): (2, "malformed target"),
        ("gateway", "start", f"{c.name}:../../etc"): (6, "invalid profile"),
        ("gateway", "start", f"{c.name}:x;touch /tmp/pwned"): (6, "invalid profile"),
        ("profile", "create", f"{c.name}:$(touch /tmp/pwned)"): (6, "invalid profile"),
        ("profile", "create", f"{c.name}:default"): (6, "reserved"),
        ("profile", "create", f"{c.name}:../escape"): (6, "invalid profile"),
        ("gateway", "start", f"{c.name}:coder", f"{c.name}:nosuch"): (4, "no gateway 'nosuch'"),
    }
    for args, (code, text) in cases.items():
        res = hermesctl(*args)
        assert res.code == code, (args, res)
        assert text in res.stderr, (args, res)
        assert len(res.stderr.strip().splitlines()) == 1, (args, res)
        assert res.stdout == ""
    assert snapshot(c) == before
    assert sh(c, "test -e /tmp/pwned || echo clean", user="root").strip() == "clean"
    assert not svstat(c, "coder")["up"]  # the mixed valid/invalid start did nothing


@pytest.fixture(scope="module")
def exited(module_containers, docker_client):
    """A Hermes container whose main program was killed by SIGTERM: its last exit is 143 (a
    doctor finding), and it is a container that is not running (a target that cannot start)."""
    c = module_containers.start("doc143", command=["sh", "-c", "sleep 2; kill -TERM $$"], wait=False)
    assert docker_client.api.wait(c.id, timeout=60)["StatusCode"] == 143
    return c


def test_stopped_container_daemon_down_and_foreign_container(exited, containers, docker_client):
    res = hermesctl("gateway", "start", f"{exited.name}:default")
    assert res.code == 5 and "not running" in res.stderr
    res = hermesctl("ps", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert res.code == 69 and "cannot reach the Docker daemon" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    foreign = docker_client.containers.run("debian:bookworm-slim", ["sleep", "60"], detach=True,
                                           name=containers.name("foreign"))
    try:
        res = hermesctl("exec", foreign.name, "--", "true")
        assert res.code == 8 and "not a Hermes container" in res.stderr
    finally:
        foreign.remove(force=True)


def test_doctor_finds_each_pitfall_and_fixes_the_safe_ones(exited, containers, docker_client):
    shared = containers.volume("shared")
    a = containers.start("doca", volume=shared)
    b = containers.start("docb", volume=shared)
    # porty and porty2 are byte copies of the hermes-made loop (one hermes start, not three).
    sh(a, "hermes profile create loop >/dev/null && mkdir /opt/data/profiles/stray")
    put_profiles(a, profile_archive(a, "loop"), ["porty", "porty2"])
    sh(a, "touch /opt/data/profiles/loop/root-file", user="root")
    env = "API_SERVER_ENABLED=true\nAPI_SERVER_HOST=127.0.0.1\nAPI_SERVER_PORT=8652\nAPI_SERVER_KEY=0123456789abcdef0123\n"
    sh(a, f"printf '{env}' > /opt/data/profiles/porty/.env; printf '{env}' > /opt/data/profiles/porty2/.env")
    assert hermesctl("gateway", "start", f"{a.name}:porty").code == 0
    health = ('python3 -c "import urllib.request as u; '
              'assert u.urlopen(\\"http://127.0.0.1:8652/health\\", timeout=5).status == 200" 2>/dev/null')
    wait_in(a, health, timeout=60, what="porty serving")
    hermesctl("gateway", "start", f"{a.name}:porty2", "--settle", "3")
    # A slow machine takes a while to fail the bind: wait until s6 has parked it (exit 78).
    wait_in(a, "/command/s6-svstat -o up,exitcode /run/service/gateway-porty2 | grep -qx \"false 78\"", timeout=60,
            what="porty2 parked")

    res = hermesctl("doctor", a.name, b.name, exited.name, "--json")
    assert res.code == 1, res
    findings = res.json()["findings"]
    problems = {(f["container"], f["check"]) for f in findings if not f["ok"]}
    assert (a.name, "ownership") in problems
    assert (a.name, "profile-without-soul") in problems
    assert (f"{a.name},{b.name}", "shared-volume") in problems
    assert (exited.name, "running") in problems
    assert (exited.name, "exit-143") in problems
    port = next(f for f in findings if f["check"] == "gateway-health" and "porty2" in f["detail"])
    assert "parked" in port["detail"] and "port in use" in port["detail"]
    assert all(f["fix"] for f in findings if not f["ok"])

    res = hermesctl("doctor", a.name, "--fix", "--json")
    fixed = {f["check"] for f in res.json()["findings"] if f["fixed"]}
    assert "ownership" in fixed
    assert sh(a, "stat -c %U /opt/data/profiles/loop/root-file").strip() == "hermes"
