"""The resident agent's usage tallies (image/hermes/docker/hermes_supervise/usage_store.py) on the host,
against a state.db with the columns hermes-agent's schema gives them: every answer equals a
direct read (usage.read_profile, the one-shot agent's, proven equal to `hermes insights` in
test_usage.py) of the same database, after every kind of change; an unchanged database costs no
read beyond the window's first hour; the query socket's requests are checked."""
import json
import os
import random
import sqlite3
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "image" / "hermes" / "docker"))

from hermes_supervise import server, usage, usage_store  # noqa: E402

NOW = 1_790_000_000.0 + 1234.5  # not on an hour
DAY = 86400
SOURCES = ("cli", "telegram", "discord")
MODELS = ("anthropic/claude-sonnet-5", "claude-opus-4-8", "local-llama", None)


class NoPrices:
    """Every seeded row records its cost: hermes' pricing is never asked."""

    def cost(self, *args):
        raise AssertionError("a row without a recorded cost")

    def save(self):
        pass


def _schema(conn) -> None:
    conn.executescript("""
        PRAGMA journal_mode=wal;
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (9);
        CREATE TABLE sessions (id TEXT PRIMARY KEY, source TEXT NOT NULL, model TEXT, started_at REAL NOT NULL,
            ended_at REAL, message_count INTEGER DEFAULT 0, tool_call_count INTEGER DEFAULT 0,
            input_tokens INTEGER DEFAULT 0, output_tokens INTEGER DEFAULT 0, cache_read_tokens INTEGER DEFAULT 0,
            cache_write_tokens INTEGER DEFAULT 0, reasoning_tokens INTEGER DEFAULT 0, billing_provider TEXT,
            billing_base_url TEXT, estimated_cost_usd REAL, actual_cost_usd REAL, cost_status TEXT,
            cost_source TEXT, api_call_count INTEGER DEFAULT 0);
        CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, role TEXT NOT NULL,
            content TEXT, timestamp REAL NOT NULL);
        CREATE TABLE session_model_usage (session_id TEXT NOT NULL, model TEXT NOT NULL,
            billing_provider TEXT NOT NULL DEFAULT '', billing_base_url TEXT NOT NULL DEFAULT '',
            billing_mode TEXT NOT NULL DEFAULT '', task TEXT NOT NULL DEFAULT '',
            api_call_count INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0, cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0, reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            estimated_cost_usd REAL NOT NULL DEFAULT 0, actual_cost_usd REAL NOT NULL DEFAULT 0,
            cost_status TEXT, cost_source TEXT,
            PRIMARY KEY (session_id, model, billing_provider, billing_base_url, billing_mode, task));
        CREATE INDEX idx_sessions_started ON sessions(started_at DESC);
        CREATE INDEX idx_session_model_usage_session ON session_model_usage(session_id);
    """)


def add_session(conn, rng: random.Random, sid: str, started: float, *, open_: bool = False) -> None:
    rows = []
    for model in rng.sample(MODELS[:3], rng.choice([0, 1, 1, 2])):
        i, o, r = rng.randint(0, 9000), rng.randint(0, 900), rng.randint(0, 90)
        est = round(rng.uniform(0, 2), 6)
        rows.append((model, i, o, r, est))
        conn.execute("INSERT INTO session_model_usage (session_id, model, api_call_count, input_tokens, output_tokens, "
                     "reasoning_tokens, estimated_cost_usd, actual_cost_usd, cost_status) VALUES (?,?,?,?,?,?,?,?,?)",
                     (sid, model, rng.randint(1, 9), i, o, r, est, est / 2, "estimated"))
    extra = rng.randint(0, 500) if rng.random() < 0.3 or not rows else 0
    conn.execute("INSERT INTO sessions (id, source, model, started_at, ended_at, message_count, tool_call_count, "
                 "input_tokens, output_tokens, estimated_cost_usd, actual_cost_usd, cost_status, api_call_count) "
                 "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 (sid, rng.choice(SOURCES), rng.choice(MODELS), started, None if open_ else started + 60,
                  rng.randint(0, 40), rng.choice([0, rng.randint(1, 9)]), sum(r[1] for r in rows) + extra,
                  sum(r[2] for r in rows), sum(r[4] for r in rows) + extra / 1000, rng.uniform(0, 1),
                  "estimated", rng.randint(0, 20)))
    conn.execute("INSERT INTO messages (session_id, role, content, timestamp) VALUES (?, 'user', 'x', ?)",
                 (sid, started))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_HOME", str(tmp_path))
    conn = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    _schema(conn)
    rng = random.Random(5)
    conn.execute("BEGIN")
    for n in range(600):
        add_session(conn, rng, f"s{n}", NOW - rng.uniform(60, 40 * DAY), open_=rng.random() < 0.1)
    conn.execute("COMMIT")
    yield tmp_path, conn, rng
    conn.close()


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setattr(usage_store.time, "monotonic", lambda: 1000.0)


