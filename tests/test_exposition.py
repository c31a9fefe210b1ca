"""/metrics is written by hermesctl.serve.exposition, not prometheus_client's generate_latest
(issue 18: a scrape at 200 containers): the same bytes, checked here on the fleet's real
families with hostile label values (text from containers), and on fuzzed ones. No Docker."""
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from hermesctl.serve import exposition, metrics
from hermesctl.serve.state import ContainerInfo, FleetState


def _theirs(families) -> bytes:
    class Fixed:
        def collect(self):
            return families
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    return generate_latest(registry)


def _row(container: str, profile: str, **extra) -> dict:
    return {"endpoint": "default", "container": container, "service": extra.pop("service", None), "profile": profile,
            "state": "up", "pid": 40, "uptime_s": 12, "wanted": "up", "crash_looping": False, "parked": False,
            "exit_code": None, "deaths_recent": 0, "gateway_state": "running", "desired_state": "running",
            "platforms": {"telegram": {"state": "connected"}, 'dis"cord\\\n': {"state": "fatal\x1b[2J"}},
            "health": "healthy", "error": None, "orphan_pids": None, "target": f"{container}:{profile}", **extra}


def test_the_fleets_families_are_written_as_generate_latest_writes_them():
    state = FleetState()
    for i in range(30):
        name = f"web-{i}"
        rows = [_row(name, "default"), _row(name, "coder", state="down", pid=None, uptime_s=None, service='s"v\\c\n')]
        state.set_container(f"default/{name}", ContainerInfo("default", name, "svc", True, "healthy"), rows)
    state.set_endpoint("default", True)
    families = [f for f in metrics.FleetCollector(state).collect() if f.name != "hermes_scrape_duration_seconds"]
    assert all(exposition.covered(f) for f in families)
    assert exposition.text(families).encode() == _theirs(families)
    assert b'service="s\\"v\\\\c\\n"' in _theirs(families)  # the escapes are really exercised


def test_a_family_it_does_not_cover_is_recognised():
    counter = CounterMetricFamily("x", "a counter", labels=["a"], created=5.0)
    counter.add_metric(["1"], 2, created=5.0)
    assert not exposition.covered(counter)
    histogram = GaugeMetricFamily("y", "h")
    histogram.type = "histogram"
    assert not exposition.covered(histogram)


LABEL_TEXT = st.text(max_size=12)
VALUES = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True))


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["gauge", "counter"]), st.text(max_size=20),
                          st.lists(st.tuples(LABEL_TEXT, LABEL_TEXT, VALUES), max_size=5)), max_size=4))
def test_fuzzed_families_match_generate_latest(spec):
    families = []
    for i, (kind, doc, samples) in enumerate(spec):
        cls = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
        family = cls(f"m{i}", doc, labels=["a", "b"])
        for a, b, value in samples:
            family.add_metric([a, b], value)
        families.append(family)
    assert exposition.text(families).encode() == _theirs(families)
