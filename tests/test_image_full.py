"""Issue 23: the image's full flavour carries what upstream's image carries (hermes-agent's extras,
the provider SDKs, the programs the agent's tools run), HERMES_REAL_HOME is prepared as upstream's
stage 2 prepares it, and `-e HOME=/root` leaves the CMD's HOME at /opt/data.

The tests of what the full flavour carries are skipped on a slim image (`HERMES_FLAVOUR=slim`),
which carries none of it; everything else runs on both."""
import json
import os
import subprocess

import pytest

from conftest import ROOT, sh, wait_for
from test_image_init import run_once

FLAVOUR_LABEL = "io.hermes-agent.flavour"

# hermes-agent's own table of optional dependencies (tools/lazy_deps.py): what each feature needs,
# with the pins hermes checks. The full flavour has every one of these; the slim one has none of
# the platforms or SDKs (a gateway there logs "Platform 'Telegram' requirements not met").
FULL_FEATURES = ("platform.telegram", "platform.discord", "platform.slack", "platform.matrix",
                 "platform.wecom_callback", "provider.anthropic", "provider.bedrock",
                 "provider.azure_identity", "memory.hindsight", "skill.google_workspace",
                 "skill.youtube", "tool.acp", "tool.computer_use", "tool.dashboard", "tool.vision")
LAZY_DEPS_PROBE = """
import json, tools.lazy_deps as deps
print(json.dumps({f: deps.feature_missing(f) for f in %r}))
""" % (FULL_FEATURES,)
IMPORTS = ("telegram", "discord", "nacl", "slack_bolt", "slack_sdk", "mcp", "anthropic", "boto3",
           "azure.identity", "googleapiclient", "hindsight_client", "mautrix", "olm", "aiohttp",
           "fastapi", "croniter", "youtube_transcript_api", "acp", "simple_term_menu", "brotlicffi")


