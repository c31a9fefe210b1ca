"""`usage` when state.db and HERMES_HOME hold what the in-container user chose (issue 24), without
Docker: the agent's readers (usage.py, usage_store.py, usage_watch.py) on a temporary HERMES_HOME
made as test_usage_store_unit.py makes it, and the CLI on recorded answers (tests/fakefleet.py).
Each reproduction of the issue is one test; test_usage_hostile.py repeats the first ones in a real
container."""
import copy
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "image" / "hermes" / "docker"))

from hermes_supervise import pricing, usage, usage_store, usage_watch  # noqa: E402

from fakefleet import FakeFleet, cli_on, container, recorded  # noqa: E402
from test_usage_store_unit import DAY, NOW, NoPrices, _schema, add_session, check, same  # noqa: E402

BIG = 2 * 1024 * 1024  # far past usage.MAX_VALUE_BYTES; the container test uses 100 MB values


def _profile(home: Path, name: str, sessions: int, seed: int) -> sqlite3.Connection:
    """profiles/NAME with SOUL.md and a seeded state.db (NAME `default`: HERMES_HOME itself)."""
    directory = home if name == "default" else home / "profiles" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "SOUL.md").write_text("soul\n")
    conn = sqlite3.connect(directory / "state.db", isolation_level=None)
    _schema(conn)
    rng = random.Random(seed)
    conn.execute("BEGIN")
    for n in range(sessions):
        add_session(conn, rng, f"{name}-{n}", NOW - rng.uniform(60, 6 * DAY), open_=rng.random() < 0.1)
    conn.execute("COMMIT")
    return conn


@pytest.fixture
def fleet_home(tmp_path, monkeypatch):
    """default and three healthy named profiles, and `hostile`, whose state.db the test spoils."""
    monkeypatch.setenv("HERMES_HOME", str(tmp_path))
    monkeypatch.setattr(pricing.Prices, "lazy", classmethod(lambda cls: NoPrices()))
    conns = {name: _profile(tmp_path, name, 60, seed) for seed, name in
             enumerate(("default", "alpha", "beta", "gamma", "hostile"))}
    yield tmp_path, conns
    for conn in conns.values():
        conn.close()


def _healthy(doc: dict) -> None:
    """Every profile but `hostile` answers, as a direct read of its own state.db alone does."""
    for name in ("default", "alpha", "beta", "gamma"):
        alone = usage.usage([name], NOW - 7 * DAY)["profiles"][name]
        assert doc["profiles"][name]["ok"] and alone["ok"], (name, doc["profiles"][name])
        same(doc["profiles"][name]["sources"], alone["sources"])  # money to 1e-9: sums in another order
        assert sum(c["sessions"] for c in alone["sources"].values()) > 0


def _readers(cutoff: float) -> dict:
    """The three readers' answers for every profile: the one-shot agent's, the resident store's
    (twice: its first read and an answer from held hours) and usage-watch's."""
    found = {"one-shot": usage.main(["--since", str(cutoff)])}
    store = usage_store.Store()
    found["store"] = store.usage(["default", "alpha", "beta", "gamma", "hostile"], cutoff)
    found["store again"] = store.usage(["default", "alpha", "beta", "gamma", "hostile"], cutoff)
    watched = {}
    for name in ("default", "alpha", "beta", "gamma", "hostile"):
        counters = usage_watch.ProfileCounters(name)
        counters.refresh(NoPrices())
        watched[name] = counters
    found["watch"] = watched
    return found


