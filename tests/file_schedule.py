"""How the suite's test files are spread over pytest-xdist workers (`-n N --dist loadfile`,
what `scripts/test.sh` runs); conftest.py hands this scheduler to xdist.

The suite's wall time is its busiest worker's total, and a few files (a real swarm, upgrades,
a 30-container fleet) take minutes each while most take seconds. xdist's own loadfile hands
out files by how many tests they hold (the many-test, fast files first, the long ones last:
the run then ends with one worker on a swarm file and the others idle), and gives a worker its
next file two tests before it is done with the one it has. This scheduler:
- hands out the long files first, longest first (LONG_FILES), then the rest as xdist would;
- gives a worker its next file only when it is idle (a file taken early cannot go to a worker
  that frees up sooner);
- keeps files that share one expensive session fixture on one worker, as one unit
  (SHARED_UNITS: both swarm files use one two-node cluster, made once).
Only the order and grouping change: every collected test runs exactly once, as before.
"""
from xdist.scheduler import LoadFileScheduling

# Per-unit totals, seconds of one worker, from a full run on this quiet 2-core machine with four
# workers (junit times per file, the Docker half of scripts/test.sh); only their order matters.
# Units not listed follow, the ones with the most tests first, so a long file with few tests must
# be listed or it ends the run. Add a file here when it grows past half a minute. (est.): that
# run's figure scaled by the file's wall time before/after its containers were cut, measured side
# by side on one worker (the scheduler sorts by value); the next clean-clone run's replace them.
LONG_FILES = {  # seconds from junit of a clean-clone Docker half (2026-12-07, 4 workers, images cached)
    "swarm": 228,                            # one cluster, two stacks, a node unplugged and hung
    "tests/test_restore_safety.py": 105,     # a swap killed at every step; names, PAX, locks, Ctrl-C (est.)
    "tests/test_image_supervision.py": 172,  # a dashboard parked at --cpus 0.25
    "tests/test_cli_gateways.py": 130,
    "tests/test_fleet_compose.py": 117,
    "tests/test_alert_pipeline.py": 112,     # a crash loop paged, then aged out (a minute)
    "tests/test_upgrade_plain.py": 100,      # rollbacks that wait for Docker's verdict (est.)
    "tests/test_faults.py": 107,
    "tests/test_cli_profiles_logs.py": 94,   # + the read commands on both paths (~8 s)
    "tests/test_image_hostile.py": 82,       # 100 interrupted event streams
    "tests/test_usage.py": 59,               # (est.)
    "tests/test_image_upstream.py": 58,      # (est.)
    "tests/test_upgrade.py": 48,             # one compose fleet (est.)
    "tests/test_image_gateways.py": 69,
    "tests/test_podman.py": 67,              # a Podman service, the image loaded, a compose fleet on it
    "tests/test_agent_code.py": 66,          # one test: two containers, three gateways, three chats
    "tests/test_readme_compose.py": 64,      # the README's lines on one compose fleet, an upgrade
    "tests/test_fleet_scale.py": 45,         # 20 containers
    "tests/test_image_boot_load.py": 55,     # 20 boots at --cpus 0.5 (HERMES_BOOT_LOAD_BOOTS=10: the fifty)
    "tests/test_ssh_endpoint.py": 55,
    "tests/test_image_full.py": 50,          # 19 boots, a browser (waits for the full image's build)
    "tests/test_gateway_e2e.py": 48,         # two real gateways on the full image, stand-ins on its loopback
    "tests/test_serve_usage.py": 41,
    "tests/test_hostile_container.py": 30,   # (est.)
    "tests/test_backup_restore.py": 25,      # (est.)
    "tests/test_serve.py": 37,
    "tests/test_probe.py": 37,               # a model stand-in, two gateways probed; doctor over two containers
    "tests/test_fault_script.py": 35,        # one test: without this line it was handed out last
    "tests/test_hostile_input.py": 18,       # (est.)
    "tests/test_serve_page.py": 29,          # one test: Chromium at three widths
}

# Files whose tests share a session fixture too costly to make twice: one unit of work.
SHARED_UNITS = {
    "tests/test_swarm.py": "swarm",
    "tests/test_secret_swarm.py": "swarm",
}


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or its file's shared unit."""
    path = nodeid.split("::", 1)[0]
    return SHARED_UNITS.get(path, path)


class LongestFirstFileScheduling(LoadFileScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:  # a worker was added later: give it work
            for node in self.nodes:
                self._reschedule(node)
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        self.collection = list(next(iter(self.registered_collections.values())))
        if not self.collection:
            return
        units: dict[str, dict[str, bool]] = {}
        for nodeid in self.collection:
            units.setdefault(self._split_scope(nodeid), {})[nodeid] = False
        for unit in sorted(units, key=lambda u: (-LONG_FILES.get(u, 0), -len(units[u]))):
            self.workqueue[unit] = units[unit]
        for _ in range(len(self.nodes) - len(self.workqueue)):  # more workers than units
            unused, _ = self.assigned_work.popitem()
            unused.shutdown()
        for node in self.nodes:
            self._reschedule(node)

    def _reschedule(self, node) -> None:
        # A worker holds back the last test it was given until it knows the next one (or that
        # there is none): one pending test means it is idle, and that is when it gets more.
        if node.shutting_down:
            return
        while self.workqueue and self._pending_of(self.assigned_work[node]) <= 1:
            self._assign_work_unit(node)
        if not self.workqueue:
            node.shutdown()
