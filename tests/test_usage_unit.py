"""`hermesctl usage` on recorded agent answers (tests/fakefleet.py): grouping, totals, budgets,
exit codes, bad input and terminal safety, in milliseconds. The numbers themselves are proven
against the real `hermes insights` in test_usage.py."""
import copy
import json

import pytest

from hermesctl.backends.docker.execs import ExecResult
from hermesctl.core.errors import ExecTimeoutError
from fakefleet import FakeFleet, cli_on, container, recorded

USAGE = recorded("usage-h1.json")  # default and coder seeded; broken: a corrupt state.db


def _only(doc: dict, *profiles: str) -> dict:
    doc = copy.deepcopy(doc)
    doc["profiles"] = {p: v for p, v in doc["profiles"].items() if p in profiles}
    return doc


@pytest.fixture
def fleet():
    return FakeFleet([container("h1"), container("h2"), container("slow")],
                     {"h1": {"usage": USAGE}, "h2": {"usage": _only(USAGE, "default", "coder")},
                      "slow": {"usage": ExecTimeoutError("slow: no answer within 3s")}})


@pytest.fixture
def run(fleet, monkeypatch, capsys):
    return cli_on(fleet, monkeypatch, capsys)


def _cell_sum(profile: str, key: str) -> float:
    return sum(c[key] for c in USAGE["profiles"][profile]["sources"].values())


