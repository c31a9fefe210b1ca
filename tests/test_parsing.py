"""Parsers and target matching, on recorded samples (no Docker needed)."""
import json
from pathlib import Path

import pytest

from hermesctl.agent.client import parse
from hermesctl.agent.probe import snapshot_from_status
from hermesctl.core.errors import ExecError, InvalidNameError, NotFoundError, UsageError
from hermesctl.model.names import normalize_profile, require_creatable
from hermesctl.model.slots import GatewayState, SvStatus, platforms_summary
from hermesctl.model.targets import Candidate, Target, match_containers, match_profiles, parse_target, selected_names

FIXTURES = Path(__file__).parent / "fixtures"


def test_status_sample_from_a_real_container():
    snap = snapshot_from_status(parse((FIXTURES / "status-h1.json").read_text(), where="h1"))
    assert snap.complete and snap.booted and snap.pid1 == "s6-svscan"
    assert sorted(snap.slots) == ["coder", "crashy", "default", "pa", "pb"]
    assert snap.slots["pa"].run_state == "up" and snap.slots["pa"].status.pid == 561
    assert snap.slots["pb"].parked and snap.slots["pb"].run_state == "parked"
    assert snap.slots["pb"].state.platforms["api_server"]["error_code"] == "api_server_port_in_use"
    assert snap.slots["crashy"].crash_looping and snap.slots["crashy"].recent_deaths >= 3
    assert snap.slots["crashy"].state is None
    # A planned stop: desired_state written with an ISO updated_at later by the gateway.
    assert snap.slots["coder"].state.desired_state == "stopped"
    assert snap.slots["default"].run_state == "down" and not snap.slots["default"].crash_looping


def test_deaths_during_an_operation_are_planned():
    doc = json.loads((FIXTURES / "status-h1.json").read_text())
    crashy = doc["slots"]["crashy"]
    crashy["operations"] = [{"start": d["at"] - 0.5, "until": d["at"] + 0.5, "action": "restart"}
                            for d in crashy["deaths"]]
    assert snapshot_from_status(doc).slots["crashy"].recent_deaths == 0


