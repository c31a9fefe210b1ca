"""Keeps a FleetState current from the live fleet (hermesctl.backends.docker.streams.LiveFleet): one exec stream
held open per container, whose in-container watcher reports each change as it happens, plus the
Docker events API. A change becomes new rows for its container at once; scrapes, pages and the
CLI read the state and never exec. Endpoint reachability is checked by listing containers every
`interval` seconds (a few ms per endpoint)."""
import queue
import threading
import time
from dataclasses import asdict

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.serve.state import ContainerInfo, FleetState

# An unhealthy container's health log is read again at most this often (Docker's interval in
# our image is 30 s): one API call, no exec.
HEALTH_REREAD_S = 30.0


class Refresher:
    def __init__(self, fleet: Fleet, state: FleetState, *, interval: float, make_fleet=None):
        from hermesctl.backends.docker.streams import LiveFleet
        self.fleet, self.state, self.interval = fleet, state, interval
        self.live = LiveFleet(fleet, [])
        self._make_fleet = make_fleet
        self._stop = threading.Event()
        self._reasons: dict[str, tuple[str, float, str]] = {}  # key -> (container id, read at, reason)

    def start(self) -> None:
        threading.Thread(target=self._run, name="live", daemon=True).start()
        threading.Thread(target=self._endpoints, name="endpoints", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def refresh_now(self) -> None:
        """Changes arrive by themselves; nothing to trigger."""

    def _run(self) -> None:
        # LiveFleet.start returns once every endpoint was listed and every running container's
        # first snapshot is in (or its exec deadline passed: then it is reported as such).
        self.live.start()
        self._publish_endpoints(self.fleet)
        self._publish()
        self.state.ready.set()
        while not self._stop.is_set():
            try:
                self.live.events.get(timeout=self.interval)
            except queue.Empty:
                pass  # publish anyway: uptimes advance
            while not self.live.events.empty():  # a burst of changes: one publication
                self.live.events.get_nowait()
            self._publish()

    def _publish(self) -> None:
        from hermesctl.engine import journal
        from hermesctl.engine.rows import live_answer
        rows, unanswered = live_answer(self.live)
        with self.live.lock:
            containers = dict(self.live.containers)
        by_container: dict[str, list[dict]] = {key: [] for key in containers}
        for row in rows:
            by_container.setdefault(f"{row.endpoint}/{row.container}", []).append(asdict(row) | {"target": row.target})
        why = {f"{u['endpoint']}/{u['container']}": u for u in unanswered}
        for key, c in containers.items():
            info = ContainerInfo(endpoint=c.endpoint, name=c.name, service=c.service,
                                 running=c.running, health=c.health, health_reason=self._health_reason(c))
            self.state.set_container(key, info, by_container.get(key, []), why.get(key))
        for key in set(self._reasons) - set(containers):
            del self._reasons[key]
        self.state.forget_missing(set(containers))
        # Operations stopped midway: as a direct `ps` finds them for this scope (read again on
        # every publication: a record's process may end without any event).
        records = journal.interrupted_in(self.fleet, containers=list(containers.values()))
        self.state.set_interrupted([journal.describe(r) for r in records])
        self.state.touch()

    def _health_reason(self, c) -> str | None:
        """Why an unhealthy container is unhealthy: Docker's health log (`inspect`), read when it
        turns unhealthy and again every HEALTH_REREAD_S while it stays so."""
        if c.health != "unhealthy" or not c.id:
            self._reasons.pop(c.key, None)
            return None
        known = self._reasons.get(c.key)
        if known and known[0] == c.id and time.monotonic() - known[1] < HEALTH_REREAD_S:
            return known[2]
        from hermesctl.serve.overview import health_reason
        try:
            reason = health_reason(self.fleet.inspect(c))
        except Exception as exc:  # noqa: BLE001 - the container is still shown unhealthy; this says why not more
            from hermesctl.core.errors import describe
            reason = f"its health log could not be read: {describe(exc)}"
        self._reasons[c.key] = (c.id, time.monotonic(), reason)
        return reason

    def _endpoints(self) -> None:
        while not self._stop.is_set():
            fleet = self._make_fleet() if self._make_fleet else None
            if fleet is not None:
                fleet.containers()
                self._publish_endpoints(fleet)
            self._stop.wait(max(self.interval, 1.0))

    def _publish_endpoints(self, fleet: Fleet) -> None:
        down = {u.endpoint: asdict(u) for u in fleet.unreachable if u.container is None}
        # An endpoint that could not even be connected to is not among fleet.endpoints.
        names = [e.name for e in fleet.endpoints] + [n for n in down if n not in {e.name for e in fleet.endpoints}]
        for name in names:
            self.state.set_endpoint(name, name not in down, down.get(name))
