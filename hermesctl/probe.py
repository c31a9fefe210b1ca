"""The probe: one exec per container that reports every gateway slot at once.

The script is a constant (no user input is ever spliced into it); it calls s6 by absolute path
and prints one `key value` line per fact, which `parse_probe` turns into a ContainerSnapshot.
"""
import base64
import binascii
from dataclasses import dataclass, field

from hermesctl.models import (SVSTAT_FIELDS, Death, GatewayProcess, GatewayState, Operation, Slot, SvStatus,
                              tai64n_seconds)

PROBE_SCRIPT = r"""
H=${HERMES_HOME:-/opt/data}
echo "now $(echo | /command/s6-tai64n 2>/dev/null | cut -c1-25)"
echo "epoch $(date +%s.%N)"
echo "comm $(cat /proc/1/comm 2>/dev/null)"
[ -e /run/s6/stage2-done ] && echo "booted 1" || echo "booted 0"
for d in /run/service/gateway-*; do
  [ -d "$d" ] || continue
  p=${d#/run/service/gateway-}
  if [ "$p" = default ]; then pd=$H; else pd=$H/profiles/$p; fi
  echo "slot $p"
  s=$(/command/s6-svstat -o FIELDS "$d" 2>/dev/null) && echo "svstat $s" || echo "svstat -"
  echo "deaths $(/command/s6-svdt -n 10 "$d" 2>/dev/null | tr '\n' '|')"
  echo "state $(base64 -w0 "$pd/gateway_state.json" 2>/dev/null)"
  echo "ops $(head -c 2048 "$H/.hermesctl/operations/$p" 2>/dev/null | tr '\n' '|')"
done
# Gateway processes, supervised or not ([ ] keeps this script's own text from matching).
ps -e -o pid=,ppid=,args= 2>/dev/null | grep -e 'gateway[ ]run' | while read -r pid ppid args; do
  echo "gwproc $pid $ppid $args"
done
echo "end"
""".replace("FIELDS", SVSTAT_FIELDS)


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _decode_state(raw: str) -> GatewayState | None:
    if not raw:
        return None
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return GatewayState(corrupt=True)
    return GatewayState.parse(text)


@dataclass
class ContainerSnapshot:
    pid1: str = ""
    booted: bool = False
    slots: dict[str, Slot] = field(default_factory=dict)
    complete: bool = False  # the probe ran to its end
    processes: list[GatewayProcess] = field(default_factory=list)

    def orphans(self, profile: str) -> list[int]:
        """Gateway processes of `profile` that its slot's supervisor does not run: neither the
        supervised pid nor a child of it (nor of another one of these)."""
        slot = self.slots.get(profile)
        supervised = slot.status.pid if slot and slot.status else None
        mine = [g for g in self.processes if g.profile == profile]
        pids = {g.pid for g in mine}
        return [g.pid for g in mine if g.pid != supervised and g.ppid != supervised and g.ppid not in pids]


def parse_probe(text: str) -> ContainerSnapshot:
    snap = ContainerSnapshot()
    now = None
    epoch = None
    current: dict | None = None

    def flush() -> None:
        if current is not None:
            snap.slots[current["profile"]] = Slot(now=now, epoch=epoch, **current)

    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "now":
            now = tai64n_seconds(value.strip())
        elif key == "epoch":
            epoch = _float_or_none(value.strip())
        elif key == "comm":
            snap.pid1 = value.strip()
        elif key == "booted":
            snap.booted = value.strip() == "1"
        elif key == "slot":
            flush()
            current = {"profile": value.strip(), "status": None, "state": None, "deaths": (), "operations": ()}
        elif current is not None and key == "svstat":
            current["status"] = None if value.strip() == "-" else SvStatus.parse(value)
        elif current is not None and key == "deaths":
            current["deaths"] = tuple(Death.parse_tally(value))
        elif current is not None and key == "state":
            current["state"] = _decode_state(value.strip())
        elif current is not None and key == "ops":
            current["operations"] = tuple(Operation.parse_records(value))
        elif key == "gwproc":
            process = GatewayProcess.parse(value)
            if process:
                snap.processes.append(process)
        elif key == "end":
            flush()
            current = None
            snap.complete = True
    return snap
