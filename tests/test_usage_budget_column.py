"""Issue 24: `hermesctl usage`'s BUDGET column showed `-` wherever a budget was set and not
exceeded, and a container over its own budget had no mark in the default (per profile) view.
Now every budget shows what it allows for the window, OVER when spent past it, and each of an
over-budget container's rows says so. On recorded agent answers (tests/fakefleet.py)."""
import pytest

from fakefleet import FakeFleet, cli_on, container, recorded

USAGE = recorded("usage-h1.json")


@pytest.fixture
def run(monkeypatch, capsys):
    doc = {**USAGE, "profiles": {p: v for p, v in USAGE["profiles"].items() if p in ("default", "coder")}}
    return cli_on(FakeFleet([container("h2")], {"h2": {"usage": doc}}), monkeypatch, capsys)


def _row(table: str, *words: str) -> str:
    found = [line for line in table.splitlines() if all(w in line.split() for w in words)]
    assert len(found) == 1, table
    return found[0]


def test_budgets_are_shown_and_an_over_budget_container_is_marked_on_its_rows(run, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # the whole row on one line
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text("version: 1\ncontainers:\n  h2:\n    budget: {daily_usd: 0.01}\n    profiles:\n"
                          "      coder: {budget: {daily_usd: 100000}}\n")
    code, out, err = run("usage", "h2", "-f", str(fleet_file), "--since", "7d")
    assert code == 3 and "h2 is over budget" in err
    assert "BUDGET" in out
    coder = _row(out, "h2", "coder")
    assert "700000.00" in coder and "OVER 700000.00" not in coder  # 7 days of its daily budget, not over
    assert coder.rstrip().endswith("container OVER")
    assert _row(out, "h2", "default").rstrip().endswith("container OVER")
    code, out, _ = run("usage", "h2", "-f", str(fleet_file), "--since", "7d", "--by", "container")
    assert code == 3 and _row(out, "h2").rstrip().endswith("OVER 0.07")
    # Under every budget: the amounts are shown, no mark.
    fleet_file.write_text("version: 1\ncontainers:\n  h2:\n    budget: {daily_usd: 100000}\n")
    code, out, _ = run("usage", "h2", "-f", str(fleet_file), "--by", "container")
    assert code == 0 and _row(out, "h2").rstrip().endswith("100000.00") and "OVER" not in out
