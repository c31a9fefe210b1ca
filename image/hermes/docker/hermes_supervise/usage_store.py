# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""The resident agent's answer to `usage`: per profile, what every hour of sessions adds up to,
kept between questions, so that a question costs a few index lookups instead of a read of
every session in the window (and no Python start: the host asks over the agent's query socket).

Per profile the store holds a tally (usage.tally) per hour in which sessions started, from the
oldest hour any question has asked for (`covered_from`) onwards. A question:
- asks SQLite whether anything was committed since the last question (PRAGMA data_version on the
  connection kept open; an idle read-only connection in WAL mode holds no lock) and whether
  state.db is still the same file (lstat: inode, a plain file); nothing changed: no read at all;
- when something changed, re-reads, by index, the hours of the sessions that say so: new ones
  (rowid above the last one read), those with a new message (messages' id above the last one
  read), and those that did either in the last HOT_S seconds, whose own figures are compared
  (a gateway records a turn's tokens and a session's end after its messages);
- at the first question VERIFY_EVERY_S or more after the last verification, when something
  changed since it (then or at any question in between), compares every held hour's fingerprint
  (counts and sums, computed by SQLite, of every column insights reads of `sessions` and of their
  `session_model_usage` rows): what no new session or message announces (a session deleted or
  edited long after its last message) shows then, even when nothing was committed after it;
- adds up: the part of the first hour after the cutoff (read now, by index: a window starts at
  any second, as insights' does), the hours after it in that day, then whole days (each day's
  sum is kept until one of its hours changes).
Everything is read in one snapshot (BEGIN ... COMMIT), read-only; each tally is usage.tally's, so
an answer equals a direct read (usage.read_profile) of what the store has seen.
"""
import os
import stat
import time

from .usage import (SESSION_FIELDS, SESSION_PRINTS, SESSION_PRINTS_USAGE, USAGE_FIELDS, ProfileError, bounded_list,
                    check_schema, connect, last_activity, merge, priced_tally, sources_document, sqlite_error,
                    state_db)

HOUR = 3600
DAY_HOURS = 24
# Per hour of started_at: what insights reads of the sessions and of their per-model rows, summed
# (the length of names and the moments too, so that a renamed model or a moved session shows).
# floor(started_at / 3600), as Python's `//` gives it: the division may round up to the next
# whole hour for a moment a fraction of a microsecond before it, which the comparison corrects.
_TRUNCATED = "CAST(s.started_at / 3600 AS INTEGER)"
HOUR_OF = f"({_TRUNCATED} - (s.started_at < {_TRUNCATED} * 3600))"
FINGERPRINT_SESSIONS = (
    f"SELECT {HOUR_OF} AS h, count(*), total(typeof(s.started_at) NOT IN ('integer', 'real')), "
    "total(s.ended_at IS NULL), total(s.ended_at), total(s.started_at), total(s.message_count), "
    "total(s.tool_call_count), total(s.input_tokens), total(s.output_tokens), total(s.cache_read_tokens), "
    "total(s.cache_write_tokens), total(s.estimated_cost_usd), total(s.actual_cost_usd), total(s.api_call_count), "
    "total(octet_length(s.source)), total(octet_length(s.model)), total(octet_length(s.id)) "
    "FROM sessions s WHERE s.started_at >= ?1{upto} GROUP BY h")
FINGERPRINT_USAGE = (
    f"SELECT {HOUR_OF} AS h, count(*), total(u.api_call_count), total(u.input_tokens), total(u.output_tokens), "
    "total(u.cache_read_tokens), total(u.cache_write_tokens), total(u.reasoning_tokens), "
    "total(u.estimated_cost_usd), total(u.actual_cost_usd), total(u.cost_status IS NULL AND u.cost_source IS NULL), "
    "total(octet_length(u.model)), total(octet_length(u.billing_provider)), total(octet_length(u.billing_base_url)) "
    "FROM sessions s JOIN session_model_usage u ON u.session_id = s.id "
    "WHERE s.started_at >= ?1{upto} GROUP BY h")
RANGE = f"SELECT {SESSION_FIELDS} FROM sessions s WHERE s.started_at >= ?1{{upto}}"
RANGE_USAGE = (f"SELECT {USAGE_FIELDS} FROM session_model_usage u JOIN sessions s ON s.id = u.session_id "
               "WHERE s.started_at >= ?1{upto}")
# Every query above over [start, end) or, end None, from start on (a started_at that is not a
# number sorts after every number: insights counts it, so it must be seen, and then the store
# gives way to a direct read).
UPTO = " AND s.started_at < ?2"


def ranged(sql: str, conn, start: float, end: float | None):
    if end is None:
        return conn.execute(sql.format(upto=""), (start,))
    return conn.execute(sql.format(upto=UPTO), (start, end))
PER_HOUR_READS = 8  # more hours to re-read than this: one read of their whole span
HOT_S = 600.0        # a session that got a message or began this recently is watched by its figures
VERIFY_EVERY_S = 300.0  # every held hour's fingerprint compared at least this often (after a change)
# The signals: new sessions, sessions with new messages (and the figures of watched ones: usage.SESSION_PRINTS).
NEW_SESSIONS = f"SELECT rowid, {bounded_list('id, started_at')} FROM sessions WHERE rowid > ?"
# (not DISTINCT: that would read the whole messages index; IN takes each session once anyway)
MESSAGED = (f"SELECT {bounded_list('s.id, s.started_at')} FROM sessions s "
            "WHERE s.id IN (SELECT session_id FROM messages WHERE id > ?)")


class Fallback(Exception):
    """A database this store cannot bucket (started_at not a number): read it directly."""


class ProfileStore:
    def __init__(self, profile: str):
        self.profile = profile
        self.conn = None
        self.inode = None
        self.data_version = None
        self.schema = None           # (with_usage, version), checked whenever something changed
        self.last = None             # last activity
        self.covered_from = None     # hours from this one on are held
        self.hours: dict[int, dict] = {}
        self.prints: dict[int, tuple] = {}
        self.days: dict[int, dict] = {}  # day -> the sum of its hours (dropped when one changes)
        self.mark = 0                # highest sessions rowid read
        self.message_mark = 0        # highest messages id read
        self.has_messages = False
        self.hot: dict[str, tuple] = {}  # session id -> (watched until, its hour, its figures)
        self.verified = 0.0          # when every hour's fingerprint was last compared (monotonic)
        self.unverified = False      # a change was followed since: the next verification is owed

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self.__init__(self.profile)

    def answer(self, cutoff: float, prices) -> dict:
        """The profile's `usage` answer for sessions started at or after `cutoff`."""
        import sqlite3
        path = state_db(self.profile)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.close()
            raise ProfileError("missing", "no state.db (the profile has not run a session yet)") from None
        except OSError as exc:
            self.close()
            raise ProfileError("unreadable", f"state.db: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode) or st.st_ino != self.inode:
            self.close()  # replaced (or no longer a plain file: connect() says so)
        if self.conn is None:
            try:
                self.conn = connect(path)
            except sqlite3.Error as exc:
                raise ProfileError("unreadable", str(exc)) from None
            self.inode = st.st_ino
        try:
            return self._answer(self.conn, cutoff, prices)
        except sqlite3.DatabaseError as exc:
            error = sqlite_error(exc, self.conn)
            self.close()
            raise error from None
        except BaseException:
            self.close()
            raise

    def _answer(self, conn, cutoff: float, prices) -> dict:
        # data_version first, the snapshot after: a commit in between only costs a re-check.
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        conn.execute("BEGIN")
        try:
            # A change followed (new sessions, messages, hot ones) may have come with one nothing
            # announces (a session edited or deleted through hermes' API): the verification is
            # owed from then on, whether or not anything is committed after it.
            due = time.monotonic() - self.verified >= VERIFY_EVERY_S
            if version != self.data_version or self.schema is None or (self.unverified and due):
                self.schema = check_schema(conn)
                self.has_messages = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                                 "name = 'messages'").fetchone() is not None
                if self.covered_from is not None:
                    if due:
                        self._refresh(conn, prices)
                        self.unverified = False
                    else:
                        self._follow(conn, prices)
                        self.unverified = True
                self.last = last_activity(conn, self.schema[0])
                self.data_version = version
            first = int(cutoff // HOUR)
            if self.covered_from is None or first < self.covered_from:
                self._extend(conn, first, prices)
            total = self._read(conn, cutoff, (first + 1) * HOUR, prices)  # the first hour's part
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - the connection is closed by the caller
                pass
            raise
        day = first // DAY_HOURS
        for hour in range(first + 1, (day + 1) * DAY_HOURS):
            if hour in self.hours:
                merge(total, self.hours[hour])
        for d in sorted({h // DAY_HOURS for h in self.hours if h // DAY_HOURS > day}):
            merge(total, self._day(d))
        return {"schema_version": self.schema[1], "sources": sources_document(total), "last_activity": self.last}

    def _day(self, day: int) -> dict:
        summed = self.days.get(day)
        if summed is None:
            summed = {}
            for hour in range(day * DAY_HOURS, (day + 1) * DAY_HOURS):
                if hour in self.hours:
                    merge(summed, self.hours[hour])
            self.days[day] = summed
        return summed

    def _read(self, conn, start: float, end: float, prices) -> dict:
        """The tally of the sessions that started in [start, end), read now."""
        sessions = ranged(RANGE, conn, start, end).fetchall()
        rows = ranged(RANGE_USAGE, conn, start, end).fetchall() if self.schema[0] and sessions else []
        return priced_tally(sessions, rows, prices)

    def _fingerprints(self, conn, start_hour: int, end: float | None) -> dict[int, tuple]:
        prints: dict[int, tuple] = {}
        for h, *figures in ranged(FINGERPRINT_SESSIONS, conn, start_hour * HOUR, end):
            if figures[1]:
                raise Fallback("started_at is not a number")
            prints[h] = (tuple(figures), ())
        if self.schema[0]:
            for h, *figures in ranged(FINGERPRINT_USAGE, conn, start_hour * HOUR, end):
                prints[h] = (prints.get(h, ((),))[0], tuple(figures))
        return prints

    def _extend(self, conn, first: int, prices) -> None:
        """Hold the hours from `first` up to what is held already."""
        end = None if self.covered_from is None else self.covered_from * HOUR
        if self.covered_from is None:
            self._marks(conn)
            self.verified = time.monotonic()
        prints = self._fingerprints(conn, first, end)
        self._replace(conn, set(prints), first * HOUR, end, prices)
        self.prints.update(prints)
        self.covered_from = first

    def _marks(self, conn) -> None:
        self.mark = conn.execute("SELECT max(rowid) FROM sessions").fetchone()[0] or 0
        if self.has_messages:
            self.message_mark = conn.execute("SELECT max(id) FROM messages").fetchone()[0] or 0

    def _follow(self, conn, prices) -> None:
        """Re-read the hours of the sessions that announce a change (new, messaged, watched)."""
        import json
        now = time.monotonic()
        dirty: set[int] = set()
        touched: dict[str, object] = {}
        for rowid, sid, started in conn.execute(NEW_SESSIONS, (self.mark,)):
            self.mark = max(self.mark, rowid)
            touched[sid] = started
        if self.has_messages:
            touched.update(conn.execute(MESSAGED, (self.message_mark,)).fetchall())
            self.message_mark = conn.execute("SELECT max(id) FROM messages").fetchone()[0] or 0
        watched = set(self.hot) | set(touched)
        sql = SESSION_PRINTS.format(usage=SESSION_PRINTS_USAGE if self.schema[0] else "")
        current = {row[0]: row for row in conn.execute(sql, (json.dumps(sorted(watched)),))}
        for sid in watched:
            row = current.get(sid)
            before = self.hot.get(sid)
            if row is not None and not isinstance(row[1], (int, float)):
                raise Fallback("started_at is not a number")
            hour = None if row is None else int(row[1] // HOUR)
            if before is not None and before[2] != row:
                dirty.update(h for h in (before[1], hour) if h is not None)
            elif before is None and hour is not None:
                dirty.add(hour)
            if row is None:
                self.hot.pop(sid, None)
            elif sid in touched or before is None or before[2] != row:
                self.hot[sid] = (now + HOT_S, hour, row)
            elif before[0] < now:
                del self.hot[sid]
        self._reread(conn, {h for h in dirty if h >= self.covered_from}, prices)

    def _reread(self, conn, hours: set, prices) -> None:
        """Re-read these hours' tallies and fingerprints: one by one, or a few in one span."""
        if not hours:
            return
        spans = [(h, h + 1) for h in hours] if len(hours) <= PER_HOUR_READS else [(min(hours), max(hours) + 1)]
        for first, end in spans:
            self._replace(conn, hours, first * HOUR, end * HOUR, prices)
            prints = self._fingerprints(conn, first, end * HOUR)
            for hour in hours:
                if first <= hour < end:
                    if hour in prints:
                        self.prints[hour] = prints[hour]
                    else:
                        self.prints.pop(hour, None)

    def _refresh(self, conn, prices) -> None:
        """Re-read the held hours whose fingerprint changed (new, changed, gone)."""
        self._marks(conn)
        self.verified = time.monotonic()
        prints = self._fingerprints(conn, self.covered_from, None)
        changed = {h for h in set(prints) | set(self.prints) if prints.get(h) != self.prints.get(h)}
        spans = [(h, h + 1) for h in changed] if len(changed) <= PER_HOUR_READS else \
            [(min(changed), max(changed) + 1)] if changed else []
        for first, end in spans:
            self._replace(conn, changed, first * HOUR, end * HOUR, prices)
        self.prints = prints

    def _replace(self, conn, hours: set, start: float, end: float | None, prices) -> None:
        """Re-read [start, end) and keep the tallies of `hours` (every hour read is current)."""
        first, last = int(start // HOUR), None if end is None else int(end // HOUR)
        hours = {h for h in hours if h >= first and (last is None or h < last)}
        for hour in hours:
            self.hours.pop(hour, None)
            self.days.pop(hour // DAY_HOURS, None)
        if not hours:
            return
        sessions = ranged(RANGE, conn, start, end).fetchall()
        rows = ranged(RANGE_USAGE, conn, start, end).fetchall() if self.schema[0] and sessions else []
        by_hour: dict[int, list] = {}
        for s in sessions:
            by_hour.setdefault(int(s[3] // HOUR), []).append(s)
        ids = {s[0]: int(s[3] // HOUR) for s in sessions}
        rows_by_hour: dict[int, list] = {}
        for r in rows:
            rows_by_hour.setdefault(ids[r[0]], []).append(r)
        for hour, mine in by_hour.items():
            if hour in hours:
                self.hours[hour] = priced_tally(mine, rows_by_hour.get(hour, []), prices)


class Store:
    """Every profile's store, in the resident agent."""

    def __init__(self):
        from .pricing import Prices
        self.profiles: dict[str, ProfileStore] = {}
        self.prices = Prices.lazy()  # held for the agent's life: a route is looked up once

    def forget_others(self, profiles: list[str]) -> None:
        """Close the stores of profiles that are gone (an open file would keep a deleted
        state.db's space)."""
        for gone in set(self.profiles) - set(profiles):
            self.profiles.pop(gone).close()

    def usage(self, profiles: list[str], cutoff: float, skipped: dict | None = None) -> dict:
        """The `usage` verb's document, as usage.usage() gives it, from the held tallies."""
        from .usage import document, read_profile
        prices = self.prices
        answers = {}
        for name in profiles:
            store = self.profiles.setdefault(name, ProfileStore(name))
            try:
                if cutoff < 0:
                    raise Fallback("a window before 1970")
                answers[name] = {"ok": True, **store.answer(cutoff, prices)}
            except Fallback:
                store.close()
                try:
                    answers[name] = {"ok": True, **read_profile(state_db(name), cutoff, prices)}
                except ProfileError as exc:
                    answers[name] = {"ok": False, "error": {"code": exc.code, "message": exc.message}}
            except ProfileError as exc:
                answers[name] = {"ok": False, "error": {"code": exc.code, "message": exc.message}}
        return document(cutoff, answers, skipped)
