"""`{from_secret: NAME}` on a swarm: the secret is attached to the instance's service as the file
/run/secrets/hermes-env.<profile>.<KEY> (owned by the container's hermes UID, mode 0400), and
the image writes it into the profile's .env at boot, as hermes. hermesctl never reads a secret's
value: a change is a different secret (swarm secrets are immutable, so its id stands for its
value), and drift in .env is judged inside the container (`hermes-slots load-secrets --check`).
"""
import json
import re
import time
from dataclasses import dataclass, field

from hermesctl.contract import AGENT, SECRET_ENV_PREFIX, SLOTS_TOOL
from hermesctl.errors import ExecError, HermesctlError, UsageError
from hermesctl.fleetfile import ContainerSpec, FleetSpec
from hermesctl.inventory import HermesContainer
from hermesctl.references import secret_references

SECRET_MODE = 0o400
# The file a from_secret becomes: neither profile names nor keys hold a dot.
TARGET = re.compile(re.escape(SECRET_ENV_PREFIX) + r"([a-z0-9][a-z0-9_-]{0,63})\.([A-Za-z_][A-Za-z0-9_]{0,127})")
DEFAULT_UID = "10000"
BOOT_WAIT_S = 180


@dataclass
class ServiceUpdate:
    """The Secrets list a service's task template must get, and which keys it changes."""
    service_id: str
    service_name: str
    node: str
    secrets: list[dict]
    changed: list[tuple[str, str]] = field(default_factory=list)  # (profile, KEY)


def check(fleet, spec: FleetSpec) -> dict[str, str]:
    """Secret name -> id for every from_secret in the file; UsageError (file:line) when the fleet
    is not a swarm or the manager has no such secret. Read-only."""
    refs = secret_references(spec)
    if not refs:
        return {}
    from hermesctl.swarm import SwarmFleet
    _, _, key, ref = refs[0]
    if not isinstance(fleet, SwarmFleet) or fleet.manager is None:
        raise UsageError(f"{spec.path}:{ref.line}: env {key}: from_secret is a Docker Swarm secret: "
                         "use --swarm MANAGER")
    ids = {s["Spec"]["Name"]: s["ID"] for s in fleet.manager.client.api.secrets()}
    for _, _, key, ref in refs:
        if ref.name not in ids:
            raise UsageError(f"{spec.path}:{ref.line}: env {key}: no swarm secret named {ref.name!r} "
                             "(docker secret create)")
    return ids


def target(profile: str, key: str) -> str:
    return f"{SECRET_ENV_PREFIX}{profile}.{key}"


def _hermes_ids(container_spec: dict) -> tuple[str, str]:
    """The hermes UID and GID the task will run with (HERMES_UID, else PUID, else 10000)."""
    env = dict(e.split("=", 1) for e in container_spec.get("Env") or [] if "=" in e)
    uid = env.get("HERMES_UID") or env.get("PUID") or DEFAULT_UID
    gid = env.get("HERMES_GID") or env.get("PGID") or DEFAULT_UID
    return (uid if uid.isdigit() else DEFAULT_UID), (gid if gid.isdigit() else DEFAULT_UID)


