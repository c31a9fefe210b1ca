"""Issue 28: upgrade's rollout (a canary, batches side by side, a failure budget, recover of an
interrupted batch) on the fake backend (tests/fakebackend.py), daemon-free, milliseconds each.
The health gate's own branches: test_engine_faults.py; real containers: test_upgrade*.py."""
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from fakebackend import FakeBackend, FakeInstance, Interrupt, container_state, fake_data_steps
from fakefleet import cli_on
from hermesctl.core.errors import UsageError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.engine import journal
from hermesctl.engine import upgrade as engine
from hermesctl.model.results import exit_status

MANIFEST = {"profiles": [{"name": "coder", "desired_state": "running"}], "files": {}}
BAD = [container_state("running", "unhealthy")]


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(engine, "POLL_S", 0.001)
    # The journal's durability is proven elsewhere (test_engine_faults, test_upgrade_plain's
    # kill -9); here an fsync per step would be most of the time.
    monkeypatch.setattr(journal.os, "fsync", lambda fd: None)
    fake_data_steps(monkeypatch, MANIFEST)


def _run(backend, rollout, timeout=0.2):
    said = []
    backups = journal.operations_dir().parent / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    run = engine.Upgrade(backend, "hermes-agent:new", backups, timeout=timeout, settle=0,
                         say=said.append, rollout=rollout)
    return run.run(engine.plan(backend, [], "hermes-agent:new")), said


def _fleet(n, bad=(), **kwargs):
    return [FakeInstance(f"h{i:02d}", new_states=BAD if i in bad else [container_state("running", "healthy")],
                         **kwargs) for i in range(n)]


def test_a_failing_canary_stops_everything_before_any_batch():
    insts = _fleet(6, bad={0})
    outcomes, said = _run(FakeBackend(insts), engine.Rollout(canary=1, parallel=3, max_failures=5))
    assert [o.result for o in outcomes] == ["rolled back"] + ["not touched"] * 5
    assert {o.detail for o in outcomes[1:]} == {"the canary failed"}
    assert all(i.log == [] for i in insts[1:])
    assert "the canary failed; no further batch starts" in said
    assert exit_status([o.as_result() for o in outcomes]) == ExitStatus.FAILED


def test_a_canary_that_stops_serving_during_its_soak_is_rolled_back_never_committed():
    """Serving at first, restarted during the soak: the old container was kept aside all along."""
    canary = FakeInstance("h00", new_states=[container_state("running", "healthy"), container_state("running", "healthy"),
                                             container_state("running", "healthy", restarts=1)])
    rest = _fleet(3)[1:]
    outcomes, said = _run(FakeBackend([canary, *rest]), engine.Rollout(canary=1, parallel=2, soak=0.01))
    assert outcomes[0].result == "rolled back" and outcomes[0].detail.startswith("after the 0.01s soak: keeps restarting")
    assert "commit" not in canary.log and canary.log[-2:] == ["data", "start"]
    assert [o.result for o in outcomes[1:]] == ["not touched", "not touched"]
    assert any("soaking 0.01s" in line for line in said)


def test_batches_run_side_by_side_after_a_good_canary():
    """Each batch's instances are replaced together: a barrier of the batch's size in replace()
    is passed only when all of them are in it at once."""
    barriers = {}

    class Together(FakeInstance):
        def replace(self, image):
            barriers[self.batch].wait(timeout=5)
            return super().replace(image)

    insts = [Together(f"h{i:02d}") for i in range(7)]
    layout = [[0], [1, 2, 3], [4, 5, 6]]
    for number, members in enumerate(layout):
        barrier = threading.Barrier(len(members))
        for i in members:
            insts[i].batch = number
            barriers[number] = barrier
    outcomes, said = _run(FakeBackend(insts), engine.Rollout(canary=1, parallel=3))
    assert [o.result for o in outcomes] == ["upgraded"] * 7
    assert [line for line in said if line.startswith(("canary:", "batch"))] == [
        "canary: h00", "batch 1: h01, h02, h03", "batch 2: h04, h05, h06"]
    assert all(i.image == "hermes-agent:new" and i.log == ["stop", "data", "replace", "commit"] for i in insts)
    assert journal.pending() == []


