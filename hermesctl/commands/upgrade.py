"""hermesctl upgrade TARGET... --image IMAGE: one container at a time, with a way back.

For each container, in name order:
  1. stop it (a volume must never have two Hermes containers on it), then back up its /opt/data
     (stopped: a plain, consistent copy) into --backup-dir;
  2. rename it NAME-pre-upgrade and create NAME on the new image with the same settings
     (hermesctl.recreate), start it;
  3. wait until it serves: Docker says healthy, or (while the healthcheck's start period runs)
     it is running, booted (/run/s6/stage2-done) and every gateway whose desired_state was
     `running` is up and stays up for --settle seconds;
  4. then remove the old container (never its volumes) and go on.
On failure the new container is removed, the old one gets its name back, the files the new
image changed or added under /opt/data (logs aside) are put back from the backup (nothing else
is touched), the old container starts again, and the upgrade stops, saying which container runs
which image.
"""
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors

from hermesctl import backup, recreate, restore
from hermesctl.commands.backup import containers_for
from hermesctl.endpoints import Endpoint
from hermesctl.errors import HermesctlError, NotFoundError, UsageError, describe
from hermesctl.exit_codes import ExitStatus
from hermesctl.fleet import Fleet
from hermesctl.inventory import HermesContainer
from hermesctl.output import Output
from hermesctl.targets import Target
from hermesctl.terminal import safe

OLD_SUFFIX = "-pre-upgrade"
STOP_TIMEOUT = 15
POLL_S = 0.5


