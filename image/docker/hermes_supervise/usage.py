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
that profile only.
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

# The model's name as insights displays it: after the last '/' (rtrim strips every trailing
# character that is not a '/'), `unknown` when NULL or empty.
_DISPLAY = ("substr(coalesce(nullif({m}, ''), 'unknown'), length(rtrim(coalesce(nullif({m}, ''), 'unknown'), "
            "replace(coalesce(nullif({m}, ''), 'unknown'), '/', ''))) + 1)")


def _z(expr: str) -> str:
    return f"coalesce({expr}, 0)"


# Only the columns the breakdown reads: materialising whole rows (system prompts...) costs.
SESSION_FIELDS = ("id, source, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
                  "api_call_count, estimated_cost_usd, actual_cost_usd")
WINDOW = f"SELECT {SESSION_FIELDS} FROM sessions WHERE started_at >= ?"


def _breakdown_sql(with_usage: bool, sessions: str = WINDOW, key: str = "source") -> str:
    """Per (key, model) over the sessions the `sessions` query selects: distinct sessions, the
    five token kinds, stored estimated cost, actual cost, API calls; usage rows whose cost must
    be estimated are summed apart (priced row by row in Python, as insights does). `key` is
    `source` (per platform) or `sid` (per session, for the incremental reader)."""
    usage_rows = f"""
      SELECT s.source AS source, u.session_id AS sid, u.model AS model,
             {_z('u.input_tokens')} AS i, {_z('u.output_tokens')} AS o, {_z('u.cache_read_tokens')} AS cr,
             {_z('u.cache_write_tokens')} AS cw, {_z('u.reasoning_tokens')} AS r, {_z('u.api_call_count')} AS calls,
             {_z('u.estimated_cost_usd')} AS est, {_z('u.actual_cost_usd')} AS act,
             (coalesce(u.cost_status, '') <> '' OR coalesce(u.cost_source, '') <> '') AS stored
        FROM w s CROSS JOIN session_model_usage u ON u.session_id = s.id
      UNION ALL""" if with_usage else ""
    per_session = f"""
      ut AS (SELECT u.session_id AS sid, sum({_z('u.input_tokens')}) AS i, sum({_z('u.output_tokens')}) AS o,
                    sum({_z('u.cache_read_tokens')}) AS cr, sum({_z('u.cache_write_tokens')}) AS cw,
                    sum({_z('u.api_call_count')}) AS calls, total(u.estimated_cost_usd) AS est,
                    total(u.actual_cost_usd) AS act
               FROM w s CROSS JOIN session_model_usage u ON u.session_id = s.id GROUP BY u.session_id),""" \
        if with_usage else """
      ut AS (SELECT NULL AS sid, 0 AS i, 0 AS o, 0 AS cr, 0 AS cw, 0 AS calls, 0.0 AS est, 0.0 AS act
               WHERE 0),"""
    return f"""
    WITH w AS ({sessions}),{per_session}
    rows AS ({usage_rows}
      SELECT * FROM (
        SELECT s.source AS source, s.id AS sid, s.model AS model,
               max(0, {_z('s.input_tokens')} - {_z('ut.i')}) AS i, max(0, {_z('s.output_tokens')} - {_z('ut.o')}) AS o,
               max(0, {_z('s.cache_read_tokens')} - {_z('ut.cr')}) AS cr,
               max(0, {_z('s.cache_write_tokens')} - {_z('ut.cw')}) AS cw, 0 AS r,
               max(0, {_z('s.api_call_count')} - {_z('ut.calls')}) AS calls,
               max(0.0, {_z('s.estimated_cost_usd')} - {_z('ut.est')}) AS est,
               max(0.0, {_z('s.actual_cost_usd')} - {_z('ut.act')}) AS act, 1 AS stored
          FROM w s LEFT JOIN ut ON ut.sid = s.id)
       WHERE i OR o OR cr OR cw OR calls OR est OR act)
    SELECT {key}, {_DISPLAY.format(m='model')} AS display, count(DISTINCT sid), sum(i), sum(o), sum(cr), sum(cw),
           sum(r), sum(calls), total(CASE WHEN stored THEN est END), total(act)
      FROM rows GROUP BY 1, 2"""


def unstored_sql(sessions: str = WINDOW, key: str = "source") -> str:
    """Usage rows without a recorded cost (priced by hermes' own estimate, row by row)."""
    return f"""
    WITH w AS ({sessions})
    SELECT s.{key if key == 'source' else 'id'}, u.model, u.billing_provider, u.billing_base_url, u.input_tokens,
           u.output_tokens, u.cache_read_tokens, u.cache_write_tokens
      FROM w s CROSS JOIN session_model_usage u ON u.session_id = s.id
     WHERE coalesce(u.cost_status, '') = '' AND coalesce(u.cost_source, '') = ''"""

_SOURCES_SQL = f"""
    SELECT source, count(*), sum(ended_at IS NULL), sum({_z('message_count')}), sum({_z('tool_call_count')}),
           total(actual_cost_usd)
      FROM sessions WHERE started_at >= ? GROUP BY source"""

_TOOLS_BY_MODEL_SQL = f"""
    SELECT source, {_DISPLAY.format(m='model')}, sum({_z('tool_call_count')})
      FROM sessions WHERE started_at >= ? AND {_z('tool_call_count')} <> 0 GROUP BY 1, 2"""


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
    the shared-memory index WAL readers need)."""
    import sqlite3
    for suffix, required in (("", True), ("-wal", False), ("-shm", False)):
        _regular_or_absent(path + suffix, required=required)
    uri = "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)


def _columns(conn, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def check_schema(conn) -> tuple[bool, int | None]:
    """(has session_model_usage, schema_version); a foreign schema raises ProfileError."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    version = None
    if "schema_version" in tables:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
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