def test_no_new_batch_starts_once_the_failure_budget_is_spent():
    """Budget 1: the first failure is tolerated; the second (in batch 2, which finishes) spends it."""
    insts = _fleet(6, bad={1, 3})
    outcomes, said = _run(FakeBackend(insts), engine.Rollout(parallel=2, max_failures=1))
    assert [o.result for o in outcomes] == ["upgraded", "rolled back", "upgraded", "rolled back",
                                            "not touched", "not touched"]
    assert outcomes[4].detail == "the failure budget is spent (2 failed, 1 allowed)"
    assert insts[4].log == [] and insts[5].log == []
    # Each failure rolled back its own instance alone.
    assert insts[1].log == ["stop", "data", "replace", "undo", "data", "start"]
    assert insts[2].log == ["stop", "data", "replace", "commit"]


def test_a_failed_rollback_stops_the_run_whatever_the_budget():
    insts = _fleet(4, bad={0})
    insts[0].fail_at = {"undo": RuntimeError("daemon gone")}
    outcomes, _ = _run(FakeBackend(insts), engine.Rollout(parallel=1, max_failures="50%" and 2))
    assert [o.result for o in outcomes] == ["ROLLBACK FAILED", "not touched", "not touched", "not touched"]
    assert outcomes[1].detail == "a rollback failed"


def test_defaults_are_one_at_a_time_stopping_at_the_first_failure():
    insts = _fleet(3, bad={1})
    outcomes, _ = _run(FakeBackend(insts), engine.Rollout())
    assert [o.result for o in outcomes] == ["upgraded", "rolled back", "not touched"]


@pytest.mark.parametrize("given_, total, minimum, expected", [
    ("3", 10, 1, 3), ("20%", 10, 1, 2), ("5%", 10, 1, 1), ("5%", 10, 0, 0), ("100%", 7, 0, 7), ("0", 4, 0, 0)])
def test_counts_and_percentages(given_, total, minimum, expected):
    assert engine.parse_share(given_, total, "--parallel", minimum=minimum) == expected


def test_a_canary_share_rounds_up_the_others_down():
    made = engine.rollout_from_options(10, canary="5%", parallel="15%", max_failures="15%")
    assert (made.canary, made.parallel, made.max_failures) == (1, 1, 1)
    assert engine.rollout_from_options(0, canary="50%").canary == 0
    assert engine.rollout_from_options(500, canary="2.2%").canary == 11  # exact, not 12 by a float's error


@pytest.mark.parametrize("options, message", [
    ({"parallel": "abc"}, "--parallel 'abc': expected a whole number or a percentage"),
    ({"parallel": "0"}, "--parallel 0: must be at least 1"),
    ({"canary": "-1"}, "--canary -1: must be at least 0"),
    ({"max_failures": "101%"}, "--max-failures '101%': expected"),
    ({"max_failures": "1.5"}, "--max-failures '1.5': expected"),
    ({"parallel": "nan%"}, "--parallel 'nan%': expected"),
    ({"soak": -1.0, "canary": "1"}, "--soak -1.0: must be 0 or more"),
    ({"soak": 10.0}, "--soak is how long the canary must keep serving"),
])
def test_bad_values_are_one_line_usage_errors(options, message):
    with pytest.raises(UsageError) as caught:
        engine.rollout_from_options(10, **options)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_cli_refuses_a_bad_value_before_anything_is_asked(monkeypatch, capsys):
    """Exit 2 and one line; the fleet was never asked for its instances."""
    asked = []
    backend = FakeBackend(_fleet(2))
    monkeypatch.setattr(backend, "instances", lambda targets: asked.append(targets) or [])
    code, out, err = cli_on(backend, monkeypatch, capsys)("upgrade", "h*", "--image", "x", "--parallel", "ten")
    assert code == ExitStatus.USAGE and out == "" and asked == []
    assert err.strip().splitlines() == [
        "hermesctl: --parallel 'ten': expected a whole number or a percentage (e.g. 10 or 20%)"]


def test_the_cli_reports_upgraded_rolled_back_and_not_touched(monkeypatch, capsys, tmp_path):
    insts = _fleet(5, bad={2})
    code, out, err = cli_on(FakeBackend(insts), monkeypatch, capsys)(
        "upgrade", "*", "--image", "hermes-agent:new", "--canary", "1", "--parallel", "50%",
        "--backup-dir", str(tmp_path), "--timeout", "0.2", "--settle", "0", "--json")
    assert code == ExitStatus.FAILED, err + out
    doc = json.loads(out)
    assert [(c["container"], c["result"]) for c in doc["containers"]] == [
        ("h00", "upgraded"), ("h01", "upgraded"), ("h02", "rolled back"), ("h03", "not touched"),
        ("h04", "not touched")]
    assert doc["counts"] == {"upgraded": 2, "rolled back": 1, "not touched": 2}
    assert doc["containers"][0]["gate"] == "docker healthy + boot gate"
    assert set(doc["containers"][0]["timings"]) == {"stop", "backup", "start", "gate"}
    assert "batch 1: h01, h02" in err  # progress on stderr under --json


