"""The live view against real containers: `hermesctl events` (one held-open stream per
container plus Docker's events) and the rows `ps --watch` draws, with no exec per refresh."""
import json
import os
import subprocess
import sys
import threading

from conftest import ROOT, hermesctl, sh, svstat, wait_for


class EventsProcess:
    """`hermesctl events ARGS --json` in the background; its lines collected as they come."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "events", *args, "--json"], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.lines: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def wait(self, what: str, timeout: float = 30, **match) -> dict:
        def found():
            for e in self.lines:
                if all((e.get(k) if k != "attributes" else None) == v or e["attributes"].get(k) == v
                       for k, v in match.items()):
                    return e
            return None
        try:
            return wait_for(found, timeout=timeout, interval=0.05, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast events: {self.lines[-8:]}\nstderr: {self._stderr()}") from None

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read()[-2000:]

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


def _watching(container) -> bool:
    # [h]: the pattern must not match the shell that runs pgrep
    return bool(sh(container, "pgrep -f '[h]ermes-ctl-agent watch' || true").strip())


def test_events_reports_kills_restarts_stops_new_containers_and_reopens_broken_streams(containers):
    a = containers.start("eva")
    sh(a, "hermes profile create coder >/dev/null")
    assert hermesctl("gateway", "start", f"{a.name}:coder").code == 0
    glob = containers.name("ev") + "*"
    events = EventsProcess(glob)
    try:
        wait_for(lambda: _watching(a), what="the watcher in the container")
        target = f"{a.name}:coder"
        # a gateway killed: down (by SIGKILL, still wanted up), then s6 brings it back
        pid = svstat(a, "coder")["pid"]
        sh(a, f"kill -9 {pid}")
        down = events.wait("gateway down", type="gateway", action="down", target=target, signal="SIGKILL")
        assert down["attributes"]["wanted"] == "up" and down["endpoint"] == "default"
        assert down["attributes"]["death"] == "killed by signal 9 (SIGKILL)"  # not "stopped"
        up = events.wait("gateway up again", type="gateway", action="up", target=target)
        assert up["attributes"]["pid"] not in (None, pid)
        # an operator's restart: the operation, and the gateway's new process
        seen = len(events.lines)
        assert hermesctl("gateway", "restart", target).code == 0
        events.wait("the restart operation", type="gateway", action="operation", target=target, operation="restart")
        new_pid = svstat(a, "coder")["pid"]
        assert any(e["attributes"].get("pid") == new_pid for e in events.lines[seen:]), events.lines[seen:]
        # Issue 25: the planned death is the operation's (hermes exits 0 and says so), never a crash loop.
        during = [e for e in events.lines[seen:] if e["type"] == "gateway" and e["target"] == target]
        died = [e for e in during if e["action"] in ("down", "restart")]
        assert died and all(e["attributes"]["death"] == "stopped by hermesctl" for e in died), during
        assert all(e["attributes"].get("exit_code") in (None, 0) for e in died), during
        assert "crash-loop" not in [e["action"] for e in during], during
        # the stream breaks (its watcher dies): reopened, and the next change is still reported
        sh(a, "pkill -f '[h]ermes-ctl-agent watch'")
        events.wait("stream lost", type="stream", action="lost", container=a.name)
        events.wait("stream reopened", type="stream", action="reopen", container=a.name)
        sh(a, "/command/s6-svc -d /run/service/gateway-coder")
        events.wait("down after the reopen", type="gateway", action="want-down", target=target)
        # a container that appears is picked up; one that stops is reported
        b = containers.start("evb", wait=False)
        events.wait("new container", type="container", action="start", container=b.name)
        events.wait("its gateway", type="gateway", action="add", target=f"{b.name}:default", timeout=60)
        b.stop(timeout=3)
        events.wait("container died", type="container", action="die", container=b.name)
        events.wait("container stopped", type="container", action="stop", container=b.name)
        assert all(e["schema"] == "hermesctl.event/v1" for e in events.lines)
    finally:
        events.stop()


def test_ps_watch_rows_follow_changes_without_an_exec_per_refresh(containers, monkeypatch):
    from hermesctl.backends.docker import execs
    from hermesctl.engine.rows import live_rows
    from hermesctl.backends.docker.backend import build_fleet
    from hermesctl.backends.docker.streams import LiveFleet
    from hermesctl.model.targets import parse_targets

    a = containers.start("wa")
    sh(a, "hermes profile create coder >/dev/null")
    live = LiveFleet(build_fleet([], [], project=None, fleet_file=None), parse_targets([f"{a.name}"]))
    live.start()
    assert {r.profile: r.state for r in live_rows(live)} == {"coder": "down", "default": "down"}

    def no_exec(*args, **kwargs):
        raise AssertionError("an exec while watching")
    monkeypatch.setattr(execs, "_exec", no_exec)
    a.exec_run(["/command/s6-svc", "-u", "/run/service/gateway-coder"], user="hermes")
    row = wait_for(lambda: next((r for r in live_rows(live) if r.profile == "coder" and r.state == "up"), None),
                   what="coder up in the rows")
    assert row.pid and row.wanted == "up"
    a.exec_run(["/command/s6-svc", "-d", "/run/service/gateway-coder"], user="hermes")
    wait_for(lambda: any(r.profile == "coder" and r.wanted == "down" for r in live_rows(live)), what="coder down")