@pytest.mark.parametrize("column, value_sql", [
    ("sessions.model", "UPDATE sessions SET model = zeroblob({n}) || 'x' WHERE rowid IN (SELECT rowid FROM sessions "
                       "ORDER BY rowid DESC LIMIT 3)"),
    ("sessions.model", "UPDATE sessions SET model = printf('%.*c', {n}, 'm') WHERE rowid = 7"),
    ("session_model_usage.model", "UPDATE session_model_usage SET model = printf('%.*c', {n}, 'u') WHERE rowid = 2"),
    ("sessions.source", "UPDATE sessions SET source = printf('%.*c', {n}, 's') WHERE rowid = 3"),
    ("sessions.id", "UPDATE sessions SET id = printf('%.*c', {n}, 'i') WHERE rowid = 5"),
    ("sessions.message_count", "UPDATE sessions SET message_count = printf('%.*c', {n}, 'x') WHERE rowid = 4"),
    ("messages.timestamp", "UPDATE messages SET timestamp = printf('%.*c', {n}, 't') "
                           "WHERE id = (SELECT max(id) FROM messages)"),
])
def test_an_oversized_value_is_its_profiles_error_and_the_others_answer(fleet_home, column, value_sql):
    """Issue 24: one profile with huge strings made the whole container time out (19 healthy
    profiles gone, exit 7) and serve's watcher grow to 2.2 GB. The value is refused by SQLite
    (usage.bounded) and the profile says `oversized`; every other profile answers exactly."""
    _home, conns = fleet_home
    conns["hostile"].execute(value_sql.format(n=BIG))
    for reader, doc in _readers(NOW - 7 * DAY).items():
        if reader == "watch":
            for name, counters in doc.items():
                if name == "hostile":
                    assert counters.error["code"] == "oversized", counters.error
                    assert counters.models == {} and counters.open == {}  # nothing of it is held
                    line = json.dumps(counters.document())
                    assert len(line) < 4096 and "more than 1,024" in line
                else:
                    assert counters.error is None and counters.models, (name, counters.error)
            continue
        _healthy(doc)
        error = doc["profiles"]["hostile"]["error"]
        assert error["code"] == "oversized", (reader, error)
        assert f"`{column.split('.')[-1]}`" in error["message"] and "1,024" in error["message"], error
        assert len(json.dumps(doc)) < 200_000


def test_a_profile_naming_thousands_of_models_is_oversized(fleet_home):
    _home, conns = fleet_home
    conn = conns["hostile"]
    conn.execute("BEGIN")
    for n in range(usage.MAX_NAMES + 5):
        conn.execute("INSERT INTO sessions (id, source, model, started_at, ended_at, input_tokens) "
                     "VALUES (?, 'cli', ?, ?, ?, 10)", (f"many-{n}", f"model-{n}", NOW - 3600 * (n % 50), NOW))
    conn.execute("COMMIT")
    for reader, doc in _readers(NOW - 7 * DAY).items():
        if reader == "watch":
            assert doc["hostile"].error["code"] == "oversized" and doc["alpha"].error is None
        else:
            _healthy(doc)
            assert doc["profiles"]["hostile"]["error"]["code"] == "oversized", reader


@pytest.mark.parametrize("sql", [
    "UPDATE session_model_usage SET estimated_cost_usd = 1e999 WHERE rowid = 1",
    "UPDATE sessions SET actual_cost_usd = -1e999 WHERE rowid = 2",
    "UPDATE sessions SET input_tokens = 1e308, output_tokens = 1e308 WHERE rowid IN (3, 4)",
])
def test_a_figure_that_is_not_finite_is_its_profiles_error_and_every_answer_is_strict_json(fleet_home, sql):
    """`--json` printed `Infinity`: state.db's REAL columns take inf, and sums overflow to it."""
    _home, conns = fleet_home
    conns["hostile"].execute(sql)
    for reader, doc in _readers(NOW - 40 * DAY).items():
        if reader == "watch":
            if doc["hostile"].error is not None:  # the watcher holds no per-source cells: it may sum fine
                assert doc["hostile"].error["code"] == "non-finite"
            for counters in doc.values():
                json.dumps(counters.document(), allow_nan=False)
            continue
        _healthy(doc)
        assert doc["profiles"]["hostile"]["error"]["code"] == "non-finite", (reader, doc["profiles"]["hostile"])
        json.dumps(doc, allow_nan=False)


