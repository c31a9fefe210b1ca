"""/metrics: the FleetState in Prometheus' exposition format, through the official client. A
scrape reads the state the refresher keeps; it never reaches a container."""
import time

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from hermesctl.agent.serving import api_health_seconds, judge
from hermesctl.serve import exposition
from hermesctl.serve.state import FleetState

GATEWAY_LABELS = ["endpoint", "container", "service", "profile"]
GATEWAY_STATES = ("starting", "running", "degraded", "startup_failed", "draining", "stopped")


class FleetCollector:
    def __init__(self, state: FleetState):
        self.state = state

    def collect(self):
        started = time.monotonic()
        snap = self.state.snapshot()
        gauges = {
            "up": ("hermes_gateway_up", "1 when ps calls the gateway up: its process up under s6, not "
                   "crash-looping, not every platform fatal"),
            "wanted": ("hermes_gateway_wanted_up", "1 when s6 is asked to keep the gateway up"),
            "desired": ("hermes_gateway_desired_running", "1 when desired_state (gateway_state.json) is running"),
            "uptime": ("hermes_gateway_uptime_seconds", "seconds since the gateway process started"),
            "deaths": ("hermes_gateway_deaths_recent", "unplanned deaths in the last 60 s"),
            "crash": ("hermes_gateway_crash_looping", "1 when the gateway is crash-looping"),
            "parked": ("hermes_gateway_parked", "1 when s6 parked the gateway (fatal configuration)"),
        }
        families = {k: GaugeMetricFamily(n, h, labels=GATEWAY_LABELS) for k, (n, h) in gauges.items()}
        # Only ever grows while this server runs (a restart of serve starts it again at 0, which
        # Prometheus' rate() reads as a counter reset): a counter, exposed as ..._total.
        families["restarts"] = CounterMetricFamily("hermes_gateway_restarts_seen",
                                                   "new gateway pids this server has seen", labels=GATEWAY_LABELS)
        state_family = GaugeMetricFamily("hermes_gateway_state", "1 for the gateway_state the gateway recorded",
                                         labels=GATEWAY_LABELS + ["state"])
        platform_family = GaugeMetricFamily("hermes_gateway_platform_connected",
                                            "1 when a platform connection is connected",
                                            labels=GATEWAY_LABELS + ["platform", "state"])
        serving_family = GaugeMetricFamily("hermes_gateway_serving", "1 when the gateway serves (hermesctl "
                                           "probe's judgment without a prompt: up, its platforms connected, its "
                                           "API server's /health answering)", labels=GATEWAY_LABELS)
        probe_family = GaugeMetricFamily("hermes_gateway_probe_seconds", "how long the API server's /health "
                                         "took to answer, asked inside the container", labels=GATEWAY_LABELS)
        feed = getattr(self.state, "serving_feed", None)  # set by `serve` (serve/serving_feed.py)
        for r in snap.rows:
            if r.get("profile") is None:
                continue
            labels = [r["endpoint"], r["container"], r.get("service") or "", r["profile"]]
            # Up under s6 (its uptime is known), crash-looping or not: a crash loop pages as
            # such (HermesGatewayCrashLooping), not also as wanted-but-down.
            families["up"].add_metric(labels, 1 if r.get("uptime_s") is not None else 0)
            families["wanted"].add_metric(labels, 1 if r.get("wanted") == "up" else 0)
            families["desired"].add_metric(labels, 1 if r.get("desired_state") == "running" else 0)
            families["uptime"].add_metric(labels, r.get("uptime_s") or 0)
            families["restarts"].add_metric(labels, r.get("restarts_seen", 0))
            families["deaths"].add_metric(labels, r.get("deaths_recent") or 0)
            families["crash"].add_metric(labels, 1 if r.get("crash_looping") else 0)
            families["parked"].add_metric(labels, 1 if r.get("parked") else 0)
            if feed is not None:
                looked, answer = feed.answer_for(r["endpoint"], r["container"], r["profile"])
                if looked:  # before the first look nothing is claimed
                    serving_family.add_metric(labels, 1 if judge(r["state"], r.get("platforms"), answer).serving else 0)
                    seconds = api_health_seconds(answer)
                    if seconds is not None:
                        probe_family.add_metric(labels, seconds)
            for s in GATEWAY_STATES:
                state_family.add_metric(labels + [s], 1 if r.get("gateway_state") == s else 0)
            for name, p in (r.get("platforms") or {}).items():
                if isinstance(p, dict):
                    pstate = str(p.get("state") or "unknown")
                    platform_family.add_metric(labels + [name, pstate], 1 if pstate == "connected" else 0)
        yield from families.values()
        yield state_family
        yield platform_family
        yield serving_family
        yield probe_family

        running = GaugeMetricFamily("hermes_container_running", "1 when the container runs",
                                    labels=["endpoint", "container", "service"])
        healthy = GaugeMetricFamily("hermes_container_healthy", "1 healthy, 0 unhealthy or starting",
                                    labels=["endpoint", "container", "service", "health"])
        for c in snap.containers:
            labels = [c["endpoint"], c["name"], c.get("service") or ""]
            running.add_metric(labels, 1 if c["running"] else 0)
            healthy.add_metric(labels + [c.get("health") or "none"], 1 if c.get("health") == "healthy" else 0)
        yield running
        yield healthy

        reachable = GaugeMetricFamily("hermes_endpoint_reachable", "1 when the Docker endpoint answers",
                                      labels=["endpoint"])
        for name, ok in snap.endpoints.items():
            reachable.add_metric([name], 1 if ok else 0)
        yield reachable
        yield GaugeMetricFamily("hermes_state_age_seconds", "seconds since the state was last refreshed",
                                value=max(0.0, time.time() - snap.updated_at) if snap.updated_at else 0.0)
        yield GaugeMetricFamily("hermes_scrape_duration_seconds", "time this scrape took to render",
                                value=time.monotonic() - started)


def render(state: FleetState) -> bytes:
    families = list(FleetCollector(state).collect())
    if all(exposition.covered(f) for f in families):
        body = exposition.text(families).encode()
    else:  # not ours to write: the client's own writer
        body = _generate(families)
    feed = getattr(state, "usage_feed", None)  # set by `serve` (serve/usage_feed.py)
    if feed is not None:
        from hermesctl.serve.usage_metrics import UsageCollector
        body += _generate(list(UsageCollector(feed).collect()))
    return body


class _Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def _generate(families) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)
