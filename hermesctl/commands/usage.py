"""hermesctl usage: sessions, tokens, cost and activity of every profile, one exec per container.

Each container's agent reads its profiles' state.db read-only (`usage` verb) and answers per
profile, source and model with hermes insights' definitions; rows here are sums of those cells.
The resident agent answers from the hourly tallies it keeps (hermes_supervise/usage_store.py)
over its query socket, through C programs; the one-shot agent when it cannot.
"""
import fnmatch
import time

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.core.errors import UsageError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.core.parallel import fan_out
from hermesctl.model.targets import Target, is_glob
from hermesctl.model.usage import (GROUPINGS, ProfileUsage, Window, add, over_budget, top_model, zero_cell)
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich: not on the quick read path (hermesctl.cli.quick_read)
    from hermesctl.render.output import Output

MAX_SHOWN = 64


def safe(text: object) -> str:
    """A name that came from a container (model, platform), fit for the operator's terminal:
    printable characters only, bounded."""
    text = str(text)
    cleaned = "".join(c if c.isprintable() else "?" for c in text[:MAX_SHOWN])
    return cleaned + ("…" if len(text) > MAX_SHOWN else "")


def _asked_profiles(targets: list[Target]) -> list[str]:
    """Profile names to ask for by name (the agent reads only those), or [] for every one."""
    named = {t.profile for t in targets}
    if not targets or None in named or any(is_glob(p) for p in named):
        return []
    return sorted(named)


def _selected(profile: str, targets: list[Target]) -> bool:
    return not targets or any(t.profile is None or fnmatch.fnmatchcase(profile, t.profile) for t in targets)


def collect(fleet: Fleet, targets: list[Target], window: Window) -> tuple[list[ProfileUsage], float, list[dict]]:
    """One exec per selected running container; a container that fails is `unreachable`, a
    profile whose database cannot be read is a ProfileUsage with `error`; what a container
    skipped as no profile (a symlink under profiles/) is listed, never counted."""
    chosen = fleet.match(targets or [Target("*", None)])

    def ask(item: tuple[HermesContainer, list[Target]]) -> dict:
        container, by = item
        names = _asked_profiles(by) if targets else []
        return fleet.ask_resident(container, "usage", *window.agent_args(), *names)

    found: list[ProfileUsage] = []
    skipped: list[dict] = []
    now = time.time()
    for o in fan_out(ask, chosen):
        container, by = o.item
        if not o.ok:
            fleet.did_not_answer(container, o.error)
            continue
        now = o.value.get("now", now)
        for profile, why in sorted((o.value.get("skipped") or {}).items()):
            if not targets or _selected(profile, by):
                skipped.append({"endpoint": container.endpoint, "container": container.name, "profile": profile,
                                "reason": str(why)})
        for profile, answer in sorted(o.value.get("profiles", {}).items()):
            if targets and not _selected(profile, by):
                continue
            row = ProfileUsage(container.endpoint, container.name, profile)
            if answer.get("ok"):
                row.sources = answer.get("sources") or {}
                row.last_activity = answer.get("last_activity")
            else:
                row.error = answer.get("error") or {"code": "failed", "message": "no answer"}
            found.append(row)
    return found, now, skipped


def _budgets(rows: list[ProfileUsage], spec) -> dict[str, float]:
    """Container budgets by container name; profile budgets are set on the rows."""
    if spec is None:
        return {}
    by_container = {c.name: c for c in spec.containers}
    for row in rows:
        c = by_container.get(row.container)
        for p in (c.profiles if c else ()):
            if p.name == row.profile:
                row.budget_daily_usd = p.budget_daily_usd
    return {c.name: c.budget_daily_usd for c in spec.containers if c.budget_daily_usd is not None}


