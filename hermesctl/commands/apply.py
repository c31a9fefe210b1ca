"""hermesctl apply -f FLEET / hermesctl diff -f FLEET: converge containers to a fleet file.

Plan first (read-only, one pass per container, in parallel), print it, then act: create missing
profiles, write their .env settings (values travel in the exec environment, never in argv, and
secrets are never printed), start/stop gateways, restart running ones whose settings changed.
Nothing is deleted unless --prune: then profiles the file does not name, and in the profiles it
names the config keys and skills that apply itself set earlier (the agent records them in the
profile's .hermesctl-applied.json) and the file no longer lists; nothing else is touched.
A second apply with no change plans nothing.

Referenced values ({from_env}, {from_file}: hermesctl.config.references) are written like literals but
shown only as a keyed hash, even with --show-values; {from_secret} (swarm) is attached to the
service and written by the image (hermesctl.backends.swarm.secrets): one task restart, no gateway restart.
"""
import hashlib
import re
import secrets
from dataclasses import asdict, dataclass, field

from hermesctl.agent import client as agent
from hermesctl.agent.contract import ENV_HMAC_KEY, tree_digest
from hermesctl.backends.docker.fleet import Fleet, Selection, Unreachable
from hermesctl.backends.swarm import secrets as swarm_secrets
from hermesctl.core.errors import ExecError, FleetFileError, HermesctlError, describe
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.config.fleetfile import (API_SERVER_KEYS, CONFIG_KEY, SECRET_LOOKING, SKILL_NAME, ContainerSpec,
                                        FleetSpec, ProfileSpec, one_token_one_gateway)
from hermesctl.agent.probe import ContainerSnapshot
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.config.references import Reference, config_template, hmac_of, resolve
from hermesctl.core.parallel import fan_out
from hermesctl.engine.lifecycle import apply as apply_lifecycle, list_profiles
from hermesctl.engine.lifecycle import run_locked
from hermesctl.model.names import DEFAULT_PROFILE
from hermesctl.model.results import ItemResult, exit_status
from hermesctl.model.targets import Target
from hermesctl.render.output import Output

API_PORT_BASE = 8642
LIFECYCLE_WAIT_S = 20  # as `gateway start/stop/restart --timeout`
MASK = "<hidden>"
_RUN_KEY = secrets.token_bytes(32)  # for an image without its own key: hashes agree within one run


def show_env(diff: dict, *, show_values: bool, refs: dict | None = None, current: dict | None = None,
             key: bytes = _RUN_KEY) -> str:
    """The settings a change writes, for tables and JSON. Every literal is masked unless the user
    asked for --show-values: no name heuristic can tell DATABASE_URL or SMTP_PASS from a note.
    A referenced value is never shown: its source and keyed hashes, new and before."""
    refs, current = refs or {}, current or {}
    parts = []
    for k, v in sorted(diff.items()):
        if k in refs:
            was = hmac_of(key, current[k]) if k in current else "unset"
            parts.append(f"{k}={refs[k].describe()} (hmac {hmac_of(key, v)}, was {was})")
        else:
            parts.append(f"{k}={v if show_values else MASK}")
    return ", ".join(parts)


def host_env(spec: ProfileSpec) -> dict:
    """KEY -> value for literals and resolved from_env/from_file; from_secret stays out (the
    host never has its value)."""
    return {k: (v.value if isinstance(v, Reference) else v) for k, v in spec.env.items()
            if not (isinstance(v, Reference) and v.source == "secret")}


def container_key(fleet: Fleet, container: HermesContainer) -> bytes:
    """The container's own HMAC key (root's file: hermes can neither read nor replace it)."""
    try:
        res = fleet.run(container, ["cat", ENV_HMAC_KEY], user="root")
    except HermesctlError:
        return _RUN_KEY
    text = res.stdout.strip() if res.ok else ""
    return bytes.fromhex(text) if re.fullmatch(r"[0-9a-f]{64}", text) else _RUN_KEY


SOUL_ENV = "HERMESCTL_SOUL"
SKILL_ENV = "HERMESCTL_SKILL"  # write-skill's files: JSON {path: base64}
# Leaves of config keys whose literal value is masked unless --show-values (hermes' own list of
# credential-shaped keys, _SECRET_CONFIG_KEYS, and what env's warning calls secret-looking).
SECRET_LEAVES = {"api_key", "apikey", "key", "token", "access_token", "refresh_token", "secret",
                 "password", "client_secret"}