def _cell() -> dict:
    return {"sessions": 0, "active": 0, "messages": 0, "tool_calls": 0,
            **{f"{k}_tokens": 0 for k in TOKEN_KINDS}, "estimated_usd": 0.0, "actual_usd": 0.0,
            "unpriced_rows": 0, "models": {}}


def _model(cell: dict, name: str) -> dict:
    return cell["models"].setdefault(name, {"sessions": 0, **{f"{k}_tokens": 0 for k in TOKEN_KINDS},
                                            "api_calls": 0, "tool_calls": 0, "estimated_usd": 0.0,
                                            "actual_usd": 0.0})


def display_name(model) -> str:
    model = model or "unknown"
    return model.split("/")[-1] if "/" in model else model


def read_profile(path: str, cutoff: float, prices=None) -> dict:
    """One profile's sources (cells) in the window since `cutoff`, and its last activity."""
    import sqlite3
    try:
        conn = connect(path)
    except sqlite3.Error as exc:
        raise ProfileError("unreadable", str(exc)) from None
    try:
        conn.execute("BEGIN")  # one snapshot for every query below
        with_usage, version = check_schema(conn)
        sources: dict[str, dict] = {}
        for source, n, active, messages, tools, actual in conn.execute(_SOURCES_SQL, (cutoff,)):
            cell = sources.setdefault(str(source), _cell())
            cell.update(sessions=n, active=active or 0, messages=messages or 0, tool_calls=tools or 0,
                        actual_usd=actual or 0.0)
        for source, display, n, i, o, cr, cw, r, calls, est, act in conn.execute(_breakdown_sql(with_usage), (cutoff,)):
            cell = sources.setdefault(str(source), _cell())
            m = _model(cell, str(display))
            m.update(sessions=n, input_tokens=i, output_tokens=o, cache_read_tokens=cr, cache_write_tokens=cw,
                     reasoning_tokens=r, api_calls=calls, estimated_usd=est, actual_usd=act)
        if with_usage:
            unstored = conn.execute(unstored_sql(), (cutoff,)).fetchall()
            if unstored and prices is None:
                from .pricing import Prices
                prices = Prices()
            for source, model, provider, base_url, i, o, cr, cw in unstored:
                cell = sources.setdefault(str(source), _cell())
                try:
                    amount = prices.cost(model, provider, base_url, i, o, cr, cw)
                except Exception:  # noqa: BLE001 - hermes' pricing unavailable: counted, not guessed
                    cell["unpriced_rows"] += 1
                    continue
                _model(cell, display_name(model))["estimated_usd"] += amount
        for source, display, tools in conn.execute(_TOOLS_BY_MODEL_SQL, (cutoff,)):
            _model(sources.setdefault(str(source), _cell()), str(display))["tool_calls"] += tools or 0
        for cell in sources.values():  # the overview is the sum of the model breakdown
            for kind in TOKEN_KINDS:
                cell[f"{kind}_tokens"] = sum(m[f"{kind}_tokens"] for m in cell["models"].values())
            cell["estimated_usd"] = sum(m["estimated_usd"] for m in cell["models"].values())
        last = last_activity(conn, with_usage)
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise sqlite_error(exc) from None
    except sqlite3.DatabaseError as exc:
        raise sqlite_error(exc) from None
    finally:
        conn.close()
    return {"schema_version": version, "sources": sources, "last_activity": last}


def sqlite_error(exc: Exception) -> ProfileError:
    """An SQLite failure as one of the per-profile error codes."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return ProfileError("locked", f"state.db is locked ({text})")
    if "malformed" in text or "not a database" in text or type(exc).__name__ == "DatabaseError":
        return ProfileError("corrupt", f"state.db: {text}")
    return ProfileError("unreadable", f"state.db: {text}")


def last_activity(conn, with_usage: bool) -> float | None:
    """The latest moment the database records anything happening: the newest session's start
    and the newest message (hermes appends messages in time order: the highest id). Both are
    index lookups, whatever the size of the tables."""
    moments = [conn.execute("SELECT max(started_at) FROM sessions").fetchone()[0]]
    if _has_table(conn, "messages"):
        moments.append(conn.execute("SELECT timestamp FROM messages WHERE id = (SELECT max(id) FROM messages)"
                                    ).fetchone() or [None])
        moments[-1] = moments[-1][0] if moments[-1] else None
    numbers = [m for m in moments if isinstance(m, (int, float))]
    return max(numbers) if numbers else None


def _has_table(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def state_db(profile: str) -> str:
    return os.path.join(C.profile_path(C.hermes_home(os.environ), profile), "state.db")


def usage(profiles: list[str], cutoff: float) -> dict:
    """Every profile asked for, each answering alone."""
    from .pricing import Prices
    answers, prices = {}, Prices.lazy()
    for profile in profiles:
        try:
            answers[profile] = {"ok": True, **read_profile(state_db(profile), cutoff, prices)}
        except ProfileError as exc:
            answers[profile] = {"ok": False, "error": {"code": exc.code, "message": exc.message}}
    prices.save()
    return {"schema": C.SCHEMA, "verb": "usage", "now": time.time(), "cutoff": cutoff, "profiles": answers}


def main(argv: list[str]) -> dict:
    """usage [--window SECONDS | --since EPOCH] [PROFILE...]: no profile = every one (default and
    each profiles/<name>/ with SOUL.md). --window counts back from the container's clock, as
    `hermes insights --days` does."""
    from .names import require_valid_profile
    from .paths import all_profiles
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
    return usage(names or all_profiles(), cutoff)
