"""The suite's xdist scheduler (tests/file_schedule.py) on stand-in workers: long files first,
both swarm files as one unit, a worker's next file only once it is idle, every test once."""
from file_schedule import LONG_FILES, LongestFirstFileScheduling, unit_of

LONGEST = max(LONG_FILES, key=LONG_FILES.get)
COLLECTION = [
    "tests/test_a_fast.py::test_1", "tests/test_a_fast.py::test_2", "tests/test_a_fast.py::test_3",
    "tests/test_a_fast.py::test_4", "tests/test_a_fast.py::test_5",
    "tests/test_secret_swarm.py::test_secret",
    "tests/test_swarm.py::test_1", "tests/test_swarm.py::test_2",
    "tests/test_upgrade.py::test_1", "tests/test_upgrade.py::test_2",
    "tests/test_z_one.py::test_1",
]


class Config:
    def getvalue(self, name):
        return {"tx": ["2*popen"]}[name]


class Worker:
    def __init__(self, name):
        self.name, self.given, self.shutting_down = name, [], False
        self.gateway = type("Gateway", (), {"id": name})()  # xdist names a worker by it

    def send_runtest_some(self, indices):
        self.given.extend(COLLECTION[i] for i in indices)

    def shutdown(self):
        self.shutting_down = True

    def __repr__(self):
        return self.name


def _started():
    sched = LongestFirstFileScheduling(Config())
    workers = [Worker("gw0"), Worker("gw1")]
    for w in workers:
        sched.add_node(w)
        sched.add_node_collection(w, COLLECTION)
    sched.schedule()
    return sched, workers


def _finish(sched, worker, nodeid):
    sched.mark_test_complete(worker, COLLECTION.index(nodeid))


def test_swarm_files_are_one_unit_and_other_files_their_own():
    assert unit_of("tests/test_swarm.py::test_1") == unit_of("tests/test_secret_swarm.py::test_secret") == "swarm"
    assert unit_of("tests/test_upgrade.py::test_1") == "tests/test_upgrade.py"


def test_the_longest_unit_goes_first_and_a_worker_gets_more_only_when_idle():
    assert LONGEST == "swarm"
    sched, (gw0, gw1) = _started()
    # The two longest units first (by LONG_FILES), not the file with the most tests.
    assert gw0.given == ["tests/test_secret_swarm.py::test_secret", "tests/test_swarm.py::test_1",
                         "tests/test_swarm.py::test_2"]
    assert gw1.given == ["tests/test_upgrade.py::test_1", "tests/test_upgrade.py::test_2"]
    # gw1 holds back its last test until it knows what follows: one pending test means idle.
    _finish(sched, gw1, "tests/test_upgrade.py::test_1")
    assert gw1.given[2:] == [f"tests/test_a_fast.py::test_{i}" for i in range(1, 6)]
    # gw0 still has two tests to run: it is not given the last file early, gw1 gets it.
    _finish(sched, gw0, "tests/test_secret_swarm.py::test_secret")
    assert len(gw0.given) == 3 and not gw0.shutting_down
    for nodeid in ["tests/test_upgrade.py::test_2"] + [f"tests/test_a_fast.py::test_{i}" for i in range(1, 5)]:
        _finish(sched, gw1, nodeid)
    assert gw1.given[-1] == "tests/test_z_one.py::test_1" and gw1.shutting_down
    assert sorted(gw0.given + gw1.given) == sorted(COLLECTION)  # every test once
