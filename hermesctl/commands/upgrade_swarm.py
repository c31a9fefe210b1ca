"""hermesctl --swarm M upgrade SERVICE... --image IMAGE: the same promise as for containers,
one service (one task: Hermes services run one replica on a node-local volume) at a time.

Per service, through the manager:
  1. scale it to 0 and wait until its task's container has stopped (stop-first, as the stack's
     update_config), then back that container's /opt/data up through its node (a stopped
     container: an exact copy, which is also the baseline a rollback compares against);
  2. update the service to the new image with 1 replica, wait for the new task's container on
     its node and until it serves (healthy, or booted with every wanted gateway up and steady);
  3. on failure: scale to 0 again, put back from the backup exactly the files the new image
     changed or added (through the failed task's stopped container, which holds the volume),
     restore the service's previous spec (old image, 1 replica), and wait until it serves.
The stack file's update_config (one at a time, health-gated, automatic rollback) still governs
plain `docker stack deploy` updates; hermesctl drives its own so that a backup is taken with no
writer and a rollback can undo the new image's changes to the volume before the old one starts.
"""
import time
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from hermesctl import backup
from hermesctl.commands.upgrade import Outcome, Upgrade, default_backup_dir, wait_until_serving
from hermesctl.errors import HermesctlError, NotFoundError, UsageError, describe
from hermesctl.exit_codes import ExitStatus
from hermesctl.output import Output
from hermesctl.swarm import SwarmFleet
from hermesctl.targets import Target

STOP_WAIT_S = 60
RM_BATCH = 200


@dataclass
class ServicePlan:
    id: str
    name: str
    node: str
    spec: dict            # the spec before the upgrade: what a rollback restores
    old_image: str
    container_id: str
    action: str


def _image_of(spec: dict) -> str:
    return spec["TaskTemplate"]["ContainerSpec"]["Image"]


def _plan(fleet: SwarmFleet, targets: list[Target], image: str) -> list[ServicePlan]:
    api = fleet.manager.client.api
    chosen: dict[str, ServicePlan] = {}
    for target in targets:
        if target.profile is not None:
            raise UsageError(f"{target}: upgrade whole services (SERVICE, no :PROFILE)")
        for c in fleet.containers_matching(target):
            task = fleet.task_of(c)
            if task is None or task.service in chosen:
                continue
            service = api.inspect_service(task.service)
            spec = service["Spec"]
            replicas = spec.get("Mode", {}).get("Replicated", {}).get("Replicas")
            if replicas != 1:
                raise UsageError(f"service {task.service} is not replicated with 1 replica: a Hermes "
                                 "instance is one task on its node's volume (compose/stack.yaml)")
            try:
                fleet.endpoint(task.node).client.api.inspect_image(image)
            except docker.errors.ImageNotFound:
                raise NotFoundError(f"image {image} is not on node {task.node} "
                                    "(`docker save | docker load` it there first)") from None
            old = _image_of(spec)
            chosen[task.service] = ServicePlan(service["ID"], task.service, task.node, spec, old, c.id,
                                               "already on the image" if old == image else "upgrade")
    return sorted(chosen.values(), key=lambda p: p.name)