def require_writable(directory: Path) -> None:
    """The backup directory, checked before anything is stopped."""
    try:
        backup.private_dir(directory)
    except OSError as exc:
        raise UsageError(f"cannot create the backup directory {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"the backup directory {directory} is not writable")


def default_backup_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "hermesctl" / "backups"


@dataclass
class Plan:
    container: HermesContainer
    endpoint: Endpoint
    inspect: dict
    spec: recreate.ContainerSpec
    old_image: str
    old_version: str | None
    action: str  # "upgrade", "already on the image", "skipped: not running"


@dataclass
class Outcome:
    container: str
    endpoint: str
    image: str
    result: str            # upgraded, rolled back, unchanged, already, skipped, ROLLBACK FAILED
    detail: str = ""
    backup: str | None = None
    changed_files_restored: list[str] = field(default_factory=list)


def _version(api, image: str) -> str | None:
    try:
        return (api.inspect_image(image)["Config"].get("Labels") or {}).get(backup.VERSION_LABEL)
    except docker.errors.APIError:
        return None


def _plan(fleet: Fleet, targets: list[Target], image: str) -> list[Plan]:
    plans = []
    new_ids: dict[str, str] = {}
    for c in containers_for(fleet, targets):
        endpoint = fleet.endpoint(c.endpoint)
        api = endpoint.client.api
        if c.endpoint not in new_ids:
            try:
                new_ids[c.endpoint] = api.inspect_image(image)["Id"]
            except docker.errors.ImageNotFound:
                raise NotFoundError(f"image {image} is not on endpoint {c.endpoint} "
                                    "(build, pull or `docker load` it there first)") from None
        inspect = api.inspect_container(c.id)
        try:
            image_config = api.inspect_image(inspect["Image"])["Config"]
        except docker.errors.ImageNotFound:
            image_config = None  # its image was deleted: keep every setting as it is
        if inspect["HostConfig"].get("AutoRemove"):
            raise UsageError(f"{c.name} was started with --rm: stopping it would delete it, so it "
                             "cannot be upgraded in place (recreate it without --rm)")
        if c.name.endswith(OLD_SUFFIX):
            raise UsageError(f"{c.name} is the old container of an interrupted upgrade: "
                             f"remove it or rename it back first")
        try:
            api.inspect_container(c.name + OLD_SUFFIX)
            raise UsageError(f"{c.name + OLD_SUFFIX} exists (an interrupted upgrade?): remove it first")
        except docker.errors.NotFound:
            pass
        # Same image under the same name: nothing to do. Same id under a new name still moves
        # the container to the new name, which is what compose and operators read.
        if inspect["Image"] == new_ids[c.endpoint] and inspect["Config"]["Image"] == image:
            action = "already on the image"
        elif not inspect["State"]["Running"]:
            action = "skipped: not running"
        else:
            action = "upgrade"
        plans.append(Plan(c, endpoint, inspect, recreate.spec_from_inspect(inspect, image_config),
                          inspect["Config"]["Image"], _version(api, inspect["Image"]), action))
    return plans


def wait_until_serving(fleet: Fleet, endpoint: Endpoint, container_id: str, name: str,
                       wanted: list[str], *, timeout: float, settle: float) -> str | None:
    """None once the container serves; otherwise why not (exited, restarting, unhealthy,
    wanted gateways down at the deadline)."""
    api = endpoint.client.api
    probe_target = HermesContainer(endpoint=endpoint.name, id=container_id, name=name, state="running", status="")
    deadline = time.monotonic() + timeout
    steady_since, steady_pids, last = None, None, "not booted yet"
    while True:
        inspect = api.inspect_container(container_id)
        state = inspect["State"]
        if state["Status"] in ("exited", "dead"):
            return f"exited with code {state.get('ExitCode')}"
        if state["Status"] == "restarting" or inspect.get("RestartCount", 0) > 0:
            return f"keeps restarting (restarted {inspect.get('RestartCount', 0)} times)"
        health = (state.get("Health") or {}).get("Status")
        if health == "unhealthy":
            log = (state["Health"].get("Log") or [{}])[-1].get("Output", "").strip()
            return f"unhealthy: {log.splitlines()[-1] if log else 'healthcheck failed'}"
        if state["Running"]:
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
                    if health == "healthy":
                        return None
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


class Upgrade:
    def __init__(self, out: Output, fleet: Fleet, image: str, backup_dir: Path, timeout: float, settle: float):
        self.out, self.fleet, self.image = out, fleet, image
        self.backup_dir, self.timeout, self.settle = backup_dir, timeout, settle

    def say(self, text: str) -> None:
        """Progress: plain lines (stderr under --json, so stdout stays one document)."""
        stamp = time.strftime("%H:%M:%S")
        if self.out.json:
            self.out.err.print(f"{stamp} {safe(text)}", markup=False, highlight=False)
        else:
            self.out.line(f"{stamp} {text}")

    def one(self, plan: Plan, position: str) -> Outcome:
        api = plan.endpoint.client.api
        name, old_id = plan.container.name, plan.inspect["Id"]
        self.say(f"{position} {name}: stopping (on {plan.old_image})")
        try:
            api.stop(old_id, timeout=plan.inspect["Config"].get("StopTimeout") or STOP_TIMEOUT)
            self.say(f"{position} {name}: backing up /opt/data")
            made = backup.create_backup(plan.endpoint, old_id, self.backup_dir,
                                        label="pre-upgrade-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - no backup, no upgrade
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else describe(exc)
            self.say(f"{position} {name}: no backup ({reason}); starting it again, unchanged")
            api.start(old_id)
            return Outcome(name, plan.container.endpoint, plan.old_image, "unchanged", f"backup failed: {reason}")
        wanted = [p["name"] for p in made.manifest["profiles"] if p["desired_state"] == "running"]
        self.say(f"{position} {name}: backup {made.path}")
        new_id = None
        try:
            api.rename(old_id, name + OLD_SUFFIX)
            self.say(f"{position} {name}: creating on {self.image}")
            new_id = recreate.create(api, plan.spec, self.image)
            api.start(new_id)
            self.say(f"{position} {name}: waiting until it serves"
                     f"{' (gateways ' + ', '.join(wanted) + ')' if wanted else ''}")
            failure = wait_until_serving(self.fleet, plan.endpoint, new_id, name, wanted,
                                         timeout=self.timeout, settle=self.settle)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure rolls back
            failure = describe(exc) if not isinstance(exc, KeyboardInterrupt) else "interrupted"
        if failure is None:
            api.remove_container(old_id, v=False)
            self.say(f"{position} {name}: upgraded, serving on {self.image}")
            return Outcome(name, plan.container.endpoint, self.image, "upgraded", backup=str(made.path))
        self.say(f"{position} {name}: FAILED on {self.image}: {failure}; rolling back")
        return self.roll_back(plan, new_id, made, wanted, failure, position)

    def roll_back(self, plan: Plan, new_id: str | None, made: backup.BackupResult, wanted: list[str],
                  failure: str, position: str) -> Outcome:
        api = plan.endpoint.client.api
        name, old_id = plan.container.name, plan.inspect["Id"]
        restored: list[str] = []
        try:
            diff = restore.DataDiff()
            if new_id is not None:
                try:
                    api.stop(new_id, timeout=5)
                except docker.errors.APIError:
                    pass
                api.remove_container(new_id, v=False, force=True)
            if api.inspect_container(old_id)["Name"].lstrip("/") != name:
                api.rename(old_id, name)
            if new_id is not None:  # the old container has the same volumes: put them back exactly
                diff = restore.roll_back_data(plan.endpoint, old_id, plan.inspect["Image"], made.path)
            restored = diff.changed + diff.added
            if restored:
                self.say(f"{position} {name}: put back {len(diff.changed)} changed and removed "
                         f"{len(diff.added)} added files under /opt/data")
            api.start(old_id)
            again = wait_until_serving(self.fleet, plan.endpoint, old_id, name, wanted,
                                       timeout=self.timeout, settle=self.settle)
        except Exception as exc:  # noqa: BLE001 - reported, never hidden
            again = describe(exc)
        if again is not None:
            self.out.error(f"{name}: rollback did not come back: {again}; its backup is {made.path}")
            return Outcome(name, plan.container.endpoint, plan.old_image, "ROLLBACK FAILED",
                           f"{failure}; then: {again}", str(made.path), restored)
        self.say(f"{position} {name}: rolled back, serving on {plan.old_image}")
        return Outcome(name, plan.container.endpoint, plan.old_image, "rolled back", failure,
                       str(made.path), restored)


def upgrade(out: Output, fleet: Fleet, targets: list[Target], image: str, *, dry_run: bool,
            backup_dir: Path | None, timeout: float, settle: float) -> ExitStatus:
    from hermesctl.swarm import SwarmFleet
    if isinstance(fleet, SwarmFleet):  # tasks are the manager's to replace, not ours
        from hermesctl.commands.upgrade_swarm import upgrade_swarm
        return upgrade_swarm(out, fleet, targets, image, dry_run=dry_run, backup_dir=backup_dir,
                             timeout=timeout, settle=settle)
    plans = _plan(fleet, targets, image)  # every check before the first container stops
    backup_dir = backup_dir or default_backup_dir()
    if not dry_run:
        require_writable(backup_dir)
    if dry_run:
        return _print_plan(out, plans, image, backup_dir)
    run = Upgrade(out, fleet, image, backup_dir, timeout, settle)
    outcomes: list[Outcome] = []
    todo = [p for p in plans if p.action == "upgrade"]
    failed = False
    for plan in plans:
        if plan.action != "upgrade":
            outcomes.append(Outcome(plan.container.name, plan.container.endpoint, plan.old_image,
                                    "already" if plan.action.startswith("already") else "skipped", plan.action))
            continue
        if failed:
            outcomes.append(Outcome(plan.container.name, plan.container.endpoint, plan.old_image,
                                    "unchanged", "not attempted after the failure"))
            continue
        outcome = run.one(plan, f"[{todo.index(plan) + 1}/{len(todo)}]")
        outcomes.append(outcome)
        failed = outcome.result != "upgraded"
    upgraded = {o.container for o in outcomes if o.result == "upgraded"}
    for project in sorted({p.container.compose_project for p in plans
                           if p.container.name in upgraded and p.container.compose_project}):
        # The compose file still names the old image: whenever compose recreates a container
        # (a changed setting, --force-recreate) it would bring the old image back.
        out.warn(f"compose project {project} still names the old image: set it to {image} "
                 "(e.g. HERMES_IMAGE in its .env) so that compose agrees")
    if out.json:
        out.document("upgrade", {"image": image, "dry_run": False, "backup_dir": str(backup_dir),
                                 "containers": [o.__dict__ for o in outcomes]})
    else:
        out.print(out.table(["CONTAINER", "IMAGE", "RESULT", "DETAIL"],
                            [[o.container, o.image, o.result, o.detail] for o in outcomes],
                            endpoints=[o.endpoint for o in outcomes]))
    return ExitStatus.FAILED if failed else ExitStatus.OK


def _print_plan(out: Output, plans: list[Plan], image: str, backup_dir: Path) -> ExitStatus:
    doc = []
    for p in plans:
        doc.append({"endpoint": p.container.endpoint, "container": p.container.name, "action": p.action,
                    "from": p.old_image, "from_version": p.old_version, "to": image,
                    "to_version": _version(p.endpoint.client.api, image), **p.spec.summary()})
    if out.json:
        out.document("upgrade", {"image": image, "dry_run": True, "backup_dir": str(backup_dir), "plan": doc})
        return ExitStatus.OK
    out.line(f"plan: one container at a time; backups in {backup_dir}")
    for d in doc:
        if d["action"] != "upgrade":
            out.line(f"  {d['container']}: {d['action']} ({d['from']})")
            continue
        out.line(f"  {d['container']}: {d['from']} ({d['from_version'] or '?'}) -> {d['to']} "
                 f"({d['to_version'] or '?'}): stop, back up, recreate with volumes "
                 f"{', '.join(d['volumes']) or '-'}; networks {', '.join(map(str, d['networks']))}; "
                 f"ports {', '.join(d['ports']) or '-'}; restart {d['restart']}; "
                 f"healthcheck {d['healthcheck']}; wait until it serves, else roll back and stop")
    return ExitStatus.OK