def same(mine, ref, path=""):
    """Equal, money to 1e-9 (sums in another order), as test_usage.py compares with insights."""
    if isinstance(ref, dict):
        assert set(mine) == set(ref), (path, set(mine) ^ set(ref))
        for k in ref:
            same(mine[k], ref[k], f"{path}/{k}")
    elif isinstance(ref, float) or isinstance(mine, float):
        assert abs(mine - ref) <= 1e-9 * max(1.0, abs(ref)), (path, mine, ref)
    else:
        assert mine == ref, (path, mine, ref)


def check(store: usage_store.Store, cutoff: float) -> dict:
    mine = store.usage(["default"], cutoff)["profiles"]["default"]
    ref = {"ok": True, **usage.read_profile(usage.state_db("default"), cutoff, NoPrices())}
    same(mine, ref)
    assert mine["ok"] and sum(c["sessions"] for c in mine["sources"].values()) > 0
    return mine


@pytest.fixture
def store(monkeypatch):
    import hermes_supervise.pricing as pricing
    monkeypatch.setattr(pricing.Prices, "lazy", classmethod(lambda cls: NoPrices()))
    return usage_store.Store()


def test_every_window_equals_a_direct_read(home, store, now):
    for days in (7, 1, 30, 7, 40, 1):
        check(store, NOW - days * DAY)
    check(store, (NOW // 3600) * 3600 - 2 * DAY)  # a window starting on the hour


def test_changes_that_announce_themselves_show_at_once(home, store, now):
    _, conn, rng = home
    cutoff = NOW - 7 * DAY
    check(store, cutoff)
    add_session(conn, rng, "new", NOW - 30, open_=True)
    check(store, cutoff)
    old = conn.execute("SELECT id FROM sessions WHERE started_at < ? AND ended_at IS NOT NULL "
                       "ORDER BY started_at LIMIT 1", (NOW - 3 * DAY,)).fetchone()[0]
    # A resumed session: a message (and it is open again), then its tokens, then its end.
    conn.execute("INSERT INTO messages (session_id, role, content, timestamp) VALUES (?, 'user', 'y', ?)", (old, NOW))
    conn.execute("UPDATE sessions SET ended_at = NULL, message_count = message_count + 1 WHERE id = ?", (old,))
    check(store, cutoff)
    conn.execute("UPDATE sessions SET input_tokens = input_tokens + 5000, estimated_cost_usd = "
                 "estimated_cost_usd + 1 WHERE id = ?", (old,))
    check(store, cutoff)
    conn.execute("UPDATE session_model_usage SET output_tokens = output_tokens + 7 WHERE session_id = ?", (old,))
    conn.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (NOW, old))
    check(store, cutoff)


def test_changes_no_session_or_message_announces_show_at_the_next_verification(home, store, monkeypatch):
    _, conn, _ = home
    clock = [1000.0]
    monkeypatch.setattr(usage_store.time, "monotonic", lambda: clock[0])
    cutoff = NOW - 30 * DAY
    check(store, cutoff)
    victims = [r[0] for r in conn.execute("SELECT id FROM sessions WHERE ended_at IS NOT NULL AND started_at > ? "
                                          "ORDER BY rowid LIMIT 4", (cutoff,))]
    conn.execute("DELETE FROM sessions WHERE id = ?", (victims[0],))
    conn.execute("UPDATE sessions SET model = 'renamed' WHERE id = ?", (victims[1],))
    conn.execute("UPDATE session_model_usage SET estimated_cost_usd = 9 WHERE session_id = ?", (victims[2],))
    conn.execute("UPDATE sessions SET started_at = started_at - 3 * 86400 WHERE id = ?", (victims[3],))
    clock[0] += usage_store.VERIFY_EVERY_S
    check(store, cutoff)


def test_an_unchanged_database_costs_the_first_hour_only(home, store, now):
    check(store, NOW - 30 * DAY)
    statements = []
    conn = store.profiles["default"].conn
    conn.set_trace_callback(statements.append)
    check(store, NOW - 30 * DAY)
    check(store, NOW - 7 * DAY)
    reads = [s for s in statements if s.startswith("SELECT")]
    assert all(s.startswith(f"SELECT {usage.SESSION_FIELDS} FROM sessions") or "session_model_usage u" in s
               for s in reads), reads
    assert all("started_at < " in s for s in reads), reads  # each bounded to the window's first hour
    assert len(reads) <= 4 and statements.count("PRAGMA data_version") == 2


def test_a_replaced_database_starts_over_and_a_text_moment_reads_directly(home, store, now):
    path, conn, rng = home
    cutoff = NOW - 7 * DAY
    check(store, cutoff)
    conn.close()
    os.replace(path / "state.db", path / "old.db")
    fresh = sqlite3.connect(path / "state.db", isolation_level=None)
    _schema(fresh)
    add_session(fresh, rng, "only", NOW - 100)
    assert sum(c["sessions"] for c in check(store, cutoff)["sources"].values()) == 1
    fresh.execute("INSERT INTO sessions (id, source, started_at) VALUES ('t', 'cli', 'yesterday')")
    check(store, cutoff)
    fresh.close()
    os.unlink(path / "state.db")
    assert store.usage(["default"], cutoff)["profiles"]["default"]["error"]["code"] == "missing"


@pytest.mark.parametrize("line, code", [
    (b"not json", "usage"), (b'{"verb": "usage"}', "usage"), (b'["status"]', "usage"),
    (b'["usage", "--window"]', "usage"), (b'["usage", "Bad!"]', "invalid-name"), (b'["usage", 7]', "usage"),
    (b"\xff\xfe", "usage"),
])
def test_the_query_socket_refuses_bad_requests(line, code):
    assert server.query(line, usage_store.Store())["error"]["code"] == code


def test_the_query_socket_answers_usage(home, store, now):
    doc = server.query(json.dumps(["usage", "--since", str(NOW - 7 * DAY), "default"]).encode(), store)
    assert doc["verb"] == "usage" and doc["profiles"]["default"]["ok"]


CLIENT = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); " \
         "data = b''\nwhile True:\n    chunk = s.recv(65536)\n    if not chunk: break\n    data += chunk\n" \
         "sys.stdout.write(data.decode())"


@pytest.mark.parametrize("question", [["usage", "--window", str(7 * DAY), "default"], None])
def test_the_question_rides_in_the_connected_process_environment(home, store, now, tmp_path, question):
    """The agent reads the question from /proc/PID/environ of the process at the other end (its
    own user's), as it does for s6-ipcclient -> fdmove -> head in the container."""
    import subprocess
    listener = server.bind(str(tmp_path / "q.sock"))
    env = {k: v for k, v in os.environ.items() if k != server.C.QUERY_ENV}
    if question is not None:
        env[server.C.QUERY_ENV] = json.dumps(question)
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(tmp_path / "q.sock")], env=env,
                              stdout=subprocess.PIPE, text=True)
    conn, _ = listener.accept()
    server.answer_query(conn, store)
    doc = json.loads(client.communicate(timeout=30)[0])
    listener.close()
    if question is None:
        assert doc["error"]["code"] == "usage" and server.C.QUERY_ENV in doc["error"]["message"]
    else:
        assert doc["profiles"]["default"]["ok"] and doc["verb"] == "usage"


def test_a_profile_gone_is_closed(home, store, now):
    check(store, NOW - DAY)
    assert store.profiles["default"].conn is not None
    store.forget_others(["coder"])
    assert store.profiles == {}