def test_one_exec_per_container_rows_and_totals(run, fleet):
    code, out, _ = run("usage", "h2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "hermesctl.usage/v1" and doc["by"] == "profile"
    rows = {r["profile"]: r for r in doc["rows"]}
    assert rows["default"]["sessions"] == _cell_sum("default", "sessions")
    assert rows["coder"]["estimated_usd"] == pytest.approx(_cell_sum("coder", "estimated_usd"))
    assert doc["totals"]["sessions"] == rows["default"]["sessions"] + rows["coder"]["sessions"]
    assert fleet.calls == [("h2", ["/opt/hermes/docker/hermes-ctl-agent", "usage", "--window", "86400"])]


def test_the_resident_agent_is_asked_first_and_the_one_shot_when_it_cannot(monkeypatch, capsys):
    """One exec of C programs to the resident agent's query socket; an image without it (the
    client cannot connect) or an error there costs a second exec, of the one-shot agent."""
    one = _only(USAGE, "default")
    fleet = FakeFleet([container("new"), container("old"), container("broken")],
                      {"new": {"usage": one},
                       "old": {"usage": one, "usage@resident": ExecResult(111, "", "s6-ipcclient: fatal: unable to connect")},
                       "broken": {"usage": one, "usage@resident": (1, {"schema": "hermes-contract/v1",
                                                                      "error": {"code": "failed", "message": "x"}})}})
    code, out, _ = cli_on(fleet, monkeypatch, capsys)("usage", "--since", "7d", "--json")
    assert code == 0, out
    assert sorted(fleet.resident) == ["broken", "new", "old"]
    asked = sorted(fleet.calls)
    question = ["/opt/hermes/docker/hermes-ctl-agent", "usage", "--window", "604800"]
    assert asked == [("broken", question)] * 2 + [("new", question)] + [("old", question)] * 2
    rows = json.loads(out)["rows"]
    assert [r["container"] for r in rows] == ["broken", "new", "old"]
    assert len({r["sessions"] for r in rows}) == 1 and rows[0]["sessions"] == _cell_sum("default", "sessions")


def test_named_profiles_are_asked_by_name_and_windows_reach_the_agent(run, fleet):
    code, out, _ = run("usage", "h2:coder", "--since", "7d", "--json")
    assert code == 0
    assert fleet.calls[-1][1][2:] == ["--window", "604800", "coder"]
    assert [r["profile"] for r in json.loads(out)["rows"]] == ["coder"]
    code, _, _ = run("usage", "h2:c*", "--since", "2026-01-01T00:00:00+00:00")
    assert code == 0 and fleet.calls[-1][1][2:] == ["--since", "1767225600.000"]


def test_a_corrupt_profile_is_reported_and_the_rest_answers(run):
    code, out, err = run("usage", "h1")
    assert code == 7
    assert "h1:broken: corrupt" in err
    assert "coder" in out and "default" in out and "error: corrupt" in out


def test_a_container_that_does_not_answer_is_partial(run):
    code, out, err = run("usage", "--json")
    assert code == 7
    doc = json.loads(out)
    assert [u["container"] for u in doc["unreachable"]] == ["slow"]
    assert {r["container"] for r in doc["rows"]} == {"h1", "h2"}


def test_groupings(run):
    code, out, _ = run("usage", "h2", "--by", "model", "--json")
    assert code == 0
    models = json.loads(out)["rows"]
    assert sum(m["input_tokens"] for m in models) == _cell_sum("default", "input_tokens") + _cell_sum("coder", "input_tokens")
    code, out, _ = run("usage", "h2", "--by", "platform", "--source", "cli", "--json")
    rows = json.loads(out)["rows"]
    assert [r["platform"] for r in rows] == ["cli"]
    assert rows[0]["sessions"] == USAGE["profiles"]["default"]["sources"]["cli"]["sessions"] + \
        USAGE["profiles"]["coder"]["sources"]["cli"]["sessions"]
    code, out, _ = run("usage", "h2", "--by", "container", "--json")
    assert [r["container"] for r in json.loads(out)["rows"]] == ["h2"]


def test_budgets_from_the_fleet_file_exit_3(run, tmp_path):
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text("version: 1\ncontainers:\n  h2:\n    budget: {daily_usd: 1000}\n    profiles:\n"
                          "      coder: {budget: {daily_usd: 0.5}}\n")
    code, out, _ = run("usage", "h2", "-f", str(fleet_file), "--json")
    assert code == 3
    over = json.loads(out)["over_budget"]
    assert [(o["container"], o["profile"]) for o in over] == [("h2", "coder")]
    fleet_file.write_text("version: 1\ncontainers:\n  h2:\n    budget: {daily_usd: 1}\n")
    code, out, err = run("usage", "h2", "-f", str(fleet_file))
    assert code == 3 and "h2 is over budget" in err
    fleet_file.write_text("version: 1\ncontainers:\n  h2:\n    budget: {daily_usd: 100000}\n")
    assert run("usage", "h2", "-f", str(fleet_file))[0] == 0


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "lots", "1e12"])
def test_a_bad_budget_is_a_usage_error_with_its_line(run, tmp_path, value):
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(f"version: 1\ncontainers:\n  h2:\n    profiles:\n      coder:\n        budget:\n"
                          f"          daily_usd: {value}\n")
    code, _, err = run("usage", "h2", "-f", str(fleet_file))
    assert code == 2 and f"{fleet_file}:7:" in err and "daily_usd" in err


@pytest.mark.parametrize("args", [("--since", "5x"), ("--since", "2999-01-01"), ("--since", "0d"),
                                  ("--by", "colour"), ("--source", "a b"), ("--since", "7d\n")])
def test_bad_options_are_usage_errors(run, fleet, args):
    code, out, err = run("usage", "h2", *args)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert fleet.calls == []  # nothing was asked


def test_names_from_a_container_cannot_drive_the_terminal(run, fleet):
    hostile = copy.deepcopy(USAGE)
    cell = hostile["profiles"]["coder"]["sources"]["cli"]
    cell["models"] = {"\x1b]0;pwned\x07evil\x1b[31m": {**next(iter(cell["models"].values())),
                                                      "input_tokens": 10 ** 12}}
    fleet.answers["h2"]["usage"] = _only(hostile, "coder")
    code, out, _ = run("usage", "h2", "--by", "model")
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "evil" in out
    code, out, _ = run("usage", "h2")
    assert "\x1b" not in out and "?]0;pwned?evil" in out
