"""Issue 29: the README's command lines, as a newcomer runs them, on the compose fleet of
`compose/` (two containers): each line is read from README.md itself and run as written. Names
are substituted only where the README says they stand for yours: the project `hermes-fleet`
(the test's own project, through COMPOSE_PROJECT_NAME as `compose/.env` sets it), `/srv/backups`,
`hermes-agent:0.20.0` (the test's image under a tag of its own) and the `…` of an archive's name.
The lines of "Using hermesctl", "Usage and spend" and the backups run in the compose directory,
as the README says they may (`cd compose`): there they act on that fleet only, whatever else the
daemon runs. One fleet, the lines in README order; long-running lines (`--watch`, `events`,
`logs -f`) run in the background while the next lines change the fleet, and are then stopped.
`hermesctl serve` is proven in test_serve.py (it binds the README's fixed port)."""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT, RUN_ID, hermesctl, wait_for, wait_ready

README = (ROOT / "README.md").read_text()
# Compose project names must be unique on a shared daemon; the prefix is the runner's to choose.
PROJECT = f"{os.environ.get('HERMES_TEST_PROJECT_PREFIX', 'hct')}rd{RUN_ID}"
LONG_RUNNING = ("--watch", "events", "-f")  # lines that run until Ctrl-C


def section(heading: str) -> str:
    start = README.index(f"\n## {heading}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def command_lines(heading: str) -> list[list[str]]:
    """The command lines of the section's first ```sh block, as argv (comments dropped)."""
    block = re.search(r"```sh\n(.*?)```", section(heading), re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    """Runs README lines: hermesctl in its own process (as a user types it), anything else as argv."""

    def __init__(self, tmp: Path, image: str, new_tag: str):
        self.root, self.compose_dir = tmp / "repo", tmp / "repo" / "compose"
        shutil.copytree(ROOT / "compose", self.compose_dir)
        (self.root / "scripts").mkdir()
        self.backups = tmp / "srv" / "backups"
        self.subst = {"hermes-fleet": PROJECT, "/srv/backups": str(self.backups), "hermes-agent:0.20.0": new_tag}
        # What differs from the test's own environment (hermesctl() adds it to that).
        self.extra = {"COMPOSE_PROJECT_NAME": PROJECT, "HERMES_IMAGE": image,
                      "HERMES_1_DASHBOARD_PORT": str(free_port()), "HERMES_2_DASHBOARD_PORT": str(free_port()),
                      # The compose file's own health interval (30 s): the upgrade's health gate
                      # runs the image's check itself at once (engine/health_gate.py), so Docker's
                      # check every 2 s (an exec into each container, all test long) proved nothing.
                      "XDG_STATE_HOME": str(tmp / "state")}
        self.env = {**os.environ, **self.extra, "PYTHONPATH": str(ROOT)}
        self.background: list[tuple[list[str], subprocess.Popen, Path, Path]] = []

    def argv(self, line: list[str]) -> list[str]:
        out = []
        for word in line:
            for name, value in self.subst.items():
                word = word.replace(name, value)
            if "…" in word:  # an archive's name as the README abbreviates it
                [word] = [str(p) for p in Path(word).parent.glob(Path(word).name.replace("…", "*"))
                          if not p.name.endswith(".sha256")]
            out.append(word)
        return out

    def run(self, line: list[str], cwd: Path):
        argv = self.argv(line)
        if argv[0] == "hermesctl":
            if any(word in LONG_RUNNING for word in argv):
                out, err = cwd.parent / f"bg{len(self.background)}.out", cwd.parent / f"bg{len(self.background)}.err"
                with open(out, "wb") as o, open(err, "wb") as e:  # off a terminal, as `> out.txt`
                    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", *argv[1:]], cwd=cwd, env=self.env,
                                            stdout=o, stderr=e)
                self.background.append((line, proc, out, err))
                return None
            return hermesctl(*argv[1:], cwd=cwd, env=self.extra)
        result = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (line, result.stdout[-2000:], result.stderr[-2000:])
        return None

    def stop_background(self) -> dict[str, tuple[str, str, int]]:
        found = {}
        for line, proc, out, err in self.background:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=30)
            found[" ".join(line)] = (out.read_text(), err.read_text(), code)
        self.background.clear()
        return found


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_every_readme_command_line_runs_as_written_on_the_compose_fleet(docker_client, hermes_image, tmp_path):
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        if IN_CI:
            pytest.fail("docker compose v2 is not available (scripts/ensure-compose.sh)")
        pytest.skip("docker compose v2 is not available")
    new_tag = f"{PROJECT}-agent:0.20.0"
    docker_client.images.get(hermes_image).tag(new_tag)
    fleet = Fleet(tmp_path, hermes_image, new_tag)
    nine = None
    try:
        # "A fleet with Compose", from the repository's root: the image is the session's.
        compose_lines = command_lines("A fleet with Compose")
        assert compose_lines[0] == ["bash", "scripts/build-image.sh"]
        for line in compose_lines[1:]:
            res = fleet.run(line, fleet.root)
            if res is not None:
                assert res.code == 0, (line, res)
            if line[:2] == ["docker", "compose"]:
                made = docker_client.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
                assert len(made) == 2
                for c in made:
                    wait_ready(c)
        ps = hermesctl("--project", PROJECT, "ps", "--json", env=fleet.extra)
        assert {(r["service"], r["profile"], r["state"]) for r in ps.json()["gateways"]} >= {("hermes-2", "coder", "up")}

        # "Using hermesctl", in the compose directory.
        results = {}
        for line in command_lines("Using hermesctl"):
            res = fleet.run(line, fleet.compose_dir)
            if res is not None:
                results[" ".join(line)] = res
                # probe: this fleet configures no platform and no API server, so no gateway
                # serves, and probe says so with the exit code its row documents (3)
                assert res.code == (3 if line[1] == "probe" else 0), (line, res)
            if "--watch" in line:  # the watcher is up before the fleet changes under it
                wait_for(lambda: "CONTAINER" in _text(fleet.background[-1][2]), timeout=60, what="ps --watch's table")
        watch_file = next(out for line, _, out, _ in fleet.background if "--watch" in line)
        # the issue's `timeout 6 hermesctl ps --watch > out.txt`: the table, then changes as lines
        wait_for(lambda: re.search(rf"{PROJECT}-hermes-1-1( \([a-z: ]+\))?\s+hermes-1\s+coder\s+up", _text(watch_file)),
                 timeout=60, what="ps --watch's line for hermes-1:coder up")
        wait_for(lambda: all(_text(out) for line, _, out, _ in fleet.background), timeout=60,
                 what="output from every long-running line")
        background = fleet.stop_background()
        for line, (out, err, code) in background.items():
            assert code == 130, (line, out[-1000:], err[-1000:])  # Ctrl-C
        events = [json.loads(l) for l in background["hermesctl events --json"][0].splitlines()]
        assert any(e["profile"] == "coder" and e["container"] == f"{PROJECT}-hermes-1-1" for e in events)
        assert f"{PROJECT}-hermes-2-1:coder" in background["hermesctl logs hermes-*:coder -f -n 50"][0]
        restarted = results["hermesctl gateway restart --rolling --running-only hermes-*"].stdout
        assert "skipped: not running" in restarted and "restarted" in restarted  # default stays stopped
        boot = results["hermesctl boot-log hermes-1"].stdout
        assert "none" in boot and "None" not in boot

        # "Usage and spend": the budget line reads a fleet file of the user's, here a minimal one.
        (fleet.compose_dir / "fleet.yaml").write_text(
            "version: 1\ncontainers:\n  hermes-1:\n    budget: {daily_usd: 20}\n"
            "    profiles:\n      coder: {budget: {daily_usd: 5}}\n")
        for line in command_lines("Usage and spend: `hermesctl usage`"):
            res = fleet.run(line, fleet.compose_dir)
            assert res.code == 0, (line, res)

        # Backups, restores and upgrades.
        for line in command_lines("Backups, restores and upgrades"):
            if line[1] == "restore":  # a stopped container of the project to restore into: a new service
                nine = docker_client.containers.create(
                    hermes_image, ["sleep", "infinity"], name=f"{PROJECT}-hermes-9-1", network_disabled=True,
                    labels={"io.hermes-agent.managed": "true", "com.docker.compose.project": PROJECT,
                            "com.docker.compose.service": "hermes-9",
                            "com.docker.compose.project.working_dir": str(fleet.compose_dir)})
            res = fleet.run(line, fleet.compose_dir)
            assert res.code == 0, (line, res)
            if line[1] == "backup":  # the glob of the README selected both services' containers
                archives = sorted(p.name for p in fleet.backups.glob("*.tar.gz"))
                assert len(archives) == 2 and archives[0].startswith(f"{PROJECT}-hermes-1-1-") \
                    and archives[1].startswith(f"{PROJECT}-hermes-2-1-"), archives
        upgraded = docker_client.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
        assert sorted(c.attrs["Config"]["Image"] for c in upgraded) == [new_tag, new_tag]
    finally:
        if fleet.background:
            fleet.stop_background()
        subprocess.run(["docker", "compose", "-f", str(fleet.compose_dir / "compose.yaml"), "down", "-v",
                        "--timeout", "5"], cwd=fleet.root, env=fleet.env, capture_output=True)
        if nine is not None:
            try:
                nine.remove(force=True, v=True)
            except Exception:  # noqa: BLE001 - compose down may have taken it already
                pass
        try:
            docker_client.images.remove(new_tag)  # the tag only: the image keeps its other names
        except Exception:  # noqa: BLE001
            pass
