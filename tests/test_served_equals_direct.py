"""Issue 25's proof of one truth, without Docker: generated sequences of operations and faults on
a gateway, over time (Hypothesis stateful, derandomized). After every step the served row (serve,
the page, /metrics, `ps --watch`: the last answer the watcher pushed, re-judged as of now by
engine.rows.live_rows) equals the row a fresh direct `ps` would build from the agent's answer now
(engine.rows.gateway_row). The agent is modelled as s6 and hermes report: a kill or a crash is a
death (s6 restarts the gateway a second later), an operator's start, stop or restart is recorded
as an operation and its deaths are clean exits; time passes with no event at all."""
import threading
from dataclasses import asdict
from types import SimpleNamespace

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fakefleet import container
from hermesctl.engine import rows as rows_mod
from hermesctl.model.slots import Death, Operation, Slot, SvStatus

PROFILE = "coder"


class Gateway:
    """What the agent would answer about one slot at any moment (integer seconds)."""

    def __init__(self):
        self.now, self.up, self.wanted_up, self.pid, self.since = 1_000, True, True, 100, 1_000
        self.deaths: list[tuple[int, str]] = []
        self.operations: list[tuple[int, int, str]] = []

    def answer(self) -> Slot:
        status = SvStatus(up=self.up, wanted_up=self.wanted_up, normally_up=True,
                          pid=self.pid if self.up else None, exit_code=None, signal=None,
                          seconds=self.now - self.since)
        return Slot(PROFILE, status, None, tuple(Death(float(a), h) for a, h in self.deaths[-20:]),
                    float(self.now), tuple(Operation(float(s), float(u), a) for s, u, a in self.operations[-20:]))


class ServedEqualsDirect(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.gw = Gateway()
        self.c = container("h1")
        self.pushed: tuple[float, Slot] | None = None
        self.push()

    def push(self) -> None:
        """A change: the in-container watcher sends the slot as it is now."""
        self.pushed = (float(self.gw.now), self.gw.answer())

    def _die(self, how: str) -> None:
        gw = self.gw
        gw.deaths.append((gw.now, how))
        gw.up, gw.since = False, gw.now
        self.push()

    def _come_up(self) -> None:
        gw = self.gw
        gw.up, gw.pid, gw.since = True, gw.pid + 1, gw.now
        self.push()

    @rule(seconds=st.integers(min_value=1, max_value=400))
    def time_passes(self, seconds):
        self.gw.now += seconds  # no event: only the time since changes

    @precondition(lambda self: self.gw.up)
    @rule(how=st.sampled_from(["signal SIGKILL", "signal SIGSEGV", "exitcode 1"]))
    def it_dies_and_s6_restarts_it(self, how):
        self._die(how)
        self.gw.now += 1
        if self.gw.wanted_up:
            self._come_up()

    @precondition(lambda self: self.gw.up)
    @rule()
    def operator_restarts(self):
        gw = self.gw
        gw.operations.append((gw.now, gw.now + 3, "restart"))
        self._die("exitcode 0")
        gw.now += 1
        self._come_up()
        gw.now += 1

    @precondition(lambda self: self.gw.up)
    @rule()
    def operator_stops(self):
        gw = self.gw
        gw.operations.append((gw.now, gw.now + 2, "stop"))
        gw.wanted_up = False
        self._die("exitcode 0")
        gw.now += 1

    @precondition(lambda self: not self.gw.up)
    @rule()
    def operator_starts(self):
        gw = self.gw
        gw.operations.append((gw.now, gw.now + 2, "start"))
        gw.wanted_up = True
        self._come_up()
        gw.now += 1

    @invariant()
    def served_row_is_the_direct_row(self):
        received, slot = self.pushed
        snap = SimpleNamespace(booted=True, slots={PROFILE: slot}, orphans=lambda p: [])
        live = SimpleNamespace(lock=threading.Lock(), containers={self.c.key: self.c}, snapshots={self.c.key: snap},
                               received={f"{self.c.key}/{PROFILE}": received}, profiles_of=lambda c, s: [PROFILE],
                               unslotted_of=lambda c, s: [])
        clock = rows_mod.time.monotonic
        rows_mod.time.monotonic = lambda: float(self.gw.now)
        try:
            [served] = rows_mod.live_rows(live)
        finally:
            rows_mod.time.monotonic = clock
        direct = rows_mod.gateway_row(self.c, self.gw.answer(), [])
        assert asdict(served) == asdict(direct)


TestServedEqualsDirect = ServedEqualsDirect.TestCase
