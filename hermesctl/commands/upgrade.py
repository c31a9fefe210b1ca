"""hermesctl upgrade TARGET... --image IMAGE, and upgrade --recover: parse, one engine call,
render (the engine: hermesctl.engine.upgrade, on any backend)."""
import time
from pathlib import Path

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.engine import upgrade as engine
from hermesctl.engine.journal import RECOVER_HINT
from hermesctl.model.results import ItemResult, exit_status
from hermesctl.model.targets import Target
from hermesctl.render.output import Output
from hermesctl.render.terminal import safe


def _say(out: Output):
    def say(text: str) -> None:
        """Progress: plain lines (stderr under --json, so stdout stays one document)."""
        stamp = time.strftime("%H:%M:%S")
        if out.json:
            out.err.print(f"{stamp} {safe(text)}", markup=False, highlight=False)
        else:
            out.line(f"{stamp} {text}")
    return say


def upgrade(out: Output, fleet: Fleet, targets: list[Target], image: str, *, dry_run: bool,
            backup_dir: Path | None, timeout: float, settle: float, scope: dict | None = None) -> ExitStatus:
    plans = engine.plan(fleet, targets, image)  # every check before the first instance stops
    backup_dir = backup_dir or engine.default_backup_dir()
    if dry_run:
        return _print_plan(out, fleet, plans, image, backup_dir)
    engine.require_writable(backup_dir)
    run = engine.Upgrade(fleet, image, backup_dir, timeout=timeout, settle=settle, say=_say(out), scope=scope)
    try:
        outcomes = run.run(plans)
    except KeyboardInterrupt:
        out.error(f"interrupted: the instance being upgraded may be stopped or half-replaced; "
                  f"`{RECOVER_HINT}` finishes or undoes it")
        raise
    upgraded = {o.container for o in outcomes if o.result == "upgraded"}
    for project in sorted({p.instance.container.compose_project for p in plans if p.instance.kind == "container"
                           and p.instance.name in upgraded and p.instance.container.compose_project}):
        # The compose file still names the old image: whenever compose recreates a container
        # (a changed setting, --force-recreate) it would bring the old image back.
        out.warn(f"compose project {project} still names the old image: set it to {image} "
                 "(e.g. HERMES_IMAGE in its .env) so that compose agrees")
    _render(out, fleet, image, backup_dir, outcomes)
    return exit_status([o.as_result() for o in outcomes])


def recover(out: Output, fleet: Fleet, *, timeout: float, settle: float) -> ExitStatus:
    outcomes = engine.recover(fleet, _say(out), timeout=timeout, settle=settle)
    if not outcomes and not out.json:
        out.line("no interrupted upgrade to recover")
    _render(out, fleet, None, None, outcomes)
    # Undoing an interrupted upgrade is what recovering means: a rollback is a success here.
    return exit_status([ItemResult(f"{o.endpoint}/{o.container}", o.result in ("upgraded", "rolled back"),
                                   "ok" if o.result in ("upgraded", "rolled back") else "rollback-failed", o.detail)
                        for o in outcomes])


def _render(out: Output, fleet: Fleet, image: str | None, backup_dir: Path | None, outcomes) -> None:
    services = fleet.kind == "swarm"
    if out.json:
        items = [o.__dict__ | ({"service": o.container, "node": o.endpoint} if services else {}) for o in outcomes]
        out.document("upgrade", {"image": image, "dry_run": False, "backup_dir": str(backup_dir) if backup_dir else None,
                                 "services" if services else "containers": items})
    elif outcomes:
        out.print(out.table(["SERVICE" if services else "CONTAINER", "IMAGE", "RESULT", "DETAIL"],
                            [[o.container, o.image, o.result, o.detail] for o in outcomes],
                            endpoints=[o.endpoint for o in outcomes]))


def _print_plan(out: Output, fleet: Fleet, plans: list[engine.Plan], image: str, backup_dir: Path) -> ExitStatus:
    doc = []
    for p in plans:
        inst = p.instance
        if inst.kind == "service":
            doc.append({"service": inst.name, "node": inst.where, "action": p.action, "from": inst.image,
                        "to": image, "replicas": inst.replicas_before,
                        "update_config": inst.spec.get("UpdateConfig"), "volumes": [
                            f"{m.get('Source')}->{m.get('Target')}" for m in
                            inst.spec["TaskTemplate"]["ContainerSpec"].get("Mounts") or []]})
        else:
            doc.append({"endpoint": inst.where, "container": inst.name, "action": p.action,
                        "from": inst.image, "from_version": inst.version_of(inst.image_id), "to": image,
                        "to_version": inst.version_of(image), **inst.spec().summary()})
    if out.json:
        out.document("upgrade", {"image": image, "dry_run": True, "backup_dir": str(backup_dir), "plan": doc})
        return ExitStatus.OK
    out.line(f"plan: one {'service' if fleet.kind == 'swarm' else 'container'} at a time; backups in {backup_dir}")
    for d in doc:
        name = d.get("container") or d.get("service")
        if d["action"] != "upgrade":
            out.line(f"  {name}: {d['action']} ({d['from']})")
        elif "service" in d:
            out.line(f"  {name} on {d['node']}: {d['from']} -> {d['to']}: scale to 0, back up "
                     f"{', '.join(d['volumes']) or '-'}, update, wait until it serves, else put the "
                     f"changed files and the old spec back and stop")
        else:
            out.line(f"  {name}: {d['from']} ({d['from_version'] or '?'}) -> {d['to']} "
                     f"({d['to_version'] or '?'}): stop, back up, recreate with volumes "
                     f"{', '.join(d['volumes']) or '-'}; networks {', '.join(map(str, d['networks']))}; "
                     f"ports {', '.join(d['ports']) or '-'}; restart {d['restart']}; "
                     f"healthcheck {d['healthcheck']}; wait until it serves, else roll back and stop")
    return ExitStatus.OK