def usage(out: "Output", fleet: Fleet, targets: list[Target], window: Window, *, by: str = "profile",
          source: str | None = None, spec=None) -> ExitStatus:
    if by not in GROUPINGS:
        raise UsageError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    rows, now, skipped = collect(fleet, targets, window)
    container_budgets = _budgets(rows, spec)
    over = []
    for row in rows:
        spent = row.total(source)["estimated_usd"]
        if not row.error and over_budget(spent, row.budget_daily_usd, window, now):
            over.append({"endpoint": row.endpoint, "container": row.container, "profile": row.profile,
                         "spent_usd": spent, "budget_usd": row.budget_daily_usd * window.days(now)})
    for name, budget in sorted(container_budgets.items()):
        mine = [r for r in rows if r.container == name and not r.error]
        spent = sum(r.total(source)["estimated_usd"] for r in mine)
        if mine and over_budget(spent, budget, window, now):
            over.append({"endpoint": mine[0].endpoint, "container": name, "profile": None,
                         "spent_usd": spent, "budget_usd": budget * window.days(now)})
    # What each budget allows for this window, shown in the BUDGET column whether over or not.
    allowed = {(r.container, r.profile): r.budget_daily_usd * window.days(now)
               for r in rows if r.budget_daily_usd is not None}
    allowed.update({(name, None): budget * window.days(now) for name, budget in container_budgets.items()})
    grouped = group(rows, by, source)
    totals = zero_cell()
    for row in rows:
        add(totals, row.total(source))
    errors = [r for r in rows if r.error and r.error.get("code") != "missing"]
    if out.json:
        out.document("usage", {
            "window": {"since": now - window.days(now) * 86400, "until": now, "text": window.text,
                       "source": source},
            "by": by, "rows": grouped, "totals": totals,
            "profiles": [_profile_doc(r, source) for r in rows],
            "skipped": skipped, "over_budget": over})
    else:
        _table(out, grouped, by, totals, over, allowed)
        for r in errors:
            out.warn(f"{r.container}:{r.profile}: {r.error.get('code')}: {safe(r.error.get('message', ''))}")
        for k in skipped:
            out.warn(f"{k['container']}: profiles/{safe(k['profile'])} skipped: {safe(k['reason'])}")
        for o in over:
            where = o["container"] + (f":{o['profile']}" if o["profile"] else "")
            out.warn(f"{where} is over budget: ${o['spent_usd']:.2f} spent, ${o['budget_usd']:.2f} allowed "
                     f"for {window.text}")
    if errors:
        return ExitStatus.PARTIAL
    return ExitStatus.NOT_RUNNING if over else ExitStatus.OK


def _profile_doc(r: ProfileUsage, source: str | None) -> dict:
    return {"endpoint": r.endpoint, "container": r.container, "profile": r.profile, "ok": r.error is None,
            "error": r.error, "last_activity": r.last_activity, "budget_daily_usd": r.budget_daily_usd,
            **r.total(source), "top_model": top_model(r.models(source)),
            "models": r.models(source), "sources": {s: {k: v for k, v in c.items() if k != "models"}
                                                    for s, c in r.sources.items()
                                                    if source is None or s == source}}


def group(rows: list[ProfileUsage], by: str, source: str | None) -> list[dict]:
    """Rows as asked: per container x profile, per container, per model or per platform."""
    groups: dict[tuple, dict] = {}

    def entry(key: tuple, **labels) -> dict:
        return groups.setdefault(key, {**labels, **zero_cell(), "last_activity": None, "errors": 0,
                                       "_models": {}})

    for r in rows:
        if by in ("profile", "container"):
            labels = {"endpoint": r.endpoint, "container": r.container}
            if by == "profile":
                labels["profile"] = r.profile
            g = entry(tuple(labels.values()), **labels)
            if r.error and r.error.get("code") != "missing":  # no state.db yet: nothing happened
                g["errors"] += 1
                if by == "profile":
                    g["error"] = r.error
                continue
            add(g, r.total(source))
            for name, m in r.models(source).items():
                add(g["_models"].setdefault(name, zero_cell()), m)
            if r.last_activity and (g["last_activity"] or 0) < r.last_activity:
                g["last_activity"] = r.last_activity
        elif by == "model":
            for name, m in r.models(source).items():
                add(entry((name,), model=name), m)
        else:
            for platform in r.sources:
                if source is None or platform == source:
                    add(entry((platform,), platform=platform), r.total(platform))
    result = []
    for key in sorted(groups):
        g = groups[key]
        models = g.pop("_models")
        if by in ("profile", "container"):
            g["top_model"] = top_model(models)
        else:
            del g["last_activity"], g["errors"]
        result.append(g)
    return result


