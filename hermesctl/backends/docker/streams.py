"""The live fleet: one held-open exec stream per container, plus Docker's events per endpoint.

In every running container the agent's `watch` reports each change as it happens (a JSON line:
the whole status first, then one line per changed slot; see hermes_supervise.watcher). The
Docker events API reports containers starting, stopping, dying and changing health. `LiveFleet`
keeps the latest snapshot of every container from both and turns every difference into an
`Event`; `hermesctl events` prints them, `hermesctl ps --watch` redraws its table from the
snapshots. No exec per refresh: a query over a stream that is already open costs nothing.

A stream that breaks while its container still runs is reopened (its first line, the whole
status, is compared with what we knew, so a change made meanwhile is still reported); a
container that starts is picked up by its Docker event. Every thread is a daemon: hermesctl ends
with os._exit, and an in-container watcher ends as soon as its stdin closes (Docker closes it when
the client connection goes).
"""
import fnmatch
import queue
import threading
import time
from dataclasses import dataclass, field

from hermesctl.agent import client as agent
from hermesctl.agent.contract import LIFELINE_OPTION
from hermesctl.agent.probe import ContainerSnapshot, slot_from_dict, snapshot_from_status, unslotted_from
from hermesctl.backends.docker.execs import HERMES_USER
from hermesctl.backends.docker.fleet import Fleet, Unreachable, candidates
from hermesctl.backends.docker.inventory import COMPOSE_PROJECT, LABEL, WORKING_DIR, HermesContainer, list_containers
from hermesctl.core.errors import ExecTimeoutError, HermesctlError, describe
from hermesctl.model.names import is_profile_name
from hermesctl.model.slots import CRASH_DEATHS, GatewayProcess, Slot
from hermesctl.model.targets import Target, match_profiles, selected_names

REOPEN_DELAYS_S = (0.1, 0.25, 0.5, 1.0, 2.0)  # backoff between attempts to reopen a stream
# Docker event actions we report (exec_* and the like are our own execs' noise).
CONTAINER_ACTIONS = ("create", "start", "restart", "kill", "die", "stop", "pause", "unpause", "destroy",
                     "oom", "health_status")


@dataclass
class Event:
    """One change: a gateway's (type gateway), a container's (type container), or a stream's."""
    endpoint: str
    container: str
    type: str
    action: str
    profile: str | None = None
    attributes: dict = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    @property
    def target(self) -> str:
        return self.container if self.profile is None else f"{self.container}:{self.profile}"

    def document(self) -> dict:
        """One JSON line, like `docker events --format json`: type, action, actor, time."""
        return {"schema": "hermesctl.event/v1", "time": self.time, "timeNano": int(self.time * 1e9),
                "type": self.type, "action": self.action, "endpoint": self.endpoint,
                "container": self.container, "profile": self.profile, "target": self.target,
                "attributes": self.attributes}

    def line(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.time)) + f".{int(self.time % 1 * 1e6):06d}"
        attrs = ", ".join(f"{k}={v}" for k, v in self.attributes.items() if v is not None)
        return f"{stamp} {self.type} {self.action} {self.target}" + (f" ({attrs})" if attrs else "")


def _slot_facts(slot: Slot) -> dict:
    s, st = slot.status, slot.state
    return {"state": slot.run_state, "pid": s.pid if s else None,
            "wanted": None if s is None else ("up" if s.wanted_up else "down"),
            "exit_code": s.exit_code if s and not s.up else None, "signal": s.signal if s and not s.up else None,
            "gateway_state": st.gateway_state if st else None, "desired_state": st.desired_state if st else None}


