"""apply's create step on a fake fleet, in milliseconds: a profile that an interrupted command's
in-container create finished after this apply planned is what apply wants, not a failure."""
import json

from fakefleet import FakeFleet, container
from hermesctl.commands.apply import Change, ContainerPlan, _run_changes
from hermesctl.contract import AGENT, SCHEMA
from hermesctl.execs import ExecResult
from hermesctl.probe import ContainerSnapshot

EXISTS = "Error: Profile 'gamma' already exists at /opt/data/profiles/gamma"


class CreateRace(FakeFleet):
    """hermes' create fails (another command made the profile meanwhile); `profiles` says
    what is there now; every locked step is recorded."""

    def __init__(self, there_now: list[dict]):
        super().__init__([container("h1")], {})
        self.there_now = there_now
        self.locked: list[list[str]] = []

    def run(self, c, argv, **kwargs):
        if argv[:2] == [AGENT, "locked"]:
            command = argv[argv.index("--") + 1:]
            self.locked.append(command)
            if command[:3] == ["hermes", "profile", "create"]:
                return ExecResult(1, "", EXISTS + "\n")
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": command[1]}), "")
        if argv == [AGENT, "profiles"]:
            return ExecResult(0, json.dumps({"schema": SCHEMA, "verb": "profiles", "profiles": self.there_now}), "")
        return super().run(c, argv, **kwargs)


def _create_gamma(fleet) -> Change:
    change = Change("default", "h1", "gamma", "create")
    _run_changes(fleet, ContainerPlan(fleet.containers()[0], ContainerSnapshot(), [change]))
    return change


def test_a_profile_made_meanwhile_is_created_and_adopted():
    fleet = CreateRace([{"name": "gamma", "readable": True, "has_soul": True, "registered": False}])
    change = _create_gamma(fleet)
    assert change.ok is True and "meanwhile" in change.message
    assert fleet.locked == [["hermes", "profile", "create", "gamma"], [AGENT, "adopt", "gamma"]]


def test_a_failed_create_with_no_whole_profile_there_fails_with_hermes_words():
    for there in ([], [{"name": "gamma", "readable": True, "has_soul": False, "registered": False}]):
        fleet = CreateRace(there)
        change = _create_gamma(fleet)
        assert change.ok is False and change.message == EXISTS
        assert fleet.locked == [["hermes", "profile", "create", "gamma"]]  # nothing adopted
