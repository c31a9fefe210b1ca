"""The page's overview (`GET /api/overview`): a summary line, the fleet grouped by container (and
node on a swarm) with health, spend and activity per profile over the last day (from the usage
feed's own history: no external service), and recent changes in words."""
import time

CHANGES_SHOWN = 60


def summary(snap, feed_snap: dict | None) -> dict:
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
    today = time.strftime("%Y-%m-%d", time.gmtime())
    spend_today = sessions_today = 0.0
    for doc in (feed_snap or {}).get("profiles", {}).values():
        day = (doc.get("days") or {}).get(today) or {}
        spend_today += day.get("estimated_usd") or 0.0
        sessions_today += day.get("sessions") or 0
    return {"gateways": len(gateways), **count,
            "containers": len(containers),
            "containers_unhealthy": sum(1 for c in containers if c.get("health") == "unhealthy"),
            "containers_stopped": sum(1 for c in containers if not c.get("running")),
            "endpoints_unreachable": sorted(n for n, ok in snap.endpoints.items() if not ok),
            "spend_today_usd": spend_today, "sessions_today": int(sessions_today)}


def groups(snap, feed_snap: dict | None) -> list[dict]:
    """Containers (by node on a swarm, where the endpoint is the node), each with its health and
    its profiles' spend today."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    usage = (feed_snap or {}).get("profiles", {})
    out = []
    for c in sorted(snap.containers, key=lambda c: (c["endpoint"], c["name"])):
        profiles = {}
        for (endpoint, container, profile), doc in usage.items():
            if (endpoint, container) == (c["endpoint"], c["name"]):
                day = (doc.get("days") or {}).get(today) or {}
                profiles[profile] = {"spend_today_usd": day.get("estimated_usd") or 0.0,
                                     "sessions_today": day.get("sessions") or 0,
                                     "sessions_active": doc.get("sessions_active") or 0,
                                     "last_activity": doc.get("last_activity"),
                                     "error": (doc.get("read_error") or {}).get("code") if not doc.get("ok") else None}
        out.append({"endpoint": c["endpoint"], "container": c["name"], "service": c.get("service"),
                    "running": c.get("running"), "health": c.get("health"), "profiles": profiles})
    return out


def charts(feed_snap: dict | None, now: float | None = None) -> list[dict]:
    """Per profile, the last day: spend and sessions since the first point of the window,
    as (seconds ago, dollars, sessions) points."""
    now = now or time.time()
    result = []
    for (endpoint, container, profile), points in sorted((feed_snap or {}).get("history", {}).items()):
        recent = [p for p in points if p[0] >= now - 86400]
        if not recent:
            continue
        t0, usd0, n0 = recent[0]
        result.append({"endpoint": endpoint, "container": container, "profile": profile,
                       "points": [[round(now - t, 1), round(usd - usd0, 6), n - n0] for t, usd, n in recent],
                       "spend_usd": recent[-1][1] - usd0, "sessions": recent[-1][2] - n0})
    return result


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
        return f"{target} restarted (pid {old} → {new})" if old and new else \
            (f"{target} started (pid {new})" if new else f"{target} stopped (pid {old})")
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


def document(state) -> dict:
    snap = state.snapshot()
    feed = getattr(state, "usage_feed", None)
    feed_snap = feed.snapshot() if feed is not None else None
    changes = [{"time": e["time"], "target": e.get("target"), "text": in_words(e)}
               for e in snap.events[-CHANGES_SHOWN:]][::-1]
    return {"schema": "hermesctl.overview/v1", "now": time.time(), "summary": summary(snap, feed_snap),
            "groups": groups(snap, feed_snap), "charts": charts(feed_snap), "changes": changes}