def test_a_symlinked_profile_directory_is_skipped_and_said(fleet_home):
    """`profiles/x -> profiles/alpha` was read as a second profile and counted twice."""
    home, _conns = fleet_home
    os.symlink(home / "profiles" / "alpha", home / "profiles" / "x")
    os.symlink("alpha", home / "profiles" / "y")  # relative, as `ln -s alpha y` makes it
    doc = usage.main(["--since", str(NOW - 7 * DAY)])
    assert sorted(doc["profiles"]) == ["alpha", "beta", "default", "gamma", "hostile"]
    assert sorted(doc["skipped"]) == ["x", "y"] and "symlink" in doc["skipped"]["x"]
    # asked by name, it is an error of its own and nothing is read through it
    named = usage.main(["--since", str(NOW - 7 * DAY), "x"])["profiles"]["x"]
    assert named["ok"] is False and "symlink" in named["error"]["message"]
    store = usage_store.Store()
    assert store.usage(["x"], NOW - DAY)["profiles"]["x"]["ok"] is False
    counters = usage_watch.ProfileCounters("x")
    counters.refresh(NoPrices())
    assert counters.error is not None and counters.models == {}
    # the resident agent's socket answer and serve's watcher skip it too
    from hermes_supervise import server
    answer = server.query(json.dumps(["usage", "--since", str(NOW - 7 * DAY)]).encode(), usage_store.Store())
    assert "x" not in answer["profiles"] and sorted(answer["skipped"]) == ["x", "y"]


def test_profiles_itself_a_symlink_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(pricing.Prices, "lazy", classmethod(lambda cls: NoPrices()))
    _profile(tmp_path / "elsewhere", "coder", 5, 1).close()
    (tmp_path / "home").mkdir()
    os.symlink(tmp_path / "elsewhere" / "profiles", tmp_path / "home" / "profiles")
    doc = usage.main([])
    assert list(doc["profiles"]) == ["default"]
    assert usage.main(["coder"])["profiles"]["coder"]["error"]["code"] == "unreadable"


class FakeEntry:
    """What hermes' get_pricing_entry gives: $1 per million input tokens, nothing else."""
    input_cost_per_million, output_cost_per_million = "1", None
    cache_read_cost_per_million = cache_write_cost_per_million = request_cost = None


def test_a_price_file_hermes_can_write_changes_no_cost(tmp_path, monkeypatch):
    """The price cache under HERMES_HOME/.hermesctl/ was trusted: hermes wrote $3,524 where
    insights says $27.64. Prices come from hermes' own pricing code only, held in memory."""
    monkeypatch.setenv("HERMES_HOME", str(tmp_path))
    asked = []
    monkeypatch.setattr(pricing.Prices, "_hermes",
                        lambda self: lambda model, provider=None, base_url=None: asked.append(model) or FakeEntry())
    conn = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    _schema(conn)
    conn.execute("INSERT INTO sessions (id, source, model, started_at, ended_at, input_tokens) "
                 "VALUES ('s', 'cli', 'm', ?, ?, 2000000)", (NOW - 60, NOW - 30))
    conn.execute("INSERT INTO session_model_usage (session_id, model, input_tokens) VALUES ('s', 'm', 2000000)")
    conn.close()
    control = tmp_path / ".hermesctl"
    control.mkdir()
    route = json.dumps(["m", "", ""])
    for key in (None, "anything"):  # the old cache's key was the pricing module's size and mtime
        (control / "usage-prices.json").write_text(json.dumps({"key": key, "routes": {route: ["1000", None, None,
                                                                                             None, None]}}))
        for doc in (usage.main([]), usage_store.Store().usage(["default"], 0.0)):
            assert doc["profiles"]["default"]["sources"]["cli"]["estimated_usd"] == pytest.approx(2.0)
    assert asked == ["m", "m", "m", "m"]  # asked of hermes each time: one per process (Prices) lifetime
    assert json.loads((control / "usage-prices.json").read_text())["routes"][route][0] == "1000"  # never written


def test_the_price_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(pricing.Prices, "_hermes", lambda self: lambda *a, **k: FakeEntry())
    prices = pricing.Prices()
    for n in range(pricing.MAX_ROUTES * 2 + 3):
        assert prices.cost(f"m{n}", "", "", 10 ** 6, 0, 0, 0) == 1.0
    assert len(prices.routes) <= pricing.MAX_ROUTES