def test_answers_that_are_not_the_contract_are_errors():
    text = (FIXTURES / "status-h1.json").read_text()
    with pytest.raises(ExecError, match="not JSON"):
        parse(text[: len(text) // 2].replace("\n", " "), where="h1")
    with pytest.raises(ExecError, match="schema"):
        parse(json.dumps({"schema": "hermes-contract/v0"}), where="h1")
    with pytest.raises(NotFoundError, match="no profile x"):
        parse(json.dumps({"schema": "hermes-contract/v1", "error": {"code": "not-found", "message": "no profile x"}}),
              where="h1")
    with pytest.raises(InvalidNameError):
        parse(json.dumps({"schema": "hermes-contract/v1", "error": {"code": "invalid-name", "message": "bad"}}),
              where="h1")


def test_slot_status_fields():
    s = SvStatus.from_dict({"up": False, "wanted_up": True, "normally_up": True, "pid": None, "exit_code": 78,
                            "signal": None, "seconds": 12})
    assert (s.up, s.wanted_up, s.normally_up, s.pid, s.exit_code, s.signal, s.seconds) == \
        (False, True, True, None, 78, None, 12)
    s = SvStatus.from_dict({"up": True, "wanted_up": True, "pid": 561, "seconds": 695})
    assert s.up and s.pid == 561 and s.exit_code is None
    with pytest.raises(ValueError):
        SvStatus.from_dict({"up": "yes"})


def test_gateway_state_accepts_both_updated_at_forms_and_corruption():
    iso = GatewayState.parse((FIXTURES / "gateway_state-port-in-use.json").read_text())
    assert iso.gateway_state == "startup_failed" and iso.updated_at.startswith("20")
    assert platforms_summary(iso.platforms) == "api_server:fatal"
    epoch = GatewayState.parse('{"desired_state": "stopped", "updated_at": 1764000000}')
    assert epoch.desired_state == "stopped" and epoch.updated_at == "1764000000"
    assert GatewayState.parse("{not json").corrupt
    assert GatewayState.parse("[1, 2]").corrupt
    assert GatewayState.parse("") is None


@pytest.mark.parametrize("text,expected", [
    ("web-1", Target("web-1", None)),
    ("web-1:coder", Target("web-1", "coder")),
    ("*:coder", Target("*", "coder")),
    ("web-*:*", Target("web-*", "*")),
    ("web-1:Coder", Target("web-1", "coder")),
])
def test_parse_target(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text,error", [
    ("a:b:c", UsageError), (":coder", UsageError), ("web-1:", UsageError), ("we b", UsageError),
    ("web-1:../etc", InvalidNameError), ("web-1:a;rm -rf", InvalidNameError),
    ("web-1:$(id)", InvalidNameError), ("web-1:-rf", InvalidNameError), ("web-1:a b", InvalidNameError),
])
def test_parse_target_rejects(text, error):
    with pytest.raises(error):
        parse_target(text)


def test_matching_and_suggestions():
    names = [Candidate(n, i) for n, i in {"web-1": "aaa111", "web-2": "bbb222", "db": "ccc333"}.items()]
    assert match_containers("web-*", names) == ["web-1", "web-2"]
    assert match_containers("bbb2", names) == ["web-2"]
    with pytest.raises(NotFoundError, match="did you mean .*web-1"):
        match_containers("web-3", names)
    with pytest.raises(NotFoundError):
        match_containers("zz*", names)
    assert match_profiles(Target("w", "c*"), "w", ["coder", "chat", "default"], strict=True) == ["chat", "coder"]
    assert match_profiles(Target("w", None), "w", ["b", "a"], strict=True) == ["a", "b"]
    assert match_profiles(Target("*", "coder"), "w", ["default"], strict=False) == []
    with pytest.raises(NotFoundError, match="did you mean coder"):
        match_profiles(Target("w", "codr"), "w", ["coder", "default"], strict=True)


def test_globs_match_compose_service_names():
    """Issue 29: compose names containers <project>-<service>-N, so the README's 'hermes-*'
    selects the containers of services hermes-1 and hermes-2 (a glob over names and services);
    a plain service name still needs exactly one container."""
    fleet = [Candidate("demo-hermes-1-1", "aaa111", "hermes-1", "local"),
             Candidate("demo-hermes-2-1", "bbb222", "hermes-2", "local"),
             Candidate("demo-web-1", "ccc333", "web", "local"), Candidate("demo-web-2", "ddd444", "web", "local"),
             Candidate("solo", "eee555", None, "local")]
    assert match_containers("hermes-*", fleet) == ["demo-hermes-1-1", "demo-hermes-2-1"]
    assert match_containers("demo-hermes-*", fleet) == ["demo-hermes-1-1", "demo-hermes-2-1"]
    assert match_containers("hermes-1", fleet) == ["demo-hermes-1-1"]   # one container: an alias
    assert selected_names("web", fleet) == []                           # two: not a single name
    assert match_containers("w?b", fleet) == ["demo-web-1", "demo-web-2"]
    assert match_containers("*", fleet) == sorted(c.name for c in fleet)
    assert match_containers("solo", fleet) == ["solo"] and match_containers("eee5", fleet) == ["solo"]
    with pytest.raises(NotFoundError, match="no Hermes container matches 'db-\\*'"):
        match_containers("db-*", fleet)


def test_profile_names():
    assert normalize_profile("Coder") == "coder"
    for bad in ("", "../x", "a/b", "-x", "x" * 65, "a b", "a;b"):
        with pytest.raises(InvalidNameError):
            normalize_profile(bad)
    for reserved in ("default", "root", "hermes", "tmp", "test", "sudo"):
        with pytest.raises(InvalidNameError, match="reserved"):
            require_creatable(reserved)


def test_endpoint_qualified_targets():
    assert parse_target("lab/hermes-1:coder") == Target("hermes-1", "coder", "lab")
    assert parse_target("lab-*/web-*") == Target("web-*", None, "lab-*")
    assert str(parse_target("lab/hermes-1:coder")) == "lab/hermes-1:coder"
    for bad in ("/hermes-1", "lab/", "a/b/c:x"):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_an_image_without_the_agent_is_named():
    from hermesctl.agent.client import answer
    from hermesctl.backends.docker.execs import ExecResult
    with pytest.raises(ExecError, match="predates hermes-contract/v1"):
        answer(ExecResult(127, "", "exec failed: no such file or directory"), where="old")
