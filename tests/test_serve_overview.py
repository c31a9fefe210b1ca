"""Issue 24, the page's figures without Docker: the chart and the TODAY column are one figure
(on main the chart counted from serve's first reading, $14.60/15 sessions against the table's
$18.51/18), a deleted profile leaves both, an unhealthy container says why (Docker's health
log, hostile text bounded), budgets and over-budget marks reach the page, and a followed log is
streamed and its exec ended when the browser goes."""
import json
import threading
import time
import urllib.request
from types import SimpleNamespace

import pytest

from fakefleet import FakeFleet, container
from hermesctl.serve import overview
from hermesctl.serve.server import App, make_servers
from hermesctl.serve.state import ContainerInfo, FleetState
from hermesctl.serve.usage_feed import UsageFeed, today, utc_day

NOON = 1_800_000_000 - 1_800_000_000 % 86400 + 12 * 3600  # a UTC noon
DAY = utc_day(NOON)


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock(NOON)
    monkeypatch.setattr(time, "time", c)
    return c


def _doc(profile: str, sessions: int, usd: float, total: int | None = None) -> dict:
    """A usage-watch line: all-time counters, and the day's figures by the day sessions started."""
    return {"profile": profile, "ok": True, "sessions_total": total if total is not None else sessions + 40,
            "sessions_active": 0, "last_activity": NOON - 5, "days": {DAY: {"sessions": sessions, "estimated_usd": usd}},
            "models": {"m": {"estimated_usd": 100.0 + usd}}}


def _state(*names: str, health: str = "healthy", reason: str | None = None) -> FleetState:
    state = FleetState()
    for name in names:
        rows = [{"endpoint": "default", "container": name, "profile": p, "target": f"{name}:{p}", "state": "up"}
                for p in ("coder", "writer")]
        state.set_container(f"default/{name}", ContainerInfo("default", name, None, True, health, health_reason=reason), rows)
    return state


def _feed(state: FleetState, budgets: dict | None = None) -> UsageFeed:
    feed = UsageFeed(live=None, fleet=None, budgets=budgets)
    state.usage_feed = feed
    return feed


WEB = SimpleNamespace(endpoint="default", name="web-1")


def test_the_chart_ends_at_the_tables_figure_whenever_serve_started(clock):
    state = _state("web-1")
    feed = _feed(state)
    # serve starts at noon; 15 sessions ($14.60) were already counted today: the chart starts there
    feed._apply(WEB, _doc("coder", 15, 14.60))
    clock.now += 600
    feed._apply(WEB, _doc("coder", 18, 18.51))
    clock.now += 30
    doc = overview.document(state)
    coder = doc["groups"][0]["profiles"]["coder"]
    assert (coder["spend_today_usd"], coder["sessions_today"]) == (18.51, 18)
    assert coder["points"][0][1:] == [14.60, 15]      # what serve saw first, at the time it saw it
    assert coder["points"][-1][1:] == [18.51, 18]     # now: the table's figure itself
    assert coder["points"][-1][0] == pytest.approx(clock.now, abs=0.1)
    assert doc["summary"]["spend_today_usd"] == 18.51 and doc["summary"]["sessions_today"] == 18
    assert doc["day_start"] == NOON - 12 * 3600 and doc["day"] == DAY
    # The next UTC day: yesterday's points leave the chart; the table's figure is the new day's.
    clock.now = NOON + 13 * 3600
    doc = overview.document(state)
    coder = doc["groups"][0]["profiles"]["coder"]
    assert coder["points"] == [[round(clock.now, 1), 0.0, 0]] and coder["spend_today_usd"] == 0.0


def test_a_deleted_profile_leaves_the_table_the_chart_and_the_history(clock):
    state = _state("web-1")
    feed = _feed(state)
    feed._apply(WEB, _doc("coder", 3, 1.0))
    feed._apply(WEB, _doc("writer", 2, 4.0))
    feed._apply(WEB, {"profile": "writer", "removed": True})
    doc = overview.document(state)
    assert list(doc["groups"][0]["profiles"]) == ["coder"]
    assert doc["summary"]["spend_today_usd"] == 1.0
    assert ("default", "web-1", "writer") not in feed.history
    # A container that is gone: its profiles leave with it.
    state.forget_missing(set())
    assert overview.document(state)["groups"] == []


