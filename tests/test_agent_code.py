"""Issue 26 in real containers: the whole agent as code. One fleet file declares two containers and
three profiles, each with its own model (and, for coder, an API key by reference), soul, settings
and skills. A key hermes-agent itself does not know is refused before anything is touched. v1 of
the file is applied (coder's gateway stopped); then coder drifts by hand and v2 of the file starts
it and drops one of its settings and one of its skills: `apply --prune` (its plan is diff's) fixes
the drift and removes exactly what apply had set that the file no longer lists, touching neither a
key it never set nor the other profiles' gateways. One chat completion through each profile's API
server then reaches the model the file declares for that profile, with that profile's soul and
skills in its system prompt and the referenced key in its Authorization header (the scripted model
stand-ins, one per container, record them). A second apply and diff find nothing to do.

Time (what a real container must prove, at the least CPU): both containers boot side by side,
three gateway starts and no restart, the three chats sent by one `probe`, config.yaml drifted
without a hermes start. The branches (parsing, references, the restart a changed setting causes,
prune's record, hostile records) are proven on the fake fleet and on the host in
test_apply_unit.py and test_agentconfig_unit.py.
"""
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from conftest import hermesctl, sh, svstat, wait_for, wait_ready
from doubles import start_model

pytestmark = pytest.mark.docker

API_KEY = "sk-coder-model-key-7f3a9c"  # only ever in secrets/model-key and the container's .env
PROFILES = {  # profile: (container hint, model, soul marker, skills once v2 of the file is applied)
    "coder": ("a", "fleet-coder-model-9b", "soul-coder-31c7", ("review-4p",)),
    "writer": ("a", "fleet-writer-model-2c", "soul-writer-55e", ("notes-8k",)),
    "ops": ("b", "fleet-ops-model-6d", "soul-ops-0a4", ("runbook-3x",)),
}
FLEET = """version: 1
containers:
  {a}:
    profiles:
      coder:
        gateway: stopped
        api_server: true
        model: {{provider: custom, default: fleet-coder-model-9b, base_url: "{url_a}",
                 api_key: {{from_file: secrets/model-key}}}}
        soul: {{from_file: souls/coder.md}}
        config:
          agent.max_turns: 40
          display.compact: true
        skills: [{{from_dir: skills/review-4p}}, {{from_dir: skills/lint-2q}}]
      writer:
        gateway: running
        api_server: true
        model: {{provider: custom, default: fleet-writer-model-2c, base_url: "{url_a}"}}
        soul: {{text: "You are Vela, who writes release notes. Marker soul-writer-55e."}}
        config: {{agent.max_turns: 12}}
        skills: [{{from_dir: skills/notes-8k}}]
  {b}:
    profiles:
      ops:
        gateway: running
        api_server: true
        model: {{provider: custom, default: fleet-ops-model-6d, base_url: "{url_b}"}}
        soul: {{text: "You are Orla, who keeps the lights on. Marker soul-ops-0a4."}}
        config: {{display.compact: false}}
        skills: [{{from_dir: skills/runbook-3x}}]
"""