@settings(derandomize=True, max_examples=200, deadline=None)
@given(total=st.integers(0, 300), canary=st.integers(0, 100), parallel=st.integers(1, 100))
def test_batches_cover_every_instance_once_in_order(total, canary, parallel):
    rollout = engine.rollout_from_options(total, canary=f"{canary}%", parallel=f"{parallel}%")
    groups = engine.batches(list(range(total)), rollout)
    assert [i for g in groups for i in g] == list(range(total))
    if rollout.canary and total:
        assert groups[0] == list(range(min(rollout.canary, total)))
        rest = groups[1:]
    else:
        rest = groups
    assert all(1 <= len(g) <= rollout.parallel for g in rest)


def test_recover_undoes_a_whole_interrupted_batch_and_names_the_rest_untouched():
    """Ctrl-C in batch 1 (raised in h01's replace) while h00 waits for its gate: both stop at
    their next step, each with its record; recover undoes them together; h02, h03 were never
    touched, and running the same upgrade again goes on with them."""
    waiting = FakeInstance("h00", new_states=[container_state("running", "starting")], checks=[1])
    interrupted = FakeInstance("h01", fail_at={"replace": Interrupt()})
    later = _fleet(4)[2:]
    backend = FakeBackend([waiting, interrupted, *later])
    with pytest.raises(KeyboardInterrupt):
        _run(backend, engine.Rollout(parallel=2), timeout=30)
    records = journal.pending()
    assert sorted(r.body["instance"]["name"] for r in records) == ["h00", "h01"]
    assert {r.body["batch"] for r in records} == {1} and len({r.body["run"] for r in records}) == 1
    assert all(i.log == [] for i in later)
    for record in records:
        record.body["pid"] = 2 ** 22 + 1  # as left by a process that is gone
        record.update(record.step)
    waiting.fail_at.clear()
    interrupted.fail_at.clear()
    said = []
    outcomes = engine.recover(backend, said.append, timeout=0.2, settle=0)
    assert sorted((o.container, o.result) for o in outcomes) == [("h00", "rolled back"), ("h01", "rolled back")]
    assert any("later batches never started: run the same upgrade again" in line for line in said)
    assert waiting.running and interrupted.running and journal.pending() == []
    waiting.checks = [0]  # its new image serves this time
    again, _ = _run(backend, engine.Rollout(parallel=2))
    assert [o.result for o in again] == ["upgraded"] * 4


def test_on_swarm_each_service_is_its_own_run_in_the_batches():
    """Swarm: one instance per service (its update at one replica), gated and rolled back alone;
    the rollout options decide which services go together."""
    services = [FakeInstance(f"svc{i}", kind="service", new_states=BAD if i == 2 else
                             [container_state("running", "healthy")]) for i in range(5)]
    outcomes, _ = _run(FakeBackend(services, kind="swarm"), engine.Rollout(canary=1, parallel=2))
    assert [o.result for o in outcomes] == ["upgraded", "upgraded", "rolled back", "not touched", "not touched"]