def test_an_edit_or_delete_shows_within_the_verification_interval_without_another_commit(monkeypatch, tmp_path):
    """Issue 24: after an edit or delete (through hermes' API: no new session or message), the
    resident store stayed wrong until a new session was written (489 s and counting), although the
    README promises 5 minutes; budgets used the stale cost."""
    monkeypatch.setenv("HERMES_HOME", str(tmp_path))
    monkeypatch.setattr(pricing.Prices, "lazy", classmethod(lambda cls: NoPrices()))
    clock = [1000.0]
    monkeypatch.setattr(usage_store.time, "monotonic", lambda: clock[0])
    conn = _profile(tmp_path, "default", 300, 7)
    store = usage_store.Store()
    cutoff = NOW - 7 * DAY
    check(store, cutoff)
    clock[0] += 10
    old = [r[0] for r in conn.execute("SELECT id FROM sessions WHERE ended_at IS NOT NULL ORDER BY started_at "
                                      "LIMIT 2")]
    conn.execute("DELETE FROM sessions WHERE id = ?", (old[0],))
    conn.execute("UPDATE sessions SET estimated_cost_usd = estimated_cost_usd + 50 WHERE id = ?", (old[1],))
    conn.execute("UPDATE session_model_usage SET estimated_cost_usd = estimated_cost_usd + 50 "
                 "WHERE session_id = ?", (old[1],))
    store.usage(["default"], cutoff)  # the commit is seen, its change is not announced: may be stale now
    clock[0] += usage_store.VERIFY_EVERY_S  # nothing committed since
    check(store, cutoff)  # equals a direct read
    conn.close()


def test_usage_watch_ends_when_its_stdin_closes(tmp_path):
    """serve's usage watcher kept running after serve exited: through Docker its stdout never
    breaks. With --until-stdin-closes (what serve asks for) the end of stdin ends it."""
    home = tmp_path / "home"
    _profile(home, "default", 20, 3).close()
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from hermes_supervise import usage_watch; "
              "usage_watch.run(['--interval', '0.2', '--until-stdin-closes'])")
    child = subprocess.Popen([sys.executable, "-c", script, str(ROOT / "image" / "hermes" / "docker")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "HERMES_HOME": str(home)})
    try:
        first = json.loads(child.stdout.readline())
        assert first["profile"] == "default" and first["ok"], first
        child.stdin.close()  # stdout stays open, as dockerd keeps it (a line every 0.2 s fits the pipe)
        assert child.wait(timeout=60) == 0, child.stderr.read()
        assert all(json.loads(line) for line in child.stdout.read().splitlines())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


USAGE = recorded("usage-h1.json")


@pytest.fixture
def run(monkeypatch, capsys):
    fleet = FakeFleet([container("h1")], {"h1": {"usage": copy.deepcopy(USAGE)}})
    return fleet, cli_on(fleet, monkeypatch, capsys)


def test_json_is_strict_whatever_an_agent_answers(run):
    """`usage --json` printed `Infinity` (an agent without the per-profile check, or sums that
    overflow): every non-finite figure is null, and `non_finite` says where."""
    fleet, invoke = run
    answer = fleet.answers["h1"]["usage"]
    cell = next(iter(answer["profiles"]["coder"]["sources"].values()))
    cell["estimated_usd"] = float("inf")
    next(iter(cell["models"].values()))["actual_usd"] = float("nan")
    code, out, _ = invoke("usage", "--json")

    def refuse(name):
        raise AssertionError(f"{name} in the document")
    doc = json.loads(out, parse_constant=refuse)
    assert doc["totals"]["estimated_usd"] is None
    assert "/totals/estimated_usd" in doc["non_finite"]
    assert any(p.startswith("/profiles/") for p in doc["non_finite"])


