"""Small models of what the container's agent reports (hermes-contract/v1 `status`): a slot's
s6 status, deaths, gateway_state.json, operator records and gateway processes, and the judgments
made from them (crash loop, parked, orphaned). Strict about shape, lenient about content: every
field comes from hermes-writable files in the end."""
import json
from dataclasses import dataclass, field, replace

from hermesctl.agent.contract import FATAL_CONFIG_EXIT
from hermesctl.render.plain_table import platforms_summary  # noqa: F401 - re-exported

CRASH_WINDOW_S = 60     # unplanned deaths counted over this window ...
CRASH_DEATHS = 3        # ... this many or more, while barely up, is a crash loop
# As s6-svdt names signals; the number is what an operator recognises (`kill -9`).
SIGNAL_NUMBERS = {"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGABRT": 6, "SIGBUS": 7, "SIGFPE": 8,
                  "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13, "SIGALRM": 14,
                  "SIGTERM": 15}
# hermes merges platform entries into gateway_state.json and never drops one: an entry written
# before the running process started (a platform configured last time) says nothing about now.
# Entries are stamped by the container's clock, as `now` and s6's `seconds` are; the slack covers
# s6's whole-second `seconds`.
PLATFORM_STALE_SLACK_S = 2.0
ALL_PLATFORMS_FATAL = "platforms-fatal"  # run_state of a gateway up with every platform fatal


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


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
    def from_dict(cls, d: dict) -> "SvStatus":
        if not isinstance(d, dict) or not isinstance(d.get("up"), bool):
            raise ValueError(f"unexpected slot status: {d!r}")
        return cls(up=d["up"], wanted_up=bool(d.get("wanted_up")), normally_up=bool(d.get("normally_up")),
                   pid=_int_or_none(d.get("pid")), exit_code=_int_or_none(d.get("exit_code")),
                   signal=d.get("signal") if isinstance(d.get("signal"), str) else None,
                   seconds=_int_or_none(d.get("seconds")) or 0)


@dataclass(frozen=True)
class Death:
    at: float  # Unix seconds (the container's clock)
    how: str   # "exitcode 1", "signal SIGKILL" (as s6-svdt words it)

    @classmethod
    def from_list(cls, items: object) -> list["Death"]:
        return [cls(float(d["at"]), str(d.get("how", ""))) for d in items or []
                if isinstance(d, dict) and _number(d.get("at")) is not None]


@dataclass(frozen=True)
class Operation:
    """A start/stop/restart by hermesctl, as `hermes-slots operate` recorded it (Unix seconds).
    The file is hermes-writable: malformed lines are skipped, never trusted further."""
    start: float
    until: float
    action: str

    @classmethod
    def from_list(cls, items: object) -> list["Operation"]:
        return [cls(float(o["start"]), float(o["until"]), str(o.get("action", ""))) for o in items or []
                if isinstance(o, dict) and _number(o.get("start")) is not None
                and _number(o.get("until")) is not None]


@dataclass(frozen=True)
class GatewayProcess:
    """A `hermes [-p PROFILE] gateway run` process seen in the container (`ps` line)."""
    pid: int
    ppid: int
    profile: str
    supervisor: str | None = None  # the service whose s6-supervise is the parent (agents since 2026-12)

    @classmethod
    def from_list(cls, items: object) -> list["GatewayProcess"]:
        return [cls(p["pid"], p["ppid"], str(p.get("profile", "default")),
                    p["supervisor"] if isinstance(p.get("supervisor"), str) else None) for p in items or []
                if isinstance(p, dict) and _int_or_none(p.get("pid")) and _int_or_none(p.get("ppid")) is not None]


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
        return cls.from_object(data)

    @classmethod
    def from_object(cls, data: object) -> "GatewayState":
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


