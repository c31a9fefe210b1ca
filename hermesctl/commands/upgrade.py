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
            out.err.print(f"{stamp} {safe(text)}", markup=False, highlight=False, emoji=False)
        else:
            out.line(f"{stamp} {text}")
    return say


def upgrade(out: Output, fleet: Fleet, targets: list[Target], image: str, *, dry_run: bool,
            backup_dir: Path | None, timeout: float, settle: float, scope: dict | None = None,
            rollout_options: dict | None = None) -> ExitStatus:
    plans = engine.plan(fleet, targets, image)  # every check before the first instance stops
    backup_dir = backup_dir or engine.default_backup_dir()
    rollout = engine.rollout_from_options(sum(p.action == "upgrade" for p in plans), **(rollout_options or {}))
    if dry_run:
        return _print_plan(out, fleet, plans, image, backup_dir, rollout)
    engine.require_writable(backup_dir)
    run = engine.Upgrade(fleet, image, backup_dir, timeout=timeout, settle=settle, say=_say(out), scope=scope,
                         rollout=rollout)
    try:
        outcomes = run.run(plans)
    except KeyboardInterrupt:
        out.error(f"interrupted: the instances being upgraded may be stopped or half-replaced; "
                  f"`{RECOVER_HINT}` finishes or undoes it")
        raise
    upgraded = {o.container for o in outcomes if o.result == "upgraded"}
    containers = [p.instance for p in plans if p.instance.kind == "container" and p.instance.name in upgraded
                  and getattr(p.instance, "container", None) is not None]
    for project in sorted({i.container.compose_project for i in containers if i.container.compose_project}):
        # The compose file still names the old image: whenever compose recreates a container
        # (`up -d` with any change, --force-recreate) it would bring the old image back. The
        # containers carry the config hash compose will compute once it names the new one.
        out.warn(f"compose project {project} still names the old image: set it to {image} "
                 "(e.g. HERMES_IMAGE in its .env); then `docker compose up -d` recreates nothing")
    for note in sorted({i.compose_note for i in containers if getattr(i, "compose_note", "")}):
        out.warn(note)
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
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result] = counts.get(o.result, 0) + 1
    if out.json:
        items = [o.__dict__ | ({"service": o.container, "node": o.endpoint} if services else {}) for o in outcomes]
        out.document("upgrade", {"image": image, "dry_run": False, "backup_dir": str(backup_dir) if backup_dir else None,
                                 "services" if services else "containers": items, "counts": counts})
    elif outcomes:
        out.print(out.table(["SERVICE" if services else "CONTAINER", "IMAGE", "RESULT", "GATE", "DETAIL"],
                            [[o.container, o.image, o.result, o.gate or "-", o.detail] for o in outcomes],
                            endpoints=[o.endpoint for o in outcomes]))
        out.line(", ".join(f"{n} {result}" for result, n in counts.items()))


def _print_plan(out: Output, fleet: Fleet, plans: list[engine.Plan], image: str, backup_dir: Path,
                rollout: engine.Rollout) -> ExitStatus:
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
    groups = engine.batches([p for p in plans if p.action == "upgrade"], rollout)
    order = [{"canary": rollout.canary > 0 and n == 0, "instances": [p.instance.name for p in g]}
             for n, g in enumerate(groups)]
    if out.json:
        out.document("upgrade", {"image": image, "dry_run": True, "backup_dir": str(backup_dir), "plan": doc,
                                 "rollout": rollout.__dict__, "batches": order})
        return ExitStatus.OK
    kind = "service" if fleet.kind == "swarm" else "container"
    if rollout == engine.Rollout():
        out.line(f"plan: one {kind} at a time, stopping at the first failure; backups in {backup_dir}")
    else:
        out.line(f"plan: {'canary ' + str(rollout.canary) + (f' (soak {rollout.soak:g}s)' if rollout.soak else '') + ', then ' if rollout.canary else ''}"
                 f"batches of {rollout.parallel} {kind}s side by side; no new batch after more than "
                 f"{rollout.max_failures} failures; backups in {backup_dir}")
        for n, g in enumerate(order):
            out.line(f"  {'canary' if g['canary'] else 'batch'}: {', '.join(g['instances'])}")
    for d in doc:
        name = d.get("container") or d.get("service")
        if d["action"] != "upgrade":
            out.line(f"  {name}: {d['action']} ({d['from']})")
        elif "service" in d:
            out.line(f"  {name} on {d['node']}: {d['from']} -> {d['to']}: scale to 0, back up "
                     f"{', '.join(d['volumes']) or '-'}, update, wait until it serves, else put the "
                     f"changed files and the old spec back")
        else:
            out.line(f"  {name}: {d['from']} ({d['from_version'] or '?'}) -> {d['to']} "
                     f"({d['to_version'] or '?'}): stop, back up, recreate with volumes "
                     f"{', '.join(d['volumes']) or '-'}; networks {', '.join(map(str, d['networks']))}; "
                     f"ports {', '.join(d['ports']) or '-'}; restart {d['restart']}; "
                     f"healthcheck {d['healthcheck']}; wait until it serves, else roll it back")
    return ExitStatus.OK
