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

# Per-unit totals, seconds of one worker, from a clean-clone run of scripts/test.sh's Docker half
# on this 2-core machine with four workers (junit times per file); only their order matters.
# Units not listed follow, the ones with the most tests first, so a long file with few tests must
# be listed or it ends the run. Add a file here when it grows past half a minute.
LONG_FILES = {  # 2026-12-07, session 9's clean-clone run (images cached)
    "swarm": 219,                            # one cluster, two stacks, a node unplugged and hung
    "tests/test_image_supervision.py": 136,  # a dashboard parked at --cpus 0.25
    "tests/test_cli_gateways.py": 132,
    "tests/test_alert_pipeline.py": 111,     # a crash loop paged, then aged out (a minute)
    "tests/test_restore_safety.py": 110,     # a swap killed at every step; names, PAX, locks, Ctrl-C
    "tests/test_fleet_compose.py": 108,
    "tests/test_image_hostile.py": 79,       # 100 interrupted event streams
    "tests/test_gateway_e2e.py": 75,         # two real gateways on the full image, stand-ins on its loopback
    "tests/test_upgrade.py": 73,             # one compose fleet
    "tests/test_image_upstream.py": 67,
    "tests/test_podman.py": 69,              # a Podman service, the image loaded, a compose fleet on it
    "tests/test_upgrade_plain.py": 64,       # rollbacks that wait for Docker's verdict
    "tests/test_image_full.py": 59,          # 19 boots, a browser (waits for the full image's build)
    "tests/test_agent_code.py": 58,          # one test: two containers, three gateways, three chats
    "tests/test_ssh_endpoint.py": 56,
    "tests/test_readme_compose.py": 49,      # the README's lines on one compose fleet, an upgrade
    "tests/test_usage.py": 46,
    "tests/test_image_boot_load.py": 46,     # 20 boots at --cpus 0.5 (HERMES_BOOT_LOAD_BOOTS=10: the fifty)
    "tests/test_cli_profiles_logs.py": 45,   # + the read commands on both paths (~8 s)
    "tests/test_faults.py": 44,
    "tests/test_serve_usage.py": 33,
    "tests/test_fleet_scale.py": 32,         # 20 containers
    "tests/test_serve.py": 32,
    "tests/test_fault_script.py": 31,        # one test: without this line it was handed out last
    "tests/test_hostile_container.py": 28,
    "tests/test_probe.py": 27,               # a model stand-in, two gateways probed; doctor over two containers
    "tests/test_image_gateways.py": 22,
    "tests/test_serve_page.py": 22,          # one test: Chromium at three widths
    "tests/test_backup_restore.py": 21,
    "tests/test_hostile_input.py": 12,
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
