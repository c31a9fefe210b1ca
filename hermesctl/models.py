"""Small models of what we read from containers: s6-svstat, s6-svdt, gateway_state.json and
container-boot.log. Parsers are strict about shape and lenient about content."""
import json
import re
from dataclasses import dataclass, field

# s6-svstat -o fields, in this order, in the probe script.
SVSTAT_FIELDS = "up,wantedup,normallyup,pid,exitcode,signal,updownfor"
CRASH_WINDOW_S = 60     # unplanned deaths counted over this window ...
CRASH_DEATHS = 3        # ... this many or more, while barely up, is a crash loop
FATAL_CONFIG_EXIT = 78  # hermes gateway run: fatal configuration; the slot parks itself


def tai64n_seconds(label: str) -> float | None:
    """Seconds of a TAI64N label (`@4000...`, 24 hex digits); comparable between labels."""
    if not re.fullmatch(r"@[0-9a-f]{24}", label):
        return None
    return int(label[1:17], 16) - (1 << 62) + int(label[17:], 16) / 1e9


@dataclass(frozen=True)
class SvStatus:
    up: bool
    wanted_up: bool
    normally_up: bool
    pid: int | None
    exit_code: int | None
    signal: str | None
    seconds: int  # in the current up/down state

    @classmethod
    def parse(cls, line: str) -> "SvStatus":
        parts = line.split()
        if len(parts) != 7:
            raise ValueError(f"unexpected s6-svstat output: {line!r}")
        up, wanted, normally, pid, code, sig, secs = parts
        return cls(
            up=up == "true",
            wanted_up=wanted == "true",
            normally_up=normally == "true",
            pid=int(pid) if int(pid) > 0 else None,
            exit_code=int(code) if int(code) >= 0 else None,
            signal=None if sig == "NA" else sig,
            seconds=int(secs),
        )


@dataclass(frozen=True)
class Death:
    at: float  # TAI seconds
    how: str   # "exitcode 1", "signal SIGKILL"

    @classmethod
    def parse_tally(cls, text: str) -> list["Death"]:
        deaths = []
        for line in text.replace("|", "\n").splitlines():
            label, _, how = line.strip().partition(" ")
            at = tai64n_seconds(label)
            if at is not None:
                deaths.append(cls(at, how))
        return deaths


@dataclass(frozen=True)
class Operation:
    """A start/stop/restart by hermesctl, as `hermes-slots operate` recorded it (Unix seconds).
    The file is hermes-writable: malformed lines are skipped, never trusted further."""
    start: float
    until: float
    action: str

    @classmethod
    def parse_records(cls, text: str) -> list["Operation"]:
        ops = []
        for line in text.replace("|", "\n").splitlines():
            m = re.fullmatch(r"(\d{1,12}(?:\.\d{1,6})?) (\d{1,12}(?:\.\d{1,6})?) ([a-z]{1,16})", line.strip())
            if m:
                ops.append(cls(float(m.group(1)), float(m.group(2)), m.group(3)))
        return ops


@dataclass(frozen=True)
class GatewayProcess:
    """A `hermes [-p PROFILE] gateway run` process seen in the container (`ps` line)."""
    pid: int
    ppid: int
    profile: str

    @classmethod
    def parse(cls, line: str) -> "GatewayProcess | None":
        parts = line.split()
        if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        args = parts[2:]
        profile = "default"
        for i, arg in enumerate(args):
            if arg in ("-p", "--profile") and i + 1 < len(args):
                profile = args[i + 1]
                break
            if arg.startswith("--profile="):
                profile = arg.split("=", 1)[1]
                break
        return cls(int(parts[0]), int(parts[1]), profile)


@dataclass(frozen=True)
class GatewayState:
    """gateway_state.json, written by the gateway (merging) and by lifecycle commands."""
    gateway_state: str | None = None
    desired_state: str | None = None
    exit_reason: str | None = None
    pid: int | None = None
    platforms: dict = field(default_factory=dict)
    updated_at: str | None = None  # ISO string from the gateway, epoch int from lifecycle writes
    corrupt: bool = False

    @classmethod
    def parse(cls, text: str) -> "GatewayState | None":
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return cls(corrupt=True)
        if not isinstance(data, dict):
            return cls(corrupt=True)
        updated = data.get("updated_at")
        platforms = data.get("platforms")
        return cls(
            gateway_state=_str_or_none(data.get("gateway_state")),
            desired_state=_str_or_none(data.get("desired_state")),
            exit_reason=_str_or_none(data.get("exit_reason")),
            pid=data.get("pid") if isinstance(data.get("pid"), int) else None,
            platforms=platforms if isinstance(platforms, dict) else {},
            updated_at=None if updated is None else str(updated),
        )


def platforms_summary(platforms: dict | None) -> str:
    """`telegram:connected,discord:fatal` for tables."""
    parts = []
    for name, info in sorted((platforms or {}).items()):
        state = info.get("state") if isinstance(info, dict) else None
        parts.append(f"{name}:{state or '?'}")
    return ",".join(parts)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class BootLogEntry:
    """One line of container-boot.log: `<iso time> profile=coder prior_state=running action=started`."""
    time: str
    fields: dict

    @classmethod
    def parse(cls, line: str) -> "BootLogEntry | None":
        time, _, rest = line.strip().partition(" ")
        fields = dict(part.split("=", 1) for part in rest.split() if "=" in part)
        if "profile" not in fields:
            return None
        return cls(time, fields)


@dataclass(frozen=True)
class Slot:
    """One gateway slot as the probe saw it."""
    profile: str
    status: SvStatus | None      # None: no supervisor runs on the slot
    state: GatewayState | None   # None: no state file
    deaths: tuple[Death, ...] = ()
    now: float | None = None     # the container's clock (TAI seconds) when probed
    epoch: float | None = None   # the same moment in Unix seconds
    operations: tuple[Operation, ...] = ()

    @property
    def parked(self) -> bool:
        s = self.status
        return bool(s and not s.up and not s.wanted_up and s.exit_code == FATAL_CONFIG_EXIT)

    def _planned(self, death: Death) -> bool:
        """A clean exit (hermes' planned stop exits 0), or a death while hermesctl was starting,
        stopping or restarting the gateway: the operator asked for it."""
        if death.how == "exitcode 0":
            return True
        if self.epoch is None or self.now is None:
            return False
        at = self.epoch - (self.now - death.at)  # the death in Unix seconds
        return any(op.start <= at <= op.until for op in self.operations)

    @property
    def recent_deaths(self) -> int:
        """Unplanned deaths in the last CRASH_WINDOW_S seconds."""
        if self.now is None:
            return 0
        return sum(1 for d in self.deaths if self.now - d.at <= CRASH_WINDOW_S and not self._planned(d))

    @property
    def crash_looping(self) -> bool:
        s = self.status
        if s is None:
            return False
        if not s.up and s.wanted_up:
            return True
        return s.up and s.seconds < CRASH_WINDOW_S and self.recent_deaths >= CRASH_DEATHS

    @property
    def run_state(self) -> str:
        """One word for tables: up, down, parked, crash-loop, unsupervised."""
        s = self.status
        if s is None:
            return "unsupervised"
        if self.crash_looping:
            return "crash-loop"
        if self.parked:
            return "parked"
        return "up" if s.up else "down"
