"""The page's overview (`GET /api/overview`): a summary line, the fleet grouped by container (and
node on a swarm) with health (and why a container is unhealthy), budgets, and per profile the
day's spend and sessions with their course through the day (the usage feed's own history: no
external service), and recent changes in words. The table's figures and the chart's come from
one computation (`groups`)."""
import json
import math
import time

from hermesctl.serve.usage_feed import today, utc_day

CHANGES_SHOWN = 60
REASON_MAX = 300  # characters of a container's health reason shown


def summary(snap, grouped: list[dict]) -> dict:
    """The line above the table. Spend and sessions are the sums of the groups' (the table's)
    figures; unhealthy containers are named, each with why."""
    gateways = [r for r in snap.rows if r.get("profile") is not None]
    count = {"up": 0, "down": 0, "crash_looping": 0, "parked": 0}
    for r in gateways:
        if r.get("crash_looping"):
            count["crash_looping"] += 1
        elif r.get("parked"):
            count["parked"] += 1
        elif r.get("state") == "up":
            count["up"] += 1
        else:
            count["down"] += 1
    containers = snap.containers
    unhealthy = [{"endpoint": g["endpoint"], "container": g["container"], "reason": g["health_reason"]}
                 for g in grouped if g["health"] == "unhealthy"]
    return {"gateways": len(gateways), **count,
            "containers": len(containers),
            "containers_unhealthy": len(unhealthy), "unhealthy": unhealthy,
            "containers_stopped": sum(1 for c in containers if not c.get("running")),
            "containers_over_budget": sorted(g["container"] for g in grouped if g["over_budget"]),
            "endpoints_unreachable": sorted(n for n, ok in snap.endpoints.items() if not ok),
            "spend_today_usd": sum(g["spend_today_usd"] for g in grouped),
            "sessions_today": sum(g["sessions_today"] for g in grouped)}


def _over(spent: float, budget: float | None) -> bool:
    """`hermesctl usage`'s rule for a day: over when the spend exceeds the daily budget."""
    from hermesctl.model.usage import Window, over_budget
    return over_budget(spent, budget, Window(seconds=86400), time.time())


def groups(snap, feed_snap: dict | None, now: float) -> list[dict]:
    """Containers (by node on a swarm, where the endpoint is the node), each with its health
    (and why, when unhealthy), its budget, and per profile with usage the day's figures, the
    budget, and the chart's points: the table and the chart read these same numbers."""
    day = utc_day(now)
    usage = (feed_snap or {}).get("profiles", {})
    history = (feed_snap or {}).get("history", {})
    budgets = (feed_snap or {}).get("budgets", {})
    out = []
    for c in sorted(snap.containers, key=lambda c: (c["endpoint"], c["name"])):
        profiles = {}
        for (endpoint, container, profile), doc in sorted(usage.items()):
            if (endpoint, container) != (c["endpoint"], c["name"]):
                continue
            usd, sessions = today(doc, day)
            budget = (budgets.get((container, profile)) or {}).get("daily_usd")
            # The day as serve saw it, then now: the last point is the table's figure itself.
            points = [[round(t, 1), round(u, 6), n] for t, d, u, n in history.get((endpoint, container, profile), ())
                      if d == day and t < now]
            points.append([round(now, 1), round(usd, 6), sessions])
            profiles[profile] = {"spend_today_usd": usd, "sessions_today": sessions,
                                 "sessions_active": _count(doc.get("sessions_active")),
                                 "last_activity": _moment(doc.get("last_activity")),
                                 "budget_daily_usd": budget, "over_budget": _over(usd, budget),
                                 "points": points, "error": _error_code(doc)}
        for (container, profile), budget in sorted(budgets.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            if container == c["name"] and profile is not None and profile not in profiles and "daily_usd" in budget:
                # A budget for a profile that reports no usage (yet): shown, nothing spent.
                profiles[profile] = {"spend_today_usd": 0.0, "sessions_today": 0, "sessions_active": 0,
                                     "last_activity": None, "budget_daily_usd": budget["daily_usd"],
                                     "over_budget": False, "points": [], "error": None}
        spent = sum(p["spend_today_usd"] for p in profiles.values())
        budget = (budgets.get((c["name"], None)) or {}).get("daily_usd")
        health = c.get("health")
        out.append({"endpoint": c["endpoint"], "container": c["name"], "service": c.get("service"),
                    "running": c.get("running"), "health": health,
                    "health_reason": c.get("health_reason") if health == "unhealthy" else None,
                    "spend_today_usd": spent, "sessions_today": sum(p["sessions_today"] for p in profiles.values()),
                    "budget_daily_usd": budget, "over_budget": _over(spent, budget), "profiles": profiles})
    return out


# The watcher's lines come from a process hermes runs: what the page gets from them is checked
# (a NaN would make the whole document invalid JSON for the browser).
def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _moment(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def _error_code(doc: dict) -> str | None:
    if doc.get("ok") is True:
        return None
    error = doc.get("read_error")
    code = error.get("code") if isinstance(error, dict) else None
    return code[:40] if isinstance(code, str) and code.isascii() and code.isprintable() and code else "unreadable"


def _problem_words(problem: str) -> str:
    """The image's health verb's problem codes (hermes_supervise.queries.health) in words."""
    profile, sep, kind = problem.rpartition(":")
    words = {"down-but-wanted-up": "down but wanted up", "no-supervisor": "not supervised",
             "parked-exit-78": "parked (exit 78: fatal configuration)"}
    if sep and kind in words:
        return f"gateway {profile} {words[kind]}"
    return problem


def _printable(text: str, limit: int) -> str:
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in text[:limit * 2]).split())
    return cleaned[:limit] + ("…" if len(cleaned) > limit else "")