class SwarmUpgrade(Upgrade):
    fleet: SwarmFleet

    def _update(self, plan: ServicePlan, *, image: str | None = None, replicas: int,
                spec: dict | None = None) -> None:
        api = self.fleet.manager.client.api
        current = api.inspect_service(plan.id)
        template = (spec or current["Spec"])["TaskTemplate"]
        if image is not None:
            template = {**template, "ContainerSpec": {**template["ContainerSpec"], "Image": image}}
        api.update_service(plan.id, current["Version"]["Index"], task_template=template,
                           mode={"Replicated": {"Replicas": replicas}}, fetch_current_spec=True)

    def _new_task_container(self, plan: ServicePlan, after: set[str]) -> tuple[str | None, str | None]:
        """(container id, None) for the service's new running task, or (None, why not)."""
        api = self.fleet.manager.client.api
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for t in api.tasks(filters={"service": plan.id}):
                if t["ID"] in after:
                    continue
                status = t["Status"]
                if status["State"] in ("failed", "rejected"):
                    return None, f"task {status['State']}: {status.get('Err') or status.get('Message')}"
                cid = (status.get("ContainerStatus") or {}).get("ContainerID")
                if cid and t.get("DesiredState") == "running":
                    return cid, None
            time.sleep(0.5)
        return None, f"no task started within {self.timeout:g}s"

    def _serve(self, plan: ServicePlan, wanted: list[str], known_tasks: set[str]) -> str | None:
        """None once a task started after `known_tasks` serves, else why not."""
        cid, why = self._new_task_container(plan, known_tasks)
        if cid is None:
            return why
        return wait_until_serving(self.fleet, self.fleet.endpoint(plan.node), cid, plan.name, wanted,
                                  timeout=self.timeout, settle=self.settle)

    def _wait_no_task(self, plan: ServicePlan) -> None:
        """After a scale to 0: every container of the service on its node has stopped."""
        api = self.fleet.endpoint(plan.node).client.api
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            running = api.containers(filters={"label": f"com.docker.swarm.service.id={plan.id}",
                                              "status": "running"})
            restarting = api.containers(filters={"label": f"com.docker.swarm.service.id={plan.id}",
                                                 "status": "restarting"})
            if not running and not restarting:
                return
            time.sleep(0.3)
        raise HermesctlError(f"{plan.name}: its task did not stop within {STOP_WAIT_S}s")

    def _tasks(self, plan: ServicePlan) -> set[str]:
        return {t["ID"] for t in self.fleet.manager.client.api.tasks(filters={"service": plan.id})}

    def _holding(self, plan: ServicePlan):
        """A stand-in container on the node that mounts the service's volume (the stopped task's
        own container is removed by swarm soon after a scale-down)."""
        mounts = plan.spec["TaskTemplate"]["ContainerSpec"].get("Mounts") or []
        name = f"{plan.name}-hermesctl-{int(time.time() * 1000) % 10**8}"
        return backup.volume_holder(self.fleet.endpoint(plan.node), plan.old_image, mounts, name)

    def _release(self, plan: ServicePlan, holder: str) -> None:
        try:
            self.fleet.endpoint(plan.node).client.api.remove_container(holder, force=True)
        except docker.errors.NotFound:
            pass

    def one_service(self, plan: ServicePlan, position: str) -> Outcome:
        name = plan.name
        self.say(f"{position} {name}: scaling to 0 on {plan.node} (on {plan.old_image})")
        self._update(plan, replicas=0)
        self._wait_no_task(plan)
        endpoint = self.fleet.endpoint(plan.node)
        self.say(f"{position} {name}: backing up /opt/data on {plan.node}")
        holder = self._holding(plan)
        try:
            facts = {"name": name, "service": name, "node": plan.node, "image": plan.old_image,
                     "running": False}
            made = backup.create_backup(endpoint, holder, self.backup_dir, describe_as=facts,
                                        label="pre-upgrade-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        finally:
            self._release(plan, holder)
        wanted = [p["name"] for p in made.manifest["profiles"] if p["desired_state"] == "running"]
        self.say(f"{position} {name}: backup {made.path}")
        known = self._tasks(plan)
        try:
            self.say(f"{position} {name}: updating to {self.image}, 1 replica")
            self._update(plan, image=self.image, replicas=1)
            self.say(f"{position} {name}: waiting until it serves"
                     f"{' (gateways ' + ', '.join(wanted) + ')' if wanted else ''}")
            failure = self._serve(plan, wanted, known)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure rolls back
            failure = describe(exc) if not isinstance(exc, KeyboardInterrupt) else "interrupted"
        if failure is None:
            self.say(f"{position} {name}: upgraded, serving on {self.image}")
            return Outcome(name, plan.node, self.image, "upgraded", backup=str(made.path))
        self.say(f"{position} {name}: FAILED on {self.image}: {failure}; rolling back")
        return self.roll_back_service(plan, made, wanted, failure, position)

    def roll_back_service(self, plan: ServicePlan, made: backup.BackupResult, wanted: list[str],
                          failure: str, position: str) -> Outcome:
        name, endpoint = plan.name, self.fleet.endpoint(plan.node)
        restored: list[str] = []
        try:
            self._update(plan, replicas=0)
            self._wait_no_task(plan)
            holder = self._holding(plan)
            try:
                diff = backup.diff_against(endpoint, holder, made.manifest)
                for i in range(0, len(diff.added), RM_BATCH):
                    paths = [f"{backup.DATA_DIR}/{p}" for p in diff.added[i:i + RM_BATCH]]
                    backup.run_helper(endpoint, holder, plan.old_image, ["rm", "-f", "--", *paths])
                if diff.changed:
                    backup.restore_archive(endpoint, holder, made.path, only=set(diff.changed))
            finally:
                self._release(plan, holder)
            restored = diff.changed + diff.added
            if restored:
                self.say(f"{position} {name}: put back {len(diff.changed)} changed and removed "
                         f"{len(diff.added)} added files under /opt/data")
            known = self._tasks(plan)
            self._update(plan, replicas=1, spec=plan.spec)
            again = self._serve(plan, wanted, known)
        except Exception as exc:  # noqa: BLE001 - reported, never hidden
            again = describe(exc)
        if again is not None:
            self.out.error(f"{name}: rollback did not come back: {again}; its backup is {made.path}")
            return Outcome(name, plan.node, plan.old_image, "ROLLBACK FAILED", f"{failure}; then: {again}",
                           str(made.path), restored)
        self.say(f"{position} {name}: rolled back, serving on {plan.old_image}")
        return Outcome(name, plan.node, plan.old_image, "rolled back", failure, str(made.path), restored)


def upgrade_swarm(out: Output, fleet: SwarmFleet, targets: list[Target], image: str, *, dry_run: bool,
                  backup_dir: Path | None, timeout: float, settle: float) -> ExitStatus:
    plans = _plan(fleet, targets, image)
    backup_dir = backup_dir or default_backup_dir()
    if dry_run:
        doc = [{"service": p.name, "node": p.node, "action": p.action, "from": p.old_image, "to": image,
                "update_config": p.spec.get("UpdateConfig"), "volumes": [
                    f"{m.get('Source')}->{m.get('Target')}" for m in
                    p.spec["TaskTemplate"]["ContainerSpec"].get("Mounts") or []]} for p in plans]
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
        if plan.action != "upgrade":
            outcomes.append(Outcome(plan.name, plan.node, plan.old_image, "already", plan.action))
        elif failed:
            outcomes.append(Outcome(plan.name, plan.node, plan.old_image, "unchanged", "not attempted after the failure"))
        else:
            outcome = run.one_service(plan, f"[{todo.index(plan) + 1}/{len(todo)}]")
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
