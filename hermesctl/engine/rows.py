"""The rows of `ps` and of the server's table: one per container x gateway, and one per instance
without a gateway answer (stopped, booting, timeout, pending, unreachable, scaled-to-0), judged
the same way everywhere: from one `status` per container (collect) or from the live fleet's
snapshots (live_rows)."""
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from hermesctl.agent.probe import ContainerSnapshot
from hermesctl.backends.docker.fleet import Fleet, Unreachable
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.engine import journal
from hermesctl.model.slots import Slot
from hermesctl.model.targets import Target, match_profiles
from hermesctl.render.ps_rows import NO_SLOT, ORPHANED, GatewayRow, document, endpoints_asked

if TYPE_CHECKING:
    from hermesctl.backends.docker.streams import LiveFleet


def gateway_row(c: HermesContainer, slot: Slot, orphans: list[int]) -> GatewayRow:
    """A gateway's row, judged once (models.Slot): ps, serve, probe and the live table read it."""
    s, st = slot.status, slot.state
    return GatewayRow(
        endpoint=c.endpoint, container=c.name, service=c.service, profile=slot.profile,
        state=ORPHANED if orphans else slot.run_state, pid=s.pid if s else None, orphan_pids=orphans or None,
        uptime_s=s.seconds if s and s.up else None,
        wanted=None if s is None else ("up" if s.wanted_up else "down"),
        crash_looping=slot.crash_looping, parked=slot.parked,
        exit_code=s.exit_code if s and not s.up else None, deaths_recent=slot.recent_deaths,
        last_death=slot.last_death,
        gateway_state="corrupt" if st and st.corrupt else (st.gateway_state if st else None),
        desired_state=st.desired_state if st else None,
        platforms=slot.platforms if st else None, health=c.health, engine=c.engine)


def _unslotted_row(c: HermesContainer, profile: str) -> GatewayRow:
    """A profile the reconciler would give a slot that has none yet (made since the boot):
    listed so that it is not invisible; `gateway start` registers and starts it."""
    return GatewayRow(endpoint=c.endpoint, container=c.name, service=c.service, profile=profile,
                      state=NO_SLOT, health=c.health, engine=c.engine)


def _with_unslotted(c: HermesContainer, gateways: list[GatewayRow], unslotted: list[str]) -> list[GatewayRow]:
    """The gateway rows and the `no slot` rows, in profile order."""
    return sorted(gateways + [_unslotted_row(c, p) for p in unslotted], key=lambda r: r.profile or "")


def _container_row(c: HermesContainer, state: str) -> GatewayRow:
    return GatewayRow(endpoint=c.endpoint, container=c.name, service=c.service,
                      profile=None, state=state, health=c.health, exit_code=c.exit_code, engine=c.engine)


def _stopped_row(c: HermesContainer) -> GatewayRow:
    """A container that does not run, or an instance with no container (a pending task)."""
    code = f" ({c.exit_code})" if c.exit_code is not None else ""
    row = _container_row(c, f"{c.state}{code}")
    if not c.id:  # wanted by the orchestrator, no container here: say why
        row.error = c.status
    return row


def collect(fleet: Fleet, targets: list[Target]) -> list[GatewayRow]:
    containers = fleet.containers()
    selected_by = {}
    if targets:
        selected_by = {t: {c.key for c in fleet.containers_matching(t)} for t in targets}
        wanted = set().union(*selected_by.values())
        containers = [c for c in containers if c.key in wanted]
    running = [c for c in containers if c.running]
    snapshots = {o.item.key: o for o in fleet.probe_all(running)}
    rows: list[GatewayRow] = []
    for c in containers:
        if not c.running:
            rows.append(_stopped_row(c))
            continue
        outcome = snapshots[c.key]
        if not outcome.ok:
            entry = fleet.did_not_answer(c, outcome.error)
            row = _container_row(c, "timeout" if entry.reason == "timeout" else "error")
            row.error = entry.message
            rows.append(row)
            continue
        snap = outcome.value
        profiles = _profiles_for(c, snap, selected_by)
        if not snap.booted and not snap.slots:
            rows.append(_container_row(c, "booting"))
        rows.extend(_with_unslotted(c, [gateway_row(c, snap.slots[p], snap.orphans(p)) for p in profiles],
                                    _profiles_for(c, snap, selected_by, snap.unslotted)))
    return rows


