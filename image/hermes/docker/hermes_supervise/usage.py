# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""The agent's `usage` verb: what each profile's state.db says about sessions, tokens and cost.

Read-only (SQLite `mode=ro`: never a write lock, a writer keeps its pace) and with hermes-agent
0.19.0's own definitions, so that a cell equals `hermes -p PROFILE insights --days N --source S`
(agent/insights.py: InsightsEngine.generate):
- a session is in the window when `started_at >= cutoff`; sessions, messages (message_count) and
  tool calls (tool_call_count) are sums over those sessions;
- tokens and estimated cost come from the per-model breakdown: every `session_model_usage` row
  of a session in the window, plus per session what its own counters hold beyond those rows
  (`max(0, session - sum of its rows)`, the legacy/residual part); a row's estimated cost is
  the stored one when the row has a cost_status or cost_source, else hermes' own price estimate;
- actual cost is the sessions' `actual_cost_usd`; reasoning tokens are the rows' (insights'
  model table counts no residual reasoning);
- models are named as insights shows them: the part after the last `/`, `unknown` when empty.
Cells are per source (platform): insights without --source is their sum.

Each profile answers alone: no state.db, a locked, corrupt or foreign-schema one is an error of
that profile only. So is a database holding what no hermes writes (state.db is hermes-writable
input): a value longer than MAX_VALUE_BYTES (SQLite measures it, with octet_length, which reads
no content; the value never reaches Python), more than MAX_NAMES platform x model names, or a
figure that is not a finite number: `oversized` / `non-finite`, and the other profiles answer.
"""
import os
import stat
import time

from . import contract as C

# Columns insights reads from `sessions`; a database without them is not one this code knows.
SESSION_COLUMNS = ("id", "source", "model", "started_at", "ended_at", "message_count", "tool_call_count",
                   "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                   "billing_provider", "billing_base_url", "estimated_cost_usd", "actual_cost_usd",
                   "cost_status", "cost_source", "api_call_count")
USAGE_COLUMNS = ("session_id", "model", "billing_provider", "billing_base_url", "api_call_count",
                 "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                 "reasoning_tokens", "estimated_cost_usd", "actual_cost_usd", "cost_status", "cost_source")
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
BUSY_TIMEOUT_S = 1.0  # a database locked longer than this is reported `locked`, not waited on
# Bounds on what a hermes-written database can make us hold. A model name, platform, session id
# or base URL is tens of bytes; a value past this is refused by SQLite before it is copied out.
MAX_VALUE_BYTES = 1024
# Distinct (platform, model) cells per profile: a real profile has a handful.
MAX_NAMES = 1000
OVERSIZED_FN = "hermesctl_oversized"


def bounded(column: str, label: str | None = None) -> str:
    """`column` as a result column that is never longer than MAX_VALUE_BYTES: a longer value makes
    the statement fail (through OVERSIZED_FN, which records what it was) instead of being copied
    into Python. octet_length() learns a value's size from its record header, without reading it."""
    label = label or column.split(".")[-1]
    return (f"CASE WHEN octet_length({column}) > {MAX_VALUE_BYTES} "
            f"THEN {OVERSIZED_FN}('{label}', octet_length({column})) ELSE {column} END")


def bounded_list(columns: str) -> str:
    """Each of a comma-separated list of columns, bounded(), under its own name (a query over
    these, as usage_watch's DELTA_USAGE is, names them)."""
    return ", ".join(f"{bounded(c.strip())} AS {c.strip().split('.')[-1]}" for c in columns.split(","))

# The sessions of the window and their per-model rows, read as insights reads them (the same
# join, so each session's rows come in the same order: insights' float sums and its "is there a
# residual" test depend on it) and summed in Python exactly as insights sums them.
SESSION_COLUMNS_READ = ("id, source, model, started_at, ended_at, message_count, tool_call_count, input_tokens, "
                        "output_tokens, cache_read_tokens, cache_write_tokens, billing_provider, billing_base_url, "
                        "estimated_cost_usd, actual_cost_usd, api_call_count")
