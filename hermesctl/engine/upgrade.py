"""Upgrades with a way back, on any backend (hermesctl.backends.base), instance by instance.

For each instance:
  1. stop it (a volume must never have two Hermes containers on it), then back up its /opt/data
     (stopped: a plain, consistent copy);
  2. replace it on the new image (plain Docker: the old container kept aside as NAME-pre-upgrade
     and a new one created with the same settings; swarm: the service updated at 1 replica);
  3. wait until it serves (hermesctl.engine.health_gate: the healthcheck run at once with Docker
     not contradicting it, and the agent's boot gate; `unhealthy`, an exit or restarts fail at
     once; the start period is no pass);
  4. a canary keeps serving through --soak; then the old container is dropped.
On failure what was started is dropped, the files under /opt/data (logs aside) that differ from
the backup are put back and the old instance runs again. A run (Rollout) goes canary first, then
batches side by side, name order, and starts no new batch once its failure budget is spent.
Every step is recorded first (hermesctl.engine.journal): an interrupted upgrade is finished or
undone by `recover`.
"""
import math
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

from hermesctl.backends.base import Instance, Started
from hermesctl.backends.docker import backup
from hermesctl.backends.docker import volume_restore as restore
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core.errors import UsageError, describe
from hermesctl.engine import health_gate, journal
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
    result: str            # upgraded, rolled back, unchanged (backup failed), not touched, already, skipped,
                           # ROLLBACK FAILED, interrupted
    detail: str = ""
    backup: str | None = None
    changed_files_restored: list[str] = field(default_factory=list)
    gate: str = ""         # which health gate let it through (hermesctl.engine.health_gate)
    timings: dict = field(default_factory=dict)  # seconds: stop, backup, start, gate

    def as_result(self) -> ItemResult:
        ok = self.result in ("upgraded", "already", "skipped")
        code = {"upgraded": "ok", "already": "ok", "skipped": "ok", "rolled back": "rolled-back",
                "unchanged": "not-attempted", "not touched": "not-attempted", "interrupted": "interrupted"}.get(self.result, "rollback-failed")
        return ItemResult(f"{self.endpoint}/{self.container}", ok, code, self.detail)


def plan(fleet: Fleet, targets, image: str) -> list[Plan]:
    """Every check before the first instance stops."""
    return [Plan(i, i.plan(image)) for i in fleet.instances(targets)]


def wait_until_serving(fleet: Fleet, started: Started, wanted: list[str], *, timeout: float,
                       settle: float, should_stop=lambda: False) -> health_gate.Verdict:
    """The one health gate (hermesctl.engine.health_gate): a Verdict, true once it serves."""
    return health_gate.wait(fleet, started, wanted, timeout=timeout, settle=settle,
                            engine_runs_healthchecks=fleet.engine_runs_healthchecks(started.endpoint),
                            should_stop=should_stop, clock=time.monotonic, sleep=lambda s: time.sleep(POLL_S))


def put_back(data, made: backup.BackupResult) -> list[str]:
    """Make a stopped instance's /opt/data exactly what the backup holds again (logs aside;
    hermesctl.backends.docker.volume_restore.roll_back_data). The paths it changed or removed."""
    diff = restore.roll_back_data(data.endpoint, data.ref, data.image, made.path)
    return diff.changed + diff.added


@dataclass(frozen=True)
class Rollout:
    """How a run goes through its instances (as Swarm's update_config, Kubernetes'
    maxUnavailable): `canary` first, side by side, each serving through `soak` seconds before it
    is committed, and any canary failure stops the run before the first batch; then batches of
    `parallel` side by side; no new batch once more than `max_failures` have failed. The defaults
    are one at a time, stopping at the first failure."""
    canary: int = 0
    parallel: int = 1
    max_failures: int = 0
    soak: float = 0.0


def parse_share(text: str, total: int, option: str, *, minimum: int, round_up: bool = False) -> int:
    """N or P% of `total` (P% rounds down, or up with `round_up`, never below `minimum`); a
    UsageError otherwise."""
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            share = Fraction(raw[:-1])  # exact: 2.2% of 500 is 11, not 11.000000000000002
            if not 0 <= share <= 100:
                raise ValueError
            part = total * share / 100
            return max(minimum, math.ceil(part) if round_up else math.floor(part))
        value = int(raw)
    except ValueError:
        raise UsageError(f"{option} {raw[:40]!r}: expected a whole number or a percentage (e.g. 10 or 20%)") from None
    if value < minimum:
        raise UsageError(f"{option} {value}: must be at least {minimum}")
    return value