def test_hostile_day_figures_count_as_nothing():
    for bad in (float("nan"), float("inf"), -5.0, "12", True, None, [1]):
        assert today({"days": {DAY: {"estimated_usd": bad, "sessions": bad}}}, DAY) == (0.0, 0)
    assert today({"days": "x"}, DAY) == (0.0, 0) and today({"days": {DAY: 7}}, DAY) == (0.0, 0)
    assert today({"days": {DAY: {"estimated_usd": 2, "sessions": 3}}}, DAY) == (2.0, 3)


def test_budgets_are_shown_and_a_container_over_its_budget_is_marked(clock):
    state = _state("web-1", "web-2")
    feed = _feed(state, budgets={("web-1", "coder"): {"daily_usd": 5.0}, ("web-1", None): {"daily_usd": 20.0},
                                 ("web-1", "writer"): {"daily_usd": 50.0, "hourly_usd": 9.0},
                                 ("web-2", None): {"hourly_usd": 1.0}})
    feed._apply(WEB, _doc("coder", 9, 17.5))
    feed._apply(SimpleNamespace(endpoint="default", name="web-2"), _doc("coder", 1, 99.0))
    doc = overview.document(state)
    web1, web2 = doc["groups"]
    assert web1["profiles"]["coder"]["budget_daily_usd"] == 5.0 and web1["profiles"]["coder"]["over_budget"]
    # writer has a budget and no usage yet: its budget is shown all the same, nothing spent
    assert web1["profiles"]["writer"]["budget_daily_usd"] == 50.0 and not web1["profiles"]["writer"]["over_budget"]
    assert web1["profiles"]["writer"]["points"] == []
    assert not web1["over_budget"] and web1["budget_daily_usd"] == 20.0
    assert web2["budget_daily_usd"] is None and not web2["over_budget"]  # an hourly budget only
    feed._apply(WEB, _doc("coder", 12, 20.01))
    doc = overview.document(state)
    assert doc["groups"][0]["over_budget"] and doc["summary"]["containers_over_budget"] == ["web-1"]


def _inspect(*entries, streak=3) -> dict:
    return {"State": {"Health": {"Status": "unhealthy", "FailingStreak": streak,
                                 "Log": [{"ExitCode": code, "Output": out} for code, out in entries]}}}


def test_an_unhealthy_container_says_which_check_failed_and_why():
    ours = json.dumps({"verb": "health", "healthy": False, "problems": ["coder:down-but-wanted-up",
                                                                       "writer:parked-exit-78", "boot has not finished"]})
    reason = overview.health_reason(_inspect((0, "{}"), (1, ours + "\n")))
    assert reason == ("health check failed (exit 1, 3 times in a row): gateway coder down but wanted up; "
                      "gateway writer parked (exit 78: fatal configuration); boot has not finished")
    assert overview.health_reason(_inspect((-1, "Health check exceeded timeout (5s)"), streak=1)) == \
        "health check failed (exit -1): Health check exceeded timeout (5s)"
    assert overview.health_reason(_inspect((1, ""), streak=1)) == "health check failed (exit 1): no output"
    assert overview.health_reason({"State": {}}) == "no failed check in Docker's health log"
    # Written inside the container: control characters go, the length is bounded; the page sets
    # it as text (textContent), so markup stays text there.
    hostile = overview.health_reason(_inspect((1, "<img src=x onerror=alert(1)>\x1b[2J\x00" + "A" * 10_000)))
    assert len(hostile) <= overview.REASON_MAX + 1 and "\x1b" not in hostile and "\x00" not in hostile
    assert hostile.endswith("…")
    many = json.dumps({"problems": [f"p{i}:down-but-wanted-up" for i in range(10_000)]})
    assert len(overview.health_reason(_inspect((1, many)))) <= overview.REASON_MAX + 1


def test_the_summary_names_each_unhealthy_container_with_its_reason(clock):
    state = _state("web-1", health="unhealthy", reason="health check failed (exit 1): gateway coder down")
    state.set_container("default/web-2", ContainerInfo("default", "web-2", None, True, "healthy",
                                                       health_reason="stale"), [])
    _feed(state)
    doc = overview.document(state)
    assert doc["summary"]["containers_unhealthy"] == 1
    assert doc["summary"]["unhealthy"] == [{"endpoint": "default", "container": "web-1",
                                            "reason": "health check failed (exit 1): gateway coder down"}]
    assert doc["groups"][1]["health_reason"] is None  # only an unhealthy container carries one


