"""A container's state, from one exec of the agent's `status` (hermes-contract/v1): every
gateway slot, the boot, PID 1 and the gateway processes. `snapshot_from_status` is also what
the live view (hermesctl.backends.docker.streams) applies each watched change with."""
from dataclasses import dataclass, field

from hermesctl.model.names import is_profile_name
from hermesctl.model.slots import Death, GatewayProcess, GatewayState, Operation, Slot, SvStatus


@dataclass
class ContainerSnapshot:
    pid1: str = ""
    booted: bool = False
    slots: dict[str, Slot] = field(default_factory=dict)
    complete: bool = False  # a whole answer arrived
    processes: list[GatewayProcess] = field(default_factory=list)
    now: float | None = None
    # Slots whose name is not a profile name (hermes can create any directory in /run/service):
    # never treated as profiles; `doctor` reports them.
    invalid_slots: list[str] = field(default_factory=list)
    # Profiles that qualify for a slot (the reconciler's rule) and have none yet: `ps` lists them
    # (`no slot`), `gateway start` registers them.
    unslotted: list[str] = field(default_factory=list)

    def orphans(self, profile: str) -> list[int]:
        """Gateway processes of `profile` that its slot's supervisor does not run: not a child of
        the slot's s6-supervise, neither the supervised pid nor a child of it (nor of another
        one of these). The parent is the agent's word; the pid in svstat can be a moment older
        than the process list (a restart in between)."""
        slot = self.slots.get(profile)
        supervised = slot.status.pid if slot and slot.status else None
        service = f"gateway-{profile}"
        mine = [g for g in self.processes if g.profile == profile]
        pids = {g.pid for g in mine}
        return [g.pid for g in mine if g.supervisor != service and g.pid != supervised
                and g.ppid != supervised and g.ppid not in pids]


def slot_from_dict(profile: str, d: dict, now: float | None) -> Slot:
    raw_state = d.get("gateway_state")
    if d.get("gateway_state_corrupt"):
        state = GatewayState(corrupt=True)
    else:
        state = None if raw_state is None else GatewayState.from_object(raw_state)
    status = d.get("status")
    return Slot(profile=profile, status=SvStatus.from_dict(status) if status else None, state=state,
                deaths=tuple(Death.from_list(d.get("deaths"))), now=now,
                operations=tuple(Operation.from_list(d.get("operations"))))


def snapshot_from_status(doc: dict) -> ContainerSnapshot:
    """The agent's `status` document (or a watcher's `snapshot` line) as a ContainerSnapshot."""
    now = doc.get("now") if isinstance(doc.get("now"), (int, float)) else None
    slots = doc.get("slots") if isinstance(doc.get("slots"), dict) else {}
    return ContainerSnapshot(
        pid1=str(doc.get("pid1", "")), booted=bool(doc.get("booted")),
        slots={p: slot_from_dict(p, s, now) for p, s in sorted(slots.items())
               if isinstance(s, dict) and is_profile_name(p)},
        complete=True, processes=GatewayProcess.from_list(doc.get("processes")), now=now,
        invalid_slots=sorted(p for p in slots if not is_profile_name(p)),
        unslotted=unslotted_from(doc.get("unslotted"), slots))


UNSLOTTED_MAX = 4096  # the agent looks at no more (contract.UNSLOTTED_SCAN)


def unslotted_from(value, slots) -> list[str]:
    """The agent's `unslotted[]` (hermes-writable names): profile names only, none that has a
    slot, bounded; anything else is dropped. An older agent sends none."""
    if not isinstance(value, list):
        return []
    return sorted({p for p in value[:UNSLOTTED_MAX] if is_profile_name(p) and p not in slots})
