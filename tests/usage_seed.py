"""A seeded state.db for usage tests: hermes-agent's own SessionDB creates it (the real schema of
the image's hermes-agent), then sessions, per-model usage rows and messages are written as
hermes records them: several platforms and models, stored and unstored costs, sessions with
no per-model rows (legacy), sessions whose counters exceed their rows (residuals), open ones.

SEED_SCRIPT runs in the container with the venv's python, as hermes:
    python -c SEED_SCRIPT DB_PATH SESSIONS SEED [NOW]
Deterministic: the same arguments give the same database (random.Random(SEED)); started_at
keeps clear of the 1/7/30-day window edges by an hour so a window reads the same rows whatever
second it is asked in.
"""

SEED_SCRIPT = r"""
import random, sys, time
from pathlib import Path
path, count, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
now = float(sys.argv[4]) if len(sys.argv) > 4 else time.time()
path.parent.mkdir(parents=True, exist_ok=True)
from hermes_state import SessionDB
SessionDB(db_path=path).close()          # hermes' own schema and pragmas (WAL)
import sqlite3
rng = random.Random(seed)
sources = ["cli", "telegram", "discord", "slack", "api_server"]
models = [  # (model, provider, base_url, priced by hermes' official snapshot when unstored)
    ("anthropic/claude-sonnet-5", "anthropic", "", True),
    ("claude-opus-4-8", "anthropic", "", True),
    ("openai/gpt-5.6-luna", "openai", "", True),
    ("nousresearch/hermes-4-405b", "nous", "", False),
    ("local-llama", "custom", "http://localhost:8080/v1", False),
    ("", "", "", False),
]
edges = [now - d * 86400 for d in (1, 7, 30)]
def started():
    while True:
        t = now - rng.uniform(60, 40 * 86400)
        if all(abs(t - e) > 3600 for e in edges):
            return t
c = sqlite3.connect(str(path), isolation_level=None)
c.execute("BEGIN")
for n in range(count):
    sid = f"s{seed}-{n:06d}"
    source = rng.choice(sources)
    model, provider, base_url, priced = rng.choice(models)
    t0 = started()
    still_open = rng.random() < 0.05
    t1 = None if still_open else t0 + rng.uniform(5, 7200)
    kind = rng.random()
    rows = []
    if kind < 0.15:           # legacy: counters only, no per-model rows
        pass
    else:
        for m, p, u, pr in rng.sample(models, rng.choice([1, 1, 1, 2, 3])):
            stored = not pr or rng.random() < 0.6
            rows.append((m, p, u, stored))
    totals = dict(i=0, o=0, cr=0, cw=0, r=0, calls=0, est=0.0, act=0.0)
    for m, p, u, stored in rows:
        i, o = rng.randint(0, 200000), rng.randint(0, 40000)
        cr, cw, r = rng.randint(0, 500000), rng.randint(0, 30000), rng.randint(0, 9000)
        calls = rng.randint(1, 60)
        est = round(rng.uniform(0, 3), 6)
        act = round(est * rng.uniform(0.8, 1.1), 6) if rng.random() < 0.5 else 0.0
        status = rng.choice(["estimated", "actual", "included"]) if stored else None
        source_col = rng.choice(["provider_models_api", "official_docs_snapshot", None]) if stored else None
        if stored and status is None and source_col is None:
            status = "estimated"
        c.execute("INSERT INTO session_model_usage (session_id, model, billing_provider, billing_base_url, "
                  "billing_mode, task, api_call_count, input_tokens, output_tokens, cache_read_tokens, "
                  "cache_write_tokens, reasoning_tokens, estimated_cost_usd, actual_cost_usd, cost_status, "
                  "cost_source, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                  (sid, m or "unknown", p, u, "", rng.choice(["", "", "vision", "compression"]), calls, i, o,
                   cr, cw, r, est, act, status, source_col, t0, t1 or t0 + 1))
        for k, v in zip(("i", "o", "cr", "cw", "r", "calls", "est", "act"), (i, o, cr, cw, r, calls, est, act)):
            totals[k] += v
    extra = rng.random() < 0.3 or not rows   # counters beyond the rows: the residual part
    bump = (lambda v, hi: v + (rng.randint(1, hi) if extra else 0))
    c.execute("INSERT INTO sessions (id, source, model, started_at, ended_at, message_count, tool_call_count, "
              "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, "
              "billing_provider, billing_base_url, estimated_cost_usd, actual_cost_usd, cost_status, "
              "cost_source, api_call_count) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
              (sid, source, model or None, t0, t1, rng.randint(0, 300), rng.choice([0, 0, rng.randint(1, 80)]),
               bump(totals["i"], 50000), bump(totals["o"], 9000), bump(totals["cr"], 90000),
               bump(totals["cw"], 5000), totals["r"] + rng.randint(0, 500), provider or None, base_url or None,
               totals["est"] + (rng.uniform(0, 0.5) if extra else 0.0),
               (totals["act"] + rng.uniform(0, 0.4)) if rng.random() < 0.5 else None,
               "estimated", None, bump(totals["calls"], 9)))
    for k in range(rng.randint(0, 3)):
        c.execute("INSERT INTO messages (session_id, role, content, timestamp) VALUES (?,?,?,?)",
                  (sid, rng.choice(["user", "assistant", "tool"]), "seeded", t0 + k))
c.execute("COMMIT")
c.close()
print(count)
"""

