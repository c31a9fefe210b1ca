"""The agent's `usage-watch` verb: all-time usage counters per profile and model, kept current
incrementally and printed as JSON lines (hermesctl serve holds one such stream per container).

Each profile's state is kept in memory: the highest session rowid read, the sessions still open
(ended_at NULL) with what each contributed so far, and the counters. Every interval it stats
state.db and its -wal (size, mtime, inode): unchanged means no query at all. Changed means one
read of the new sessions (rowid above the mark) and the open ones (by primary key), each
session's contribution computed as `usage` does (insights' definitions), and only the
difference added: counters never go down, and never scan the table again. A replaced database
(another inode) starts over, which Prometheus sees as a counter reset.
"""
import json
import os
import sys
import time

from . import contract as C
from .usage import (ProfileError, _breakdown_sql, check_schema, connect, display_name, estimate_row, estimator,
                    last_activity, sqlite_error, state_db, unstored_sql)

FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
          "api_calls", "estimated_usd", "actual_usd")
# The sessions read on each pass: new ones, and those still open at the last pass (json_each:
# any number of ids as one parameter).
DELTA_SESSIONS = ("SELECT rowid AS rid, * FROM sessions WHERE rowid > ? OR id IN (SELECT value FROM json_each(?))")


class ProfileCounters:
    def __init__(self, profile: str):
        self.profile = profile
        self.identity = None          # (inode, size, mtime) of state.db and -wal at the last read
        self.inode = None
        self.mark = 0                 # highest rowid read
        self.open: dict[str, dict] = {}  # session id -> {model: [FIELDS...]} contributed so far
        self.models: dict[str, list] = {}
        self.sessions_total = 0
        self.last_activity = None
        self.error = None
        self.days: dict[str, list] = {}  # UTC date a session started -> [sessions, estimated_usd]
        self.started: dict[str, str] = {}  # open session -> its day

    def _stat(self, path: str):
        def one(p):
            try:
                st = os.lstat(p)
                return (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                return None
        return one(path), one(path + "-wal")

    def refresh(self, estimate_cache: list) -> bool:
        """Read what changed; True when the counters (or the error) changed."""
        path = state_db(self.profile)
        identity = self._stat(path)
        if identity == self.identity and self.error is None:
            return False
        before = (self.document_key(), self.error)
        try:
            self._read(path, identity, estimate_cache)
            self.error = None
        except ProfileError as exc:
            self.error = {"code": exc.code, "message": exc.message}
        self.identity = identity
        return (self.document_key(), self.error) != before

    def _read(self, path: str, identity, estimate_cache: list) -> None:
        import sqlite3
        if identity[0] is None:
            raise ProfileError("missing", "no state.db (the profile has not run a session yet)")
        if identity[0][0] != self.inode:  # a new database: start over
            self.__init__(self.profile)
            self.inode = identity[0][0]
        try:
            conn = connect(path)
        except sqlite3.Error as exc:
            raise ProfileError("unreadable", str(exc)) from None
        try:
            conn.execute("BEGIN")
            with_usage, _version = check_schema(conn)
            params = (self.mark, json.dumps(list(self.open)))
            meta = conn.execute(f"SELECT rid, id, ended_at, started_at FROM ({DELTA_SESSIONS})", params).fetchall()
            contributions: dict[str, dict] = {sid: {} for _rowid, sid, _ended, _started in meta}
            for sid, display, _n, *figures in conn.execute(_breakdown_sql(with_usage, DELTA_SESSIONS, "sid"), params):
                i, o, cr, cw, r, calls, est, act = figures
                contributions.setdefault(sid, {})[str(display)] = [i, o, cr, cw, r, calls, est, act]
            if with_usage:
                unstored = conn.execute(unstored_sql(DELTA_SESSIONS, "sid"), params).fetchall()
                if unstored and not estimate_cache:
                    estimate_cache.append(estimator())
                for sid, model, provider, base_url, i, o, cr, cw in unstored:
                    if estimate_cache[0] is not None:
                        cell = contributions.setdefault(sid, {}).setdefault(display_name(model), [0] * 8)
                        cell[6] += estimate_row(estimate_cache[0], model, provider, base_url, i, o, cr, cw)
            self.last_activity = last_activity(conn, with_usage)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise sqlite_error(exc) from None
        finally:
            conn.close()
        seen = set()
        for rowid, sid, ended, started in meta:
            seen.add(sid)
            previous = self.open.pop(sid, None)
            day = _day(started)
            if rowid > self.mark:
                self.mark = rowid
                if previous is None:
                    self.sessions_total += 1
                    self.days.setdefault(day, [0, 0.0])[0] += 1
            added = self._add(contributions.get(sid, {}), previous or {})
            self.days.setdefault(day, [0, 0.0])[1] += added
            if ended is None:
                self.open[sid] = contributions.get(sid, {})
        for old in sorted(self.days)[:-2]:  # today and yesterday are enough for the page
            del self.days[old]
        for gone in set(self.open) - seen:  # deleted while open: what it contributed stays counted
            del self.open[gone]

    def _add(self, now: dict, before: dict) -> float:
        """Add a session's growth to the counters; its estimated cost growth."""
        cost = 0.0
        for model, figures in now.items():
            total = self.models.setdefault(model, [0] * len(FIELDS))
            old = before.get(model, [0] * len(FIELDS))
            for k, (new, was) in enumerate(zip(figures, old)):
                grown = max(0, (new or 0) - (was or 0))  # counters only go up
                total[k] += grown
                if FIELDS[k] == "estimated_usd":
                    cost += grown
        return cost

    def document_key(self):
        return (self.sessions_total, len(self.open), self.last_activity,
                tuple(sorted((m, tuple(f)) for m, f in self.models.items())),
                tuple(sorted((d, tuple(v)) for d, v in self.days.items())))

    def document(self) -> dict:
        # `read_error`, not `error`: a top-level `error` is the contract's failure of the whole answer
        return {"schema": C.SCHEMA, "verb": "usage-watch", "profile": self.profile, "ok": self.error is None,
                "read_error": self.error, "sessions_total": self.sessions_total, "sessions_active": len(self.open),
                "last_activity": self.last_activity,
                "days": {d: {"sessions": n, "estimated_usd": usd} for d, (n, usd) in sorted(self.days.items())},
                "models": {m: dict(zip(FIELDS, f)) for m, f in sorted(self.models.items())}}


def _day(started) -> str:
    """The UTC date a session started on (sessions are counted on the day they started, as
    insights counts them in the window they started in)."""
    try:
        return time.strftime("%Y-%m-%d", time.gmtime(float(started)))
    except (TypeError, ValueError, OverflowError):
        return "unknown"


def run(argv: list[str]) -> int:
    """usage-watch [--interval SECONDS]: a line per profile whose counters changed (all of them
    first), and a heartbeat every interval: a closed stream ends this process at its next
    write."""
    from .paths import all_profiles
    interval = 15.0
    if "--interval" in argv:
        i = argv.index("--interval")
        try:
            interval = float(argv[i + 1])
        except (IndexError, ValueError):
            raise ValueError("--interval needs a number of seconds") from None
        if not 0.2 <= interval <= 3600:
            raise ValueError("--interval must be between 0.2 and 3600 seconds")
    counters: dict[str, ProfileCounters] = {}
    estimate_cache: list = []
    try:
        while True:
            started = time.monotonic()
            profiles = all_profiles()
            for name in profiles:
                c = counters.setdefault(name, ProfileCounters(name))
                if c.refresh(estimate_cache):
                    sys.stdout.write(json.dumps(c.document()) + "\n")
            for gone in set(counters) - set(profiles):
                del counters[gone]
                sys.stdout.write(json.dumps({"schema": C.SCHEMA, "verb": "usage-watch", "profile": gone,
                                             "removed": True}) + "\n")
            cpu = time.process_time()
            sys.stdout.write(json.dumps({"schema": C.SCHEMA, "verb": "usage-watch", "heartbeat": time.time(),
                                         "cpu_s": cpu, "profiles": len(profiles)}) + "\n")
            sys.stdout.flush()
            time.sleep(max(0.05, interval - (time.monotonic() - started)))
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
