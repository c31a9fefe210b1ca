"""hermesctl profile create|list|delete: through the container's own `hermes`, as hermes."""
from hermesctl.agent import client as agent
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core.errors import ExecError, NotFoundError, UsageError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.core.parallel import fan_out
from hermesctl.engine.lifecycle import list_profiles, operate_many, run_locked
from hermesctl.model.names import DEFAULT_PROFILE, normalize_profile, require_creatable
from hermesctl.model.targets import Target
from hermesctl.render.gateway_results import render
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich: not on the quick read path (hermesctl.cli.quick_read)
    from hermesctl.render.output import Output

def create(out: "Output", fleet: Fleet, target: Target, *, start: bool) -> ExitStatus:
    if target.profile is None:
        raise UsageError(f"{target}: give CONTAINER:NAME")
    name = require_creatable(target.profile)
    container = fleet.one(target)
    if any(p["name"] == name for p in list_profiles(fleet, container)):
        raise UsageError(f"profile {name} already exists in {container.name}")
    result = run_locked(fleet, container, ["hermes", "profile", "create", name])
    if not result.ok:
        raise ExecError(f"hermes profile create {name} failed in {container.name}: "
                        f"{_last_line(result.stderr or result.stdout)}")
    # hermes registered the slot with its own scripts; render ours, as the boot reconciler will.
    adopted = run_locked(fleet, container, agent.argv("adopt", name))
    if not adopted.ok:
        raise ExecError(f"profile {name} created in {container.name}, but its slot could not be "
                        f"adopted: {_last_line(adopted.stdout or adopted.stderr)}")
    if start:
        return render(out, "start", operate_many(fleet, "start", [Target(container.name, name)], timeout=20,
                                                 settle=1, warn=out.warn))
    _report(out, "profile-create", {"action": "create", "container": container.name, "profile": name},
            f"created profile {name} in {container.name} (gateway registered, down)")
    return ExitStatus.OK


def delete(out: "Output", fleet: Fleet, target: Target) -> ExitStatus:
    if target.profile is None:
        raise UsageError(f"{target}: give CONTAINER:NAME")
    name = normalize_profile(target.profile)
    if name == DEFAULT_PROFILE:
        raise UsageError("the default profile cannot be deleted")
    container = fleet.one(target)
    if not any(p["name"] == name for p in list_profiles(fleet, container)):
        raise NotFoundError(f"no profile {name} in {container.name}")
    result = run_locked(fleet, container, ["hermes", "profile", "delete", name, "-y"])
    if not result.ok:
        raise ExecError(f"hermes profile delete {name} failed in {container.name}: "
                        f"{_last_line(result.stderr or result.stdout)}")
    _report(out, "profile-delete", {"action": "delete", "container": container.name, "profile": name},
            f"deleted profile {name} from {container.name}")
    return ExitStatus.OK


def list_command(out: "Output", fleet: Fleet, targets: list[Target]) -> ExitStatus:
    matched = [c for c, _ in fleet.match(targets or [Target("*", None)])]
    rows, doc = [], []
    for o in fan_out(lambda c: list_profiles(fleet, c), matched):
        if not o.ok:  # reported with the others that did not answer; the rest is listed
            fleet.did_not_answer(o.item, o.error)
            continue
        container = o.item
        for p in o.value:
            doc.append({"endpoint": container.endpoint, "container": container.name, **p})
            rows.append([container.name, p["name"], "yes" if p["has_soul"] else "NO (skipped at boot)",
                         "yes" if p["registered"] else "no"])
    if out.json:
        out.document("profile-list", {"profiles": doc})
    else:
        out.print(out.table(["CONTAINER", "PROFILE", "SOUL.md", "REGISTERED"], rows,
                            endpoints=[d["endpoint"] for d in doc]))
    return ExitStatus.OK


def _report(out: "Output", kind: str, doc: dict, text: str) -> None:
    if out.json:
        out.document(kind, doc)
    else:
        out.line(text)


def _last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else "no output"
