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

from hermesctl.agent import client as agent
from hermesctl.agent.contract import AGENT, SECRET_ENV_PREFIX
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.config.fleetfile import ContainerSpec, FleetSpec
from hermesctl.config.references import secret_references
from hermesctl.core.errors import ExecError, HermesctlError, UsageError, describe

SECRET_MODE = 0o400
# The file a from_secret becomes: neither profile names nor keys hold a dot.
TARGET = re.compile(re.escape(SECRET_ENV_PREFIX) + r"([a-z0-9][a-z0-9_-]{0,63})\.([A-Za-z_][A-Za-z0-9_]{0,127})")
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
    _, _, key, ref = refs[0]
    if fleet.kind != "swarm" or fleet.backend.manager is None:
        raise UsageError(f"{spec.path}:{ref.line}: {ref.label or 'env ' + key}: from_secret is a Docker Swarm secret: "
                         "use --swarm MANAGER")
    ids = {s["Spec"]["Name"]: s["ID"] for s in fleet.backend.manager.daemon.secrets()}
    for _, _, key, ref in refs:
        if ref.name not in ids:
            raise UsageError(f"{spec.path}:{ref.line}: {ref.label or 'env ' + key}: no swarm secret named {ref.name!r} "
                             "(docker secret create)")
    return ids


def target(profile: str, key: str) -> str:
    return f"{SECRET_ENV_PREFIX}{profile}.{key}"


def _hermes_ids(fleet, container: HermesContainer) -> tuple[str, str]:
    """The uid and gid hermes' files have in the running task: its agent's `owner-ids` (the
    boot's remap rule lives in the image only). The updated task keeps the same environment."""
    doc = agent.ask(fleet, container, "owner-ids")
    uid, gid = doc.get("uid"), doc.get("gid")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 32 for v in (uid, gid)):
        raise ExecError(f"{container.name}: owner-ids answered {uid!r}, {gid!r}, not two ids")
    return str(uid), str(gid)


def plan(fleet, container: HermesContainer, cspec: ContainerSpec, ids: dict[str, str]
         ) -> tuple[ServiceUpdate | None, list[tuple[str, str, str, str]], dict[tuple[str, str], str]]:
    """(the service update, or None; (profile, KEY, action, detail) per secret to attach or
    detach; the keys whose secret is attached already: {(profile, KEY): detail}).
    A hermes-env secret of a profile the file names, for a key that is no from_secret (any more),
    is detached: the image would otherwise write it over the file's value at every boot."""
    if getattr(fleet.backend, "manager", None) is None:
        return None, [], {}
    wanted = {(p.name, key): ref for p in cspec.profiles for key, ref in p.env.items()
              if getattr(ref, "source", None) == "secret"}
    named = {p.name for p in cspec.profiles}
    task = fleet.backend.task_of(container)
    if task is None:
        raise HermesctlError(f"{container.name}: not a current swarm task")
    service = fleet.backend.manager.daemon.inspect_service(task.service)
    cs = service["Spec"]["TaskTemplate"]["ContainerSpec"]
    uid, gid = _hermes_ids(fleet, container)
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
    try:
        return fleet.ask(container, "load-secrets", "--check")["profiles"]
    except HermesctlError as exc:
        raise ExecError(f"{container.name}: cannot compare secrets with .env: {describe(exc)}") from None


def load(fleet, container: HermesContainer, profile: str, run_locked) -> tuple[bool, str]:
    """Write the profile's attached secrets into its .env, in the container, as hermes."""
    res = run_locked(fleet, container, agent.argv("load-secrets", profile))
    try:
        outcomes = agent.answer(res, where=container.name)["profiles"].get(profile, {})
    except HermesctlError as exc:
        return False, describe(exc)[:200]
    bad = sorted(k for k, v in outcomes.items() if v not in ("written", "same"))
    return (not bad), ("written" if not bad else "not written: " + ", ".join(f"{k} {outcomes[k]}" for k in bad))


def apply_update(fleet, update: ServiceUpdate) -> tuple[bool, str]:
    """One service update with the new Secrets (one task restart), then wait until the new task
    has booted: at boot it wrote the secrets into .env, and the reconciler restored gateways."""
    instance = fleet.backend.service_instance(fleet, update.service_name, update.node)
    before = instance.task_ids()
    template = fleet.backend.manager.daemon.inspect_service(update.service_id)["Spec"]["TaskTemplate"]
    instance.update_template({**template, "ContainerSpec": {**template["ContainerSpec"], "Secrets": update.secrets}})
    try:
        cid = instance.new_task_container(before, BOOT_WAIT_S)
    except HermesctlError as exc:
        return False, f"{update.service_name}: {describe(exc)}"
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
