"""Issue 26 in a real container: the agent as code. The fleet file declares a profile's model,
soul, settings and a skill; a value hermes-agent itself would not take is refused before anything is
touched; apply writes them through hermes' own `config set` and an atomic SOUL.md, and a chat
completion through the profile's API server then reaches the model the file declares, with the
file's soul in its system prompt and the file's skill in its skill index (the scripted model
stand-in records them). A changed soul and a
changed setting are drift that diff names per key and apply fixes; a second apply finds nothing."""
import pytest

from conftest import hermesctl, sh, svstat, wait_for
from doubles import start_model

pytestmark = pytest.mark.docker

SOUL = "You are Quillon, the fleet's code reviewer. Marker soul-31c7."
MODEL = "fleet-declared-model-9b"
WRITER_MODEL = "fleet-writer-model-2c"
FLEET = """version: 1
containers:
  {name}:
    profiles:
      coder:
        gateway: running
        api_server: true
        model: {{provider: custom, default: {model}, base_url: "{base_url}"}}
        soul: {{from_file: souls/coder.md}}
        config:
          agent.max_turns: 40
          display.compact: true
        skills: [{{from_dir: skills/review-4p}}]
      writer:
        gateway: running
        api_server: true
        model: {{provider: custom, default: {writer_model}, base_url: "{base_url}"}}
        soul: {{text: "You are Vela, who writes release notes. Marker soul-writer-55."}}
"""
SKILL = "---\nname: review-4p\ndescription: Reviews a diff; marker skill-desc-6m1.\n---\n\n# Review\nRead the diff.\n"