SESSION_FIELDS = bounded_list(SESSION_COLUMNS_READ)
WINDOW = f"SELECT {SESSION_FIELDS} FROM sessions WHERE started_at >= ?"
USAGE_FIELDS = bounded_list("u.session_id, u.model, u.billing_provider, u.billing_base_url, u.api_call_count, "
                            "u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, "
                            "u.reasoning_tokens, u.estimated_cost_usd, u.actual_cost_usd, u.cost_status, "
                            "u.cost_source")
WINDOW_USAGE = (f"SELECT {USAGE_FIELDS} FROM session_model_usage u JOIN sessions s ON s.id = u.session_id "
                "WHERE s.started_at >= ?")
# Chosen sessions (a JSON array of ids) with every figure insights reads of them and of their
# per-model rows (SESSION_PRINTS_USAGE, when the table exists): equal rows, nothing changed.
SESSION_PRINTS = (
    "SELECT " + bounded_list("s.id, s.started_at, s.ended_at, s.source, s.model, s.message_count, "
                             "s.tool_call_count, s.input_tokens, s.output_tokens, s.cache_read_tokens, "
                             "s.cache_write_tokens, s.estimated_cost_usd, s.actual_cost_usd, s.api_call_count")
    + "{usage} FROM sessions s WHERE s.id IN (SELECT value FROM json_each(?))")
SESSION_PRINTS_USAGE = (
    ", (SELECT printf('%d %d %d %d %d %d %d %.17g %.17g %d %d', count(*), total(u.api_call_count), "
    "total(u.input_tokens), total(u.output_tokens), total(u.cache_read_tokens), total(u.cache_write_tokens), "
    "total(u.reasoning_tokens), total(u.estimated_cost_usd), total(u.actual_cost_usd), "
    "total(u.cost_status IS NULL AND u.cost_source IS NULL), total(octet_length(u.model))) "
    "FROM session_model_usage u WHERE u.session_id = s.id)")
# Per model: input, output, cache read, cache write, reasoning, API calls, estimated, actual.
FIGURES = 8


def contributions(sessions: list, rows: list, prices) -> dict[str, dict[str, list]]:
    """Session id -> model (as insights names it) -> FIGURES, from its rows and its residual
    (what its counters hold beyond its rows), as insights' _compute_model_breakdown does.
    `sessions` rows are SESSION_FIELDS, `rows` USAGE_FIELDS."""
    out: dict[str, dict[str, list]] = {}
    totals: dict[str, list] = {}
    for (sid, model, provider, base_url, calls, i, o, cr, cw, r, est, act, status, source) in rows:
        t = totals.setdefault(sid, [0, 0, 0, 0, 0, 0.0, 0.0])
        t[0] += i or 0
        t[1] += o or 0
        t[2] += cr or 0
        t[3] += cw or 0
        t[4] += calls or 0
        t[5] += est or 0.0
        t[6] += act or 0.0
        if status or source:
            cost = float(est or 0.0)
        else:
            cost = prices.cost(model or "unknown", provider, base_url, i or 0, o or 0, cr or 0, cw or 0)
        _add(out.setdefault(sid, {}), model, [i or 0, o or 0, cr or 0, cw or 0, r or 0, calls or 0, cost,
                                            float(act or 0.0)])
    for (sid, _source, model, _started, _ended, _m, _t, si, so, scr, scw, _p, _u, sest, sact, scalls) in sessions:
        t = totals.get(sid) or [0, 0, 0, 0, 0, 0.0, 0.0]
        residual = [max(0, (si or 0) - t[0]), max(0, (so or 0) - t[1]), max(0, (scr or 0) - t[2]),
                    max(0, (scw or 0) - t[3]), 0, max(0, (scalls or 0) - t[4]),
                    max(0.0, float(sest or 0.0) - t[5]), max(0.0, float(sact or 0.0) - t[6])]
        if any(residual):
            _add(out.setdefault(sid, {}), model, residual)
    return out


def _add(models: dict, model, figures: list) -> None:
    mine = models.setdefault(display_name(model), [0] * FIGURES)
    for k, v in enumerate(figures):
        mine[k] += v


