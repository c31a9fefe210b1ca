"""hermesctl backup TARGET... -o DIR, and hermesctl restore ARCHIVE CONTAINER."""
from pathlib import Path

from hermesctl import backup, restore
from hermesctl.errors import ContainerRunningError, ExecTimeoutError, UsageError, describe
from hermesctl.exit_codes import ExitStatus
from hermesctl.fleet import Fleet
from hermesctl.inventory import HermesContainer
from hermesctl.output import Output
from hermesctl.parallel import fan_out
from hermesctl.targets import Target, is_glob

STOP_TIMEOUT = 15  # seconds docker stop waits, as compose's stop_grace_period


def containers_for(fleet: Fleet, targets: list[Target]) -> list[HermesContainer]:
    """Every container the targets name, running or stopped (a stopped one backs up too)."""
    chosen: dict[str, HermesContainer] = {}
    for target in targets:
        if target.profile is not None:
            raise UsageError(f"{target}: back up and restore whole containers (CONTAINER, no :PROFILE)")
        for c in fleet.containers_matching(target):
            chosen.setdefault(c.key, c)
    return sorted(chosen.values(), key=lambda c: c.key)


def _profiles_text(manifest: dict) -> str:
    return ", ".join(f"{p['name']}({p['desired_state'] or '-'})" for p in manifest["profiles"])


def backup_command(out: Output, fleet: Fleet, targets: list[Target], out_dir: Path) -> ExitStatus:
    containers = containers_for(fleet, targets)
    outcomes = fan_out(lambda c: backup.create_backup(fleet.endpoint(c.endpoint), c.id, out_dir,
                                                      timeout=fleet.exec_timeout), containers)
    doc, failed, timed_out = [], False, False
    for o in outcomes:
        c, result = o.item, o.value
        if not o.ok:
            if isinstance(o.error, ExecTimeoutError):
                timed_out = True
            else:
                failed = True
            doc.append({"endpoint": c.endpoint, "container": c.name, "ok": False, "error": describe(o.error)})
            if not out.json:
                out.error(f"{c.name}: backup failed: {describe(o.error)}")
            continue
        m = result.manifest
        doc.append({"endpoint": c.endpoint, "container": c.name, "ok": True, "archive": str(result.path),
                    "archive_sha256": result.archive_sha256, "consistency": m["consistency"],
                    "image": m["container"]["image"], "hermes_agent_version": m["container"]["hermes_agent_version"],
                    "databases": m["databases"], "profiles": m["profiles"]})
        if not out.json:
            out.line(f"{c.name}: {result.path} ({len(m['files'])} files, databases: "
                     f"{', '.join(m['databases']) or 'none'}; profiles: {_profiles_text(m)}; "
                     f"sha256 {result.archive_sha256[:12]})")
    if out.json:
        out.document("backup", {"backups": doc})
    return ExitStatus.FAILED if failed else ExitStatus.PARTIAL if timed_out else ExitStatus.OK


def restore_command(out: Output, fleet: Fleet, archive: Path, target: Target, *, force: bool) -> ExitStatus:
    manifest = backup.read_manifest(archive)  # verified before any container is touched
    from hermesctl.swarm import SwarmFleet
    if isinstance(fleet, SwarmFleet):
        return _restore_service(out, fleet, archive, manifest, target, force=force)
    if target.profile is not None or is_glob(target.container):
        raise UsageError(f"{target}: restore into one container (CONTAINER, no glob, no :PROFILE)")
    found = fleet.containers_matching(target)
    if len(found) > 1:
        raise UsageError(f"container {target.container} exists on several endpoints: name one as ENDPOINT/NAME")
    container = found[0]
    endpoint = fleet.endpoint(container.endpoint)
    api = endpoint.client.api
    inspect = api.inspect_container(container.id)
    was_running = inspect["State"]["Running"]
    if was_running and not force:
        raise ContainerRunningError(f"container {container.name} is running: stop it first, or pass "
                                    "--force to stop it, restore and start it again")
    owners = backup.hermes_ids(endpoint, container.id)
    if was_running:
        api.stop(container.id, timeout=STOP_TIMEOUT)
    try:
        written = restore.restore_tree(endpoint, container.id, archive, inspect["Image"], owners=owners)
    finally:
        if was_running:  # restored, or (it failed) the old data: either way it runs again
            api.start(container.id)
    body = {"container": container.name, "endpoint": container.endpoint, "archive": str(archive),
            "entries": written, "from": manifest["container"], "profiles": manifest["profiles"],
            "restarted": was_running}
    if out.json:
        out.document("restore", body)
    else:
        out.line(f"restored {archive} into {container.name}: {written} entries, owned by hermes; "
                 f"profiles: {_profiles_text(manifest)}"
                 + ("; started again" if was_running else "; start it to bring its gateways back"))
    return ExitStatus.OK


def _restore_service(out: Output, fleet, archive: Path, manifest: dict, target: Target, *, force: bool) -> ExitStatus:
    """On a swarm: scale the service to 0, restore its node-local volume through a stand-in
    container, and scale it back (a task container cannot simply be stopped: swarm replaces it)."""
    from hermesctl.commands.upgrade_swarm import services_for
    if target.profile is not None or is_glob(target.container):
        raise UsageError(f"{target}: restore into one service (SERVICE, no glob, no :PROFILE)")
    [service] = services_for(fleet, [target])
    replicas = service.replicas or 0
    if replicas and not force:
        raise ContainerRunningError(f"service {service.name} is running: pass --force to scale it to 0, "
                                    "restore and scale it back")
    endpoint = fleet.endpoint(service.node)
    if replicas:
        service.update(replicas=0)
        service.wait_stopped()
    with service.volume() as holder:
        written = restore.restore_tree(endpoint, holder, archive, service.image,
                                       owners=backup.hermes_ids(endpoint, holder))
    if replicas:
        service.update(replicas=replicas)
    body = {"service": service.name, "node": service.node, "archive": str(archive), "entries": written,
            "from": manifest["container"], "profiles": manifest["profiles"], "restarted": bool(replicas)}
    if out.json:
        out.document("restore", body)
    else:
        out.line(f"restored {archive} into service {service.name} on {service.node}: {written} entries, "
                 f"owned by hermes; profiles: {_profiles_text(manifest)}; scaled back to {replicas}")
    return ExitStatus.OK