def _compose_labels(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    return {"com.docker.compose.project": "p", "com.docker.compose.service": "hermes-1",
            "com.docker.compose.project.working_dir": str(tmp_path),
            "com.docker.compose.project.config_files": str(tmp_path / "compose.yaml"),
            "com.docker.compose.config-hash": "a" * 64, "com.docker.compose.image": "sha256:old"}


def test_compose_labels_follow_the_new_image_only_when_compose_here_agrees(tmp_path, monkeypatch):
    """The hash is compose's own (`config --hash`, plus an override naming the new image), and
    it is used only when compose, run here, hashes the project as the container records it."""
    from hermesctl.config import compose
    calls = []

    def fake_run(argv, cwd):
        calls.append(argv)
        if argv[-2] == "-f" and argv[-1].endswith("image.yaml"):  # every service on the new image
            assert json.loads(Path(argv[-1]).read_text()) == {"services": {"hermes-1": {"image": "img:new"},
                                                                           "hermes-2": {"image": "img:new"}}}
            return {"hermes-1": "b" * 64, "hermes-2": "d" * 64}
        return {"hermes-1": hashes["current"], "hermes-2": "e" * 64}
    monkeypatch.setattr(compose, "_run_hashes", fake_run)
    compose._hashes.cache_clear()
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/docker")
    labels = _compose_labels(tmp_path)

    hashes = {"current": "a" * 64}  # as created: the project is seen here as it was
    made, note = compose.coherent_labels(labels, "sha256:old", "img:new", "sha256:new")
    assert made == {compose.CONFIG_HASH: "b" * 64, compose.IMAGE_LABEL: "sha256:new"} and note == ""
    assert calls[0][1:3] == ["compose", "--project-directory"] and len(calls) == 2
    # Its sibling in the same run: compose is not asked again.
    sibling = {**labels, "com.docker.compose.service": "hermes-2", "com.docker.compose.config-hash": "e" * 64}
    assert compose.coherent_labels(sibling, "sha256:old", "img:new", "sha256:new")[0][compose.CONFIG_HASH] == "d" * 64
    assert len(calls) == 2

    compose._hashes.cache_clear()
    hashes["current"] = "b" * 64  # the project already names the new image: the same hash
    assert compose.coherent_labels(labels, "sha256:old", "img:new", "sha256:new")[0][compose.CONFIG_HASH] == "b" * 64

    compose._hashes.cache_clear()
    hashes["current"] = "c" * 64  # another .env here: nothing claimed, and said
    made, note = compose.coherent_labels(labels, "sha256:old", "img:new", "sha256:new")
    assert made == {} and "hashes hermes-1 differently" in note

    gone = {**labels, "com.docker.compose.project.config_files": str(tmp_path / "missing.yaml")}
    made, note = compose.coherent_labels(gone, "sha256:old", "img:new", "sha256:new")
    assert made == {} and "not on this machine" in note

    plain = {k: v for k, v in labels.items() if k != "com.docker.compose.project"}
    assert compose.coherent_labels(plain, "sha256:old", "img:new", "sha256:new") == ({}, "")


def test_a_dry_run_shows_the_canary_and_the_batches_and_changes_nothing(monkeypatch, capsys):
    insts = _fleet(5)
    code, out, _ = cli_on(FakeBackend(insts), monkeypatch, capsys)(
        "upgrade", "*", "--image", "hermes-agent:new", "--canary", "1", "--soak", "30", "--parallel", "40%",
        "--max-failures", "1", "--dry-run", "--json")
    assert code == ExitStatus.OK
    doc = json.loads(out)
    assert doc["rollout"] == {"canary": 1, "parallel": 2, "max_failures": 1, "soak": 30.0}
    assert doc["batches"] == [{"canary": True, "instances": ["h00"]}, {"canary": False, "instances": ["h01", "h02"]},
                              {"canary": False, "instances": ["h03", "h04"]}]
    assert all(i.log == [] for i in insts)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(n=st.integers(1, 9), bad=st.sets(st.integers(0, 8)), canary=st.integers(0, 3), parallel=st.integers(1, 4),
       max_failures=st.integers(0, 3))
def test_any_rollout_accounts_for_every_container_and_stops_only_past_its_budget(n, bad, canary, parallel,
                                                                                 max_failures):
    """Whatever fails: every container is upgraded, rolled back or not touched (never omitted);
    a bad image is never left running; not touched only after the canary failed or more than
    the budget failed, and then every later batch is untouched."""
    journal.operations_dir().mkdir(parents=True, exist_ok=True)
    for leftover in journal.pending():  # each example starts clean (the state dir is per test)
        leftover.done()
    insts = _fleet(n, bad=bad)
    rollout = engine.Rollout(canary=canary, parallel=parallel, max_failures=max_failures)
    outcomes, _ = _run(FakeBackend(insts), rollout)
    assert [o.container for o in outcomes] == [i.name for i in insts]
    for i, o in zip(insts, outcomes):
        expected = "not touched" if o.result == "not touched" else ("rolled back" if int(i.name[1:]) in bad else "upgraded")
        assert o.result == expected
        assert (i.log == []) == (o.result == "not touched")
        assert i.image == ("hermes-agent:new" if o.result == "upgraded" else "hermes-agent:old")
    groups = engine.batches(list(range(n)), rollout)
    touched = [any(outcomes[k].result != "not touched" for k in g) for g in groups]
    assert touched == sorted(touched, reverse=True)  # untouched batches only at the end
    failed_before = 0
    for number, g in enumerate(groups):
        if not touched[number]:
            assert (canary and number > 0 and any(k in bad for k in groups[0])) or failed_before > max_failures
            break
        assert all(outcomes[k].result != "not touched" for k in g)  # a batch runs whole
        failed_before += sum(1 for k in g if k in bad)
    assert journal.pending() == []