def plan(fleet, container: HermesContainer, cspec: ContainerSpec, ids: dict[str, str]
         ) -> tuple[ServiceUpdate | None, list[tuple[str, str, str, str]], dict[tuple[str, str], str]]:
    """(the service update, or None; (profile, KEY, action, detail) per secret to attach or
    detach; the keys whose secret is attached already: {(profile, KEY): detail}).
    A hermes-env secret of a profile the file names, for a key that is no from_secret (any more),
    is detached: the image would otherwise write it over the file's value at every boot."""
    if getattr(fleet, "manager", None) is None:
        return None, [], {}
    wanted = {(p.name, key): ref for p in cspec.profiles for key, ref in p.env.items()
              if getattr(ref, "source", None) == "secret"}
    named = {p.name for p in cspec.profiles}
    task = fleet.task_of(container)
    if task is None:
        raise HermesctlError(f"{container.name}: not a current swarm task")
    service = fleet.manager.client.api.inspect_service(task.service)
    cs = service["Spec"]["TaskTemplate"]["ContainerSpec"]
    uid, gid = _hermes_ids(cs)
    secrets, attached, changes, settled = [], {}, [], {}
    for s in cs.get("Secrets") or []:
        match = TARGET.fullmatch((s.get("File") or {}).get("Name", ""))
        if match is None:
            secrets.append(s)  # not ours: kept as it is
        elif (match.group(1), match.group(2)) in wanted:
            attached[s["File"]["Name"]] = s
        elif match.group(1) in named:
            changes.append((match.group(1), match.group(2), "unset-secret",
                            f"{match.group(2)} (secret {s.get('SecretName')} detached; .env keeps its value)"))
        else:
            secrets.append(s)  # a profile the file does not name: left alone
    for (profile, key), ref in sorted(wanted.items()):
        file = {"Name": target(profile, key), "UID": uid, "GID": gid, "Mode": SECRET_MODE}
        secrets.append({"SecretID": ids[ref.name], "SecretName": ref.name, "File": file})
        now = attached.get(file["Name"])
        if now and now["SecretID"] == ids[ref.name] and now["File"] == file:
            settled[(profile, key)] = f"{key}={ref.describe()} (.env differs from the secret)"
        else:
            was = now["SecretID"][:12] if now else "unset"
            changes.append((profile, key, "set-secret",
                            f"{key}={ref.describe()} (secret {ids[ref.name][:12]}, was {was})"))
    if not changes:
        return None, [], settled
    update = ServiceUpdate(service["ID"], service["Spec"]["Name"], task.node, secrets,
                           [(p, k) for p, k, _, _ in changes])
    return update, sorted(changes), settled


def drift(fleet, container: HermesContainer) -> dict[str, dict[str, str]]:
    """{profile: {KEY: same|differs|no-profile|unreadable|refused}} from inside the container."""
    res = fleet.run(container, [SLOTS_TOOL, "load-secrets", "--check"])
    if not res.ok:
        raise ExecError(f"{container.name}: cannot compare secrets with .env: {res.stderr.strip()[:200]}")
    return json.loads(res.stdout)


def load(fleet, container: HermesContainer, profile: str, run_locked) -> tuple[bool, str]:
    """Write the profile's attached secrets into its .env, in the container, as hermes."""
    res = run_locked(fleet, container, [SLOTS_TOOL, "load-secrets", profile])
    if not res.ok:
        return False, res.stderr.strip()[:200] or "failed"
    outcomes = json.loads(res.stdout).get(profile, {})
    bad = sorted(k for k, v in outcomes.items() if v not in ("written", "same"))
    return (not bad), ("written" if not bad else "not written: " + ", ".join(f"{k} {outcomes[k]}" for k in bad))


def apply_update(fleet, update: ServiceUpdate) -> tuple[bool, str]:
    """One service update with the new Secrets (one task restart), then wait until the new task
    has booted: at boot it wrote the secrets into .env, and the reconciler restored gateways."""
    from hermesctl.swarm_service import control_for
    api = fleet.manager.client.api
    control = control_for(fleet, update.service_id, update.node)
    before = control.task_ids()
    current = api.inspect_service(update.service_id)
    template = current["Spec"]["TaskTemplate"]
    template = {**template, "ContainerSpec": {**template["ContainerSpec"], "Secrets": update.secrets}}
    api.update_service(update.service_id, current["Version"]["Index"], task_template=template,
                       fetch_current_spec=True)
    cid, why = control.new_task_container(before, BOOT_WAIT_S)
    if cid is None:
        return False, f"{update.service_name}: {why}"
    task = HermesContainer(endpoint=update.node, id=cid, name=cid[:12], state="running", status="")
    deadline = time.monotonic() + BOOT_WAIT_S
    while time.monotonic() < deadline:
        try:
            res = fleet.run(task, [AGENT, "status"])
            if res.ok and json.loads(res.stdout).get("booted"):
                return True, "service updated, task restarted"
        except (HermesctlError, ValueError):
            pass  # not started yet
        time.sleep(1)
    return False, f"{update.service_name}: the new task did not boot within {BOOT_WAIT_S}s"
