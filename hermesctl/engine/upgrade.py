"""Upgrades, one instance at a time, with a way back, on any backend (hermesctl.backends.base).

For each instance, in name order:
  1. stop it (a volume must never have two Hermes containers on it), then back up its /opt/data
     (stopped: a plain, consistent copy);
  2. replace it on the new image (plain Docker: the old container kept aside as NAME-pre-upgrade
     and a new one created with the same settings; swarm: the service updated at 1 replica);
  3. wait until it serves: when the image has a healthcheck, until Docker says `healthy` (the
     start period is not a pass; `unhealthy`, an exit or restarts fail at once); without one,
     until it is booted and every gateway whose desired_state was `running` is up and stays up
     for --settle seconds;
  4. then drop the old container and go on.
On failure what was started is dropped, the files under /opt/data (logs aside) that differ from
the backup are put back, the old instance runs again, and the upgrade stops. Every step is
recorded first (hermesctl.engine.journal): an interrupted upgrade is finished or undone by
`recover`.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hermesctl.backends.base import Instance, Started
from hermesctl.backends.docker import backup
from hermesctl.backends.docker import volume_restore as restore
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.core.errors import HermesctlError, UsageError, describe
from hermesctl.engine import journal
from hermesctl.model.results import ItemResult

POLL_S = 0.5


@dataclass
class Plan:
    instance: Instance
    action: str  # "upgrade", "already on the image", "skipped: not running"


@dataclass
class Outcome:
    container: str
    endpoint: str
    image: str
    result: str            # upgraded, rolled back, unchanged, already, skipped, ROLLBACK FAILED, interrupted
    detail: str = ""
    backup: str | None = None
    changed_files_restored: list[str] = field(default_factory=list)

    def as_result(self) -> ItemResult:
        ok = self.result in ("upgraded", "already", "skipped")
        code = {"upgraded": "ok", "already": "ok", "skipped": "ok", "rolled back": "rolled-back",
                "unchanged": "not-attempted", "interrupted": "interrupted"}.get(self.result, "rollback-failed")
        return ItemResult(f"{self.endpoint}/{self.container}", ok, code, self.detail)


def plan(fleet: Fleet, targets, image: str) -> list[Plan]:
    """Every check before the first instance stops."""
    return [Plan(i, i.plan(image)) for i in fleet.instances(targets)]


def _healthcheck(inspect: dict) -> bool:
    test = ((inspect.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def wait_until_serving(fleet: Fleet, started: Started, wanted: list[str], *, timeout: float,
                       settle: float) -> str | None:
    """None once the container serves; otherwise why not. With a healthcheck the orchestrator's
    verdict decides (`healthy`; the start period is no pass); without, our own gate does."""
    probe_target = HermesContainer(endpoint=started.endpoint.name, id=started.ref, name=started.name,
                                   state="running", status="")
    deadline = time.monotonic() + timeout
    steady_since, steady_pids, last = None, None, "not booted yet"
    while True:
        inspect = started.inspect()
        state = inspect["State"]
        if state["Status"] in ("exited", "dead"):
            return f"exited with code {state.get('ExitCode')}"
        if state["Status"] == "restarting" or inspect.get("RestartCount", 0) > 0:
            return f"keeps restarting (restarted {inspect.get('RestartCount', 0)} times)"
        health = (state.get("Health") or {}).get("Status")
        if health == "unhealthy":
            log = (state["Health"].get("Log") or [{}])[-1].get("Output", "").strip()
            return f"unhealthy: {log.splitlines()[-1] if log else 'healthcheck failed'}"
        if _healthcheck(inspect):
            if health == "healthy":
                return None
            last = f"health: {health or 'starting'}"
        elif state["Running"]:
            try:
                snap = fleet.probe(probe_target)
            except HermesctlError as exc:
                snap, last = None, describe(exc)
            if snap is not None and snap.booted:
                down = [p for p in wanted if not (p in snap.slots and snap.slots[p].status
                                                  and snap.slots[p].status.up)]
                if down:
                    steady_since, last = None, f"gateways not up: {', '.join(down)}"
                else:
                    pids = {p: snap.slots[p].status.pid for p in wanted}
                    if steady_since is not None and pids == steady_pids:
                        if time.monotonic() - steady_since >= settle:
                            return None
                    else:
                        steady_since, steady_pids = time.monotonic(), pids
                    last = "settling"
            elif snap is not None:
                last = "booting"
        if time.monotonic() > deadline:
            return f"not serving after {timeout:g}s ({last})"
        time.sleep(POLL_S)


def put_back(data, made: backup.BackupResult) -> list[str]:
    """Make a stopped instance's /opt/data exactly what the backup holds again (logs aside;
    hermesctl.backends.docker.volume_restore.roll_back_data). The paths it changed or removed."""
    diff = restore.roll_back_data(data.endpoint, data.ref, data.image, made.path)
    return diff.changed + diff.added


class Upgrade:
    """One upgrade run: `say` reports progress, `scope` is recorded with each operation."""

    def __init__(self, fleet: Fleet, image: str, backup_dir: Path, *, timeout: float, settle: float,
                 say: Callable[[str], None], scope: dict | None = None):
        self.fleet, self.image, self.backup_dir = fleet, image, backup_dir
        self.timeout, self.settle, self.say, self.scope = timeout, settle, say, scope or {}

    def run(self, plans: list[Plan]) -> list[Outcome]:
        todo = [p for p in plans if p.action == "upgrade"]
        outcomes: list[Outcome] = []
        failed = False
        for p in plans:
            inst = p.instance
            if p.action != "upgrade":
                outcomes.append(Outcome(inst.name, inst.where, inst.image,
                                        "already" if p.action.startswith("already") else "skipped", p.action))
            elif failed:
                outcomes.append(Outcome(inst.name, inst.where, inst.image, "unchanged",
                                        "not attempted after the failure"))
            else:
                outcome = self.one(inst, f"[{todo.index(p) + 1}/{len(todo)}]")
                outcomes.append(outcome)
                failed = outcome.result != "upgraded"
        return outcomes

    def one(self, inst: Instance, position: str) -> Outcome:
        name, old_image = inst.name, inst.image
        record = journal.begin("upgrade", self.scope, inst.record(), image=self.image)
        self.say(f"{position} {name}: stopping on {inst.where} (on {old_image})")
        try:
            record.update("stopping")
            inst.stop()
            self.say(f"{position} {name}: backing up /opt/data")
            with inst.data() as data:
                facts = {"name": name, "image": old_image, "running": False} if inst.kind == "service" else None
                made = backup.create_backup(data.endpoint, data.ref, self.backup_dir, describe_as=facts,
                                            label="pre-upgrade-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                                            timeout=self.fleet.exec_timeout)
        except Exception as exc:  # noqa: BLE001 - no backup, no upgrade
            self.say(f"{position} {name}: no backup ({describe(exc)}); starting it again, unchanged")
            inst.start()
            record.done()
            return Outcome(name, inst.where, old_image, "unchanged", f"backup failed: {describe(exc)}")
        wanted = [p["name"] for p in made.manifest["profiles"] if p["desired_state"] == "running"]
        record.update("backed-up", backup=str(made.path), wanted=wanted)
        self.say(f"{position} {name}: backup {made.path}")
        try:
            self.say(f"{position} {name}: replacing on {self.image}")
            record.update("replacing")
            started = inst.replace(self.image)
            record.update("waiting", instance=inst.record())
            self.say(f"{position} {name}: waiting until it serves"
                     f"{' (gateways ' + ', '.join(wanted) + ')' if wanted else ''}")
            failure = wait_until_serving(self.fleet, started, wanted, timeout=self.timeout, settle=self.settle)
        except Exception as exc:  # noqa: BLE001 - every failure rolls back
            failure = describe(exc)
        if failure is None:
            record.update("committing")
            inst.commit()
            record.done()
            self.say(f"{position} {name}: upgraded, serving on {self.image}")
            return Outcome(name, inst.where, self.image, "upgraded", backup=str(made.path))
        self.say(f"{position} {name}: FAILED on {self.image}: {failure}; rolling back")
        return self.roll_back(inst, made, wanted, failure, position, record)

    def roll_back(self, inst: Instance, made: backup.BackupResult, wanted: list[str], failure: str,
                  position: str, record: journal.Record) -> Outcome:
        restored: list[str] = []
        try:
            record.update("rolling-back")
            inst.undo()
            with inst.data() as data:
                restored = put_back(data, made)
            if restored:
                self.say(f"{position} {inst.name}: put back {len(restored)} files under /opt/data")
            started = inst.start()
            again = None if started is None else wait_until_serving(
                self.fleet, started, wanted, timeout=self.timeout, settle=self.settle)
        except Exception as exc:  # noqa: BLE001 - reported, never hidden
            again = describe(exc)
        if again is not None:
            record.update("rollback-failed", error=again)
            return Outcome(inst.name, inst.where, inst.image, "ROLLBACK FAILED", f"{failure}; then: {again}",
                           str(made.path), restored)
        record.done()
        self.say(f"{position} {inst.name}: rolled back, serving on {inst.image}")
        return Outcome(inst.name, inst.where, inst.image, "rolled back", failure, str(made.path), restored)


def recover(fleet: Fleet, say: Callable[[str], None], *, timeout: float, settle: float) -> list[Outcome]:
    """Finish or undo every interrupted upgrade this fleet can reach: one whose new image was
    already serving (step `committing`) is finished; any other is undone (what was started is
    dropped, the backup's files put back, the old instance started with its replicas)."""
    outcomes = []
    for record in journal.interrupted():
        if record.body.get("operation") != "upgrade":
            continue
        saved = record.body.get("instance") or {}
        if saved.get("kind") != ("service" if fleet.kind == "swarm" else "container"):
            continue
        try:
            inst = fleet.instance_from_record(saved)
        except Exception as exc:  # noqa: BLE001 - another scope's record, or gone: say so
            say(f"{record.what}: cannot reach it from here ({describe(exc)}); record kept: {record.path}")
            continue
        step = record.step
        say(f"{record.what}: interrupted at step {step}")
        if step == "committing":
            inst.commit()
            record.done()
            outcomes.append(Outcome(inst.name, inst.where, str(record.body.get("image")), "upgraded", "finished"))
            continue
        made = None
        if record.body.get("backup"):
            made = backup.BackupResult(Path(record.body["backup"]),
                                       backup.read_manifest(Path(record.body["backup"])), "")
        upgrade = Upgrade(fleet, str(record.body.get("image")), Path("."), timeout=timeout, settle=settle, say=say)
        if made is None:  # stopped (or stopping) before the backup: nothing changed yet
            try:
                inst.undo()
                started = None
                if saved.get("running", True) or saved.get("replicas"):
                    # The killed run may have left Docker carrying out its stop: a start now would
                    # be a no-op that stop then undoes. Our own stop waits for it to end.
                    inst.stop()
                    started = inst.start()
                again = None if started is None else wait_until_serving(fleet, started, [], timeout=timeout,
                                                                        settle=settle)
                if again is None and started is not None and not _still_running(started):
                    again = "it stopped again right after it served"
            except Exception as exc:  # noqa: BLE001 - reported
                again = describe(exc)
            if again is None:
                record.done()
            outcomes.append(Outcome(inst.name, inst.where, inst.image,
                                    "rolled back" if again is None else "ROLLBACK FAILED",
                                    f"interrupted at {step}" + (f"; then: {again}" if again else "")))
            continue
        wanted = list(record.body.get("wanted") or [])
        outcomes.append(upgrade.roll_back(inst, made, wanted, f"interrupted at {step}", "[recover]", record))
    journal.sweep_orphans()
    return outcomes


def _still_running(started: Started) -> bool:
    """Checked once more before a record is forgotten."""
    return bool(started.inspect()["State"]["Running"])


def require_writable(directory: Path) -> None:
    """The backup directory, checked before anything is stopped."""
    import os
    try:
        backup.private_dir(directory)
    except OSError as exc:
        raise UsageError(f"cannot create the backup directory {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"the backup directory {directory} is not writable")


def default_backup_dir() -> Path:
    import os
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "hermesctl" / "backups"