class ProfileError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _regular_or_absent(path: str, *, required: bool) -> None:
    """state.db and its -wal/-shm must be plain files: a FIFO would hang the reader, a symlink
    points somewhere hermes chose (we run as hermes, yet read only what is the profile's)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if required:
            raise ProfileError("missing", "no state.db (the profile has not run a session yet)") from None
        return
    except OSError as exc:
        raise ProfileError("unreadable", f"{os.path.basename(path)}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise ProfileError("unreadable", f"{os.path.basename(path)} is {kind}")


def connect(path: str):
    """A read-only connection (URI mode=ro: SQLite takes no write lock and writes nothing but
    the shared-memory index WAL readers need), with OVERSIZED_FN: a statement that meets a value
    over MAX_VALUE_BYTES fails, and the connection's `oversized` says what it was."""
    import sqlite3
    for suffix, required in (("", True), ("-wal", False), ("-shm", False)):
        _regular_or_absent(path + suffix, required=required)
    uri = "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False, factory=_Connection())
    conn.create_function(OVERSIZED_FN, 2, conn.refuse)
    if sqlite3.sqlite_version_info < (3, 43):
        # octet_length() is SQLite 3.43's (the image's SQLite is newer); an older library (a host
        # running the daemon-free tests) gets an equivalent that does copy the value out.
        conn.create_function("octet_length", 1, _octet_length, deterministic=True)
    return conn


def _Connection():
    import sqlite3

    class Connection(sqlite3.Connection):
        oversized = None

        def refuse(self, column, size):
            self.oversized = f"a value of {size:,} bytes in `{column}` (more than {MAX_VALUE_BYTES:,}): not read"
            raise ValueError(self.oversized)

    return Connection