def test_build_script_refuses_an_unknown_flavour_before_any_docker_call(tmp_path):
    # A `docker` first on PATH that would leave a mark: the script must stop before using it.
    (tmp_path / "docker").write_text(f"#!/bin/sh\ntouch {tmp_path}/called\n")
    (tmp_path / "docker").chmod(0o755)
    env = {**os.environ, "HERMES_FLAVOUR": "fat", "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "scripts/build-image.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2 and "HERMES_FLAVOUR must be full or slim, not 'fat'" in result.stderr
    assert not (tmp_path / "called").exists()


def flavour(docker_client, image) -> str:
    return docker_client.images.get(image).labels.get(FLAVOUR_LABEL, "")


@pytest.fixture
def full_image(docker_client, hermes_image):
    if flavour(docker_client, hermes_image) != "full":
        pytest.skip("the slim flavour carries no extras, SDKs or tool programs")
    return hermes_image


def test_extras_and_sdks_import_in_the_venv_as_hermes(docker_client, full_image):
    script = "import importlib; [importlib.import_module(m) for m in %r]; print('imported')" % (IMPORTS,)
    code, out, err = run_once(docker_client, full_image, ["python", "-c", script], network_disabled=True)
    assert code == 0 and out.strip().endswith("imported"), err[-3000:]
    # hermes' own verdict, with its pins: nothing it would lazily install for these features.
    code, out, err = run_once(docker_client, full_image, ["python", "-c", LAZY_DEPS_PROBE], network_disabled=True)
    assert code == 0, err[-3000:]
    missing = json.loads(out.strip().splitlines()[-1])
    assert missing == {f: [] for f in FULL_FEATURES}, missing


def test_tool_programs_run_as_hermes(docker_client, full_image):
    # The CMD runs as hermes (main-wrapper drops to it): each program the agent's tools call.
    script = ("id -un; git --version; rg --version | head -n 1; ffmpeg -version | head -n 1; "
              "ssh -V 2>&1; node --version; npx --version; npm --version; curl --version | head -n 1; "
              'chromium --version; agent-browser --version; echo "browser=$AGENT_BROWSER_EXECUTABLE_PATH"')
    code, out, err = run_once(docker_client, full_image, ["sh", "-ec", script], network_disabled=True)
    assert code == 0, out + err[-2000:]
    lines = out.strip().splitlines()
    expected = ["hermes", "git version ", "ripgrep ", "ffmpeg version ", "OpenSSH_", "v", "", "",
                "curl ", "Chromium ", "agent-browser ", "browser=/usr/bin/chromium"]
    assert len(lines) == len(expected), out
    for line, prefix in zip(lines, expected):
        assert line.startswith(prefix) and line.strip(), (prefix, out)
    assert all(part.isdigit() for part in lines[6].split(".")), out   # npx --version: 9.2.0


def test_the_browser_tool_drives_chromium_as_hermes(containers, full_image):
    c = containers.start("browser", image=full_image)
    # hermes' own check (agent-browser found, a Chromium on disk)...
    assert sh(c, "python -c 'from tools.browser_tool import check_browser_requirements as c; print(c())'"
                 " 2>/dev/null | tail -n 1").strip() == "True"
    # ...and the program it runs, on a page that needs no network (the container has none).
    out = sh(c, "cd /tmp && timeout 90 agent-browser open 'data:text/html,<title>t</title><h1>hermes-page</h1>'"
                " && timeout 60 agent-browser snapshot; rc=$?; timeout 30 agent-browser close >/dev/null; exit $rc")
    assert 'heading "hermes-page"' in out, out


def test_install_trees_are_root_owned_and_read_only_to_hermes(containers, full_image):
    c = containers.start("trees", image=full_image)
    trees = "/opt/hermes /usr/local/lib/node_modules /usr/local/bin"
    found = sh(c, f"find {trees} \\( ! -user root -o -perm -o+w \\) ! -type l -print | head -n 5", user="root")
    assert found == "", found
    # hermes can neither add a module to the venv nor replace agent-browser.
    assert "Permission denied" in sh(c, "touch /opt/hermes/.venv/lib/python3.11/site-packages/x.py "
                                        "/usr/local/lib/node_modules/agent-browser/x 2>&1", check=False)


# HERMES_REAL_HOME (both flavours).
def test_hermes_real_home_is_created_for_hermes_and_writable_by_it(containers):
    c = containers.start("realhome", env={"HERMES_REAL_HOME": "/home/agent"})
    assert sh(c, "stat -c '%U:%G %a' /home /home/agent").split("\n")[:2] == ["root:root 755", "hermes:hermes 755"]
    # upstream's test: a privilege-dropped hermes process must be able to write under it.
    out = sh(c, 'export HOME="${HERMES_REAL_HOME:-/opt/data}"; mkdir -p "$HOME/.config" && '
                'touch "$HOME/.config/marker" && stat -c %U "$HOME/.config/marker"')
    assert out.strip() == "hermes"


def test_hermes_real_home_follows_a_remap(containers):
    c = containers.start("realremap", env={"HERMES_REAL_HOME": "/srv/agent/home", "HERMES_UID": "12345",
                                           "HERMES_GID": "12346"})
    assert sh(c, "stat -c '%u:%g' /srv/agent /srv/agent/home").split() == ["0:0", "12345:12346"]
    sh(c, "touch /srv/agent/home/written-after-remap")


def test_hermes_real_home_never_follows_a_symlink_hermes_planted(containers):
    volume = containers.volume("realhome-link")
    c = containers.start("reallink1", volume=volume)
    sh(c, "ln -s /etc /opt/data/escape")
    c.remove(force=True)
    c = containers.start("reallink2", volume=volume, env={"HERMES_REAL_HOME": "/opt/data/escape/agent"})
    assert sh(c, "test ! -e /etc/agent && echo absent", user="root").strip() == "absent"
    assert "HERMES_REAL_HOME" in sh(c, "cat /opt/data/logs/container-boot.log")


def test_system_directories_are_never_given_to_hermes(containers):
    c = containers.start("realsys", env={"HERMES_REAL_HOME": "/usr/local"})
    assert sh(c, "stat -c %U /usr/local").strip() == "root"
    assert "HERMES_REAL_HOME=/usr/local is a system directory" in sh(c, "cat /opt/data/logs/container-boot.log")
    # Nothing is created inside a system tree either.
    c = containers.start("realsysnew", env={"HERMES_REAL_HOME": "/usr/local/agent-home"})
    assert sh(c, "test ! -e /usr/local/agent-home && echo absent").strip() == "absent"
    assert "HERMES_REAL_HOME=/usr/local/agent-home" in sh(c, "cat /opt/data/logs/container-boot.log")
    # /tmp: hermes already writes there; it stays root's, sticky and world-writable.
    c = containers.start("realtmp", env={"HERMES_REAL_HOME": "/tmp"})
    assert sh(c, "stat -c '%U %a' /tmp").strip() == "root 1777"


# HOME (both flavours): with-contenv and /init see the container's HOME (/root here), the CMD not.
@pytest.mark.parametrize("how", ["plain", "init", "tty", "user-hermes", "real-home"])
def test_cmd_runs_with_home_opt_data_whatever_home_docker_passes(docker_client, hermes_image, how):
    env = {"HOME": "/root"}
    kwargs = {"init": {"init": True}, "tty": {"tty": True}, "user-hermes": {"user": "hermes"}}.get(how, {})
    if how == "real-home":
        env["HERMES_REAL_HOME"] = "/home/agent"
    code, out, err = run_once(docker_client, hermes_image,
                              ["sh", "-c", 'echo "$(id -un) $HOME ${HERMES_REAL_HOME:-none}"'],
                              environment=env, network_disabled=True, **kwargs)
    assert code == 0, err[-2000:]
    real = "/home/agent" if how == "real-home" else "none"
    assert out.strip().splitlines()[-1] == f"hermes /opt/data {real}", out


def test_gateway_and_dashboard_get_their_home_whatever_home_docker_passes(containers):
    c = containers.start("homegw", env={"HOME": "/root", "HERMES_GATEWAY_BOOTSTRAP_STATE": "running",
                                        "HERMES_DASHBOARD": "1", "HERMES_REAL_HOME": "/home/agent"})
    for slot, home in (("gateway-default", "/opt/data"), ("dashboard", "/home/agent")):
        wait_for(lambda: sh(c, f"/command/s6-svstat -o up /run/service/{slot}").strip() == "true", what=slot)
        pid = sh(c, f"/command/s6-svstat -o pid /run/service/{slot}").strip()
        # The run script execs hermes in the end; its environ is the one to read.
        wait_for(lambda: "bin/hermes" in sh(c, f"tr '\\0' ' ' < /proc/{pid}/cmdline", check=False),
                 what=f"{slot} running hermes")
        assert f"HOME={home}" in sh(c, f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines(), slot