def _epoch(value: object) -> float | None:
    """An ISO 8601 time (as hermes writes updated_at) or a number, as Unix seconds; else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or len(value) > 64:
        return None
    from datetime import datetime, timezone
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Slot:
    """One gateway slot as the agent reported it."""
    profile: str
    status: SvStatus | None      # None: no supervisor runs on the slot
    state: GatewayState | None   # None: no state file
    deaths: tuple[Death, ...] = ()
    now: float | None = None     # the container's clock (Unix seconds) when it answered
    operations: tuple[Operation, ...] = ()

    @property
    def parked(self) -> bool:
        s = self.status
        return bool(s and not s.up and not s.wanted_up and s.exit_code == FATAL_CONFIG_EXIT)

    def in_operation(self, at: float) -> bool:
        """Inside a start, stop or restart by hermesctl (recorded before it acts, and again with
        its real end once it is done)."""
        return any(op.start <= at <= op.until for op in self.operations)

    def _planned(self, death: Death) -> bool:
        """A clean exit (hermes' planned stop exits 0), or a death while hermesctl was starting,
        stopping or restarting the gateway: the operator asked for it."""
        return death.how == "exitcode 0" or self.in_operation(death.at)

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
            # Down but wanted up is a crash loop, except inside an operation (a restart's gap).
            return self.now is None or not self.in_operation(self.now)
        return s.up and s.seconds < CRASH_WINDOW_S and self.recent_deaths >= CRASH_DEATHS

    @property
    def last_death(self) -> str | None:
        """The last death in words, by what happened: `stopped by hermesctl` (inside an
        operation), `exited 0 (planned stop)`, `killed by signal 9 (SIGKILL)`, `exited 1`."""
        if not self.deaths:
            return None
        death = max(self.deaths, key=lambda d: d.at)
        if self.in_operation(death.at):
            return "stopped by hermesctl"
        how = death.how
        if how == "exitcode 0":
            return "exited 0 (planned stop)"
        if how.startswith("exitcode "):
            return f"exited {how.split()[1]}"
        if how.startswith("signal "):
            name = how.split()[1]
            number = SIGNAL_NUMBERS.get(name)
            return f"killed by signal {number} ({name})" if number else f"killed by {name}"
        return how or None

    def aged(self, seconds: float) -> "Slot":
        """The same answer `seconds` later, as the agent would give it then if nothing changed
        (its clock and the time in the current state advance): what a held answer is judged
        as, so crash loops and recent deaths age out where no new event comes."""
        if seconds <= 0:
            return self
        status = self.status and replace(self.status, seconds=self.status.seconds + int(seconds))
        return replace(self, status=status, now=None if self.now is None else self.now + seconds)

    @property
    def platforms(self) -> dict:
        """gateway_state.json's platforms; while the gateway is up, only the entries its running
        process wrote (a platform dropped from the configuration keeps its old entry forever)."""
        found = {name: p for name, p in (self.state.platforms if self.state else {}).items() if isinstance(p, dict)}
        s = self.status
        if not (s and s.up) or self.now is None:
            return found
        started = self.now - s.seconds - PLATFORM_STALE_SLACK_S
        return {name: p for name, p in found.items() if (_epoch(p.get("updated_at")) or started) >= started}

    @property
    def all_platforms_fatal(self) -> bool:
        """Up, with platforms, every one of them `fatal` (hermes gave up on each): up in s6's
        eyes, serving nothing."""
        current = self.platforms
        return bool(self.status and self.status.up and current
                    and all(p.get("state") == "fatal" for p in current.values()))

    @property
    def run_state(self) -> str:
        """One word for tables: up, down, parked, crash-loop, unsupervised, platforms-fatal. The
        one judgment every `ps` path (direct, quick direct, served, watch) and `gateway status` use."""
        s = self.status
        if s is None:
            return "unsupervised"
        if self.crash_looping:
            return "crash-loop"
        if self.parked:
            return "parked"
        if self.all_platforms_fatal:
            return ALL_PLATFORMS_FATAL
        return "up" if s.up else "down"