@dataclass
class Change:
    endpoint: str
    container: str
    profile: str
    action: str            # create, set-env, set-config, set-soul, set-skill, unset-config, remove-skill,
                           # start, stop, restart, delete, ...
    detail: str = ""       # values only with --show-values
    env: dict = field(default_factory=dict, repr=False)  # values to write (not rendered)
    ok: bool | None = None
    message: str = ""

    def as_result(self) -> ItemResult:
        done = self.ok is True  # a change not made (None) did not succeed either
        return ItemResult(f"{self.endpoint}/{self.container}:{self.profile} {self.action}", done,
                          "ok" if done else "failed", self.message)


@dataclass
class ContainerPlan:
    container: HermesContainer
    snapshot: ContainerSnapshot
    changes: list[Change]
    service_update: "swarm_secrets.ServiceUpdate | None" = None
    problems: list = field(default_factory=list)  # (line, message): values hermes would not take
    warnings: list = field(default_factory=list)  # what the agent could not read (a config.yaml)


def port_owners(envs: dict[str, dict]) -> dict[int, str]:
    """API_SERVER_PORT -> profile, from the profiles' .env files. Two profiles claiming one port:
    the first in name order keeps it (the other one is reallocated if the file manages it)."""
    owners: dict[int, str] = {}
    for profile in sorted(envs):
        port = envs[profile].get("API_SERVER_PORT", "")
        if port.isdigit():
            owners.setdefault(int(port), profile)
    return owners


def desired_env(spec: ProfileSpec, current: dict, owners: dict[int, str]) -> dict:
    """The .env values the file asks for; api_server: true keeps a profile's own port and key
    and allocates what is missing (ports above 8642 that no other profile of the container uses)."""
    env = host_env(spec)
    if spec.api_server:
        env.setdefault("API_SERVER_ENABLED", "true")
        env.setdefault("API_SERVER_HOST", "127.0.0.1")
        port = current.get("API_SERVER_PORT", "")
        if not (port.isdigit() and owners.get(int(port)) == spec.name):
            free = API_PORT_BASE
            while free in owners:
                free += 1
            owners[free] = spec.name
            port = str(free)
        env["API_SERVER_PORT"] = port
        key = current.get("API_SERVER_KEY", "")
        env["API_SERVER_KEY"] = key if len(key) >= 16 else secrets.token_hex(24)
    return env


def agent_settings(fleet: Fleet, container: HermesContainer, spec: ContainerSpec, *, prune: bool = False) -> dict:
    """The agent's `agent-config` answer for the profiles that declare model/config/soul/skills
    (with prune: every profile the file names, for what apply set earlier):
    {profile: {exists, soul_sha256, keys{K: {problem, set, current, same}}, applied{config, skills}}}
    (hermes' verdict on each proposed value, and what the profile has now). {} when none is asked."""
    wanted = {p.name: {k: setting_value(k, v) for k, v in p.config.items()}
              for p in spec.profiles if prune or p.config or p.soul is not None or p.skills}
    if not wanted:
        return {}
    skills = {p.name: [s.name for s in p.skills] for p in spec.profiles if p.skills}
    try:
        doc = fleet.ask(container, "agent-config", environment=agent.agent_config_environment(wanted, skills))
    except HermesctlError as exc:
        raise ExecError(f"{container.name}: cannot read the profiles' agent settings: {describe(exc)}") from None
    profiles = doc.get("profiles")
    return profiles if isinstance(profiles, dict) else {}


def setting_value(key: str, value) -> str:
    """What config.yaml gets for `key`: a literal as it is; for a reference, `${VAR}` (its value
    goes to .env as VAR: references.config_env_name)."""
    return config_template(key) if isinstance(value, Reference) else value


def setting_label(key: str) -> str:
    """How diff names a key: model.X as the fleet file's model: says it, the rest as config.KEY."""
    return key if key.startswith("model.") else f"config.{key}"


def _secret_setting(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1].lower()
    return leaf in SECRET_LEAVES or bool(SECRET_LOOKING.fullmatch(leaf))


