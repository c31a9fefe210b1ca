"""Keeps a FleetState current. Each pass lists the Hermes containers of every endpoint (a few ms)
and asks every running one for its gateways, as `hermesctl ps` does; a pass starts every
`interval` seconds, and at once when the Docker events API reports a Hermes container starting,
stopping, dying or changing health. Scrapes and pages read the state; they never exec."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from hermesctl.commands.ps import _container_row, _gateway_row

from hermesctl.fleet import Fleet
from hermesctl.inventory import LABEL
from hermesctl.serve.state import ContainerInfo, FleetState

MAX_PROBES = 32
DOCKER_EVENTS = ("start", "stop", "die", "kill", "destroy", "create", "restart",
                 "health_status: healthy", "health_status: unhealthy")


class Refresher:
    def __init__(self, fleet: Fleet, state: FleetState, *, interval: float):
        self.fleet, self.state, self.interval = fleet, state, interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.last_pass_seconds = 0.0
        self._pool = ThreadPoolExecutor(max_workers=MAX_PROBES, thread_name_prefix="probe")
        self._in_flight: set[str] = set()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="refresher", daemon=True).start()
        for endpoint in self.fleet.endpoints:
            threading.Thread(target=self._docker_events, args=(endpoint,), name=f"events-{endpoint.name}",
                             daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def refresh_now(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - a bad pass must not end the server
                self.state.set_endpoint("(refresh)", False)
                print(f"hermesctl serve: refresh failed: {exc}", flush=True)
            self.last_pass_seconds = time.monotonic() - started
            self._wake.wait(max(0.0, self.interval - self.last_pass_seconds))
            self._wake.clear()

    def run_once(self) -> None:
        """List containers (every endpoint, in parallel), then probe each running container in
        the pool: a container whose probe is still in flight (slow, or hung until its exec
        deadline) is skipped this pass, so one stuck container never delays the others."""
        self.fleet.refresh()
        containers = {c.key: c for c in self.fleet.containers()}
        down = {u.endpoint for u in self.fleet.unreachable if u.container is None}
        for endpoint in self.fleet.endpoints:
            self.state.set_endpoint(endpoint.name, endpoint.name not in down)
        for key, c in containers.items():
            if not c.running:
                self._publish(c, [_container_row(c, f"{c.state}" + (f" ({c.exit_code})" if c.exit_code is not None else ""))])
            elif key not in self._in_flight:
                self._in_flight.add(key)
                self._pool.submit(self._probe, c)
        if down:
            # The endpoints that did not answer keep their containers' last rows (marked by
            # hermes_endpoint_reachable); the rest of the fleet forgets containers that are gone.
            containers |= {k: None for k in self.state.container_keys() if k.split("/", 1)[0] in down}
        self.state.forget_missing(set(containers))
        self.state.touch()

    def _probe(self, c) -> None:
        try:
            snap = self.fleet.probe(c)
            if not snap.booted and not snap.slots:
                rows = [_container_row(c, "booting")]
            else:
                rows = [_gateway_row(c, snap.slots[p], snap.orphans(p)) for p in sorted(snap.slots)]
        except Exception as exc:  # noqa: BLE001 - reported in the row, as ps does
            from hermesctl.errors import ExecTimeoutError, describe
            row = _container_row(c, "timeout" if isinstance(exc, ExecTimeoutError) else "error")
            row.error = describe(exc)
            rows = [row]
        finally:
            self._in_flight.discard(c.key)
        self._publish(c, rows)

    def _publish(self, c, rows) -> None:
        info = ContainerInfo(endpoint=c.endpoint, name=c.name, service=c.service,
                             running=c.running, health=c.health)
        self.state.set_container(c.key, info, [asdict(r) | {"target": r.target} for r in rows])

    def _docker_events(self, endpoint) -> None:
        """One Docker events stream per endpoint; reopened when it breaks."""
        while not self._stop.is_set():
            try:
                for event in endpoint.client.api.events(decode=True, filters={
                        "type": "container", "label": [f"{LABEL}=true"]}):
                    if event.get("status") in DOCKER_EVENTS or event.get("Action") in DOCKER_EVENTS:
                        self._wake.set()
                    if self._stop.is_set():
                        return
            except Exception:  # noqa: BLE001 - the daemon went away: retry, the refresh reports it
                self._wake.set()
                self._stop.wait(1.0)