def ps_document(fleet: Fleet, targets: list[Target]) -> dict:
    """What a direct `ps` shows, as its document (ps_rows.document): the rows, what did not
    answer, and the operations stopped midway (those of the fleet's endpoints and compose
    project, or of the selected instances)."""
    rows = collect(fleet, targets)
    selected = [c for c in fleet.containers() if any(c.name == r.container for r in rows)]
    interrupted = journal.interrupted_in(fleet, journal.instance_names(selected) if targets else None)
    unreachable = [asdict(u) for u in fleet.unreachable]
    return document(rows, endpoints=endpoints_asked([e.name for e in fleet.endpoints], unreachable),
                    unreachable=unreachable, interrupted=[journal.describe(r) for r in interrupted])


def _profiles_for(c: HermesContainer, snap: ContainerSnapshot, selected_by: dict,
                  among: list[str] | None = None) -> list[str]:
    """The profiles (of the slots, or of `among`) the targets select in this container."""
    among = list(snap.slots) if among is None else among
    if not selected_by:
        return sorted(among)
    chosen: set[str] = set()
    for t, keys in selected_by.items():
        if c.key in keys:
            chosen.update(match_profiles(t, c.name, among, strict=False))
    return sorted(chosen)


def live_rows(live: "LiveFleet") -> list[GatewayRow]:
    """The table's rows from the live fleet's snapshots (no exec), judged as of now."""
    return live_answer(live)[0]


def live_answer(live: "LiveFleet") -> tuple[list[GatewayRow], list[dict]]:
    """The rows from the live fleet's snapshots (no exec), judged as of now, and the containers
    that did not answer (fleet.Unreachable as dicts): a running container whose stream failed
    or whose first answer did not come within the exec deadline is a `timeout`/`error` row and
    an entry, as a direct `ps` reports one whose `status` failed (collect)."""
    rows: list[GatewayRow] = []
    unreachable: list[dict] = []
    now = time.monotonic()
    order = {e.name: i for i, e in enumerate(live.fleet.endpoints)}
    with live.lock:
        # As a direct `ps` lists them: endpoint by endpoint, in the order given, each by name.
        items = sorted(live.containers.values(), key=lambda c: (order.get(c.endpoint, len(order)), c.endpoint, c.name))
        snapshots = dict(live.snapshots)
        received = dict(live.received)
        unanswered = dict(live.unanswered)
    for c in items:
        snap = snapshots.get(c.key)
        entry = unanswered.get(c.key)
        if c.running and entry is not None:
            row = _container_row(c, "timeout" if entry.reason == "timeout" else "error")
            row.error = entry.message
            rows.append(row)
            unreachable.append(asdict(entry))
            continue
        if not c.running:
            rows.append(_stopped_row(c))
            missing = Unreachable.wanted_missing(c)
            if missing is not None:  # as listing it reports it to a direct `ps`
                unreachable.append(asdict(missing))
            continue
        if snap is None:
            rows.append(_container_row(c, "connecting"))
            continue
        if not snap.booted and not snap.slots:
            rows.append(_container_row(c, "booting"))
        gateways = []
        for p in live.profiles_of(c, snap):
            # Judged as of now, not as of the answer: uptimes advance, crash loops and recent
            # deaths age out, exactly as a fresh `status` would say if nothing changed since.
            slot = snap.slots[p].aged(now - received.get(f"{c.key}/{p}", now))
            gateways.append(gateway_row(c, slot, snap.orphans(p)))
        rows.extend(_with_unslotted(c, gateways, live.unslotted_of(c, snap)))
    return rows, unreachable
