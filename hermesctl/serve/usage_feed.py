"""Usage counters for `hermesctl serve`: one held-open `usage-watch` stream per running
container (hermes_supervise/usage_watch.py), each printing a profile's all-time counters when
they change. The feed keeps the latest line per profile, a day of spend/activity history per
profile for the page (today's figures, as the table shows them: `today`), and the budgets of
the fleet file; scrapes and pages read it, never exec.

A stream that breaks is reopened while its container runs; containers are taken from the live
fleet the refresher already keeps (no extra Docker listing)."""
import math
import threading
import time
from collections import deque

from hermesctl.agent import client as agent
from hermesctl.agent.contract import LIFELINE_OPTION
from hermesctl.core.errors import UsageError, describe

DEFAULT_INTERVAL_S = 15.0
HISTORY_S = 86400            # the page's chart: the last day
HISTORY_STEP_S = 60.0        # one point per profile per minute at most
REOPEN_DELAYS_S = (1.0, 2.0, 5.0, 10.0)
OPEN_PER_TICK = 8            # streams opened every 2 s at most: a big fleet is not hit at once


class UsageFeed:
    def __init__(self, live, fleet, *, interval: float = DEFAULT_INTERVAL_S, budgets: dict | None = None,
                 ready=None):
        self.live, self.fleet, self.interval = live, fleet, interval
        # (container, profile) or (container, None) -> {"daily_usd": N, "hourly_usd": M}
        self.budgets = budgets or {}
        self.lock = threading.Lock()
        self.profiles: dict[tuple[str, str, str], dict] = {}   # (endpoint, container, profile) -> line
        self.watchers: dict[tuple[str, str], dict] = {}        # (endpoint, container) -> heartbeat
        self.history: dict[tuple[str, str, str], deque] = {}
        self._streaming: set[str] = set()
        self._no_lifeline: set[str] = set()  # container ids whose (older) agent lacks the option
        self._stop = threading.Event()
        self._ready = ready  # the server's first look: usage streams wait for it (gateways first)

    def start(self) -> None:
        threading.Thread(target=self._containers, name="usage-feed", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _containers(self) -> None:
        while self._ready is not None and not self._ready.wait(1.0):
            if self._stop.is_set():
                return
        while not self._stop.is_set():
            with self.live.lock:
                running = [c for c in self.live.containers.values() if c.running]
            for c in [c for c in running if c.key not in self._streaming][:OPEN_PER_TICK]:
                if c.key not in self._streaming:
                    self._streaming.add(c.key)
                    threading.Thread(target=self._stream, args=(c,), daemon=True, name=f"usage-{c.name}").start()
            self._stop.wait(2.0)

    def _running(self, c) -> bool:
        with self.live.lock:
            now = self.live.containers.get(c.key)
        return now is not None and now.running and now.id == c.id

    def _stream(self, c) -> None:
        attempt = 0
        try:
            while not self._stop.is_set() and self._running(c):
                try:
                    opened = {"seen": set(), "settled": False}  # this stream's first round
                    for doc in self._lines(c):
                        attempt = 0
                        self._apply(c, doc, opened)
                        if self._stop.is_set():
                            return
                except UsageError as exc:
                    if LIFELINE_OPTION in str(exc) and c.id not in self._no_lifeline:
                        # An image older than this hermesctl: asked as before, its watcher
                        # outlives serve, as it always did, until the image is upgraded.
                        self._no_lifeline.add(c.id)
                        continue
                    with self.lock:
                        self.watchers[(c.endpoint, c.name)] = {"error": describe(exc), "time": time.time()}
                except Exception as exc:  # noqa: BLE001 - reopened below; recorded for the page
                    with self.lock:
                        self.watchers[(c.endpoint, c.name)] = {"error": describe(exc), "time": time.time()}
                self._stop.wait(REOPEN_DELAYS_S[min(attempt, len(REOPEN_DELAYS_S) - 1)])
                attempt += 1
        finally:
            self._streaming.discard(c.key)
            with self.lock:  # a container that is gone no longer reports usage
                for key in [k for k in self.profiles if k[:2] == (c.endpoint, c.name)]:
                    del self.profiles[key]

    def _lines(self, c):
        # stdin attached and never written: when serve goes (however it goes), Docker closes it and
        # the watcher ends at once, even mid-read (contract.LIFELINE_OPTION).
        lifeline = c.id not in self._no_lifeline
        argv = agent.argv("usage-watch", "--interval", f"{self.interval:g}", *([LIFELINE_OPTION] if lifeline else []))
        stream = self.fleet.exec_stream(c, argv, stderr=False, stdin=lifeline)
        try:
            yield from agent.stream_documents(stream, where=c.name)
        finally:
            stream.close()

    def _apply(self, c, doc: dict, opened: dict | None = None) -> None:
        now = time.time()
        with self.lock:
            if "heartbeat" in doc:
                self.watchers[(c.endpoint, c.name)] = {"cpu_s": doc.get("cpu_s"), "time": now,
                                                        "profiles": doc.get("profiles")}
                if opened is not None and not opened["settled"]:
                    # A new watcher reports its profiles before its first heartbeat: one the
                    # last stream reported and this one did not was deleted in between.
                    opened["settled"] = True
                    for key in [k for k in self.profiles if k[:2] == (c.endpoint, c.name) and k not in opened["seen"]]:
                        del self.profiles[key]
                        self.history.pop(key, None)
                return
            key = (c.endpoint, c.name, str(doc.get("profile")))
            if opened is not None and not opened["settled"]:
                opened["seen"].add(key)
            if doc.get("removed"):  # a deleted profile leaves the table and the chart alike
                self.profiles.pop(key, None)
                self.history.pop(key, None)
                return
            self.profiles[key] = doc
            points = self.history.setdefault(key, deque())
            # What the table shows for the day, as it stood then: the chart is drawn from it.
            day = utc_day(now)
            point = (now, day, *today(doc, day))
            if len(points) >= 2 and now - points[-2][0] < HISTORY_STEP_S and points[-2][1] == day:
                points[-1] = point  # within the minute: the latest replaces the latest (the first stays)
            else:
                points.append(point)
            while points and points[0][0] < now - HISTORY_S:
                points.popleft()
            # Profiles of containers gone for a day: their history goes too (bounded memory).
            for old in [k for k, v in self.history.items()
                        if k not in self.profiles and v and v[-1][0] < now - HISTORY_S]:
                del self.history[old]

    def snapshot(self) -> dict:
        with self.lock:
            return {"profiles": dict(self.profiles), "watchers": dict(self.watchers),
                    "history": {k: list(v) for k, v in self.history.items()}, "budgets": dict(self.budgets)}


def utc_day(moment: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(moment))


def today(doc: dict, day: str) -> tuple[float, int]:
    """A profile's spend (insights' estimated cost) and sessions on a UTC day, counted by the
    day each session started (the watcher's `days`): the one figure the page's table, its
    summary and its chart all show."""
    days = doc.get("days")
    figures = days.get(day) if isinstance(days, dict) else None
    figures = figures if isinstance(figures, dict) else {}
    usd, sessions = figures.get("estimated_usd"), figures.get("sessions")
    # The watcher runs as hermes: a figure that is not a finite, non-negative number counts as 0.
    usd = float(usd) if isinstance(usd, (int, float)) and not isinstance(usd, bool) else 0.0
    sessions = sessions if isinstance(sessions, int) and not isinstance(sessions, bool) else 0
    return (usd if math.isfinite(usd) and usd >= 0 else 0.0), max(0, sessions)


def budgets_of(spec) -> dict:
    """(container, profile|None) -> budget, from a fleet file."""
    found = {}
    def of(x) -> dict:
        return {k: v for k, v in (("daily_usd", x.budget_daily_usd), ("hourly_usd", x.budget_hourly_usd))
                if v is not None}
    for c in spec.containers if spec else ():
        if of(c):
            found[(c.name, None)] = of(c)
        for p in c.profiles:
            if of(p):
                found[(c.name, p.name)] = of(p)
    return found