def _files(tmp_path):
    (tmp_path / "souls").mkdir()
    (tmp_path / "souls" / "coder.md").write_text("You are Quillon, the fleet's code reviewer. Marker soul-coder-31c7.\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "model-key").write_text(API_KEY + "\n")
    (tmp_path / "secrets" / "model-key").chmod(0o600)
    for name in ("review-4p", "lint-2q", "notes-8k", "runbook-3x"):
        (tmp_path / "skills" / name / "templates").mkdir(parents=True)
        (tmp_path / "skills" / name / "SKILL.md").write_text(
            f"---\nname: {name}\ndescription: Skill {name}; marker desc-{name}.\n---\n\n# {name}\nDo it.\n")
        (tmp_path / "skills" / name / "templates" / "checklist.md").write_text(f"- {name}\n")


def _system_prompt(body: dict) -> str:
    return " ".join(str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system")


def _api_server_up(container, profile: str) -> bool:
    """hermes' own word (gateway_state.json) that the profile's API server is connected."""
    text = sh(container, f"cat /opt/data/profiles/{profile}/gateway_state.json", check=False)
    try:
        state = json.loads(text)
    except ValueError:
        return False
    return ((state.get("platforms") or {}).get("api_server") or {}).get("state") == "connected"


def _changes(res) -> list[tuple]:
    assert res.stdout.strip(), res
    return [(ch["container"].rsplit("-", 1)[-1], ch["profile"], ch["action"], ch["detail"])
            for ch in res.json()["changes"]]


def test_a_fleet_of_two_containers_and_three_profiles_from_one_file(containers, tmp_path):
    # Both containers boot side by side; each runs its own scripted model on its loopback.
    a, b = (containers.start(hint, wait=False) for hint in ("agentcode-a", "agentcode-b"))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(wait_ready, (a, b)))
        model_a, model_b = pool.map(start_model, (a, b))
    by_hint = {"a": a, "b": b}
    _files(tmp_path)
    fleet = tmp_path / "fleet.yaml"
    good = FLEET.format(a=a.name, b=b.name, url_a=model_a.base_url, url_b=model_b.base_url)

    # A key hermes-agent does not know (the image's own schema says so): the file's line, nothing touched.
    fleet.write_text(good.replace("agent.max_turns: 40", "agent.max_turnz: 40"))
    res = hermesctl("apply", "-f", str(fleet))
    assert res.code == 2, res
    assert res.stderr.strip().splitlines()[-1].endswith(
        f"{fleet}:12: config.agent.max_turnz: not a setting hermes-agent knows (did you mean agent.max_turns?)"), res
    for c in (a, b):
        assert sh(c, "ls /opt/data/profiles").split() == []

    # v1 of the file: writer and ops serve; coder is set up with its gateway stopped. (apply's
    # plan is diff's, one make_plan: its --json document names each change's detail.)
    fleet.write_text(good)
    res = hermesctl("apply", "-f", str(fleet), "--json")
    assert res.code == 0, res
    details = {(p, action): d for _, p, action, d in _changes(res)}
    assert "model.default: unset → fleet-coder-model-9b" in details[("coder", "set-config")]
    assert "model.api_key: unset → ${HERMESCTL_CONFIG_MODEL__API_KEY} (from_file:secrets/model-key)" in \
        details[("coder", "set-config")]
    assert "HERMESCTL_CONFIG_MODEL__API_KEY=from_file:secrets/model-key (hmac " in details[("coder", "set-env")]
    assert details[("ops", "set-skill")] == "skills: +runbook-3x"
    assert all(ch["ok"] for ch in res.json()["changes"]), res.stdout
    assert API_KEY not in res.stdout + res.stderr
    coder = "/opt/data/profiles/coder"
    assert API_KEY not in sh(a, f"cat {coder}/config.yaml")  # only ${VAR} there

    # Drift by hand in coder (a new soul, a setting changed, a key the file never named; config.yaml
    # edited as a hand would, without a hermes start), and v2 of the file starts coder and drops
    # its display.compact and its lint-2q skill: apply --prune fixes and removes exactly that.
    pids = {p: svstat(by_hint[PROFILES[p][0]], p)["pid"] for p in ("writer", "ops")}
    sh(a, f"cd {coder} && printf 'You are someone else.\\n' > SOUL.md && "
          "sed -i 's/^  max_turns: 40$/  max_turns: 7\\n  gateway_timeout: 900/' config.yaml")
    fleet.write_text(good.replace("          display.compact: true\n", "")
                     .replace(", {from_dir: skills/lint-2q}", "").replace("gateway: stopped", "gateway: running"))
    drift = hermesctl("apply", "-f", str(fleet), "--prune", "--json")
    assert drift.code == 0, drift
    changes = _changes(drift)
    assert ("a", "coder", "set-config", "config.agent.max_turns: 7 → 40") in changes, changes
    assert ("a", "coder", "unset-config", "config.display.compact: set by apply, not in the file") in changes
    assert ("a", "coder", "remove-skill", "skills: -lint-2q") in changes
    assert any(p == "coder" and act == "set-soul" and d.startswith("soul: changed (sha256 ")
               for _, p, act, d in changes), changes
    assert ("a", "coder", "start", "") in changes
    assert {p for _, p, _, _ in changes} == {"coder"}  # writer's and ops' settings did not change
    assert "gateway_timeout" not in drift.stdout and "someone else" not in drift.stdout
    assert all(ch["ok"] for ch in drift.json()["changes"]), drift.stdout

    # One chat completion through each profile's API server (one probe, all three at once): the
    # request that reaches each model carries that profile's soul and skills and no other's, and
    # coder's the soul apply restored and not the skill it pruned.
    # (apply returns once the gateways are up; their API servers listen a few seconds later: each
    # look is a `cat` of the gateway's own state file, cheaper than a probe's Python start.)
    targets = (f"{a.name}:coder", f"{a.name}:writer", f"{b.name}:ops")
    wait_for(lambda: all(_api_server_up(by_hint[PROFILES[p][0]], p) for p in PROFILES), timeout=90,
             what="the three API servers")
    res = hermesctl("probe", *targets, "--prompt", "agentcode-hello-3e1", "--timeout", "90")
    assert res.code == 0, res.stdout + res.stderr
    bodies = {body["model"]: body for model in (model_a, model_b) for body in model.completions()
              if "agentcode-hello-3e1" in str(body.get("messages"))}
    records = {r["body"]["model"]: r for r in model_a.records() if r["method"] == "POST" and "body" in r
               and "agentcode-hello-3e1" in str(r["body"].get("messages"))}
    for profile, (_, model, soul, skills) in PROFILES.items():
        assert model in bodies, (profile, sorted(bodies))
        prompt = _system_prompt(bodies[model])
        assert soul in prompt, (profile, prompt[:2000])
        for skill in skills:
            assert f"{skill}: Skill {skill}; marker desc-{skill}." in prompt, (profile, skill)
        others = [m for p, (_, _, m, s) in PROFILES.items() if p != profile]
        assert not any(m in prompt for m in others), profile
    assert "lint-2q" not in _system_prompt(bodies["fleet-coder-model-9b"])
    assert "review-4p" not in _system_prompt(bodies["fleet-writer-model-2c"])
    # the key by reference reached coder's model, from .env through hermes' own ${VAR}
    assert records["fleet-coder-model-9b"]["authorization"] == f"Bearer {API_KEY}"
    assert records["fleet-writer-model-2c"]["authorization"] != f"Bearer {API_KEY}"

    # The whole fleet applied: a second apply and diff find nothing to do.
    assert hermesctl("diff", "-f", str(fleet), "--prune").code == 0
    again = hermesctl("apply", "-f", str(fleet), "--prune", "--json")
    assert again.code == 0 and again.json()["changes"] == [], again
    assert {p: svstat(by_hint[PROFILES[p][0]], p)["pid"] for p in ("writer", "ops")} == pids  # never restarted

    assert sh(a, f"cat {coder}/SOUL.md") == "You are Quillon, the fleet's code reviewer. Marker soul-coder-31c7.\n"
    assert sh(a, f"ls {coder}/skills").split() == ["review-4p"]
    settings = yaml.safe_load(sh(a, f"cat {coder}/config.yaml"))
    assert settings["agent"] == {"max_turns": 40, "gateway_timeout": 900}  # the key apply never set: the hand's
    assert "compact" not in settings.get("display", {}), settings
    recorded = json.loads(sh(a, f"cat {coder}/.hermesctl-applied.json"))
    assert recorded["skills"] == ["review-4p"] and "display.compact" not in recorded["config"]