def _system_prompt(body: dict) -> str:
    return " ".join(str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system")


def _ask(c, model, token: str, profile: str = "coder") -> dict:
    """One chat completion through the profile's API server (probe, inside the container); the
    body the model stand-in received for it."""
    # A (re)started gateway opens its API server some seconds after its process starts.
    wait_for(lambda: hermesctl("probe", f"{c.name}:{profile}").code == 0, timeout=90, what=f"{profile}'s API server")
    res = hermesctl("probe", f"{c.name}:{profile}", "--prompt", token, "--timeout", "90")
    assert res.code == 0, res
    asked = [b for b in model.completions() if token in str(b.get("messages"))]
    assert asked, model.completions()
    return asked[-1]


def test_model_soul_and_settings_from_the_fleet_file_reach_the_model(containers, tmp_path):
    c = containers.start("agentcode")
    model = start_model(c)
    (tmp_path / "souls").mkdir()
    (tmp_path / "souls" / "coder.md").write_text(SOUL + "\n")
    (tmp_path / "skills" / "review-4p" / "templates").mkdir(parents=True)
    (tmp_path / "skills" / "review-4p" / "SKILL.md").write_text(SKILL)
    (tmp_path / "skills" / "review-4p" / "templates" / "checklist.md").write_text("- tests pass\n")
    fleet = tmp_path / "fleet.yaml"
    good = FLEET.format(name=c.name, model=MODEL, writer_model=WRITER_MODEL, base_url=model.base_url)

    # A key hermes-agent does not know: refused with the file's line, nothing created.
    fleet.write_text(good.replace("agent.max_turns: 40", "agent.max_turnz: 40"))
    res = hermesctl("apply", "-f", str(fleet))
    assert res.code == 2, res
    assert res.stderr.strip().splitlines()[-1].endswith(
        f"{fleet}:11: config.agent.max_turnz: not a setting hermes-agent knows (did you mean agent.max_turns?)"), res
    # ... and a value of the wrong type for hermes' default (a bool), likewise.
    fleet.write_text(good.replace("display.compact: true", "display.compact: maybe"))
    res = hermesctl("apply", "-f", str(fleet))
    assert res.code == 2 and res.stderr.strip().endswith(f"{fleet}:12: config.display.compact: must be true or false"), res
    assert sh(c, "test -e /opt/data/profiles/coder && echo there || echo absent").strip() == "absent"

    fleet.write_text(good)
    plan = hermesctl("diff", "-f", str(fleet), "--json")
    assert plan.code == 1, plan
    details = {ch["action"]: ch["detail"] for ch in plan.json()["changes"] if ch["profile"] == "coder"}
    assert f"model.default: unset → {MODEL}" in details["set-config"]
    assert "config.agent.max_turns: unset → 40" in details["set-config"]
    assert details["set-soul"].startswith("soul: changed (sha256 none → ")
    assert details["set-skill"] == "skills: +review-4p"

    res = hermesctl("apply", "-f", str(fleet))
    assert res.code == 0, res
    assert sh(c, "cat /opt/data/profiles/coder/SOUL.md") == SOUL + "\n"
    assert sh(c, "stat -c '%U' /opt/data/profiles/coder/SOUL.md /opt/data/profiles/coder/config.yaml").split() == \
        ["hermes", "hermes"]
    got = sh(c, "hermes -p coder config get agent.max_turns; hermes -p coder config get model.default")
    assert got.split() == ["40", MODEL], got

    body = _ask(c, model, "agentcode-first-3e1")
    assert body["model"] == MODEL
    assert "soul-31c7" in _system_prompt(body), _system_prompt(body)[:2000]
    # the skill the file adds is in the agent's skill index, as hermes offers its skills
    assert "review-4p: Reviews a diff; marker skill-desc-6m1." in _system_prompt(body)
    assert sh(c, "cat /opt/data/profiles/coder/skills/review-4p/templates/checklist.md") == "- tests pass\n"
    # each profile its own: writer's request carries writer's model and soul, and not coder's skill
    body = _ask(c, model, "agentcode-writer-4f0", "writer")
    assert body["model"] == WRITER_MODEL
    prompt = _system_prompt(body)
    assert "soul-writer-55" in prompt and "soul-31c7" not in prompt and "review-4p" not in prompt

    again = hermesctl("apply", "-f", str(fleet), "--json")
    assert again.code == 0 and again.json()["changes"] == [], again
    assert hermesctl("diff", "-f", str(fleet)).code == 0

    # Drift by hand: a new soul, a setting changed with hermes' own tool.
    pid = wait_for(lambda: svstat(c, "coder")["up"] and svstat(c, "coder")["pid"], what="coder up")
    sh(c, "printf 'You are someone else.\\n' > /opt/data/profiles/coder/SOUL.md && "
          "hermes -p coder config set agent.max_turns 12 >/dev/null && "
          "printf 'Skip the tests.\\n' >> /opt/data/profiles/coder/skills/review-4p/SKILL.md")
    drift = hermesctl("diff", "-f", str(fleet), "--json")
    assert drift.code == 1, drift
    changes = [(ch["action"], ch["detail"]) for ch in drift.json()["changes"]]
    assert ("set-config", "config.agent.max_turns: 12 → 40") in changes, changes
    assert any(a == "set-soul" and d.startswith("soul: changed (sha256 ") for a, d in changes), changes
    assert any(a == "set-skill" and d.startswith("skills: review-4p changed (sha256 ") for a, d in changes), changes
    assert ("restart", "settings changed") in changes
    assert "someone else" not in drift.stdout and SOUL not in drift.stdout  # a digest, never the text

    res = hermesctl("apply", "-f", str(fleet), "--json")
    assert res.code == 0, res
    assert sh(c, "cat /opt/data/profiles/coder/SOUL.md") == SOUL + "\n"
    assert sh(c, "cat /opt/data/profiles/coder/skills/review-4p/SKILL.md") == SKILL
    wait_for(lambda: svstat(c, "coder")["up"] and svstat(c, "coder")["pid"] != pid, what="coder restarted")
    body = _ask(c, model, "agentcode-second-8d2")
    assert body["model"] == MODEL and "soul-31c7" in _system_prompt(body)
    assert hermesctl("diff", "-f", str(fleet)).code == 0
    assert hermesctl("apply", "-f", str(fleet), "--json").json()["changes"] == []
