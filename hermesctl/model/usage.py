"""Usage figures: the agent's per-profile cells (per source, per model) summed into rows.

The agent (hermes_supervise/usage.py) answers per profile and source with hermes insights'
definitions; every figure here is a sum of those cells, so a row for one profile and source
equals `hermes insights` there, and a row for more is the sum of what insights says for each.
"""
import re
import time
from dataclasses import dataclass, field

from hermesctl.core.errors import UsageError

TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
COUNTS = ("sessions", "active", "messages", "tool_calls", *(f"{k}_tokens" for k in TOKEN_KINDS))
MONEY = ("estimated_usd", "actual_usd")
GROUPINGS = ("profile", "container", "model", "platform")
_RELATIVE = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_WINDOW_S = 100 * 365 * 86400


@dataclass(frozen=True)
class Window:
    """What the agent is asked: a relative window (counted back from the container's clock,
    as `hermes insights --days` does) or an absolute start."""
    seconds: float | None = None
    since: float | None = None
    text: str = "24h"

    def agent_args(self) -> list[str]:
        return ["--window", f"{self.seconds:.0f}"] if self.seconds is not None else ["--since", f"{self.since:.3f}"]

    def days(self, now: float) -> float:
        """Its length in days, for a budget given per day."""
        return (self.seconds if self.seconds is not None else max(0.0, now - self.since)) / 86400


def parse_since(text: str, *, now: float | None = None) -> Window:
    """`30m`, `24h`, `7d`, `2w`, or a date/time (`2026-05-01`, `2026-05-01T12:00`, with an
    offset or UTC): one line of error otherwise."""
    found = _RELATIVE.fullmatch(text)  # whole: a trailing newline is not dropped
    if found:
        seconds = int(found.group(1)) * _UNIT_S[found.group(2)]
        if seconds > MAX_WINDOW_S:
            raise UsageError(f"--since {text}: longer than 100 years")
        return Window(seconds=seconds, text=text)
    if not text.isascii() or not text.isprintable() or len(text) > 40:
        raise UsageError("--since: give 30m, 24h, 7d, 2w or a date such as 2026-05-01")
    from datetime import datetime, timezone  # here: only a date needs it, not `24h` (usage's start)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r}: give 30m, 24h, 7d, 2w or a date such as 2026-05-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    since = moment.timestamp()
    if since > (now or time.time()):
        raise UsageError(f"--since {text}: in the future")
    return Window(since=max(0.0, since), text=text)


def zero_cell() -> dict:
    return {**{k: 0 for k in COUNTS}, **{k: 0.0 for k in MONEY}}


def add(into: dict, cell: dict) -> dict:
    for key in (*COUNTS, *MONEY):
        into[key] = into.get(key, 0) + (cell.get(key) or 0)
    return into


@dataclass
class ProfileUsage:
    """One container x profile: its cells by source, or the error it answered with."""
    endpoint: str
    container: str
    profile: str
    sources: dict = field(default_factory=dict)
    last_activity: float | None = None
    error: dict | None = None
    budget_daily_usd: float | None = None

    def cells(self, source: str | None) -> list[dict]:
        return [c for s, c in self.sources.items() if source is None or s == source]

    def total(self, source: str | None) -> dict:
        total = zero_cell()
        for cell in self.cells(source):
            add(total, cell)
        return total

    def models(self, source: str | None) -> dict[str, dict]:
        merged: dict[str, dict] = {}
        for cell in self.cells(source):
            for name, m in cell.get("models", {}).items():
                add(merged.setdefault(name, zero_cell()), m)
        return merged


def top_model(models: dict[str, dict]) -> str | None:
    """insights' order: most tokens, then most sessions."""
    def tokens(m):
        return sum(m.get(f"{k}_tokens", 0) for k in ("input", "output", "cache_read", "cache_write"))
    ranked = sorted(models.items(), key=lambda kv: (tokens(kv[1]), kv[1].get("sessions", 0)), reverse=True)
    return ranked[0][0] if ranked else None


def over_budget(spent_usd: float, budget_daily_usd: float | None, window: Window, now: float) -> bool:
    """Spend (insights' estimated cost) above the budget for the window's length: the daily
    budget times the window in days (24h: the budget itself)."""
    return budget_daily_usd is not None and spent_usd > budget_daily_usd * window.days(now)
