"""hermesctl --swarm M upgrade SERVICE... --image IMAGE: the same promise as for containers,
one service (one task: Hermes services run one replica on a node-local volume) at a time.

Per service, through the manager:
  1. scale it to 0 and wait until its task's container has stopped (stop-first, as the stack's
     update_config), then back its volume up through its node (nothing runs on it: an exact
     copy, which is also the baseline a rollback compares against);
  2. update the service to the new image with 1 replica, wait for the new task's container on
     its node and until it serves (healthy, or booted with every wanted gateway up and steady);
  3. on failure: scale to 0 again, put back from the backup exactly the files the new image
     changed or added, restore the service's previous spec (old image, 1 replica), and wait
     until it serves.
The stack file's update_config (one at a time, health-gated, automatic rollback) still governs
plain `docker stack deploy` updates; hermesctl drives its own so that a backup is taken with no
writer and a rollback can undo the new image's changes to the volume before the old one starts.
"""
import time
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from hermesctl import backup, restore
from hermesctl.commands.upgrade import (Outcome, Upgrade, default_backup_dir, require_writable,
                                        wait_until_serving)
from hermesctl.errors import NotFoundError, UsageError, describe
from hermesctl.exit_codes import ExitStatus
from hermesctl.output import Output
from hermesctl.swarm import SwarmFleet
from hermesctl.swarm_service import ServiceControl, control_for
from hermesctl.targets import Target



@dataclass
class ServicePlan:
    service: ServiceControl
    action: str


def services_for(fleet: SwarmFleet, targets: list[Target]) -> list[ServiceControl]:
    """The services the targets' tasks belong to (SERVICE, SERVICE.SLOT, globs), by name."""
    chosen: dict[str, ServiceControl] = {}
    for target in targets:
        if target.profile is not None:
            raise UsageError(f"{target}: name whole services (SERVICE, no :PROFILE)")
        for c in fleet.containers_matching(target):
            task = fleet.task_of(c)
            if task is not None and task.service not in chosen:
                chosen[task.service] = control_for(fleet, task.service, task.node)
    return sorted(chosen.values(), key=lambda s: s.name)


def _plan(fleet: SwarmFleet, targets: list[Target], image: str) -> list[ServicePlan]:
    plans = []
    for service in services_for(fleet, targets):
        if service.replicas != 1:
            raise UsageError(f"service {service.name} is not replicated with 1 replica: a Hermes "
                             "instance is one task on its node's volume (compose/stack.yaml)")
        try:
            fleet.endpoint(service.node).client.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            raise NotFoundError(f"image {image} is not on node {service.node} "
                                "(`docker save | docker load` it there first)") from None
        plans.append(ServicePlan(service, "already on the image" if service.image == image else "upgrade"))
    return plans