def test_the_refresher_reads_an_unhealthy_containers_health_log_once_per_interval(monkeypatch):
    from hermesctl.serve import refresher as refresher_module
    sick = container("web-1", id="abc", status="Up 5 minutes (unhealthy)")
    fleet = FakeFleet([sick], {}, states={"abc": [_inspect((1, json.dumps({"problems": ["coder:no-supervisor"]})),
                                                           streak=1)]})
    calls = fleet.docker.inspected
    r = refresher_module.Refresher.__new__(refresher_module.Refresher)
    r.fleet = fleet
    r._reasons = {}
    assert r._health_reason(sick) == "health check failed (exit 1): gateway coder not supervised"
    assert r._health_reason(sick) and calls == ["abc"]  # within the interval: not read again
    mono = time.monotonic()
    monkeypatch.setattr(refresher_module.time, "monotonic", lambda: mono + refresher_module.HEALTH_REREAD_S + 1)
    r._health_reason(sick)
    assert calls == ["abc", "abc"]
    assert r._health_reason(container("web-1", id="abc", status="Up 5 minutes (healthy)")) is None
    assert r._reasons == {}


def _serve_logs(follow):
    state = FleetState()
    state.ready.set()
    app = App(state=state, token="t" * 32, scope={}, act=lambda v, t: [], log_tail=lambda t, n: [],
              log_follow=follow)
    servers = make_servers(app, "127.0.0.1", 0, None)
    threading.Thread(target=servers[0].serve_forever, daemon=True).start()
    return app, servers[0], f"http://127.0.0.1:{servers[0].server_address[1]}/"


def _events(res, count: int) -> list[tuple[str, object]]:
    found, block = [], {}
    while len(found) < count:
        line = res.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            block["event"] = line[7:]
        elif line.startswith("data: "):
            block["data"] = json.loads(line[6:])
        elif line == "" and block:
            found.append((block["event"], block["data"]))
            block = {}
    return found


def test_a_followed_log_streams_new_lines_and_its_exec_ends_with_the_browser(monkeypatch):
    import hermesctl.serve.server as server_module
    monkeypatch.setattr(server_module, "LOG_KEEPALIVE_S", 0.2)  # the next write finds the browser gone
    more, closed = threading.Event(), threading.Event()

    def follow(target, lines):
        assert (target, lines) == ("web-1:coder", 200)

        def source():
            yield from (f"old {i}" for i in range(3))
            more.wait(10)
            yield "<b>new</b> \x1b[31m"
            closed.wait(30)
        return source(), closed.set

    app, server, url = _serve_logs(follow)
    try:
        req = urllib.request.Request(url + "api/logs?target=web-1:coder&n=200&follow=1",
                                     headers={"Authorization": "Bearer " + app.token})
        res = urllib.request.urlopen(req, timeout=20)
        assert res.headers["Content-Type"] == "text/event-stream"
        assert _events(res, 1) == [("lines", ["old 0", "old 1", "old 2"])]
        more.set()
        assert _events(res, 1) == [("lines", ["<b>new</b> \x1b[31m"])]  # JSON: the page sets it as text
        res.close()  # the browser goes: the server notices at its next write and ends the exec
        assert closed.wait(30)
    finally:
        app.stopping.set()
        server.shutdown()
        server.server_close()


def test_a_followed_log_that_ends_says_so_and_followers_are_bounded(monkeypatch):
    import hermesctl.serve.server as server_module
    monkeypatch.setattr(server_module, "LOG_KEEPALIVE_S", 0.2)
    ended = []
    app, server, url = _serve_logs(lambda t, n: (iter(["only"]), lambda: ended.append(t)))
    try:
        req = urllib.request.Request(url + "api/logs?target=web-1:coder&n=5&follow=1",
                                     headers={"Authorization": "Bearer " + app.token})
        with urllib.request.urlopen(req, timeout=20) as res:
            assert _events(res, 2) == [("lines", ["only"]),
                                       ("end", {"message": "the log stream ended (the container stopped?)"})]
        # The server closes the stream and gives its follower's place back just after the end
        # event is sent: wait for both, not for an instant.
        from conftest import wait_for
        wait_for(lambda: ended == ["web-1:coder"], timeout=10, interval=0.02, what="the stream closed")
        assert app.followers.acquire(timeout=10)
        for _ in range(server_module.LOG_FOLLOWERS - 1):
            assert app.followers.acquire(blocking=False)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=20)
        assert refused.value.code == 429
    finally:
        app.stopping.set()
        server.shutdown()
        server.server_close()


