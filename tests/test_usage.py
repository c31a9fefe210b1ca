"""Issue 17: `hermesctl usage` against real containers: its numbers equal the image's own
`hermes insights` on a seeded state.db, it reads without a write lock (a writer keeps its pace),
and a profile whose database is missing, locked, corrupt or foreign answers alone."""
import json
import re
import time

import pytest

from conftest import hermesctl, profile_archive, put_profiles, sh, wait_in
from hermesctl.agent.client import RESIDENT_ARGV
from hermesctl.agent.contract import QUERY_ENV
from usage_seed import VENV_PYTHON, insights, seed, seed_all

WINDOWS = (1, 7, 30)
SOURCES = (None, "telegram", "cli")


@pytest.fixture(scope="module")
def seeded(module_containers):
    """One container: `default` with 3,000 seeded sessions, `coder` (a real hermes profile)
    with 800, `quiet` with no state.db (a byte copy of coder as hermes made it: no second hermes
    start, ~0.6 s of CPU, for a profile whose point is its missing database)."""
    c = module_containers.start("seeded")
    assert hermesctl("profile", "create", f"{c.name}:coder").code == 0
    put_profiles(c, profile_archive(c, "coder"), ["quiet"])
    seed_all(c, [("/opt/data/state.db", 3000, 7), ("/opt/data/profiles/coder/state.db", 800, 11)])
    return c


def _usage(c, *args: str) -> dict:
    res = hermesctl("usage", *args, "--json")
    assert res.code == 0, res
    return res.json()


def _same_money(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))  # float sums in another order


@pytest.mark.parametrize("days", WINDOWS)
def test_usage_equals_hermes_insights_per_window_and_source(seeded, days):
    """Each profile's figures, per source, against hermes' own report of the same window. One
    `usage` call asks both profiles (its answer is per profile, whoever else is asked), one
    Python start per profile home reports every source."""
    c = seeded
    homes = {"default": "/opt/data", "coder": "/opt/data/profiles/coder"}
    refs = {profile: dict(zip(SOURCES, insights(c, home, [(days, s) for s in SOURCES])))
            for profile, home in homes.items()}
    for source in SOURCES:
        doc = _usage(c, f"{c.name}:default", f"{c.name}:coder", "--since", f"{days}d",
                     *(["--source", source] if source else []))
        answered = {p["profile"]: p for p in doc["profiles"]}
        assert set(answered) == set(homes), answered.keys()
        for profile in homes:
            mine = answered[profile]
            ref = refs[profile][source]
            o = ref["overview"]
            assert not ref["empty"] and mine["sessions"] > 0
            assert (mine["sessions"], mine["messages"], mine["tool_calls"]) == \
                (o["total_sessions"], o["total_messages"], o["total_tool_calls"]), (profile, source)
            assert (mine["input_tokens"], mine["output_tokens"], mine["cache_read_tokens"],
                    mine["cache_write_tokens"]) == (o["total_input_tokens"], o["total_output_tokens"],
                                                    o["total_cache_read_tokens"], o["total_cache_write_tokens"])
            assert _same_money(mine["estimated_usd"], o["estimated_cost"]), (mine["estimated_usd"], o["estimated_cost"])
            assert _same_money(mine["actual_usd"], o["actual_cost"])
            theirs = {m["model"]: m for m in ref["models"]}
            assert set(mine["models"]) == set(theirs)
            for name, m in mine["models"].items():
                t = theirs[name]
                assert (m["sessions"], m["reasoning_tokens"], m["tool_calls"]) == \
                    (t["sessions"], t["reasoning_tokens"], t["tool_calls"]), name
                assert m["input_tokens"] + m["output_tokens"] + m["cache_read_tokens"] + m["cache_write_tokens"] \
                    == t["total_tokens"]
                assert _same_money(m["estimated_usd"], t["cost"]) and _same_money(m["actual_usd"], t["actual_cost"])
            assert mine["top_model"] == ref["models"][0]["model"]


def _terminal_figures(text: str) -> dict:
    """The numbers `hermes insights` prints (its overview and model table)."""
    def number(label):
        found = re.search(rf"{label}:\s+([\d,]+)", text)
        return int(found.group(1).replace(",", ""))
    models = {m.group(1): (int(m.group(2)), int(m.group(3).replace(",", "")))
              for m in re.finditer(r"^  (\S+)\s+(\d+)\s+([\d,]+)$", text, re.M)}
    return {"sessions": number("Sessions"), "messages": number("Messages"), "tool_calls": number("Tool calls"),
            "input": number("Input tokens"), "output": number("Output tokens"), "total": number("Total tokens"),
            "models": models}