def _octet_length(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return len(value)
    return len(str(value).encode("utf-8", "surrogatepass"))


def _columns(conn, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def check_schema(conn) -> tuple[bool, int | None]:
    """(has session_model_usage, schema_version); a foreign schema raises ProfileError."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                             f"octet_length(name) <= {MAX_VALUE_BYTES}")}
    version = None
    if "schema_version" in tables:
        row = conn.execute(f"SELECT {bounded('v', 'schema_version')} FROM "
                           "(SELECT max(version) AS v FROM schema_version)").fetchone()
        version = row[0] if row and isinstance(row[0], int) else None
    if "sessions" not in tables:
        raise ProfileError("schema", f"no sessions table (schema_version {version}): not a hermes-agent state.db")
    missing = [c for c in SESSION_COLUMNS if c not in _columns(conn, "sessions")]
    if missing:
        raise ProfileError("schema", f"sessions lacks {', '.join(missing)} (schema_version {version}): "
                           "a hermes-agent version this hermesctl does not know")
    with_usage = "session_model_usage" in tables and all(
        c in _columns(conn, "session_model_usage") for c in USAGE_COLUMNS)
    return with_usage, version


# A tally: what sessions add up to, as a flat, summable dict (hour buckets of the resident
# agent's store add up the same way as one window read): (source, None) -> SOURCE_FIGURES,
# (source, model as insights names it) -> MODEL_FIGURES.
SOURCE_FIGURES = ("sessions", "active", "messages", "tool_calls", "actual_usd")
MODEL_FIGURES = ("sessions", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                 "reasoning_tokens", "api_calls", "estimated_usd", "actual_usd", "tool_calls")


def tally(sessions: list, rows: list, prices, into: dict | None = None) -> dict:
    """Add sessions (SESSION_FIELDS) and their per-model rows (USAGE_FIELDS) to a tally."""
    into = {} if into is None else into
    per_session = contributions(sessions, rows, prices)
    for (sid, source, model, _started, ended, messages, tools, *_rest) in sessions:
        source = str(source)
        figures = into.get((source, None))
        if figures is None:
            _room(into)
            figures = into[(source, None)] = [0, 0, 0, 0, 0.0]
        figures[0] += 1
        figures[1] += ended is None
        figures[2] += messages or 0
        figures[3] += tools or 0
        figures[4] += float(_rest[-2] or 0.0)
        if tools:
            _model_figures(into, source, display_name(model))[9] += tools
        for name, f in per_session.get(sid, {}).items():
            m = _model_figures(into, source, name)
            m[0] += 1
            for k, value in enumerate(f, 1):
                m[k] += value
    return into


def _model_figures(into: dict, source: str, name: str) -> list:
    figures = into.get((source, name))
    if figures is None:
        _room(into)
        figures = into[(source, name)] = [0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0]
    return figures


def _room(into: dict) -> None:
    """One more platform or platform x model cell, within MAX_NAMES."""
    if len(into) >= MAX_NAMES:
        raise ProfileError("oversized", f"state.db names more than {MAX_NAMES:,} platforms and models: not summed")


def finite(figures: dict, where: str) -> None:
    """Every number of a document part is finite: state.db may hold inf or NaN (REAL columns take
    them, and 1e308 + 1e308 is inf), which JSON cannot carry and no sum of costs means."""
    import math
    for key, value in figures.items():
        if isinstance(value, dict):
            finite(value, f"{where}/{key}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ProfileError("non-finite", f"{where}/{key} is {value} (state.db holds a figure that is not "
                                             "a finite number): not summed")


def merge(into: dict, tallied: dict) -> dict:
    """Add one tally to another."""
    for key, figures in tallied.items():
        mine = into.get(key)
        if mine is None:
            _room(into)
            into[key] = list(figures)
        else:
            for k, value in enumerate(figures):
                mine[k] += value
    return into


def sources_document(tallied: dict) -> dict:
    """A tally as the verb's `sources`: per source its figures and its models; the overview's
    tokens and estimated cost are the sum of its model breakdown, as insights' are."""
    sources: dict[str, dict] = {}
    for (source, name), figures in sorted(tallied.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        cell = sources.get(source)
        if cell is None:
            cell = sources[source] = {"sessions": 0, "active": 0, "messages": 0, "tool_calls": 0,
                                      **{f"{k}_tokens": 0 for k in TOKEN_KINDS}, "estimated_usd": 0.0,
                                      "actual_usd": 0.0, "unpriced_rows": 0, "models": {}}
        if name is None:
            cell.update(zip(SOURCE_FIGURES, figures))
        else:
            cell["models"][name] = dict(zip(MODEL_FIGURES, figures))
    for cell in sources.values():
        for kind in TOKEN_KINDS:
            cell[f"{kind}_tokens"] = sum(m[f"{kind}_tokens"] for m in cell["models"].values())
        cell["estimated_usd"] = sum(m["estimated_usd"] for m in cell["models"].values())
    finite(sources, "sources")
    return sources


def display_name(model) -> str:
    model = model or "unknown"
    return model.split("/")[-1] if "/" in model else model


def read_profile(path: str, cutoff: float, prices=None) -> dict:
    """One profile's sources (cells) in the window since `cutoff`, and its last activity."""
    import sqlite3
    from .pricing import Prices
    prices = prices or Prices.lazy()
    try:
        conn = connect(path)
    except sqlite3.Error as exc:
        raise ProfileError("unreadable", str(exc)) from None
    try:
        conn.execute("BEGIN")  # one snapshot for every query below
        with_usage, version = check_schema(conn)
        sessions = conn.execute(WINDOW + " ORDER BY started_at DESC", (cutoff,)).fetchall()
        rows = conn.execute(WINDOW_USAGE, (cutoff,)).fetchall() if with_usage else []
        last = last_activity(conn, with_usage)
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise sqlite_error(exc, conn) from None
    finally:
        conn.close()
    return {"schema_version": version, "sources": sources_document(priced_tally(sessions, rows, prices)),
            "last_activity": last}


def priced_tally(sessions: list, rows: list, prices, into: dict | None = None) -> dict:
    """tally(), with a failure of hermes' pricing reported as this profile's error."""
    try:
        return tally(sessions, rows, prices, into)
    except ProfileError:
        raise
    except Exception as exc:  # noqa: BLE001 - hermes' pricing missing or failing: this profile says so
        raise ProfileError("unreadable", f"pricing rows without a recorded cost failed: {exc}") from None


def sqlite_error(exc: Exception, conn=None) -> ProfileError:
    """An SQLite failure as one of the per-profile error codes (`oversized`: a statement met a
    value over MAX_VALUE_BYTES on `conn`)."""
    if getattr(conn, "oversized", None):
        return ProfileError("oversized", f"state.db holds {conn.oversized}")
    text = str(exc)
    if "locked" in text or "busy" in text:
        return ProfileError("locked", f"state.db is locked ({text})")
    if "malformed" in text or "not a database" in text or type(exc).__name__ == "DatabaseError":
        return ProfileError("corrupt", f"state.db: {text}")
    return ProfileError("unreadable", f"state.db: {text}")


LATEST_SESSION = f"SELECT {bounded('m', 'started_at')} FROM (SELECT max(started_at) AS m FROM sessions)"
LATEST_MESSAGE = (f"SELECT {bounded('timestamp')} FROM messages WHERE id = (SELECT max(id) FROM messages)")


def last_activity(conn, with_usage: bool) -> float | None:
    """The latest moment the database records anything happening: the newest session's start
    and the newest message (hermes appends messages in time order: the highest id). Both are
    index lookups, whatever the size of the tables."""
    moments = [conn.execute(LATEST_SESSION).fetchone()[0]]
    if _has_table(conn, "messages"):
        moments.append(conn.execute(LATEST_MESSAGE).fetchone() or [None])
        moments[-1] = moments[-1][0] if moments[-1] else None
    return latest(moments)


def latest(moments: list) -> float | None:
    """The latest of those moments that are finite numbers (a text or inf moment is no moment)."""
    import math
    numbers = [m for m in moments if isinstance(m, (int, float)) and math.isfinite(m)]
    return max(numbers) if numbers else None


def _has_table(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def state_db(profile: str) -> str:
    """The profile's state.db; a profile directory (or profiles/) that is a symlink is not read:
    it is another profile's, or somewhere hermes chose, and would be counted twice."""
    home = C.hermes_home(os.environ)
    directory = C.profile_path(home, profile)
    if directory != home:
        for path in (os.path.dirname(directory), directory):
            if os.path.islink(path):
                raise ProfileError("unreadable", f"{os.path.relpath(path, home)} is a symlink, not a profile "
                                                 "directory: not read")
    return os.path.join(directory, "state.db")


def usage(profiles: list[str], cutoff: float, skipped: dict | None = None) -> dict:
    """Every profile asked for, each answering alone; `skipped`: what looked like a profile and
    is not one (paths.profile_entries), said in the answer."""
    from .pricing import Prices
    answers, prices = {}, Prices.lazy()
    for profile in profiles:
        try:
            answers[profile] = {"ok": True, **read_profile(state_db(profile), cutoff, prices)}
        except ProfileError as exc:
            answers[profile] = {"ok": False, "error": {"code": exc.code, "message": exc.message}}
    return document(cutoff, answers, skipped)


def document(cutoff: float, answers: dict, skipped: dict | None) -> dict:
    """The `usage` verb's answer (the one-shot agent's and the resident store's). Its figures are
    finite (a profile with another is that profile's `non-finite` error), so it is strict JSON."""
    for name, answer in answers.items():
        if answer.get("ok"):
            try:
                finite(answer, "")
            except ProfileError as exc:
                answers[name] = {"ok": False, "error": {"code": exc.code, "message": exc.message}}
    return {"schema": C.SCHEMA, "verb": "usage", "now": time.time(), "cutoff": cutoff, "profiles": answers,
            "skipped": dict(skipped or {})}


def main(argv: list[str]) -> dict:
    """usage [--window SECONDS | --since EPOCH] [PROFILE...]: no profile = every one (default and
    each profiles/<name>/ with SOUL.md). --window counts back from the container's clock, as
    `hermes insights --days` does."""
    from .names import require_valid_profile
    from .paths import profile_entries
    cutoff, names, args = 0.0, [], list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("--window", "--since"):
            if not args:
                raise ValueError(f"{arg} needs a number")
            try:
                value = float(args.pop(0))
            except ValueError:
                raise ValueError(f"{arg} needs a number") from None
            if not 0 <= value < 1e11:
                raise ValueError(f"{arg} out of range")
            cutoff = time.time() - value if arg == "--window" else value
        elif arg.startswith("-"):
            raise ValueError(f"unknown option {arg}")
        else:
            names.append(require_valid_profile(arg))
    if names:
        return usage(names, cutoff)
    profiles, skipped = profile_entries()
    return usage(profiles, cutoff, skipped)