def _shown_setting(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def config_problems(spec: ContainerSpec, state: dict) -> list[tuple[int, str]]:
    """(line, `LINE: key: why`) for every value hermes would not take, as the agent judged it."""
    problems = []
    for p in spec.profiles:
        keys = (state.get(p.name) or {}).get("keys") or {}
        for key in p.config:
            problem = (keys.get(key) or {}).get("problem")
            if problem and isinstance(p.config[key], Reference) and str(problem).startswith("must be"):
                problem = f"a value by reference reaches hermes as text (${{VAR}}), and this setting {problem}"
            if problem:
                line = p.config_lines.get(key, 1)
                problems.append((line, f"{line}: {setting_label(key)}: {str(problem)[:200]}"))
    return problems


def config_changes(p: ProfileSpec, state: dict, *, exists: bool, show_values: bool) -> tuple | None:
    """("set-config", detail, {key: value}) for the keys whose value differs from the profile's,
    or None. A profile apply creates gets every key (what `profile create` puts there is not
    known until then). Referenced values are never shown; secret-looking ones only with
    --show-values; the rest are settings, shown as `config.agent.max_turns: 90 → 40`."""
    keys = state.get("keys") or {}
    payload, shown = {}, []
    for key in sorted(p.config):
        verdict = keys.get(key) or {}
        if exists and state.get("exists") and verdict.get("same"):
            continue
        value = p.config[key]
        payload[key] = setting_value(key, value)
        was = _shown_setting(verdict.get("current")) if exists and verdict.get("set") else "unset"
        if isinstance(value, Reference):  # its value is diffed (by keyed hash) as its .env entry
            shown.append(f"{setting_label(key)}: {MASK if was != 'unset' else was} → {payload[key]} "
                         f"({value.describe()})")
        elif _secret_setting(key) and not show_values:
            shown.append(f"{setting_label(key)}: {MASK} → {MASK}")
        else:
            shown.append(f"{setting_label(key)}: {was} → {value}")
    return ("set-config", ", ".join(shown), payload) if payload else None


MAX_APPLIED = 512  # entries per list of the record the agent reports (as its reader bounds it)


def applied_record(state: dict) -> tuple[list[str], list[str]]:
    """(config keys, skill names) the profile's record says apply set. The record is hermes'
    file and the answer passed through hermes' processes: every entry is checked again here
    (form, count) and what fails is left out, so prune can only name plain keys and names."""
    record = state.get("applied") if isinstance(state.get("applied"), dict) else {}
    lists = []
    for part, pattern in (("config", CONFIG_KEY), ("skills", SKILL_NAME)):
        entries = record.get(part) if isinstance(record.get(part), list) else []
        lists.append(sorted({e for e in entries[:MAX_APPLIED] if isinstance(e, str) and pattern.fullmatch(e)}))
    return lists[0], lists[1]


def prune_changes(p: ProfileSpec, state: dict) -> list[tuple]:
    """("unset-config", detail, {"KEY": key}) per key apply set earlier that the file no longer
    names, ("remove-skill", detail, {"SKILL": name}) per skill it installed that the file no
    longer lists. Keys and skills apply did not set are never named."""
    if not state.get("exists"):
        return []
    keys, skills = applied_record(state)
    listed = {s.name for s in p.skills}
    return [("unset-config", f"{setting_label(k)}: set by apply, not in the file", {"KEY": k})
            for k in keys if k not in p.config] + \
           [("remove-skill", f"skills: -{n}", {"SKILL": n}) for n in skills if n not in listed]


def soul_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def soul_change(p: ProfileSpec, state: dict, *, exists: bool) -> tuple | None:
    """("set-soul", "changed (sha256 OLD → NEW)", {"SOUL": text}) when SOUL.md differs, or None."""
    if p.soul is None or p.soul.text is None:
        return None
    new = soul_digest(p.soul.text)
    old = state.get("soul_sha256") if exists and state.get("exists") else None
    if old == new:
        return None
    before = str(old)[:12] if old else "none"
    return "set-soul", f"soul: changed (sha256 {before} → {new[:12]})", {"SOUL": p.soul.text}


def skill_changes(p: ProfileSpec, state: dict, *, exists: bool) -> list[tuple]:
    """("set-skill", "skills: +NAME" or "skills: NAME changed (sha256 OLD → NEW)", payload) per
    declared skill whose files differ from the profile's skills/NAME."""
    installed = (state.get("skills") or {}) if exists and state.get("exists") else {}
    out = []
    for skill in p.skills:
        if skill.files is None:
            continue
        new = tree_digest(skill.files)
        old = installed.get(skill.name)
        if old == new:
            continue
        detail = f"skills: +{skill.name}" if not old else \
            f"skills: {skill.name} changed (sha256 {str(old)[:12]} → {new[:12]})"
        out.append(("set-skill", detail, {"SKILL": skill.name, "FILES": skill_payload(skill.files)}))
    return out


def skill_payload(files: dict) -> str:
    import base64
    return agent.skill_environment_value({k: base64.b64encode(v).decode("ascii") for k, v in files.items()})


def plan_container(fleet: Fleet, container: HermesContainer, spec: ContainerSpec, *, prune: bool,
                   show_values: bool = False, secret_ids: dict | None = None) -> ContainerPlan:
    snapshot = fleet.probe(container)
    existing = {p["name"]: p for p in list_profiles(fleet, container)}
    update, secret_changes, attached = swarm_secrets.plan(fleet, container, spec, secret_ids or {})
    reload: dict[str, list[str]] = {}  # profile -> details: attached secrets .env does not hold
    if attached:
        report = swarm_secrets.drift(fleet, container)
        for (profile, key), detail in attached.items():
            if report.get(profile, {}).get(key, "no-profile") != "same":
                reload.setdefault(profile, []).append(detail)
    agent_state = agent_settings(fleet, container, spec, prune=prune)
    keys = sorted({k for p in spec.profiles for k in host_env(p)} | set(API_SERVER_KEYS))
    try:
        envs: dict[str, dict] = fleet.ask(container, "get-env", *keys)["profiles"]
    except HermesctlError as exc:
        raise ExecError(f"{container.name}: cannot read profile settings: {describe(exc)}") from None
    owners = port_owners(envs)
    changes: list[Change] = []
    key = None
    for p in spec.profiles:
        exists = p.name == DEFAULT_PROFILE or _is_whole(existing.get(p.name, {}))
        if not exists:
            changes.append(Change(container.endpoint, container.name, p.name, "create"))
        current = envs.get(p.name, {})
        wanted_env = desired_env(p, current, owners)
        diff = {k: v for k, v in wanted_env.items() if current.get(k) != v}
        if diff:
            refs = {k: v for k, v in p.env.items() if isinstance(v, Reference) and k in diff}
            if refs and key is None:
                key = container_key(fleet, container)
            shown = show_env(diff, show_values=show_values, refs=refs, current=current, key=key or _RUN_KEY)
            changes.append(Change(container.endpoint, container.name, p.name, "set-env", shown, env=diff))
        settings = config_changes(p, agent_state.get(p.name, {}), exists=exists, show_values=show_values)
        soul = soul_change(p, agent_state.get(p.name, {}), exists=exists)
        skills = skill_changes(p, agent_state.get(p.name, {}), exists=exists)
        if prune and exists:
            skills += prune_changes(p, agent_state.get(p.name, {}))
        for change in (settings, soul, *skills):
            if change is not None:
                action, detail, payload = change
                changes.append(Change(container.endpoint, container.name, p.name, action, detail, env=payload))
        if p.name in reload:
            changes.append(Change(container.endpoint, container.name, p.name, "load-secrets",
                                  ", ".join(reload[p.name])))
        changes += [Change(container.endpoint, container.name, p.name, action, detail)
                    for profile, _, action, detail in secret_changes if profile == p.name]
        slot = snapshot.slots.get(p.name)
        wanted_up = bool(slot and slot.status and (slot.status.up or slot.status.wanted_up))
        if p.gateway == "running" and not wanted_up:
            changes.append(Change(container.endpoint, container.name, p.name, "start"))
        elif p.gateway == "stopped" and wanted_up:
            changes.append(Change(container.endpoint, container.name, p.name, "stop"))
        elif (diff or p.name in reload or settings or soul or skills) and wanted_up and p.gateway != "stopped" \
                and update is None:
            # With a service update the whole task restarts: a gateway restart would be a second one.
            changes.append(Change(container.endpoint, container.name, p.name, "restart", "settings changed"))
    if prune:
        named = {p.name for p in spec.profiles}
        changes += [Change(container.endpoint, container.name, name, "delete", "not in the fleet file")
                    for name in sorted(existing) if name not in named]
    warnings = [f"{container.name}:{name}: {str(state.get('config_error'))[:200]}: its current settings are "
                "taken as hermes' defaults" for name, state in sorted(agent_state.items())
                if isinstance(state, dict) and state.get("config_error")]
    if prune:
        warnings += [f"{container.name}:{name}: {str(state.get('applied_error'))[:200]}: --prune removes nothing "
                     "there (what apply set cannot be told)" for name, state in sorted(agent_state.items())
                     if isinstance(state, dict) and state.get("applied_error")]
    return ContainerPlan(container, snapshot, changes, update,
                         problems=config_problems(spec, agent_state), warnings=warnings)


def make_plan(fleet: Fleet, spec: FleetSpec, *, prune: bool, show_values: bool = False) -> list[ContainerPlan]:
    """One plan per container that answers; a container that is missing, stopped, fails or
    times out is recorded in fleet.unreachable and the others are still planned. A reference
    that cannot be read fails the whole run first (usage error, file:line), before any change."""
    secret_ids = swarm_secrets.check(fleet, spec)
    pairs = []
    for cspec in spec.containers:
        try:
            pairs += [(c, cspec) for c, _ in fleet.match([Target(cspec.name, None, cspec.endpoint)])]
        except HermesctlError as exc:
            fleet.unreachable.append(Unreachable(cspec.endpoint or "-", describe(exc), cspec.name))
    plans = []
    for o in fan_out(lambda pair: plan_container(fleet, pair[0], pair[1], prune=prune, show_values=show_values,
                                                 secret_ids=secret_ids), pairs):
        if o.ok:
            plans.append(o.value)
        else:
            fleet.did_not_answer(o.item[0], o.error)
    if not plans and fleet.unreachable:
        raise HermesctlError(f"no container of {spec.path} answered: {fleet.unreachable[0].message}")
    problems = sorted(pr for plan in plans for pr in plan.problems)
    if problems:  # hermes' own verdict, before any container is changed
        raise FleetFileError(f"{spec.path}:{problems[0][1]}")
    return plans


def _agent_error(result, where: str) -> str:
    """The message of an agent's error document (or what the exec said)."""
    try:
        agent.answer(result, where=where)
        return f"exit {result.exit_code}"
    except HermesctlError as exc:
        return describe(exc)


def _is_whole(profile: dict) -> bool:
    """A profile hermes finished creating (an entry of the agent's `profiles`): its SOUL.md is there."""
    return bool(profile.get("has_soul"))


def _made_meanwhile(fleet: Fleet, container: HermesContainer, profile: str) -> bool:
    """After a failed create: the profile is there now, whole. The plan was read before this
    command held the container's lock, and a command interrupted a moment earlier (Ctrl-C, kill)
    leaves its in-container create running to its end: what apply wants is what is there."""
    try:
        return any(p["name"] == profile and _is_whole(p) for p in list_profiles(fleet, container))
    except HermesctlError:
        return False


def _run_changes(fleet: Fleet, plan: ContainerPlan) -> None:
    c = plan.container
    for ch in (x for x in plan.changes if x.action == "create"):
        res = run_locked(fleet, c, ["hermes", "profile", "create", ch.profile])
        created = res.ok or _made_meanwhile(fleet, c, ch.profile)
        ok = created and run_locked(fleet, c, agent.argv("adopt", ch.profile)).ok
        done = "created" if res.ok else "there already: created meanwhile by another command"
        ch.ok, ch.message = ok, done if ok else ((res.stderr or res.stdout).strip().splitlines() or ["failed"])[-1]
    for ch in (x for x in plan.changes if x.action == "set-env"):
        env = {f"HERMESCTL_ENV_{k}": v for k, v in ch.env.items()}
        res = run_locked(fleet, c, agent.argv("set-env", ch.profile, *sorted(ch.env)), environment=env)
        ch.ok, ch.message = res.ok, "written" if res.ok else _agent_error(res, c.name)
    for ch in (x for x in plan.changes if x.action == "set-config"):
        # hermes' own writer, as hermes: every key of the profile in one exec
        res = run_locked(fleet, c, agent.argv("config-set", ch.profile, *sorted(ch.env)),
                         environment=agent.config_values_environment(ch.env))
        ch.ok, ch.message = res.ok, "written"
        if not res.ok:
            why = _agent_error(res, c.name)
            for key, value in ch.env.items():  # the agent hides the refused key's value; these too
                if value and _secret_setting(key):
                    why = why.replace(value, MASK)
            ch.ok, ch.message = False, why
    for ch in (x for x in plan.changes if x.action == "set-soul"):
        res = run_locked(fleet, c, agent.argv("write-soul", ch.profile), environment={SOUL_ENV: ch.env["SOUL"]})
        ch.ok, ch.message = res.ok, "written" if res.ok else _agent_error(res, c.name)
    for ch in (x for x in plan.changes if x.action == "set-skill"):
        res = run_locked(fleet, c, agent.argv("write-skill", ch.profile, ch.env["SKILL"]),
                         environment={SKILL_ENV: ch.env["FILES"]})
        ch.ok, ch.message = res.ok, "written" if res.ok else _agent_error(res, c.name)
    for ch in (x for x in plan.changes if x.action == "unset-config"):
        res = run_locked(fleet, c, agent.argv("config-unset", ch.profile, ch.env["KEY"]))
        ch.ok, ch.message = res.ok, "unset" if res.ok else _agent_error(res, c.name)
    for ch in (x for x in plan.changes if x.action == "remove-skill"):
        res = run_locked(fleet, c, agent.argv("remove-skill", ch.profile, ch.env["SKILL"]))
        ch.ok, ch.message = res.ok, "removed" if res.ok else _agent_error(res, c.name)
    for ch in (x for x in plan.changes if x.action == "load-secrets"):
        ch.ok, ch.message = swarm_secrets.load(fleet, c, ch.profile, run_locked)
    snapshot = fleet.probe(c) if any(x.action in ("start", "stop", "restart") for x in plan.changes) else plan.snapshot
    for verb in ("stop", "start", "restart"):
        batch = [x for x in plan.changes if x.action == verb]
        if not batch:
            continue
        sel = Selection(c, snapshot, [x.profile for x in batch])
        by_profile = {r.profile: r for r in apply_lifecycle(fleet, sel, verb, timeout=LIFECYCLE_WAIT_S,
                                                            settle=1)}
        for ch in batch:
            r = by_profile[ch.profile]
            ch.ok, ch.message = r.ok, r.message
    for ch in (x for x in plan.changes if x.action == "delete"):
        res = run_locked(fleet, c, ["hermes", "profile", "delete", ch.profile, "-y"])
        ch.ok, ch.message = res.ok, "deleted" if res.ok else res.stderr.strip()
    if plan.service_update is not None:  # last: everything above is on the task it replaces
        ok, message = swarm_secrets.apply_update(fleet, plan.service_update)
        for ch in (x for x in plan.changes if x.action in ("set-secret", "unset-secret")):
            ch.ok, ch.message = ok, message


def render(out: Output, spec: FleetSpec, plans: list[ContainerPlan], *, applied: bool,
           kind: str = "apply") -> None:
    changes = [ch for p in plans for ch in p.changes]
    if out.json:
        out.document(kind, {"file": spec.path, "applied": applied,
                               "changes": [{k: v for k, v in asdict(ch).items() if k != "env"} for ch in changes]})
        return
    if not changes:
        out.line("no changes: the fleet matches " + spec.path)
        return
    columns = ["CONTAINER", "PROFILE", "ACTION", "DETAIL"] + (["RESULT"] if applied else [])
    rows = [[ch.container, ch.profile, ch.action, ch.detail] +
            ([("ok" if ch.ok else f"FAILED {ch.message}")] if applied else []) for ch in changes]
    out.print(out.table(columns, rows, endpoints=[ch.endpoint for ch in changes]))


def prepare(out: Output, spec: FleetSpec) -> FleetSpec:
    """References read (UsageError on a missing one), warnings about literal secrets printed."""
    spec = resolve(spec)
    one_token_one_gateway(spec)
    for warning in spec.warnings:
        out.warn(warning)
    return spec


def apply(out: Output, fleet: Fleet, spec: FleetSpec, *, dry_run: bool, prune: bool,
          show_values: bool = False) -> ExitStatus:
    spec = prepare(out, spec)
    plans = make_plan(fleet, spec, prune=prune, show_values=show_values)
    for warning in (w for p in plans for w in p.warnings):
        out.warn(warning)
    if dry_run or not any(p.changes for p in plans):
        render(out, spec, plans, applied=False)
        return ExitStatus.OK
    if not out.json:  # the plan first, then what became of it
        out.line("plan:")
        render(out, spec, plans, applied=False)
        out.line("result:")
    for o in fan_out(lambda p: _run_changes(fleet, p), plans):
        if not o.ok:
            for ch in o.item.changes:
                if ch.ok is None:
                    ch.ok, ch.message = False, describe(o.error)
    render(out, spec, plans, applied=True)
    return exit_status([ch.as_result() for p in plans for ch in p.changes])


def diff(out: Output, fleet: Fleet, spec: FleetSpec, *, prune: bool, show_values: bool = False) -> ExitStatus:
    """What apply would change; exit 1 when there is drift, 0 when none (as `kubectl diff`)."""
    spec = prepare(out, spec)
    plans = make_plan(fleet, spec, prune=prune, show_values=show_values)
    for warning in (w for p in plans for w in p.warnings):
        out.warn(warning)
    render(out, spec, plans, applied=False, kind="diff")
    return ExitStatus.FAILED if any(p.changes for p in plans) else ExitStatus.OK
