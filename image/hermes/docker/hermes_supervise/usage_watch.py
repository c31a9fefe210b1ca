# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""The agent's `usage-watch` verb: all-time usage counters per profile and model, kept current
incrementally and printed as JSON lines (hermesctl serve holds one such stream per container).

Each profile's state is kept in memory: the highest session rowid and message id read, the
sessions still open (ended_at NULL) with what each contributed so far, and the counters. Every
interval it stats state.db and its -wal (size, mtime, inode): unchanged means no query at all.
Changed means one read, by index only, of the new sessions (rowid above the mark) and of the
open ones that got a message since (messages' id above the mark). After a change, at most
FULL_EVERY intervals later (5 minutes), every open session's figures (and its per-model rows')
are compared with those it had when read, in one indexed query, and the ones that differ (an
end, or tokens counted without a message) are read again; the schema is checked again then. Each session's contribution is computed as `usage` does (insights' definitions) and only its growth is added:
counters never go down, and the tables are never scanned again. A replaced database (another
inode) starts over, which Prometheus sees as a counter reset.

What a profile can make it hold is bounded as `usage` bounds it (usage.MAX_VALUE_BYTES per
value, usage.MAX_NAMES models) and MAX_OPEN open sessions: past a bound the profile reports
`read_error` (`oversized`) and holds nothing. With `--until-stdin-closes` (what serve asks for) it
ends as soon as its stdin closes, even in the middle of a read: through Docker a write never
fails, so a watcher whose host went away would otherwise read on for ever.
"""
import json
import os
import sys
import time

from . import contract as C
from .usage import (MAX_NAMES, SESSION_FIELDS, SESSION_PRINTS, SESSION_PRINTS_USAGE, USAGE_FIELDS, ProfileError,
                    bounded, check_schema, connect, contributions, finite, last_activity, latest, sqlite_error,
                    state_db)

FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
          "api_calls", "estimated_usd", "actual_usd")
# The sessions read on each pass: new ones (rowid range), and chosen open ones (primary key;
# json_each: any number of ids as one parameter). Two indexed halves, never a scan.
DELTA_SESSIONS = (f"SELECT {SESSION_FIELDS}, rowid AS rid FROM sessions WHERE rowid > ?1 "
                  f"UNION ALL SELECT {SESSION_FIELDS}, rowid AS rid FROM sessions "
                  "WHERE id IN (SELECT value FROM json_each(?2)) AND rowid <= ?1")
# Their rows, each session's in rowid order (the session_id index), as insights reads them.
DELTA_USAGE = (f"WITH w AS ({DELTA_SESSIONS}) SELECT {USAGE_FIELDS} FROM w "
               "CROSS JOIN session_model_usage u ON u.session_id = w.id")
FULL_EVERY = 20  # intervals (5 minutes at 15 s) between looks at every open session, after a change
# Sessions with a message above the mark: a range of messages' rowid (DISTINCT would read the
# whole session_id index, every pass).
MESSAGED = f"SELECT {bounded('session_id')} FROM messages WHERE id > ?"
NEWER_MESSAGE = f"SELECT {bounded('m', 'timestamp')} FROM (SELECT max(timestamp) AS m FROM messages WHERE id > ?)"
MAX_OPEN = 10_000  # open sessions held per profile (a real one has a few)
REFUSED = ("oversized", "non-finite")  # errors of what a database holds, not of reading it


class ProfileCounters:
    def __init__(self, profile: str, full_every_s: float = 300.0):
        self.profile = profile
        self.full_every_s = full_every_s  # all open sessions re-read at least this often after a change
        self.last_full = 0.0
        self.dirty = False                # changed since the last full read
        self.identity = None          # (inode, size, mtime) of state.db and -wal at the last read
        self.inode = None
        self.mark = 0                 # highest rowid read
        self.message_mark = None      # highest messages.id read (None: not read yet)
        self.with_usage = self.has_messages = False
        self.conn = None
        self.open: dict[str, dict] = {}  # session id -> {model: [FIELDS...]} contributed so far
        self.prints: dict[str, tuple] = {}  # open session id -> its figures when read (SESSION_PRINTS)
        self.models: dict[str, list] = {}
        self.sessions_total = 0
        self.last_activity = None
        self.error = None
        self.days: dict[str, list] = {}  # UTC date a session started -> [sessions, estimated_usd]

    def close(self) -> None:
        if getattr(self, "conn", None) is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self.conn = None

    def _stat(self, path: str):
        def one(p):
            try:
                st = os.lstat(p)
                return (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                return None
        return one(path), one(path + "-wal")

    def refresh(self, prices) -> bool:
        """Read what changed; True when the counters (or the error) changed."""
        try:
            path = state_db(self.profile)
        except ProfileError as exc:
            changed = self.error != {"code": exc.code, "message": exc.message}
            self.close()
            self.__init__(self.profile, self.full_every_s)
            self.error = {"code": exc.code, "message": exc.message}
            return changed
        identity = self._stat(path)
        due = self.dirty and time.monotonic() - self.last_full >= self.full_every_s
        # A database refused for what it holds is read again only once it changes (a read of it
        # may walk hundreds of megabytes); a locked or unreadable one is tried every pass.
        refused = self.error is not None and self.error["code"] in REFUSED
        if identity == self.identity and (self.error is None or refused) and not due:
            return False
        before = (self.document_key(), self.error)
        try:
            self._read(path, identity, prices)
            self._bounded()
            self.error = None
        except ProfileError as exc:
            if exc.code in REFUSED:
                # What it holds cannot be trusted or kept: start over (an error until it is mended;
                # a reader after that counts from nothing, which Prometheus sees as a reset).
                self.close()
                self.__init__(self.profile, self.full_every_s)
            self.error = {"code": exc.code, "message": exc.message}
        self.identity = identity
        return (self.document_key(), self.error) != before

    def _bounded(self) -> None:
        if len(self.open) > MAX_OPEN:
            raise ProfileError("oversized", f"state.db has more than {MAX_OPEN:,} open sessions: not followed")
        if len(self.models) > MAX_NAMES:
            raise ProfileError("oversized", f"state.db names more than {MAX_NAMES:,} models: not summed")
        finite({m: dict(zip(FIELDS, f)) for m, f in self.models.items()}, "models")
        finite({d: {"estimated_usd": v[1]} for d, v in self.days.items()}, "days")

    def _read(self, path: str, identity, prices) -> None:
        import sqlite3
        if identity[0] is None:
            self.close()
            raise ProfileError("missing", "no state.db (the profile has not run a session yet)")
        if identity[0][0] != self.inode:  # a new database: start over
            self.close()
            self.__init__(self.profile, self.full_every_s)
            self.inode = identity[0][0]
        if self.conn is None:
            # Kept open between reads (its compiled statements too): in WAL mode an idle
            # read-only connection holds no lock; it is closed on any error and reopened.
            try:
                self.conn = connect(path)
            except sqlite3.Error as exc:
                raise ProfileError("unreadable", str(exc)) from None
        conn = self.conn
        try:
            conn.execute("BEGIN")
            first = self.message_mark is None
            full = first or time.monotonic() - self.last_full >= self.full_every_s or not self.has_messages
            self.last_full, self.dirty = (time.monotonic(), False) if full else (self.last_full, True)
            if full:  # the schema is checked on full passes (another hermes-agent: another inode)
                self.with_usage, _version = check_schema(conn)
                self.has_messages = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                                 "name = 'messages'").fetchone() is not None
            with_usage, has_messages = self.with_usage, self.has_messages
            prints_sql = SESSION_PRINTS.format(usage=SESSION_PRINTS_USAGE if with_usage else "")
            gone = set()
            if full:  # open sessions whose figures changed (compared in one indexed query)
                current = {row[0]: row for row in conn.execute(prints_sql, (json.dumps(list(self.open)),))}
                ids = [sid for sid in self.open if sid in current and current[sid] != self.prints.get(sid)]
                gone = set(self.open) - set(current)
            else:  # open sessions with a new message
                touched = {row[0] for row in conn.execute(MESSAGED, (self.message_mark,))}
                ids = [sid for sid in self.open if sid in touched]
            params = (self.mark, json.dumps(ids))
            sessions = conn.execute(DELTA_SESSIONS, params).fetchall()
            rows = conn.execute(DELTA_USAGE, params).fetchall() if with_usage else []
            meta = [(row[-1], row[0], row[4], row[3]) for row in sessions]  # rowid, id, ended_at, started_at
            try:
                found = contributions([row[:-1] for row in sessions], rows, prices)
            except sqlite3.DatabaseError:
                raise
            except Exception as exc:  # noqa: BLE001 - hermes' pricing failing: this profile says so
                raise ProfileError("unreadable", f"pricing rows without a recorded cost failed: {exc}") from None
            newest = conn.execute("SELECT max(id) FROM messages").fetchone()[0] if has_messages else None
            if first:
                self.last_activity = last_activity(conn, with_usage)
            else:
                moments = [self.last_activity] + [m for row in meta for m in (row[2], row[3])]
                if has_messages and self.message_mark is not None:
                    moments.append(conn.execute(NEWER_MESSAGE, (self.message_mark,)).fetchone()[0])
                self.last_activity = latest(moments)
            self.message_mark = newest or 0
            still_open = [row[0] for row in sessions if row[4] is None]
            read_prints = {row[0]: row for row in conn.execute(prints_sql, (json.dumps(still_open),))} \
                if still_open else {}
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            error = sqlite_error(exc, conn)
            self.close()
            raise error from None
        seen, mark = set(), self.mark
        for rowid, sid, ended, started in meta:
            seen.add(sid)
            previous = self.open.pop(sid, None)
            day = _day(started)
            if rowid > mark:  # a new session (rows come in no particular order)
                self.mark = max(self.mark, rowid)
                if previous is None:
                    self.sessions_total += 1
                    self.days.setdefault(day, [0, 0.0])[0] += 1
            added = self._add(found.get(sid, {}), previous or {})
            self.days.setdefault(day, [0, 0.0])[1] += added
            self.prints.pop(sid, None)
            if ended is None:
                self.open[sid] = found.get(sid, {})
                self.prints[sid] = read_prints.get(sid)
        for old in sorted(self.days)[:-2]:  # today and yesterday are enough for the page
            del self.days[old]
        for sid in gone - seen:  # deleted while open: what it contributed stays counted
            self.open.pop(sid, None)
            self.prints.pop(sid, None)

    def _add(self, now: dict, before: dict) -> float:
        """Add a session's growth to the counters; its estimated cost growth."""
        cost = 0.0
        for model, figures in now.items():
            if model not in self.models and len(self.models) >= MAX_NAMES:
                raise ProfileError("oversized", f"state.db names more than {MAX_NAMES:,} models: not summed")
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
    """usage-watch [--interval SECONDS] [--until-stdin-closes]: a line per profile whose counters
    changed (all of them first), and a heartbeat every interval: a closed stream ends this process
    at its next write; with the lifeline option, so does the end of stdin, at once."""
    from .paths import profile_entries
    interval = 15.0
    if "--interval" in argv:
        i = argv.index("--interval")
        try:
            interval = float(argv[i + 1])
        except (IndexError, ValueError):
            raise ValueError("--interval needs a number of seconds") from None
        if not 0.2 <= interval <= 3600:
            raise ValueError("--interval must be between 0.2 and 3600 seconds")
    if C.LIFELINE_OPTION in argv:
        end_with_stdin()
    from .pricing import Prices
    counters: dict[str, ProfileCounters] = {}
    prices = Prices.lazy()
    try:
        while True:
            started = time.monotonic()
            profiles, skipped = profile_entries()
            for name in profiles:
                c = counters.setdefault(name, ProfileCounters(name, FULL_EVERY * interval))
                if c.refresh(prices):
                    sys.stdout.write(json.dumps(c.document(), allow_nan=False) + "\n")
            for gone in set(counters) - set(profiles):
                counters.pop(gone).close()
                sys.stdout.write(json.dumps({"schema": C.SCHEMA, "verb": "usage-watch", "profile": gone,
                                             "removed": True}) + "\n")
            cpu = time.process_time()
            sys.stdout.write(json.dumps({"schema": C.SCHEMA, "verb": "usage-watch", "heartbeat": time.time(),
                                         "cpu_s": cpu, "profiles": len(profiles), "skipped": skipped}) + "\n")
            sys.stdout.flush()
            time.sleep(max(0.05, interval - (time.monotonic() - started)))
    except (BrokenPipeError, KeyboardInterrupt):
        os._exit(0)  # the reader is gone: no flush of what nobody reads


def end_with_stdin() -> None:
    """End the process when stdin reaches end of file (contract.LIFELINE_OPTION: the host holds it
    open and never writes), from a thread, so that a long read of a database does not delay it."""
    import threading

    def wait() -> None:
        try:
            while os.read(0, 4096):
                pass  # the host never writes; anything is discarded
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=wait, name="lifeline", daemon=True).start()