VENV_PYTHON = "/opt/hermes/.venv/bin/python"


def seed(container, db_path: str, sessions: int, seed_value: int) -> None:
    """Write a seeded state.db in the container, as hermes."""
    result = container.exec_run([VENV_PYTHON, "-c", SEED_SCRIPT, db_path, str(sessions), str(seed_value)],
                                user="hermes", environment={"HOME": "/opt/data"})
    if result.exit_code != 0:
        raise AssertionError(f"seeding {db_path} failed: {result.output.decode()[-2000:]}")


# SEED_SCRIPT for several databases in one Python start (each start imports hermes: ~0.5 s of
# CPU on a CPU-bound suite), each run as its own `python -c SEED_SCRIPT PATH SESSIONS SEED`.
_SEED_MANY = "import sys\nscript, args = sys.argv[1], sys.argv[2:]\nfor i in range(0, len(args), 3):\n" \
             "    sys.argv = ['-c', *args[i:i + 3]]\n    exec(script, {'__name__': '__main__'})\n"


def seed_all(container, dbs: list[tuple[str, int, int]]) -> None:
    """seed() for each (DB_PATH, SESSIONS, SEED), in one exec: the same databases."""
    argv = [str(a) for db in dbs for a in db]
    result = container.exec_run([VENV_PYTHON, "-c", _SEED_MANY, SEED_SCRIPT, *argv],
                                user="hermes", environment={"HOME": "/opt/data"})
    if result.exit_code != 0:
        raise AssertionError(f"seeding {dbs} failed: {result.output.decode()[-2000:]}")

# hermes insights' own report (agent.insights.InsightsEngine.generate, exactly what `hermes
# insights` prints from) as JSON, one line per (DAYS, SOURCE) pair asked, "-" for no source:
# python -c INSIGHTS_SCRIPT DAYS SOURCE [DAYS SOURCE...], HERMES_HOME set. Several reports in one
# Python start: each start imports hermes (~1 s of CPU on a CPU-bound suite), the reports are
# the same whichever process asks.
INSIGHTS_SCRIPT = r"""
import json, sys
from hermes_state import SessionDB
from agent.insights import InsightsEngine
pairs = sys.argv[1:]
for days, source in zip(pairs[0::2], pairs[1::2]):
    db = SessionDB()
    report = InsightsEngine(db).generate(days=int(days), source=None if source == "-" else source)
    db.close()
    print(json.dumps({"overview": report["overview"], "models": report["models"], "empty": report["empty"]}))
"""


def insights(container, home: str, asked: list[tuple[int, str | None]]) -> list[dict]:
    """The real hermes insights' reports for one profile home, one per (window in days, source)."""
    import json
    argv = [str(a) for days, source in asked for a in (days, source or "-")]
    result = container.exec_run([VENV_PYTHON, "-c", INSIGHTS_SCRIPT, *argv],
                                user="hermes", environment={"HOME": "/opt/data", "HERMES_HOME": home})
    if result.exit_code != 0:
        raise AssertionError(f"insights failed: {result.output.decode()[-2000:]}")
    reports = [json.loads(line) for line in result.output.decode().splitlines() if line.startswith("{")]
    assert len(reports) == len(asked), result.output.decode()[-2000:]
    return reports