def gateway_changes(old: Slot | None, new: Slot | None) -> list[tuple[str, dict]]:
    """What happened to one gateway between two looks: (action, attributes), in order."""
    if old is None and new is None:
        return []
    if new is None:
        return [("remove", {})]
    facts = _slot_facts(new)
    if old is None:
        return [("add", facts)]
    changes = []
    o, n = old.status, new.status
    if (o is None) != (n is None):
        changes.append(("supervised" if n else "unsupervised", facts))
    elif o and n:
        died = {**facts, "death": new.last_death}  # by what happened: a signal, an exit, hermesctl
        if o.up and not n.up:
            changes.append(("down", died))
        elif not o.up and n.up:
            changes.append(("up", facts))
        elif o.up and n.up and o.pid != n.pid:
            changes.append(("restart", died))
        elif not o.up and not n.up and (n.exit_code, n.signal, n.seconds < o.seconds) != (o.exit_code, o.signal, False):
            changes.append(("down", died))  # came up and died between two looks (a crash loop)
        if o.wanted_up != n.wanted_up:
            changes.append(("want-up" if n.wanted_up else "want-down", facts))
    # Down while wanted up is a crash loop by definition, but for the second s6 waits before a
    # restart: only ps's third criterion (repeated unplanned deaths) or parking is news here.
    looping = new.crash_looping and new.recent_deaths >= CRASH_DEATHS and not old.crash_looping
    if looping or (new.parked and not old.parked):
        changes.append(("parked" if new.parked else "crash-loop", facts))
    before = _slot_facts(old)
    if (before["gateway_state"], before["desired_state"]) != (facts["gateway_state"], facts["desired_state"]):
        changes.append(("state", facts))
    if len(new.operations) > len(old.operations) or (new.operations and old.operations
                                                       and new.operations[-1] != old.operations[-1]):
        changes.append(("operation", {**facts, "operation": new.operations[-1].action}))
    return changes