def compact(n: int | float) -> str:
    n = int(n)
    for unit, size in (("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def ago(moment: float | None, now: float) -> str | None:
    if not moment:
        return None
    seconds = max(0, int(now - moment))
    from hermesctl.render.plain_table import duration
    return f"{duration(seconds)} ago"


def _budget_cell(container: str, profile: str | None, flagged: set, allowed: dict) -> str | None:
    """The row's own budget for the window (OVER when spent past it); on a profile's row also
    its container's budget when that is over: the default view marks a container over budget."""
    parts = []
    if (container, profile) in allowed:
        parts.append(("OVER " if (container, profile) in flagged else "") + f"{allowed[(container, profile)]:.2f}")
    if profile is not None and (container, None) in flagged:
        parts.append("container OVER")
    return " · ".join(parts) or None


def _table(out: "Output", grouped: list[dict], by: str, totals: dict, over: list[dict],
           allowed: dict | None = None) -> None:
    now = time.time()
    flagged = {(o["container"], o["profile"]) for o in over}
    numbers = ["SESSIONS", "ACTIVE", "MSGS", "TOOLS", "IN", "OUT", "CACHE-R", "CACHE-W", "REASON", "EST $", "ACT $"]

    def figures(g: dict) -> list:
        return [g["sessions"], g["active"], g["messages"], g["tool_calls"], compact(g["input_tokens"]),
                compact(g["output_tokens"]), compact(g["cache_read_tokens"]), compact(g["cache_write_tokens"]),
                compact(g["reasoning_tokens"]), f"{g['estimated_usd']:.2f}", f"{g['actual_usd']:.2f}"]

    if by in ("profile", "container"):
        head = ["CONTAINER", *(["PROFILE"] if by == "profile" else []), *numbers, "TOP MODEL", "LAST", "BUDGET"]
        rows = []
        for g in grouped:
            name = [g["container"], *([g["profile"]] if by == "profile" else [])]
            if g.get("error"):
                rows.append([*name, *([None] * len(numbers)), None, None, f"error: {g['error'].get('code')}"])
                continue
            mark = _budget_cell(g["container"], g.get("profile"), flagged, allowed or {})
            rows.append([*name, *figures(g), safe(g["top_model"]) if g["top_model"] else None,
                         ago(g["last_activity"], now), mark])
        rows.append(["TOTAL", *([""] if by == "profile" else []), *figures(totals), None, None, None])
        endpoints = [g["endpoint"] for g in grouped] + [""]
    else:
        label = "MODEL" if by == "model" else "PLATFORM"
        cols = numbers if by == "platform" else ["SESSIONS", "IN", "OUT", "CACHE-R", "CACHE-W", "REASON",
                                                 "EST $", "ACT $"]
        head = [label, *cols]
        rows = []
        for g in grouped:
            f = figures(g)
            rows.append([safe(g[label.lower()]), *(f if by == "platform" else [f[0], *f[4:]])])
        endpoints = None
    # Plain lines, as wide as the figures make them: a rich table fitted to the terminal cut
    # them (`14…` for 1,499); a terminal narrower than a line wraps it, every digit shown.
    if out.several_endpoints and endpoints is not None:
        head, rows = [out.endpoint_column, *head], [[e, *row] for e, row in zip(endpoints, rows)]
    out.print(out.text_table(head, rows))
