"""/metrics for usage: the UsageFeed's latest counters per profile and model, as Prometheus
counters and gauges (prometheus-client). A scrape reads memory only."""
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

PROFILE_LABELS = ["endpoint", "container", "profile"]
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")


class UsageCollector:
    def __init__(self, feed):
        self.feed = feed

    def collect(self):
        snap = self.feed.snapshot()
        tokens = CounterMetricFamily("hermes_tokens", "tokens used, by kind (hermes insights' accounting)",
                                     labels=PROFILE_LABELS + ["model", "kind"])
        cost = CounterMetricFamily("hermes_cost_usd", "US dollars: kind=estimated (insights' cost) or actual "
                                   "(billed, where the provider reports it)", labels=PROFILE_LABELS + ["model", "kind"])
        calls = CounterMetricFamily("hermes_api_calls", "model API calls", labels=PROFILE_LABELS + ["model"])
        sessions = CounterMetricFamily("hermes_sessions", "sessions started", labels=PROFILE_LABELS)
        active = GaugeMetricFamily("hermes_sessions_active", "sessions not ended (ended_at unset)",
                                   labels=PROFILE_LABELS)
        last = GaugeMetricFamily("hermes_last_activity_timestamp_seconds",
                                 "the latest session start/end, model call or message of an open session",
                                 labels=PROFILE_LABELS)
        errors = GaugeMetricFamily("hermes_usage_read_error", "1 while a profile's state.db cannot be read "
                                   "(missing, locked, corrupt, schema, unreadable, oversized, non-finite)",
                                   labels=PROFILE_LABELS + ["code"])
        for (endpoint, container, profile), doc in sorted(snap["profiles"].items()):
            labels = [endpoint, container, profile]
            if not doc.get("ok"):
                code = str((doc.get("read_error") or {}).get("code") or "failed")
                if code != "missing":  # a profile that has not run a session yet is not an error
                    errors.add_metric(labels + [code], 1)
                continue
            for model, m in (doc.get("models") or {}).items():
                for kind in TOKEN_KINDS:
                    tokens.add_metric(labels + [model, kind], m.get(f"{kind}_tokens") or 0)
                cost.add_metric(labels + [model, "estimated"], m.get("estimated_usd") or 0.0)
                cost.add_metric(labels + [model, "actual"], m.get("actual_usd") or 0.0)
                calls.add_metric(labels + [model], m.get("api_calls") or 0)
            sessions.add_metric(labels, doc.get("sessions_total") or 0)
            active.add_metric(labels, doc.get("sessions_active") or 0)
            if doc.get("last_activity"):
                last.add_metric(labels, doc["last_activity"])
        yield from (tokens, cost, calls, sessions, active, last, errors)

        daily = GaugeMetricFamily("hermes_budget_daily_usd", "the fleet file's daily budget of a profile "
                                  "(profile=\"\": the whole container's)", labels=["container", "profile"])
        hourly = GaugeMetricFamily("hermes_budget_hourly_usd", "the fleet file's hourly budget of a profile "
                                   "(profile=\"\": the whole container's)", labels=["container", "profile"])
        for (container, profile), budget in sorted(snap["budgets"].items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            if "daily_usd" in budget:
                daily.add_metric([container, profile or ""], budget["daily_usd"])
            if "hourly_usd" in budget:
                hourly.add_metric([container, profile or ""], budget["hourly_usd"])
        yield daily
        yield hourly

        cpu = CounterMetricFamily("hermes_usage_watch_cpu_seconds", "CPU time of the in-container usage "
                                  "watcher (its cost per container)", labels=["endpoint", "container"])
        for (endpoint, container), beat in sorted(snap["watchers"].items()):
            if beat.get("cpu_s") is not None:
                cpu.add_metric([endpoint, container], beat["cpu_s"])
        yield cpu