def test_usage_equals_the_hermes_insights_command_output(seeded):
    """The same through the real CLI: `hermes -p coder insights --days 7 --source telegram`."""
    c = seeded
    for argv, target in ((["hermes", "-p", "coder", "insights", "--days", "7", "--source", "telegram"],
                          (f"{c.name}:coder", "7d", "telegram")),
                         (["hermes", "insights", "--days", "30"], (f"{c.name}:default", "30d", None))):
        printed = c.exec_run(argv, user="hermes").output.decode()
        theirs = _terminal_figures(printed)
        name, since, source = target
        doc = _usage(c, name, "--since", since, *(["--source", source] if source else []))
        mine = doc["rows"][0]
        total = sum(mine[f"{k}_tokens"] for k in ("input", "output", "cache_read", "cache_write"))
        assert (mine["sessions"], mine["messages"], mine["tool_calls"], mine["input_tokens"],
                mine["output_tokens"], total) == (theirs["sessions"], theirs["messages"], theirs["tool_calls"],
                                                  theirs["input"], theirs["output"], theirs["total"]), printed
        by_model = _usage(c, name, "--since", since, "--by", "model", *(["--source", source] if source else []))
        assert {r["model"]: (r["sessions"], sum(r[f"{k}_tokens"] for k in ("input", "output", "cache_read", "cache_write")))
                for r in by_model["rows"]} == theirs["models"]


def test_usage_table_totals_and_a_profile_without_state_db(seeded):
    c = seeded
    doc = _usage(c, c.name, "--since", "30d")
    rows = {r["profile"]: r for r in doc["rows"]}
    assert set(rows) >= {"default", "coder", "quiet"}
    assert rows["quiet"]["sessions"] == 0
    quiet = next(p for p in doc["profiles"] if p["profile"] == "quiet")
    assert quiet["error"]["code"] == "missing"
    assert doc["totals"]["sessions"] == rows["default"]["sessions"] + rows["coder"]["sessions"]
    assert doc["unreachable"] == []
    res = hermesctl("usage", c.name, "--since", "30d")
    assert res.code == 0 and "TOTAL" in res.stdout and "coder" in res.stdout, res


def _same(mine, ref, path=""):
    if isinstance(ref, dict):
        assert set(mine) == set(ref), (path, set(mine) ^ set(ref))
        for k in ref:
            _same(mine[k], ref[k], f"{path}/{k}")
    elif isinstance(ref, float) or isinstance(mine, float):
        assert _same_money(mine, ref), (path, mine, ref)
    else:
        assert mine == ref, (path, mine, ref)


ADD_SESSION = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
               "c.execute(\"insert into sessions (id, source, model, started_at, input_tokens, message_count) "
               "values ('added-' || ?, 'cli', 'claude-opus-4-8', ?, 1234, 3)\", (sys.argv[2], time.time()))")


def test_the_resident_agent_answers_and_equals_the_one_shot(seeded):
    """`usage` is answered by the resident agent (no fall-back), from its tallies, before and
    after a change, with what the one-shot agent reads from the database itself."""
    c = seeded
    since = str(time.time() - 7 * 86400)
    res = hermesctl("usage", c.name, "--since", "7d", "--json", env={"HERMESCTL_DEBUG": "1"})
    assert res.code == 0 and "did not answer" not in res.stderr, res
    for n in range(2):
        resident = c.exec_run(list(RESIDENT_ARGV), user="hermes",
                              environment={QUERY_ENV: json.dumps(["usage", "--since", since, "default", "coder"])})
        one_shot = c.exec_run(["/opt/hermes/docker/hermes-ctl-agent", "usage", "--since", since, "default", "coder"],
                              user="hermes")
        mine, theirs = json.loads(resident.output), json.loads(one_shot.output)
        _same(mine["profiles"], theirs["profiles"])
        assert mine["profiles"]["default"]["sources"]["cli"]["sessions"] > 0
        if n == 0:  # a new session: the next answer has it
            assert c.exec_run([VENV_PYTHON, "-c", ADD_SESSION, "/opt/data/state.db", "r"], user="hermes").exit_code == 0


