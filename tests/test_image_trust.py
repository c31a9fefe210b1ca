"""Issue 11, point 0: no root code path trusts hermes. Every attack here is one the hermes user
(which runs the agent's shell tools) can try; none may yield anything run as, or owned by, root's
victims."""
import time

from conftest import sh, svstat, wait_for

SLOT = "/run/service/gateway-coder"


def _uid_file_owner_and_content(c, path):
    return sh(c, f"stat -c %u {path} && cat {path}", user="root").split()


def _nothing_in_etc_belongs_to_hermes(c):
    assert sh(c, "find /etc /usr /opt/hermes -xdev -user hermes 2>/dev/null | head -5", user="root").strip() == ""


def test_a_rewritten_run_finish_or_log_run_runs_as_hermes_never_as_root(containers):
    c = containers.start("rewrite")
    sh(c, "hermes profile create coder >/dev/null")
    # hermes replaces all three scripts of its slot, then has them run.
    sh(c, f"""
for f in run finish log/run; do
  tag=$(echo $f | tr / -)
  printf '#!/bin/sh\\nid -u > /tmp/pwn-%s\\nexec sleep 1000\\n' "$tag" > {SLOT}/$f.new
  chmod +x {SLOT}/$f.new && mv {SLOT}/$f.new {SLOT}/$f
done
/command/s6-svc -u {SLOT}
/command/s6-svc -k {SLOT}/log
""")
    wait_for(lambda: sh(c, "ls /tmp", user="root").count("pwn-") >= 2, what="run and log/run ran")
    sh(c, f"/command/s6-svc -k {SLOT}")  # the finish script runs after the kill
    wait_for(lambda: "pwn-finish" in sh(c, "ls /tmp", user="root"), what="finish ran")
    for tag in ("run", "finish", "log-run"):
        owner, uid = _uid_file_owner_and_content(c, f"/tmp/pwn-{tag}")
        assert (owner, uid) == ("10000", "10000"), f"{tag} ran as uid {uid}"


def test_a_new_service_dir_and_a_rescan_run_as_hermes(containers):
    c = containers.start("newsvc")
    sh(c, """
mkdir /run/service/.evil && printf '#!/bin/sh\\nid -u > /tmp/pwn-new\\nexec sleep 1000\\n' > /run/service/.evil/run
chmod +x /run/service/.evil/run && mv /run/service/.evil /run/service/evil
/command/s6-svscanctl -a /run/service""")
    wait_for(lambda: "pwn-new" in sh(c, "ls /tmp", user="root"), what="the new service ran")
    assert _uid_file_owner_and_content(c, "/tmp/pwn-new") == ["10000", "10000"]
    # Root's own scan directory is out of hermes' reach: nothing can be added or rescanned there.
    result = c.exec_run(["sh", "-c", "mkdir /run/s6/services/evil || /command/s6-svscanctl -a /run/s6/services"],
                        user="hermes")
    assert result.exit_code != 0


def test_a_symlinked_log_dir_gives_hermes_nothing(containers):
    c = containers.start("logsym")
    sh(c, "hermes profile create coder >/dev/null")
    sh(c, f"""
rm -rf /opt/data/logs/gateways/coder
ln -s /etc/hermes-pwn /opt/data/logs/gateways/coder
/command/s6-svc -k {SLOT}/log""")
    time.sleep(1.5)  # the logger restarts about once a second
    assert c.exec_run(["test", "-e", "/etc/hermes-pwn"]).exit_code != 0
    _nothing_in_etc_belongs_to_hermes(c)


def test_container_environment_is_for_root_and_hermes_only(containers):
    c = containers.start("contenv", env={"HERMES_TEST_SECRET": "s3cret"})
    listing = sh(c, "stat -c '%U %G %a' /run/s6/container_environment /run/s6/container_environment/HERMES_TEST_SECRET",
                 user="root").splitlines()
    assert listing == ["root hermes 750", "root hermes 640"]
    assert sh(c, "cat /run/s6/container_environment/HERMES_TEST_SECRET") == "s3cret"
    other = c.exec_run(["cat", "/run/s6/container_environment/HERMES_TEST_SECRET"], user="nobody")
    assert other.exit_code != 0 and b"s3cret" not in other.output
    # ...nor can hermes change what root's services are started with.
    assert c.exec_run(["sh", "-c", "echo x > /run/s6/container_environment/LD_PRELOAD"], user="hermes").exit_code != 0


def test_supervision_tree_pid1_is_root_and_gateways_run_as_hermes(containers):
    c = containers.start("tree", env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})
    wait_for(lambda: svstat(c, "default")["up"], what="default gateway up")
    procs = sh(c, "ps -eo user:10,args", user="root")
    assert sh(c, "cat /proc/1/comm").strip() == "s6-svscan"
    assert c.exec_run(["test", "-d", "/run/s6/basedir"]).exit_code == 0
    scanner = [l for l in procs.splitlines() if "s6-svscan" in l and "/run/service" in l]
    assert scanner and scanner[0].split()[0] == "hermes"
    for line in procs.splitlines():
        if ("s6-supervise gateway-" in line and "gateway-scanner" not in line) or "gateway run" in line:
            assert line.split()[0] == "hermes", line