class SwarmUpgrade(Upgrade):
    fleet: SwarmFleet

    def _serve(self, service: ServiceControl, wanted: list[str], known_tasks: set[str]) -> str | None:
        """None once a task started after `known_tasks` serves, else why not."""
        cid, why = service.new_task_container(known_tasks, self.timeout)
        if cid is None:
            return why
        return wait_until_serving(self.fleet, self.fleet.endpoint(service.node), cid, service.name, wanted,
                                  timeout=self.timeout, settle=self.settle)

    def one_service(self, service: ServiceControl, position: str) -> Outcome:
        name = service.name
        self.say(f"{position} {name}: scaling to 0 on {service.node} (on {service.image})")
        service.update(replicas=0)
        service.wait_stopped()
        self.say(f"{position} {name}: backing up /opt/data on {service.node}")
        with service.volume() as holder:
            facts = {"name": name, "service": name, "node": service.node, "image": service.image, "running": False}
            made = backup.create_backup(self.fleet.endpoint(service.node), holder, self.backup_dir,
                                        describe_as=facts,
                                        label="pre-upgrade-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        wanted = [p["name"] for p in made.manifest["profiles"] if p["desired_state"] == "running"]
        self.say(f"{position} {name}: backup {made.path}")
        known = service.task_ids()
        try:
            self.say(f"{position} {name}: updating to {self.image}, 1 replica")
            service.update(replicas=1, image=self.image)
            self.say(f"{position} {name}: waiting until it serves"
                     f"{' (gateways ' + ', '.join(wanted) + ')' if wanted else ''}")
            failure = self._serve(service, wanted, known)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure rolls back
            failure = describe(exc) if not isinstance(exc, KeyboardInterrupt) else "interrupted"
        if failure is None:
            self.say(f"{position} {name}: upgraded, serving on {self.image}")
            return Outcome(name, service.node, self.image, "upgraded", backup=str(made.path))
        self.say(f"{position} {name}: FAILED on {self.image}: {failure}; rolling back")
        return self.roll_back_service(service, made, wanted, failure, position)

    def roll_back_service(self, service: ServiceControl, made: backup.BackupResult, wanted: list[str],
                          failure: str, position: str) -> Outcome:
        name, endpoint = service.name, self.fleet.endpoint(service.node)
        restored: list[str] = []
        try:
            service.update(replicas=0)
            service.wait_stopped()
            with service.volume() as holder:
                diff = restore.roll_back_data(endpoint, holder, service.image, made.path)
            restored = diff.changed + diff.added
            if restored:
                self.say(f"{position} {name}: put back {len(diff.changed)} changed and removed "
                         f"{len(diff.added)} added files under /opt/data")
            known = service.task_ids()
            service.update(replicas=1, spec=service.spec)
            again = self._serve(service, wanted, known)
        except Exception as exc:  # noqa: BLE001 - reported, never hidden
            again = describe(exc)
        if again is not None:
            self.out.error(f"{name}: rollback did not come back: {again}; its backup is {made.path}")
            return Outcome(name, service.node, service.image, "ROLLBACK FAILED", f"{failure}; then: {again}",
                           str(made.path), restored)
        self.say(f"{position} {name}: rolled back, serving on {service.image}")
        return Outcome(name, service.node, service.image, "rolled back", failure, str(made.path), restored)


def upgrade_swarm(out: Output, fleet: SwarmFleet, targets: list[Target], image: str, *, dry_run: bool,
                  backup_dir: Path | None, timeout: float, settle: float) -> ExitStatus:
    plans = _plan(fleet, targets, image)  # every check before the first service is scaled down
    backup_dir = backup_dir or default_backup_dir()
    if not dry_run:
        require_writable(backup_dir)
    if dry_run:
        doc = [{"service": p.service.name, "node": p.service.node, "action": p.action, "from": p.service.image,
                "to": image, "update_config": p.service.spec.get("UpdateConfig"), "volumes": [
                    f"{m.get('Source')}->{m.get('Target')}" for m in
                    p.service.spec["TaskTemplate"]["ContainerSpec"].get("Mounts") or []]} for p in plans]
        if out.json:
            out.document("upgrade", {"image": image, "dry_run": True, "backup_dir": str(backup_dir), "plan": doc})
        else:
            out.line(f"plan: one service at a time; backups in {backup_dir}")
            for d in doc:
                out.line(f"  {d['service']} on {d['node']}: {d['action']}" if d["action"] != "upgrade" else
                         f"  {d['service']} on {d['node']}: {d['from']} -> {d['to']}: scale to 0, back up "
                         f"{', '.join(d['volumes']) or '-'}, update, wait until it serves, else put the "
                         f"changed files and the old spec back and stop")
        return ExitStatus.OK
    run = SwarmUpgrade(out, fleet, image, backup_dir, timeout, settle)
    todo = [p for p in plans if p.action == "upgrade"]
    outcomes, failed = [], False
    for plan in plans:
        s = plan.service
        if plan.action != "upgrade":
            outcomes.append(Outcome(s.name, s.node, s.image, "already", plan.action))
        elif failed:
            outcomes.append(Outcome(s.name, s.node, s.image, "unchanged", "not attempted after the failure"))
        else:
            outcome = run.one_service(s, f"[{todo.index(plan) + 1}/{len(todo)}]")
            outcomes.append(outcome)
            failed = outcome.result != "upgraded"
    if out.json:
        out.document("upgrade", {"image": image, "dry_run": False, "backup_dir": str(backup_dir),
                                 "services": [o.__dict__ | {"service": o.container, "node": o.endpoint}
                                              for o in outcomes]})
    else:
        out.print(out.table(["SERVICE", "IMAGE", "RESULT", "DETAIL"],
                            [[o.container, o.image, o.result, o.detail] for o in outcomes],
                            endpoints=[o.endpoint for o in outcomes]))
    return ExitStatus.FAILED if failed else ExitStatus.OK