def rollout_from_options(total: int, *, canary: str | int = 0, parallel: str | int = 1,
                         max_failures: str | int = 0, soak: float = 0.0) -> Rollout:
    """The options as given on the command line, checked against the number of instances to
    upgrade (`total`) before anything stops."""
    if soak != soak or soak < 0:
        raise UsageError(f"--soak {soak}: must be 0 or more seconds")
    # A canary share rounds up (5% of 10 is still one canary: asked for, never dropped); the
    # batch size and the failure budget round down (the cautious side of each).
    made = Rollout(canary=parse_share(str(canary), total, "--canary", minimum=0, round_up=True),
                   parallel=parse_share(str(parallel), total, "--parallel", minimum=1),
                   max_failures=parse_share(str(max_failures), total, "--max-failures", minimum=0),
                   soak=float(soak))
    if soak and not made.canary:
        raise UsageError("--soak is how long the canary must keep serving: give --canary N too")
    return made


def batches(todo: list, rollout: Rollout) -> list[list]:
    """The canaries (one batch, when any), then the rest in batches of `parallel`."""
    first = todo[:rollout.canary]
    rest = todo[rollout.canary:]
    return ([first] if first else []) + [rest[i:i + rollout.parallel] for i in range(0, len(rest), rollout.parallel)]