class LiveFleet:
    """Snapshots of the selected containers, kept current; every change also goes to `events`."""

    def __init__(self, fleet: Fleet, targets: list[Target]):
        self.fleet = fleet
        self.targets = targets
        self.events: queue.Queue[Event] = queue.Queue()
        self.lock = threading.Lock()
        self.containers: dict[str, HermesContainer] = {}
        self.snapshots: dict[str, ContainerSnapshot] = {}
        self.received: dict[str, float] = {}          # key/profile -> monotonic time of its facts
        self._streaming: set[str] = set()               # containers with a stream thread
        self._started: dict[str, threading.Event] = {}  # set when Docker says the container started
        self.ready = threading.Event()                  # every first snapshot is in
        self._orphans: dict[str, tuple[int, ...]] = {}  # key/profile -> orphan pids last reported
        self._stopped = threading.Event()
        self._closers: dict[int, object] = {}           # what stop() closes: watch sockets, event streams
        # key -> why a running container did not answer: its stream could not be (re)opened, or
        # its first answer did not come within the exec deadline. Shown as a direct `ps` shows a
        # failed `status` (engine.rows.live_answer) until its next line.
        self.unanswered: dict[str, Unreachable] = {}

    # --- selection -------------------------------------------------------------------------
    def _selected(self, c: HermesContainer) -> bool:
        if not self.targets:
            return True
        return any(self._selects(t, c) for t in self.targets)

    def _selects(self, t: Target, c: HermesContainer) -> bool:
        """The rule every command matches targets by (targets.selected_names), over the
        containers listed at the start, those picked up since, and this one."""
        if t.endpoint is not None and not fnmatch.fnmatchcase(c.endpoint, t.endpoint):
            return False
        known = {x.key: x for x in self.fleet.containers()} | dict(self.containers) | {c.key: c}
        try:
            return c.name in selected_names(t.container, candidates(list(known.values())))
        except HermesctlError:  # an id prefix grown ambiguous: selects nothing new
            return False

    def unslotted_of(self, c: HermesContainer, snap: ContainerSnapshot) -> list[str]:
        """The profiles without a slot the targets select (for `no slot` rows)."""
        if not self.targets:
            return list(snap.unslotted)
        return sorted({p for t in self.targets if self._selects(t, c)
                       for p in match_profiles(t, c.name, snap.unslotted, strict=False)})

    def profiles_of(self, c: HermesContainer, snap: ContainerSnapshot) -> list[str]:
        if not self.targets:
            return sorted(snap.slots)
        chosen: set[str] = set()
        for t in self.targets:
            if self._selects(t, c):
                chosen.update(match_profiles(t, c.name, list(snap.slots), strict=False))
        return sorted(chosen)

    # --- start -----------------------------------------------------------------------------
    def start(self) -> None:
        """List the containers (targets must match something now, as for any command), open a
        stream to each running one and subscribe to every endpoint's events."""
        since = time.time()
        for t in self.targets:
            self.fleet.containers_matching(t)  # a target that matches nothing fails here
        for c in self.fleet.containers():
            if self._selected(c):
                self.containers[c.key] = c
        firsts = []
        for c in list(self.containers.values()):
            if c.running:
                firsts.append((c, self._open(c)))
        for endpoint in self.fleet.endpoints:
            threading.Thread(target=self._docker_events, args=(endpoint, since), daemon=True,
                             name=f"events-{endpoint.name}").start()
        for c, first in firsts:
            if not first.wait(self.fleet.exec_timeout):
                self.did_not_answer(c, ExecTimeoutError(
                    f"{c.name}: no answer within {self.fleet.exec_timeout:g}s (watch)"))
        self.ready.set()

    def did_not_answer(self, c: HermesContainer, exc: BaseException) -> None:
        """Record that `c` did not answer (as Fleet.did_not_answer for a direct command)."""
        with self.lock:
            self.unanswered[c.key] = Unreachable.of(c, exc)

    def stop(self) -> None:
        """Close every stream (each in-container watcher then ends); no thread reopens one."""
        self._stopped.set()
        for started in list(self._started.values()):
            started.set()
        for close in list(self._closers.values()):
            try:
                close()
            except Exception:  # noqa: BLE001 - already closed or broken: closed enough
                pass

    def _open(self, c: HermesContainer) -> threading.Event:
        """A stream thread for `c` (one per container while it exists); returns an event set at
        its first answer."""
        first = threading.Event()
        self._started.setdefault(c.key, threading.Event()).set()
        if c.key in self._streaming:
            first.set()
            return first
        self._streaming.add(c.key)
        threading.Thread(target=self._stream, args=(c.key, first), daemon=True, name=f"watch-{c.name}").start()
        return first

    # --- one container's stream --------------------------------------------------------------
    def _stream(self, key: str, first: threading.Event) -> None:
        attempt = 0
        while True:
            c = self.containers.get(key)
            if c is None or self._stopped.is_set():  # destroyed, or stopped: this thread's work is done
                with self.lock:
                    self._streaming.discard(key)
                first.set()
                return
            opened, broke = False, None
            try:
                for doc in self._watch_lines(c):
                    if not opened:
                        opened = True
                        if attempt:
                            self._emit(Event(c.endpoint, c.name, "stream", "reopen"))
                        attempt = 0
                    self._apply(c, doc)
                    first.set()
                error = "stream ended"
            except HermesctlError as exc:  # an answer that is not the contract (an older image)
                self._emit(Event(c.endpoint, c.name, "stream", "failed", attributes={"error": describe(exc)}))
                self.did_not_answer(c, exc)
                first.set()
                self._started[key].clear()
                self._started[key].wait()  # tried again when the container starts again
                continue
            except Exception as exc:  # noqa: BLE001 - a broken stream is reopened, whatever broke it
                error, broke = describe(exc), exc
            if self._stopped.is_set():
                continue
            running = self._still_running(key)
            if running and broke is not None and not opened:
                # Not even a first line: the container does not answer (its last answer, if
                # any, is not current). A stream that answered and then broke is reopened
                # quietly: what it said stands until the reopened one says otherwise.
                self.did_not_answer(c, broke)
            first.set()  # after the above: the first look (start) then includes it
            if not running:
                # Docker's `die` cleared it; its `start` sets it again.
                self._started[key].wait()
                time.sleep(0.1)
                attempt = 0
                continue
            self._emit(Event(c.endpoint, c.name, "stream", "lost", attributes={"error": error}))
            time.sleep(REOPEN_DELAYS_S[min(attempt, len(REOPEN_DELAYS_S) - 1)])
            attempt += 1

    def _watch_lines(self, c: HermesContainer):
        """The agent's `watch` over one exec, line by line (JSON objects)."""
        endpoint = self.fleet.endpoint(c.endpoint)
        with endpoint.in_flight:  # opening counts against the endpoint's bound; holding it does not
            # stdin attached and never written: when we go (Ctrl-C, kill -9, a dropped connection),
            # Docker closes it and the watcher ends (contract.LIFELINE_OPTION).
            stream = endpoint.daemon.exec_stream(c.id, agent.argv("watch", LIFELINE_OPTION), user=HERMES_USER,
                                                 stderr=False, stdin=True)
        self._closers[id(stream)] = stream.close
        try:
            if self._stopped.is_set():  # stop() came while this one was opening
                return
            yield from agent.stream_documents(stream, where=c.name)
        finally:
            self._closers.pop(id(stream), None)
            stream.close()

    def _still_running(self, key: str) -> bool:
        c = self.containers.get(key)
        if c is None:
            return False
        try:
            state = self.fleet.endpoint(c.endpoint).daemon.inspect_container(c.id)["State"]
        except Exception:  # noqa: BLE001 - gone or unreachable: not running as far as we can tell
            return False
        return bool(state.get("Running")) and not state.get("Paused")

    def _apply(self, c: HermesContainer, doc: dict) -> None:
        """One line of a watcher: the whole status, or one change."""
        kind = doc.get("event")
        now = doc.get("now")
        with self.lock:
            self.unanswered.pop(c.key, None)  # it answers
            old = self.snapshots.get(c.key)
            if kind == "snapshot":
                new = snapshot_from_status(doc)
                if old is None and not self.ready.is_set():  # the fleet as we found it: a baseline
                    self.snapshots[c.key] = new
                    self._mark(c.key, new.slots)
                    return
                old = old or ContainerSnapshot()  # a container that appeared: every slot is new
                changed = {p for p in set(old.slots) | set(new.slots)}
                self.snapshots[c.key] = new
                self._mark(c.key, new.slots)
            elif old is None:
                return
            elif kind in ("slot", "slot-added", "slot-removed") and not is_profile_name(doc.get("profile")):
                return  # not a profile (doctor says so): never a row, never an event
            elif kind in ("slot", "slot-added"):
                p = doc.get("profile")
                new = _copy(old)
                new.slots[p] = slot_from_dict(p, doc.get("slot") or {}, now)
                new.now = now
                changed = {p}
                self.snapshots[c.key] = new
                self._mark(c.key, {p: None})
            elif kind == "slot-removed":
                p = doc.get("profile")
                new = _copy(old)
                new.slots.pop(p, None)
                changed = {p}
                self.snapshots[c.key] = new
            elif kind == "processes":
                new = _copy(old)
                new.processes = GatewayProcess.from_list(doc.get("processes"))
                self.snapshots[c.key] = new
                changed = set()
                for p in sorted(set(new.slots) & set(self.profiles_of(c, new))):
                    # Against what we last reported, at the process scan only: between a gateway's
                    # death and the next scan its old pid would look orphaned for a moment.
                    orphans, known = tuple(new.orphans(p)), self._orphans.get(f"{c.key}/{p}", ())
                    if orphans != known:
                        self._orphans[f"{c.key}/{p}"] = orphans
                        self._emit(Event(c.endpoint, c.name, "gateway", "orphaned" if orphans else "orphans-gone",
                                         p, {"pids": ",".join(map(str, orphans)) or None}))
            elif kind == "unslotted":
                new = _copy(old)
                new.unslotted = unslotted_from(doc.get("unslotted"), new.slots)
                self.snapshots[c.key] = new
                return
            elif kind == "boot":
                new = _copy(old)
                new.booted = bool(doc.get("booted"))
                self.snapshots[c.key] = new
                self._emit(Event(c.endpoint, c.name, "container", "booted" if new.booted else "booting"))
                return
            else:  # heartbeat, or a kind a newer agent reports
                return
            selected = set(self.profiles_of(c, new)) | set(self.profiles_of(c, old))
            for p in sorted(changed & selected):
                for action, attributes in gateway_changes(old.slots.get(p), new.slots.get(p)):
                    self._emit(Event(c.endpoint, c.name, "gateway", action, p, attributes))

    def _mark(self, key: str, slots) -> None:
        stamp = time.monotonic()
        for p in slots:
            self.received[f"{key}/{p}"] = stamp

    def _emit(self, event: Event) -> None:
        self.events.put(event)

    # --- Docker events -----------------------------------------------------------------------
    def _docker_events(self, endpoint, since: float) -> None:
        attempt = 0
        while not self._stopped.is_set():
            try:
                stream = endpoint.daemon.events(since=int(since),
                                                filters={"type": ["container"], "label": self._event_labels()})
                self._closers[id(endpoint)] = stream.close
                attempt = 0
                for ev in stream:
                    since = ev.get("time", since)
                    self._container_event(endpoint, ev)
            except Exception as exc:  # noqa: BLE001 - the daemon went away: say so, try again
                if self._stopped.is_set():
                    return
                self._emit(Event(endpoint.name, "", "stream", "lost", attributes={"error": describe(exc)}))
            time.sleep(REOPEN_DELAYS_S[min(attempt, len(REOPEN_DELAYS_S) - 1)])
            attempt += 1

    def _event_labels(self) -> list[str]:
        """Docker's events for the fleet's containers only (all labels must match): with
        --project or a compose directory, other projects' containers are not ours to report."""
        labels = [f"{LABEL}=true"]
        if self.fleet.project:
            labels.append(f"{COMPOSE_PROJECT}={self.fleet.project}")
        elif self.fleet.project_dir:
            labels.append(f"{WORKING_DIR}={self.fleet.project_dir}")
        return labels

    def _container_event(self, endpoint, ev: dict) -> None:
        action = str(ev.get("Action") or ev.get("status") or "")
        if not action.startswith(CONTAINER_ACTIONS):
            return
        actor = ev.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        name = attrs.get("name", "")
        cid = actor.get("ID") or ev.get("id") or ""
        key = f"{endpoint.name}/{name}"
        attributes = {k: attrs[k] for k in ("exitCode", "signal", "image") if k in attrs}
        if action.startswith("health_status"):
            action, _, health = action.partition(": ")
            attributes["health"] = health
        c = self.containers.get(key)
        if c is None:
            c = HermesContainer(endpoint=endpoint.name, id=cid, name=name, state="created", status="",
                                labels=attrs, engine=endpoint.engine)
            if not self._selected(c):
                return
        self._emit(Event(endpoint.name, name, "container", action, attributes=attributes,
                         time=ev.get("timeNano", 0) / 1e9 or time.time()))
        if action in ("die", "stop", "pause", "destroy"):
            self._started.setdefault(key, threading.Event()).clear()
        if action in ("start", "restart", "unpause", "die", "stop", "destroy", "health_status", "pause"):
            self._refresh(endpoint, key, c, action)

    def _refresh(self, endpoint, key: str, c: HermesContainer, action: str) -> None:
        """The container's listing again (state, health); a started one gets its stream."""
        try:
            listed = list_containers(endpoint, project=self.fleet.project, project_dir=self.fleet.project_dir)
        except Exception:  # noqa: BLE001 - the next event will tell
            return
        fresh = next((x for x in listed if x.name == c.name), None)
        with self.lock:
            if fresh is None:  # destroyed: its stream thread wakes up and ends
                self.containers.pop(key, None)
                self.snapshots.pop(key, None)
                self._started.setdefault(key, threading.Event()).set()
                return
            self.containers[key] = fresh
        if fresh.running:
            self._open(fresh)


def _copy(snap: ContainerSnapshot) -> ContainerSnapshot:
    return ContainerSnapshot(pid1=snap.pid1, booted=snap.booted, slots=dict(snap.slots), complete=snap.complete,
                             processes=list(snap.processes), now=snap.now, invalid_slots=list(snap.invalid_slots),
                             unslotted=list(snap.unslotted))