def health_reason(inspect: dict) -> str:
    """Why Docker calls a container unhealthy, from its health log (`docker inspect`'s
    State.Health): the last check's failure, in words. The output was written inside the
    container: it is bounded and made printable here, and the page shows it as text."""
    state = inspect.get("State") if isinstance(inspect, dict) else None
    health = state.get("Health") if isinstance(state, dict) else None
    log = health.get("Log") if isinstance(health, dict) else None
    failed = [e for e in log if isinstance(e, dict) and e.get("ExitCode") != 0] if isinstance(log, list) else []
    if not failed:
        return "no failed check in Docker's health log"
    last = failed[-1]
    streak = health.get("FailingStreak")
    output = last.get("Output") if isinstance(last.get("Output"), str) else ""
    code = last.get("ExitCode")
    repeated = f", {streak} times in a row" if isinstance(streak, int) and streak > 1 else ""
    lead = f"health check failed (exit {code}{repeated})"
    why = None
    try:
        doc = json.loads(output[:65536]) if output.lstrip().startswith("{") else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("problems"), list):
        why = "; ".join(_problem_words(str(p)) for p in doc["problems"][:20]) or None
    if why is None:
        first = output.strip().splitlines()[0] if output.strip() else ""
        why = first or ("it timed out" if code == -1 else "no output")
    return _printable(f"{lead}: {why}", REASON_MAX)


def _state_words(target: str, old, new) -> str:
    if new == "up":
        return f"{target} came up" if old not in (None, "up") else f"{target} is up"
    if new == "crash-loop":
        return f"{target}: crash loop began"
    if old == "crash-loop":
        return f"{target}: crash loop ended ({new})"
    if new == "parked":
        return f"{target} parked: fatal configuration (exit 78)"
    if new == "down":
        return f"{target} went down"
    return f"{target} is now {new}"


def in_words(event: dict) -> str:
    """One recorded change (FleetState._event: target, field, old, new) as a sentence."""
    target, what, old, new = event.get("target"), event.get("field"), event.get("old"), event.get("new")
    if what == "state":
        return _state_words(target, old, new)
    if what == "desired_state":
        return {"stopped": f"{target} stopped by hermesctl", "running": f"{target} started by hermesctl"}.get(
            new, f"{target}: desired state cleared")
    if what == "wanted":
        return f"{target}: s6 now keeps it {'up' if new == 'up' else 'down'}"
    if what == "pid":
        how = event.get("how")
        if old and new:
            return f"{target} restarted (pid {old} → {new}" + (f"; the old one {how})" if how else ")")
        if new:
            return f"{target} started (pid {new})"
        return f"{target} {how} (pid {old})" if how else f"{target} went down (pid {old})"
    if what == "crash_looping":
        return f"{target}: crash loop began" if new else f"{target}: crash loop ended"
    if what == "parked":
        return f"{target} parked: fatal configuration (exit 78)" if new else f"{target} no longer parked"
    if what == "gateway_state":
        return f"{target}: hermes reports {new or 'no state'}"
    if what == "added":
        return f"{target}: gateway registered"
    if what == "removed":
        return f"{target} removed" if ":" not in str(target) else f"{target}: gateway unregistered"
    if what == "running":
        return f"container {target} {'started' if new else 'stopped'}"
    if what == "health":
        return f"container {target} is {new or 'without a health check'}" + (f" (was {old})" if old else "")
    if what == "reachable":
        return f"{target} {'does not answer' if not new else 'is reachable again' if old is False else 'reachable'}"
    return f"{target}: {what} {old} → {new}"


# One operation or death touches several fields of a gateway within a second or two (a stop:
# desired state, s6's wanted flag, the state, the pid, hermes' own gateway_state): one line says
# it, the most telling of them first, with what hermes reported.
BURST_S = 5.0
TELLING = ("desired_state", "pid", "crash_looping", "parked", "state", "wanted", "added", "removed")


def coalesced(events: list[dict]) -> list[dict]:
    """The recent changes as lines: consecutive events of one target within BURST_S, one line."""
    bursts: list[list[dict]] = []
    for e in events:
        last = bursts[-1] if bursts else None
        if last and last[0].get("target") == e.get("target") and e["time"] - last[0]["time"] <= BURST_S:
            last.append(e)
        else:
            bursts.append([e])
    lines = []
    for burst in bursts:
        rank = {f: i for i, f in enumerate(TELLING)}
        top = min(burst, key=lambda e: rank.get(e.get("field"), len(TELLING)))
        text = in_words(top)
        reported = [e for e in burst if e.get("field") == "gateway_state" and e is not top]
        if reported:
            text += f"; hermes reports {reported[-1].get('new') or 'no state'}"
        lines.append({"time": burst[-1]["time"], "target": top.get("target"), "text": text, "changes": len(burst)})
    return lines


def document(state) -> dict:
    snap = state.snapshot()
    feed = getattr(state, "usage_feed", None)
    feed_snap = feed.snapshot() if feed is not None else None
    changes = coalesced(snap.events)[-CHANGES_SHOWN:][::-1]
    now = time.time()
    grouped = groups(snap, feed_snap, now)
    return {"schema": "hermesctl.overview/v2", "now": now, "day": utc_day(now), "day_start": now - now % 86400,
            "summary": summary(snap, grouped), "groups": grouped, "changes": changes}