class Upgrade:
    """One upgrade run: `say` reports progress, `scope` is recorded with each operation."""

    def __init__(self, fleet: Fleet, image: str, backup_dir: Path, *, timeout: float, settle: float,
                 say: Callable[[str], None], scope: dict | None = None, rollout: Rollout | None = None):
        self.fleet, self.image, self.backup_dir = fleet, image, backup_dir
        self.timeout, self.settle, self.say, self.scope = timeout, settle, say, scope or {}
        self.rollout = rollout or Rollout()
        self.stopping = threading.Event()   # Ctrl-C: every instance in flight stops at its next step
        import uuid
        self.run_id = uuid.uuid4().hex[:12]

    def run(self, plans: list[Plan]) -> list[Outcome]:
        todo = [p for p in plans if p.action == "upgrade"]
        done: dict[str, Outcome] = {}
        for p in plans:
            if p.action != "upgrade":
                inst = p.instance
                done[inst.name + "@" + inst.where] = Outcome(
                    inst.name, inst.where, inst.image, "already" if p.action.startswith("already") else "skipped",
                    p.action)
        groups = batches(todo, self.rollout)
        failures, stop_why = 0, None
        for number, group in enumerate(groups, 1):
            canary = number == 1 and self.rollout.canary > 0
            if stop_why is None:
                label = "canary" if canary else f"batch {number - (1 if self.rollout.canary else 0)}"
                if len(groups) > 1:
                    self.say(f"{label}: {', '.join(p.instance.name for p in group)}")
                for p, outcome in zip(group, self._batch(group, todo, number, label, canary)):
                    done[p.instance.name + "@" + p.instance.where] = outcome
                    failures += outcome.result != "upgraded"
                results = [done[p.instance.name + "@" + p.instance.where].result for p in group]
                if "ROLLBACK FAILED" in results:
                    stop_why = "not touched: a rollback failed"
                elif canary and any(r != "upgraded" for r in results):
                    stop_why = "not touched: the canary failed"
                elif failures > self.rollout.max_failures:
                    stop_why = (f"not touched: the failure budget is spent ({failures} failed, "
                                f"{self.rollout.max_failures} allowed)")
                if stop_why and number < len(groups):
                    self.say(stop_why[len("not touched: "):] + "; no further batch starts")
                continue
            for p in group:
                inst = p.instance
                done[inst.name + "@" + inst.where] = Outcome(inst.name, inst.where, inst.image, "not touched",
                                                             stop_why[len("not touched: "):])
        return [done[p.instance.name + "@" + p.instance.where] for p in plans]

    def _batch(self, group: list[Plan], todo: list[Plan], number: int, label: str, canary: bool) -> list[Outcome]:
        def one(p: Plan) -> Outcome:
            return self.one(p.instance, f"[{todo.index(p) + 1}/{len(todo)}]",
                            batch={"run": self.run_id, "batch": number, "label": label, "canary": canary})
        if len(group) == 1:
            return [one(group[0])]
        with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="upgrade") as pool:
            futures = [pool.submit(one, p) for p in group]
            try:
                # The first failure to raise (Ctrl-C in one instance) is seen at once, not after
                # the instances before it in the batch are done.
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for f in finished:
                    if f.exception() is not None:
                        raise f.exception()
                return [f.result() for f in futures]
            except BaseException:
                # Ctrl-C (here, or raised in one instance): the others stop at their next step,
                # each leaving its record for `upgrade --recover`.
                self.stopping.set()
                for f in futures:
                    try:
                        f.result()
                    except BaseException:  # noqa: BLE001 - the first one is re-raised
                        pass
                raise

    def _step(self) -> None:
        if self.stopping.is_set():
            raise KeyboardInterrupt

    def one(self, inst: Instance, position: str, batch: dict | None = None) -> Outcome:
        name, old_image = inst.name, inst.image
        record = journal.begin("upgrade", self.scope, inst.record(), image=self.image, **(batch or {}))
        canary = bool((batch or {}).get("canary"))
        self.say(f"{position} {name}: stopping on {inst.where} (on {old_image}){' (canary)' if canary else ''}")
        timings: dict[str, float] = {}
        mark = time.monotonic()
        try:
            record.update("stopping")
            inst.stop()
            timings["stop"] = time.monotonic() - mark
            self._step()
            self.say(f"{position} {name}: backing up /opt/data")
            mark = time.monotonic()
            with inst.data() as data:
                facts = {"name": name, "image": old_image, "running": False} if inst.kind == "service" else None
                made = backup.create_backup(data.endpoint, data.ref, self.backup_dir, describe_as=facts,
                                            label="pre-upgrade-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                                            timeout=self.fleet.exec_timeout)
            timings["backup"] = time.monotonic() - mark
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - no backup, no upgrade
            self.say(f"{position} {name}: no backup ({describe(exc)}); starting it again, unchanged")
            inst.start()
            record.done()
            return Outcome(name, inst.where, old_image, "unchanged", f"backup failed: {describe(exc)}")
        wanted = [p["name"] for p in made.manifest["profiles"] if p["desired_state"] == "running"]
        record.update("backed-up", backup=str(made.path), wanted=wanted)
        self.say(f"{position} {name}: backup {made.path}")
        verdict = None
        try:
            self._step()
            self.say(f"{position} {name}: replacing on {self.image}")
            record.update("replacing")
            mark = time.monotonic()
            started = inst.replace(self.image)
            timings["start"] = time.monotonic() - mark
            record.update("waiting", instance=inst.record())
            self.say(f"{position} {name}: waiting until it serves"
                     f"{' (gateways ' + ', '.join(wanted) + ')' if wanted else ''}")
            mark = time.monotonic()
            verdict = wait_until_serving(self.fleet, started, wanted, timeout=self.timeout, settle=self.settle,
                                         should_stop=self.stopping.is_set)
            timings["gate"] = time.monotonic() - mark
            failure = None if verdict else verdict.detail
            if failure is None and canary and self.rollout.soak:
                record.update("soaking")
                self.say(f"{position} {name}: serving ({verdict.gate}); soaking {self.rollout.soak:g}s")
                if self.stopping.wait(self.rollout.soak):
                    raise KeyboardInterrupt
                # Still serving after the soak: the same gate again (an exit, a restart, an
                # unhealthy status or a failing check meanwhile fails the canary).
                verdict = wait_until_serving(self.fleet, started, wanted, timeout=self.timeout,
                                             settle=self.settle, should_stop=self.stopping.is_set)
                failure = None if verdict else f"after the {self.rollout.soak:g}s soak: {verdict.detail}"
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure rolls back
            failure = describe(exc)
        gate = verdict.gate if verdict is not None else ""
        if failure is None:
            record.update("committing")
            inst.commit()
            record.done()
            self.say(f"{position} {name}: upgraded, serving on {self.image} ({gate})")
            return Outcome(name, inst.where, self.image, "upgraded", backup=str(made.path), gate=gate,
                           timings=_rounded(timings))
        self.say(f"{position} {name}: FAILED on {self.image}: {failure}; rolling back")
        outcome = self.roll_back(inst, made, wanted, failure, position, record)
        outcome.gate, outcome.timings = gate, _rounded(timings)
        return outcome

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
            verdict = None if started is None else wait_until_serving(
                self.fleet, started, wanted, timeout=self.timeout, settle=self.settle)
            again = None if verdict is None or verdict else verdict.detail
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, never hidden
            again = describe(exc)
        if again is not None:
            record.update("rollback-failed", error=again)
            return Outcome(inst.name, inst.where, inst.image, "ROLLBACK FAILED", f"{failure}; then: {again}",
                           str(made.path), restored)
        record.done()
        self.say(f"{position} {inst.name}: rolled back, serving on {inst.image}")
        return Outcome(inst.name, inst.where, inst.image, "rolled back", failure, str(made.path), restored)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in timings.items()}


