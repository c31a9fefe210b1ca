"""hermesctl backup TARGET... -o DIR, and hermesctl restore ARCHIVE INSTANCE: parse, one engine
call, render (hermesctl.engine.restore)."""
from pathlib import Path

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core.errors import describe
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.engine import restore as engine
from hermesctl.model.results import ItemResult, exit_status
from hermesctl.model.targets import Target
from hermesctl.render.output import Output


def _profiles_text(manifest: dict) -> str:
    return ", ".join(f"{p['name']}({p['desired_state'] or '-'})" for p in manifest["profiles"])


def backup_command(out: Output, fleet: Fleet, targets: list[Target], out_dir: Path) -> ExitStatus:
    doc, results = [], []
    for o in engine.back_up(fleet, targets, out_dir):
        inst, made = o.item, o.value
        if not o.ok:
            results.append(ItemResult(f"{inst.where}/{inst.name}", False, engine.reason_of(o.error), describe(o.error)))
            doc.append({"endpoint": inst.where, "container": inst.name, "ok": False, "error": describe(o.error)})
            if not out.json:
                out.error(f"{inst.name}: backup failed: {describe(o.error)}")
            continue
        m = made.manifest
        results.append(ItemResult(f"{inst.where}/{inst.name}", True))
        doc.append({"endpoint": inst.where, "container": inst.name, "ok": True, "archive": str(made.path),
                    "archive_sha256": made.archive_sha256, "consistency": m["consistency"],
                    "image": m["container"]["image"], "hermes_agent_version": m["container"]["hermes_agent_version"],
                    "databases": m["databases"], "profiles": m["profiles"]})
        if not out.json:
            out.line(f"{inst.name}: {made.path} ({len(m['files'])} files, databases: "
                     f"{', '.join(m['databases']) or 'none'}; profiles: {_profiles_text(m)}; "
                     f"sha256 {made.archive_sha256[:12]})")
    if out.json:
        out.document("backup", {"backups": doc})
    return exit_status(results)


def restore_command(out: Output, fleet: Fleet, archive: Path, target: Target, *, force: bool) -> ExitStatus:
    done = engine.restore(fleet, archive, target, force=force)
    inst, manifest = done.instance, done.manifest
    if inst.kind == "service":
        body = {"service": inst.name, "node": inst.where, "archive": str(archive), "entries": done.written,
                "from": manifest["container"], "profiles": manifest["profiles"], "restarted": done.restarted}
        text = (f"restored {archive} into service {inst.name} on {inst.where}: {done.written} entries, "
                f"owned by hermes; profiles: {_profiles_text(manifest)}; "
                + (f"scaled back to {inst.replicas_before}" if done.restarted else "left at 0 replicas"))
    else:
        body = {"container": inst.name, "endpoint": inst.where, "archive": str(archive), "entries": done.written,
                "from": manifest["container"], "profiles": manifest["profiles"], "restarted": done.restarted}
        text = (f"restored {archive} into {inst.name}: {done.written} entries, owned by hermes; "
                f"profiles: {_profiles_text(manifest)}"
                + ("; started again" if done.restarted else "; start it to bring its gateways back"))
    if out.json:
        out.document("restore", body)
    else:
        out.line(text)
    return ExitStatus.OK