def test_a_followed_log_refuses_a_target_that_is_not_one_gateway():
    from hermesctl.core.errors import UsageError

    def follow(target, lines):
        raise UsageError(f"{target}: name one gateway as CONTAINER:PROFILE")
    app, server, url = _serve_logs(follow)
    try:
        req = urllib.request.Request(url + "api/logs?target=web-*&follow=1",
                                     headers={"Authorization": "Bearer " + app.token})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=20)
        assert refused.value.code == 400 and "name one gateway" in json.loads(refused.value.read())["error"]
        assert app.followers.acquire(blocking=False)  # the refused one gave its place back
    finally:
        app.stopping.set()
        server.shutdown()
        server.server_close()


def test_log_lines_are_bounded_and_the_pid_line_dropped():
    from hermesctl.commands.serve import LOG_LINE_MAX, _log_lines
    chunks = [b'{"pid": 7}\nfirst\nsec', b"ond\n", b"x" * (LOG_LINE_MAX + 10), b"\xff\n"]
    lines = list(_log_lines(iter(chunks)))
    assert lines[:2] == ["first", "second"]
    assert lines[2] == "x" * LOG_LINE_MAX + "…" and lines[3] == "\ufffd"


def test_hostile_watcher_lines_keep_the_document_strict_json(clock):
    state = _state("web-1")
    feed = _feed(state)
    feed._apply(WEB, {"profile": "constructor", "ok": False, "read_error": ["x"], "sessions_active": float("nan"),
                      "last_activity": float("inf"), "days": {DAY: {"sessions": 2, "estimated_usd": float("nan")}}})
    feed._apply(WEB, {"profile": "coder", "ok": False, "read_error": {"code": "\x1b[2Jbad"}, "sessions_active": -3})
    feed._apply(WEB, {"profile": "writer", "ok": False, "read_error": {"code": "missing"}})
    doc = overview.document(state)
    json.dumps(doc, allow_nan=False)  # what a browser's JSON.parse accepts
    profiles = doc["groups"][0]["profiles"]
    assert profiles["constructor"]["error"] == "unreadable" and profiles["constructor"]["sessions_today"] == 2
    assert profiles["constructor"]["sessions_active"] == 0 and profiles["constructor"]["last_activity"] is None
    assert profiles["coder"]["error"] == "unreadable" and profiles["coder"]["sessions_active"] == 0
    assert profiles["writer"]["error"] == "missing"


def test_a_profile_deleted_while_the_stream_was_down_leaves_at_the_new_streams_first_heartbeat(clock):
    state = _state("web-1")
    feed = _feed(state)
    first = {"seen": set(), "settled": False}
    for doc in (_doc("coder", 3, 1.0), _doc("writer", 2, 4.0), {"heartbeat": NOON, "cpu_s": 0.1, "profiles": 2}):
        feed._apply(WEB, doc, first)
    # The stream broke and was reopened while the container ran; writer was deleted meanwhile.
    again = {"seen": set(), "settled": False}
    feed._apply(WEB, _doc("coder", 3, 1.0), again)
    assert set(overview.document(state)["groups"][0]["profiles"]) == {"coder", "writer"}  # not yet settled
    feed._apply(WEB, {"heartbeat": NOON + 1, "cpu_s": 0.1, "profiles": 1}, again)
    assert list(overview.document(state)["groups"][0]["profiles"]) == ["coder"]
    assert ("default", "web-1", "writer") not in feed.history
    # Later lines of the same stream change nothing of the kind.
    feed._apply(WEB, {"heartbeat": NOON + 2, "cpu_s": 0.1, "profiles": 1}, again)
    feed._apply(WEB, _doc("writer", 1, 1.0), again)
    assert set(overview.document(state)["groups"][0]["profiles"]) == {"coder", "writer"}
