"""The fleet as the server last saw it: gateway rows per container, endpoint reachability, and
the recent changes. Writers (the refresher) replace one container's rows at a time; readers (a
scrape, a page, the CLI) take a consistent copy without touching Docker."""
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field

RECENT_EVENTS = 200
WATCHED_FIELDS = ("state", "pid", "wanted", "gateway_state", "desired_state", "crash_looping", "parked")


@dataclass
class ContainerInfo:
    endpoint: str
    name: str
    service: str | None
    running: bool
    health: str | None
    started_at: float | None = None
    health_reason: str | None = None  # why Docker calls it unhealthy (its health log), in words


@dataclass
class Snapshot:
    rows: list[dict]
    containers: list[dict]
    endpoints: dict[str, bool]
    events: list[dict]
    version: int
    updated_at: float
    scrape_seconds: float = 0.0
    unreachable: list[dict] = field(default_factory=list)  # as ps_rows.document: endpoints, then containers
    interrupted: list[dict] = field(default_factory=list)  # engine.journal.describe of the scope's records


@dataclass
class FleetState:
    _rows: dict[str, list[dict]] = field(default_factory=dict)        # container key -> rows
    _containers: dict[str, ContainerInfo] = field(default_factory=dict)
    _endpoints: dict[str, bool] = field(default_factory=dict)
    _endpoint_errors: dict[str, dict] = field(default_factory=dict)  # name -> why it did not answer
    _unanswered: dict[str, dict] = field(default_factory=dict)       # container key -> why it did not answer
    _interrupted: list[dict] = field(default_factory=list)
    _restarts: dict[str, int] = field(default_factory=dict)          # target -> new pids seen
    _last_pid: dict[str, int] = field(default_factory=dict)          # target -> last pid seen up
    _events: deque = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    version: int = 0
    updated_at: float = 0.0
    _lock: threading.Condition = field(default_factory=threading.Condition)
    # Set once the first look at every endpoint and every container is in: before it, the
    # state would read as an empty fleet (a scrape would record every gateway as gone).
    ready: threading.Event = field(default_factory=threading.Event)

    def set_endpoint(self, name: str, reachable: bool, why: dict | None = None) -> None:
        """An endpoint's reachability; `why`: fleet.Unreachable as a dict, as a direct `ps`
        reports it."""
        with self._lock:
            why = None if reachable else (why or {"endpoint": name, "message": "did not answer",
                                                   "container": None, "reason": "error"})
            if self._endpoints.get(name) != reachable:
                self._endpoints[name] = reachable
                self._event(f"endpoint {name}", "reachable", None, reachable)
                self._changed()
            if self._endpoint_errors.get(name) != why:
                self._endpoint_errors.pop(name, None)
                if why is not None:
                    self._endpoint_errors[name] = why
                self._changed()

    def set_interrupted(self, operations: list[dict]) -> None:
        """The operations stopped midway in the server's scope (engine.journal)."""
        with self._lock:
            if operations != self._interrupted:
                self._interrupted = list(operations)
                self._changed()

    def set_container(self, key: str, info: ContainerInfo, rows: list[dict], unanswered: dict | None = None) -> None:
        """Replace one container's rows; record what changed, gateway by gateway. `unanswered`:
        why it did not answer (fleet.Unreachable as a dict), when it did not."""
        with self._lock:
            if self._unanswered.get(key) != unanswered:
                self._unanswered.pop(key, None)
                if unanswered is not None:
                    self._unanswered[key] = unanswered
                self._changed()
            old_info = self._containers.get(key)
            old = {r["target"]: r for r in self._rows.get(key, [])}
            new = {r["target"]: r for r in rows}
            changed = old_info is None or asdict(old_info) != asdict(info)
            if old_info is not None and old_info.running != info.running:
                self._event(info.name, "running", old_info.running, info.running)
            if old_info is not None and old_info.health != info.health:
                self._event(info.name, "health", old_info.health, info.health)
            for target, row in new.items():
                before = old.get(target)
                if before is None:
                    if old_info is not None:
                        self._event(target, "added", None, row.get("state"))
                    changed = True
                    continue
                for name in WATCHED_FIELDS:
                    if before.get(name) != row.get(name):
                        # A process gone: how it went (models.Slot.last_death), said with it.
                        how = row.get("last_death") if name == "pid" and before.get("pid") else None
                        self._event(target, name, before.get(name), row.get(name), how)
                        changed = True
            for target, row in new.items():
                # Down in between or not, a gateway with another pid than the last one seen has
                # been restarted (by s6 after a death, or by an operator).
                pid = row.get("pid") if row.get("state") == "up" else None
                if pid:
                    if self._last_pid.get(target) not in (None, pid):
                        self._restarts[target] = self._restarts.get(target, 0) + 1
                        changed = True
                    self._last_pid[target] = pid
            for target in old.keys() - new.keys():
                self._event(target, "removed", old[target].get("state"), None)
                changed = True
            for row in rows:
                row["restarts_seen"] = self._restarts.get(row["target"], 0)
            self._containers[key] = info
            self._rows[key] = rows
            if changed:
                self._changed()

    def forget_missing(self, keys: set[str]) -> None:
        """Containers gone from the endpoint listing (removed) leave the state."""
        with self._lock:
            for key in [k for k in self._containers if k not in keys]:
                self._event(self._containers[key].name, "removed", True, None)
                del self._containers[key]
                self._rows.pop(key, None)
                self._unanswered.pop(key, None)
                self._changed()

    def container_keys(self) -> list[str]:
        with self._lock:
            return list(self._containers)

    def _event(self, target: str, what: str, old: object, new: object, how: str | None = None) -> None:
        event = {"time": time.time(), "target": target, "field": what, "old": old, "new": new}
        self._events.append({**event, "how": how} if how else event)

    def _changed(self) -> None:
        self.version += 1
        self.updated_at = time.time()
        self._lock.notify_all()

    def touch(self) -> None:
        """A refresh that found nothing new still makes the state fresher."""
        with self._lock:
            self.updated_at = time.time()

    def snapshot(self) -> Snapshot:
        with self._lock:
            # As a direct `ps` lists them: endpoint by endpoint, in the order given, each by name.
            order = {name: i for i, name in enumerate(self._endpoints)}

            def listed(key: str) -> tuple:
                endpoint, _, name = key.rpartition("/")  # a container name has no "/"; a URL-named endpoint may
                return order.get(endpoint, len(order)), endpoint, name
            rows = [dict(r) for key in sorted(self._rows, key=listed) for r in self._rows[key]]
            unreachable = [dict(self._endpoint_errors[n]) for n, ok in self._endpoints.items()
                           if not ok and n in self._endpoint_errors]
            unreachable += [dict(self._unanswered[key]) for key in sorted(self._unanswered, key=listed)]
            return Snapshot(rows=rows, containers=[asdict(c) for c in self._containers.values()],
                            endpoints=dict(self._endpoints), events=list(self._events),
                            version=self.version, updated_at=self.updated_at, unreachable=unreachable,
                            interrupted=list(self._interrupted))

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Block until the state is newer than `version` (or the timeout); the new version."""
        with self._lock:
            self._lock.wait_for(lambda: self.version != version, timeout=timeout)
            return self.version