# A writer that commits one small session every 10 ms through a WAL database, as the gateway
# does, with no busy timeout: a commit that would have to wait for a lock fails at once instead
# (SQLITE_BUSY), however fast or slow the machine is, and the failure is recorded. It stops at
# its deadline or as soon as /tmp/writer.stop exists (the reads are done: no CPU spent after).
WRITER = r"""
import os, sqlite3, sys, time, json
c = sqlite3.connect('/opt/data/profiles/busy/state.db', isolation_level=None, timeout=0.0)
c.execute('pragma journal_mode=wal')
c.execute('create table if not exists sessions (id text primary key, source text, model text, started_at real, '
          'ended_at real, message_count int, tool_call_count int, input_tokens int, output_tokens int, '
          'cache_read_tokens int, cache_write_tokens int, reasoning_tokens int, billing_provider text, '
          'billing_base_url text, estimated_cost_usd real, actual_cost_usd real, cost_status text, '
          'cost_source text, api_call_count int)')
out = open('/tmp/writer.log', 'w')
n = 0
end = time.time() + float(sys.argv[1])
while time.time() < end and not os.path.exists('/tmp/writer.stop'):
    t = time.time()
    try:
        c.execute('begin immediate')
        c.execute('insert into sessions (id, source, started_at, input_tokens) values (?, ?, ?, ?)',
                  (f'w{n}', 'cli', t, 10))
        c.execute('commit')
        out.write(json.dumps([t, time.time() - t, None]) + '\n')
    except sqlite3.Error as exc:
        out.write(json.dumps([t, time.time() - t, str(exc)]) + '\n')
        try: c.execute('rollback')
        except sqlite3.Error: pass
    out.flush()
    n += 1
    time.sleep(0.01)
"""


def test_a_writer_never_waits_for_usage_reads(seeded):
    """The agent reads with mode=ro: the writer's commits never wait for it. The reads are the
    very exec hermesctl makes (agent `usage`), run back to back (4 of them, 3 s at least) while
    the writer commits every 10 ms with a busy timeout of 0, so any lock the reads took would
    fail one of its commits. Lock conflicts, not durations, are checked: a loaded machine makes
    commits slow, never failed."""
    c = seeded
    sh(c, "mkdir -p /opt/data/profiles/busy && echo soul > /opt/data/profiles/busy/SOUL.md")
    c.exec_run([VENV_PYTHON, "-c", WRITER, "16"], user="hermes", detach=True)
    wait_in(c, "test -s /tmp/writer.log", what="the writer")
    started, reads = time.time(), 0
    while reads < 4 or time.time() < started + 3:
        answer = json.loads(c.exec_run(["/opt/hermes/docker/hermes-ctl-agent", "usage", "--window", "604800",
                                        "busy", "default"], user="hermes").output)
        assert answer["profiles"]["busy"]["ok"], answer["profiles"]["busy"]
        reads += 1
    finished = time.time()
    res = hermesctl("usage", f"{c.name}:busy", "--since", "7d", "--json")
    assert res.code == 0 and res.json()["rows"][0]["sessions"] > 0, res
    sh(c, "touch /tmp/writer.stop")
    # [p]: the pattern does not match the waiting shell's own command line
    wait_in(c, "! pgrep -f [p]rofiles/busy/state.db >/dev/null", timeout=30, what="the writer to finish")
    log = [json.loads(line) for line in sh(c, "cat /tmp/writer.log").splitlines()]
    failed = [e for e in log if e[2]]
    assert not failed, f"{len(failed)} commits met a lock while usage read: {failed[:3]}"
    during = [e for e in log if started <= e[0] < finished]
    # The reads overlapped commits: the writer went on committing all through them.
    assert len(during) >= reads, (len(during), reads, finished - started)


FOREIGN = "import sqlite3; c = sqlite3.connect('/opt/data/profiles/foreign/state.db'); " \
          "c.execute('create table sessions (id text, started_at real)'); c.commit()"
LOCKER = "import sqlite3, time; c = sqlite3.connect('/opt/data/profiles/locked/state.db', isolation_level=None); " \
         "c.execute('pragma journal_mode=delete'); c.execute('create table t (x)'); c.execute('begin exclusive'); " \
         "c.execute('insert into t values (1)'); open('/tmp/locked', 'w').close(); time.sleep(120)"


@pytest.fixture(scope="module")
def faulty(module_containers):
    """One container for the tests whose profiles or query socket are broken on purpose (the
    seeded one keeps its resident agent and readable profiles for the others)."""
    return module_containers.start("faulty")


