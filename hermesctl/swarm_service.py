"""One Hermes swarm service, driven through the manager: scale it, watch its tasks, and reach
its node-local volume while nothing runs on it (for backups, rollbacks and restores)."""
import time
from contextlib import contextmanager
from dataclasses import dataclass

import docker.errors

from hermesctl import backup
from hermesctl.errors import HermesctlError
from hermesctl.swarm import SwarmFleet

STOP_WAIT_S = 60


@dataclass
class ServiceControl:
    fleet: SwarmFleet
    id: str
    name: str
    node: str   # where its task (and so its volume) lives
    spec: dict  # as it was when we started: what a rollback puts back

    @property
    def image(self) -> str:
        return self.spec["TaskTemplate"]["ContainerSpec"]["Image"]

    @property
    def replicas(self) -> int | None:
        return self.spec.get("Mode", {}).get("Replicated", {}).get("Replicas")

    def update(self, *, replicas: int, image: str | None = None, spec: dict | None = None) -> None:
        """Set the replica count, and the image or a whole previous task template."""
        api = self.fleet.manager.client.api
        current = api.inspect_service(self.id)
        template = (spec or current["Spec"])["TaskTemplate"]
        if image is not None:
            template = {**template, "ContainerSpec": {**template["ContainerSpec"], "Image": image}}
        api.update_service(self.id, current["Version"]["Index"], task_template=template,
                           mode={"Replicated": {"Replicas": replicas}}, fetch_current_spec=True)

    def task_ids(self) -> set[str]:
        return {t["ID"] for t in self.fleet.manager.client.api.tasks(filters={"service": self.id})}

    def wait_stopped(self) -> None:
        """After a scale to 0: no container of the service runs on its node any more."""
        api = self.fleet.endpoint(self.node).client.api
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            label = f"com.docker.swarm.service.id={self.id}"
            if not any(api.containers(filters={"label": label, "status": s}) for s in ("running", "restarting")):
                return
            time.sleep(0.3)
        raise HermesctlError(f"{self.name}: its task did not stop within {STOP_WAIT_S}s")

    def new_task_container(self, after: set[str], timeout: float) -> tuple[str | None, str | None]:
        """(container id, None) of a task started after `after`, or (None, why not)."""
        api = self.fleet.manager.client.api
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t in api.tasks(filters={"service": self.id}):
                if t["ID"] in after:
                    continue
                status = t["Status"]
                if status["State"] in ("failed", "rejected"):
                    return None, f"task {status['State']}: {status.get('Err') or status.get('Message')}"
                cid = (status.get("ContainerStatus") or {}).get("ContainerID")
                if cid and t.get("DesiredState") == "running":
                    return cid, None
            time.sleep(0.5)
        return None, f"no task started within {timeout:g}s"

    @contextmanager
    def volume(self):
        """A created, never started container on the node that mounts the service's volumes:
        the stopped task's own container is removed by swarm soon after a scale-down."""
        endpoint = self.fleet.endpoint(self.node)
        mounts = self.spec["TaskTemplate"]["ContainerSpec"].get("Mounts") or []
        holder = backup.volume_holder(endpoint, self.image, mounts,
                                      f"{self.name}-hermesctl-{int(time.time() * 1000) % 10**8}")
        try:
            yield holder
        finally:
            try:
                endpoint.client.api.remove_container(holder, force=True)
            except docker.errors.NotFound:
                pass


def control_for(fleet: SwarmFleet, service_name: str, node: str) -> ServiceControl:
    service = fleet.manager.client.api.inspect_service(service_name)
    return ServiceControl(fleet, service["ID"], service["Spec"]["Name"], node, service["Spec"])