def test_the_table_never_cuts_a_figure_on_a_narrow_terminal(run):
    """On a terminal numbers were cut (`14…` for 1,499): the usage table's lines are as wide as
    its figures, and the terminal wraps them."""
    from rich.console import Console
    from hermesctl.commands import usage as command
    from hermesctl.render.output import Output
    for width in (60, 80):
        console = Console(width=width, record=True, file=io.StringIO(), highlight=False, soft_wrap=True,
                          force_terminal=True)
        out = Output(console=console)
        grouped = [{"endpoint": "local", "container": "web-1", "profile": "coder", "sessions": 1499, "active": 12,
                    "messages": 1234567, "tool_calls": 98765, "input_tokens": 123_456_789, "output_tokens": 4_321,
                    "cache_read_tokens": 0, "cache_write_tokens": 7, "reasoning_tokens": 55, "estimated_usd": 3524.5,
                    "actual_usd": 27.64, "last_activity": None, "top_model": "claude-sonnet-5", "errors": 0}]
        totals = {k: v for k, v in grouped[0].items() if k not in ("endpoint", "container", "profile")}
        command._table(out, grouped, "profile", totals, [])
        text = console.export_text()
        for figure in ("1499", "1234567", "98765", "123.5M", "4.3k", "3524.50", "27.64"):
            assert text.count(figure) == 2, (width, figure, text)  # its row and TOTAL
        assert text.count("claude-sonnet-5") == 1
        assert "…" not in text


def test_usage_watch_reads_a_refused_database_again_only_once_it_changes(fleet_home):
    home, conns = fleet_home
    conns["hostile"].execute("UPDATE sessions SET model = printf('%.*c', 5000, 'm') WHERE rowid = 1")
    counters = usage_watch.ProfileCounters("hostile")
    assert counters.refresh(NoPrices()) and counters.error["code"] == "oversized"
    statements = []
    original = usage_watch.connect

    def traced(path):
        conn = original(path)
        conn.set_trace_callback(statements.append)
        return conn
    usage_watch.connect = traced
    try:
        assert counters.refresh(NoPrices()) is False and statements == []  # unchanged: not read again
        conns["hostile"].execute("UPDATE sessions SET model = 'mended' WHERE rowid = 1")
        assert counters.refresh(NoPrices()) and counters.error is None and counters.models and statements
    finally:
        usage_watch.connect = original


def test_the_agent_encodes_usage_answers_strictly():
    """The usage documents leave the agent through the strict encoder (a non-finite number there
    is a bug, never `Infinity`); other verbs pass on what hermes' files hold, as before."""
    from hermes_supervise import fastjson
    assert fastjson.dumps({"a": 1.5}, strict=True) == '{"a":1.5}'
    with pytest.raises(ValueError):
        fastjson.dumps({"a": [float("inf")]}, strict=True)
    assert fastjson.dumps({"a": float("nan")}) == '{"a":NaN}'


class _Stream:
    def __init__(self, lines: list[bytes]):
        self.lines, self.closed = lines, False

    def __iter__(self):
        return iter(self.lines)

    def close(self):
        self.closed = True


def test_serve_asks_for_the_lifeline_and_asks_an_older_image_as_before():
    """serve's usage stream holds the exec's stdin (its end ends the watcher); an image whose
    agent does not know the option is asked without it, not retried for ever."""
    import threading
    from types import SimpleNamespace
    from hermesctl.agent.contract import LIFELINE_OPTION
    from hermesctl.serve.usage_feed import UsageFeed
    calls = []
    heartbeat = b'{"schema": "hermes-contract/v1", "verb": "usage-watch", "heartbeat": 1, "profiles": 1}\n'

    def exec_stream(c, argv, stdin):  # the fake Docker's exec output, as it comes
        calls.append((c.id, argv, stdin))
        if c.id == "old" and LIFELINE_OPTION in argv:
            return _Stream([b'{"schema": "hermes-contract/v1", "error": {"code": "usage", "message": '
                            b'"usage-watch: unknown option \'--until-stdin-closes\'"}}\n'])
        feed.stop()
        return _Stream([heartbeat])

    for ref in ("new", "old"):
        c = container(ref, id=ref)
        live = SimpleNamespace(lock=threading.Lock(), containers={c.key: c})
        feed = UsageFeed(live, FakeFleet([c], {}, streams=exec_stream), interval=1)
        feed._stream(c)
        assert feed.watchers[("default", ref)]["profiles"] == 1
    assert [(ref, LIFELINE_OPTION in argv, stdin) for ref, argv, stdin in calls] == \
        [("new", True, True), ("old", True, True), ("old", False, False)]
