"""The contract's verbs are one table (contract.VERBS): the agent dispatches every verb of it and
no other, parses arguments from it (strictly: typed, unknown options refused), and the doc's
verb table is made from it. The host never runs hermes-slots (the agent's verbs cover it)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "image" / "hermes" / "docker"))

from hermes_supervise import agent, contract, verbs  # noqa: E402
from hermesctl.agent import contract_doc  # noqa: E402


def test_the_agent_dispatches_exactly_the_table():
    assert set(agent.HANDLERS) | {"status"} == set(contract.VERBS)


def test_the_doc_table_is_made_from_the_table():
    doc = (ROOT / "docs" / "contract.md").read_text()
    assert contract_doc.table() in doc
    assert doc.count("| verb | kind | answers | fields |") == 1


@pytest.mark.parametrize("verb, argv, expected", [
    ("operate", ["restart", "a", "b", "--timeout", "5", "--settle", "1.5"],
     {"action": "restart", "profiles": ["a", "b"], "timeout": 5.0, "settle": 1.5, "lock-wait": 60.0,
      "wait-ready": False}),
    ("tail", ["coder", "--follow", "--until-stdin-closes"],
     {"profile": "coder", "lines": 20, "follow": True, "until-stdin-closes": True}),
    ("locked", ["--wait", "30", "--", "hermes", "--flag"], {"wait": 30.0, "argv": ["hermes", "--flag"]}),
    ("get-env", ["A", "B"], {"keys": ["A", "B"]}),
    ("end-processes", ["12", "13"], {"pids": [12, 13]}),
])
def test_arguments_are_parsed_from_the_table(verb, argv, expected):
    assert verbs.parse(verb, argv) == expected


@pytest.mark.parametrize("verb, argv, why", [
    ("operate", ["reboot", "a"], "must be one of"),
    ("operate", ["start"], "needs at least one"),
    ("tail", ["coder", "--lines", "-3"], "whole number"),
    ("tail", ["coder", "--nope"], "unknown option"),
    ("adopt", ["a", "b"], "unexpected argument"),
    ("adopt", ["../x"], "invalid profile name"),
    ("operate", ["stop", "a", "--timeout", "nan"], "number >= 0"),
    ("locked", ["--wait", "1"], "needs a command"),
])
def test_bad_arguments_are_refused(verb, argv, why):
    with pytest.raises(ValueError, match=why):
        verbs.parse(verb, argv)


def test_an_unknown_verb_is_a_usage_error_naming_the_verbs(capsys):
    assert agent.main(["reboot"]) == contract.ERROR_EXITS["usage"]
    out = capsys.readouterr().out
    assert '"code":"usage"' in out.replace(" ", "") and "operate" in out


def test_the_host_never_runs_hermes_slots():
    offenders = [str(p) for p in (ROOT / "hermesctl").rglob("*.py")
                 if p.name != "contract.py" and ("SLOTS_TOOL" in p.read_text() or "hermes-slots\"" in p.read_text())]
    assert offenders == []


def test_the_doc_table_script_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "hermesctl.agent.contract_doc"], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == contract_doc.table()