def test_each_profile_answers_alone(faulty):
    c = faulty
    for name in ("good", "locked", "corrupt", "foreign", "linked"):
        sh(c, f"mkdir -p /opt/data/profiles/{name} && echo soul > /opt/data/profiles/{name}/SOUL.md")
    seed(c, "/opt/data/profiles/good/state.db", 50, 3)
    sh(c, "head -c 8192 /dev/urandom > /opt/data/profiles/corrupt/state.db")
    sh(c, f"{VENV_PYTHON} -c \"{FOREIGN}\"")
    sh(c, "ln -s /opt/data/profiles/good/state.db /opt/data/profiles/linked/state.db")
    c.exec_run([VENV_PYTHON, "-c", LOCKER], user="hermes", detach=True)
    wait_in(c, "test -e /tmp/locked", what="the lock holder")
    res = hermesctl("usage", c.name, "--since", "30d", "--json")
    assert res.code == 7, res  # partial: some profiles could not be read
    by = {p["profile"]: p for p in res.json()["profiles"]}
    assert by["good"]["ok"] and by["good"]["sessions"] > 0
    assert by["default"]["error"]["code"] == "missing"
    assert by["locked"]["error"]["code"] == "locked"
    assert by["corrupt"]["error"]["code"] == "corrupt"
    assert by["foreign"]["error"]["code"] == "schema" and "lacks" in by["foreign"]["error"]["message"]
    assert by["linked"]["error"]["code"] == "unreadable" and "symlink" in by["linked"]["error"]["message"]
    table = hermesctl("usage", c.name, "--since", "30d")
    assert table.code == 7 and "locked" in table.stderr and "good" in table.stdout


def test_budget_over_exits_3(seeded, tmp_path):
    c = seeded
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"version: 1\ncontainers:\n  {c.name}:\n    profiles:\n"
                     f"      coder: {{budget: {{daily_usd: 0.5}}}}\n      default: {{budget: {{daily_usd: 1000000}}}}\n")
    res = hermesctl("usage", c.name, "--since", "7d", "-f", str(fleet), "--json")
    assert res.code == 3, res
    over = res.json()["over_budget"]
    assert [(o["container"], o["profile"]) for o in over] == [(c.name, "coder")]
    assert over[0]["budget_usd"] == pytest.approx(3.5)
    table = hermesctl("usage", c.name, "--since", "7d", "-f", str(fleet))
    assert table.code == 3 and "OVER" in table.stdout and "over budget" in table.stderr


HOSTILE_QUERY_SERVER = r"""
import os, socket, sys, threading, time
path = "/run/service/.hermes-ctl-agent-query.sock"
server = socket.socket(socket.AF_UNIX)
server.bind(path + ".evil")
os.replace(path + ".evil", path)
server.listen(16)
open("/tmp/qsock-" + sys.argv[1], "w").close()
def flood(conn):
    try:
        while True:
            conn.sendall(b"{" + b"x" * 65535)  # a document that never ends
    except OSError:
        conn.close()
while True:
    conn, _ = server.accept()
    threading.Thread(target=flood if sys.argv[1] == "flood" else lambda c: time.sleep(3600), args=(conn,),
                     daemon=True).start()
"""


@pytest.mark.parametrize("kind", ["flood", "silent"])
def test_a_server_hermes_puts_at_the_query_socket_costs_one_bounded_read(faulty, kind):
    """hermes owns /run/service: whatever answers at the query socket gets at most 4 MiB or half
    the deadline, then the one-shot agent answers `usage` as it would without the resident. The
    faulty container's other profiles are broken on purpose: `asked` alone is asked."""
    c = faulty
    if c.exec_run(["test", "-e", "/opt/data/profiles/asked/state.db"]).exit_code != 0:  # the first kind
        sh(c, "mkdir -p /opt/data/profiles/asked && echo soul > /opt/data/profiles/asked/SOUL.md")
        seed(c, "/opt/data/profiles/asked/state.db", 50, 3)
    c.exec_run(["/usr/bin/python3", "-c", HOSTILE_QUERY_SERVER, kind], user="hermes", detach=True)
    try:
        wait_in(c, f"test -e /tmp/qsock-{kind}", what="the server bound")
        # Bounded: had the read waited on the server to the end, the exec would have outlived
        # --timeout and the container been reported as not answering (exit 7), not answered.
        res = hermesctl("--timeout", "20", "usage", f"{c.name}:asked", "--since", "30d", "--json", timeout=60)
        assert res.code == 0 and res.json()["rows"][0]["sessions"] > 0, res
    finally:  # the next kind's server takes the socket over from a clean slate
        sh(c, "pkill -f '[i]mport os, socket' || true")