def recover(fleet: Fleet, say: Callable[[str], None], *, timeout: float, settle: float) -> list[Outcome]:
    """Finish or undo every interrupted upgrade this fleet can reach: one whose new image was
    already serving (step `committing`) is finished; any other is undone (what was started is
    dropped, the backup's files put back, the old instance started with its replicas). A batch
    interrupted together is recovered together, side by side as it ran; the run's later
    batches were never started: the same `upgrade` again goes on with them (what is done is
    `already`)."""
    mine = []
    for record in journal.interrupted():
        if record.body.get("operation") != "upgrade":
            continue
        saved = record.body.get("instance") or {}
        if saved.get("kind") != ("service" if fleet.kind == "swarm" else "container"):
            continue
        mine.append(record)
    groups: dict[tuple, list[journal.Record]] = {}
    for record in mine:
        groups.setdefault((str(record.body.get("run") or record.path), record.body.get("batch") or 0), []).append(record)
    outcomes: list[Outcome] = []
    for (run, number), records in groups.items():
        if len(records) > 1 or record_batch(records[0]):
            say(f"run {run}: {records[0].body.get('label') or 'batch ' + str(number)} was interrupted "
                f"({len(records)} in flight); later batches never started: run the same upgrade again to go on")
        if len(records) == 1:
            found = [_recover_one(fleet, records[0], say, timeout=timeout, settle=settle)]
        else:
            with ThreadPoolExecutor(max_workers=len(records), thread_name_prefix="recover") as pool:
                found = list(pool.map(lambda r: _recover_one(fleet, r, say, timeout=timeout, settle=settle), records))
        outcomes.extend(o for o in found if o is not None)
    journal.sweep_orphans()
    return outcomes


def record_batch(record: journal.Record) -> bool:
    """The record was made by a run of several batches."""
    return bool(record.body.get("run")) and record.body.get("batch") not in (None, 1) or bool(record.body.get("canary"))


def _recover_one(fleet: Fleet, record: journal.Record, say: Callable[[str], None], *, timeout: float,
                 settle: float) -> Outcome | None:
    saved = record.body.get("instance") or {}
    try:
        inst = fleet.instance_from_record(saved)
    except Exception as exc:  # noqa: BLE001 - another scope's record, or gone: say so
        say(f"{record.what}: cannot reach it from here ({describe(exc)}); record kept: {record.path}")
        return None
    step = record.step
    say(f"{record.what}: interrupted at step {step}")
    if step == "committing":
        inst.commit()
        record.done()
        return Outcome(inst.name, inst.where, str(record.body.get("image")), "upgraded", "finished")
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
            verdict = None if started is None else wait_until_serving(fleet, started, [], timeout=timeout,
                                                                      settle=settle)
            again = None if verdict is None or verdict else verdict.detail
            if again is None and started is not None and not _still_running(started):
                again = "it stopped again right after it served"
        except Exception as exc:  # noqa: BLE001 - reported
            again = describe(exc)
        if again is None:
            record.done()
        return Outcome(inst.name, inst.where, inst.image, "rolled back" if again is None else "ROLLBACK FAILED",
                       f"interrupted at {step}" + (f"; then: {again}" if again else ""))
    wanted = list(record.body.get("wanted") or [])
    return upgrade.roll_back(inst, made, wanted, f"interrupted at {step}", "[recover]", record)


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
