"""hermesctl doctor: one check per known pitfall, each with its fix; --fix applies the safe ones."""
import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass

from hermesctl.agent import client as agent
from hermesctl.agent import contract
from hermesctl.agent.probe import snapshot_from_status
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.core.parallel import fan_out
from hermesctl.engine import journal
from hermesctl.model.names import is_profile_name
from hermesctl.model.results import ItemResult, exit_status
from hermesctl.model.targets import Target
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich: not on the quick read path (hermesctl.cli.quick_read)
    from hermesctl.render.output import Output

SETUP_HOOK = contract.SETUP_HOOK


@dataclass
class Finding:
    endpoint: str
    container: str
    check: str
    ok: bool
    detail: str = ""
    fix: str = ""
    fixable: bool = False
    fixed: bool = False
    pids: list[int] | None = None  # gateway-orphaned: the processes --fix ends ...
    restart: str | None = None     # ... and the profile it then starts under s6 (desired running)

    def as_result(self) -> ItemResult:
        good = self.ok or self.fixed
        return ItemResult(f"{self.endpoint}/{self.container} {self.check}", good, "ok" if good else "problem",
                          self.detail)


def _likely_cause(state) -> str:
    if state is None:
        return "no gateway_state.json: look at `hermesctl logs`"
    text = " ".join(filter(None, [state.exit_reason, state.gateway_state] + [
        str(v.get("error_code", "")) + " " + str(v.get("error_message", ""))
        for v in state.platforms.values() if isinstance(v, dict)])).lower()
    if "address already in use" in text or ("port" in text and "use" in text):
        return "port in use: give each profile a distinct API_SERVER_PORT in its .env"
    if "model" in text or "provider" in text or "auth" in text:
        return "no model or credentials configured: run `hermes -p <profile> setup` (hermesctl exec)"
    if state.gateway_state == "startup_failed":
        return f"startup failed ({state.exit_reason or 'see logs'})"
    return f"last recorded state {state.gateway_state or 'unknown'}: see `hermesctl logs`"


def check_container(fleet: Fleet, c: HermesContainer, token_key: bytes | None = None,
                    tokens: dict | None = None) -> list[Finding]:
    """The container's findings; with `token_key`, the keyed hashes of its profiles' platform
    tokens go into `tokens` ((endpoint, container, profile) -> {KEY: hash}) for shared_tokens."""
    if not c.running:
        findings = [Finding(c.endpoint, c.name, "running", False, c.status, "docker start " + c.name)]
        if c.exit_code == 143:
            findings.append(Finding(
                c.endpoint, c.name, "exit-143", False,
                "last exit was 143 (SIGTERM): something ran halt or `s6-svscanctl -t` instead of letting the CMD exit",
                "let the main program exit to stop the container; do not halt s6 from a service"))
        return findings
    environment = {contract.TOKEN_KEY_ENV: token_key.hex()} if token_key else None
    facts = fleet.ask(c, "facts", environment=environment)  # the status too: one exec
    if tokens is not None:
        tokens.update(_token_hashes(c, facts.get("platform_tokens")))
    snap = snapshot_from_status(facts["status"])
    out = [Finding(c.endpoint, c.name, "s6-pid1", snap.pid1 == contract.PID1_NAME,
                   f"PID 1 is {snap.pid1 or 'unknown'}",
                   "recreate the container with the image's ENTRYPOINT (/init) and without --init")]
    has_command_dir = facts.get("command_dir") is True  # anything but a plain yes is a problem
    out.append(Finding(c.endpoint, c.name, "command-dir", has_command_dir,
                       "" if has_command_dir else "/command/s6-svc missing",
                       "use the Hermes image: /command must hold the s6 programs"))
    ownership = facts.get("ownership") or {}
    misowned, count = list(ownership.get("misowned") or []), int(ownership.get("misowned_count") or 0)
    out.append(Finding(c.endpoint, c.name, "ownership", not misowned,
                       f"{count} paths not owned by hermes, e.g. {misowned[0]}" if misowned else "",
                       f"re-run {SETUP_HOOK} as root (re-owns the image's state, never symlinks)", fixable=True))
    out += layout_findings(c, facts.get("layout") or [])
    for name in snap.invalid_slots:
        out.append(Finding(c.endpoint, c.name, "slot-name", False,
                           f"/run/service/gateway-{name} is not a profile's slot ({ascii(name)} is not a profile name): "
                           "hermesctl ignores it",
                           "remove it as hermes (s6-svc -d, then rm -r the directory), or restart the container"))
    profiles = [p for p in facts.get("profiles") or [] if isinstance(p, dict)]
    for name in (p.get("name") for p in profiles if not is_profile_name(p.get("name"))):
        out.append(Finding(c.endpoint, c.name, "profile-name", False,
                           f"profiles/{name} is not a profile name ({ascii(name)}): hermesctl ignores it",
                           "rename or remove the directory"))
    profiles = [p for p in profiles if is_profile_name(p.get("name"))]
    for name in (p["name"] for p in profiles if not p.get("readable")):
        out.append(Finding(c.endpoint, c.name, "profile-readable", False,
                           f"profiles/{name} is not readable by hermes: its gateway cannot start",
                           f"chmod u+rwx $HERMES_HOME/profiles/{name} (as root)"))
    for name in (p["name"] for p in profiles if p.get("readable") and not p.get("has_soul")):
        out.append(Finding(c.endpoint, c.name, "profile-without-soul", False,
                           f"profiles/{name} has no SOUL.md: the reconciler skips it at boot",
                           f"add profiles/{name}/SOUL.md to make it a profile, or remove the directory"))
    for p, slot in sorted(snap.slots.items()):
        if slot.status is None:
            out.append(Finding(c.endpoint, c.name, "slot-supervised", False, f"gateway-{p} has no supervisor",
                               "rescan: s6-svscanctl -a /run/service", fixable=True))
        orphans = snap.orphans(p)
        if orphans:
            out.append(Finding(c.endpoint, c.name, "gateway-orphaned", False,
                               f"{p}: gateway process {', '.join(map(str, orphans))} runs outside its supervisor "
                               f"(s6 says {slot.run_state}; its supervisor was probably killed)",
                               f"end it (kill as hermes), then `hermesctl gateway start {c.name}:{p}` if wanted",
                               fixable=True, pids=orphans,
                               restart=p if slot.state and slot.state.desired_state == "running" else None))
        if slot.status is None:
            pass
        elif slot.crash_looping or slot.parked:
            kind = "parked (exit 78)" if slot.parked else "crash-looping"
            out.append(Finding(c.endpoint, c.name, "gateway-health", False, f"{p}: {kind}; {_likely_cause(slot.state)}",
                               "fix the cause, then `hermesctl gateway restart " + f"{c.name}:{p}`"))
        elif slot.all_platforms_fatal:
            errors = "; ".join(f"{name}: {str(info.get('error_message') or info.get('error_code') or 'fatal')[:200]}"
                               for name, info in sorted(slot.platforms.items()))
            out.append(Finding(c.endpoint, c.name, "gateway-health", False,
                               f"{p}: up, but hermes gave up on every platform ({errors})",
                               "fix the platforms' configuration (token, package), then `hermesctl gateway restart "
                               f"{c.name}:{p}`"))
    return out


def _token_hashes(c: HermesContainer, reported: object) -> dict:
    """The agent's platform_tokens, believed only in shape: profile names, the contract's keys,
    64 hex digits (an older agent reports none)."""
    found = {}
    for profile, hashes in (reported.items() if isinstance(reported, dict) else ()):
        if not is_profile_name(profile) or not isinstance(hashes, dict):
            continue
        good = {k: v for k, v in hashes.items() if k in contract.PLATFORM_TOKEN_KEYS
                and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)}
        if good:
            found[(c.endpoint, c.name, profile)] = good
    return found


def shared_tokens(tokens: dict) -> list[Finding]:
    """One bot token, one gateway: every platform token held by two or more profiles anywhere
    in the fleet (across containers and endpoints), compared by the agents' keyed hashes."""
    holders = defaultdict(list)
    for (endpoint, container, profile), hashes in sorted(tokens.items()):
        for key, digest in hashes.items():
            holders[(key, digest)].append((endpoint, f"{container}:{profile}"))
    findings = []
    for (key, _), places in sorted(holders.items()):
        if len(places) < 2:
            continue
        endpoints = sorted({e for e, _ in places})
        findings.append(Finding(",".join(endpoints), ",".join(t for _, t in places), "platform-token", False,
                                f"{key} is one token held by {len(places)} profiles: their gateways fight over "
                                "it (Telegram answers the second poller 409 Conflict)",
                                "give each profile its own bot token (or stop all but one of these gateways)"))
    return findings


def layout_findings(c: HermesContainer, problems: list) -> list[Finding]:
    """Standard directories of HERMES_HOME that hermes replaced by a symlink or a file: the
    container still boots, without them (its gateways may not log, its profiles may be skipped).
    Only names of the contract's list are believed; what the container says is shown escaped."""
    out = []
    for problem in problems:
        name = problem.get("name") if isinstance(problem, dict) else None
        if name not in contract.STANDARD_DIRS:
            continue
        found = problem.get("found")
        found = found if found in ("symlink", "regular file", "FIFO", "socket", "special file") else "non-directory"
        target = problem.get("target")
        what = f"{found} to {target[:200]!r}" if isinstance(target, str) else found  # repr escapes controls
        out.append(Finding(c.endpoint, c.name, "data-layout", False,
                           f"$HERMES_HOME/{name} is a {what}, not a directory",
                           f"docker exec -u hermes {c.name} rm $HERMES_HOME/{name}, then "
                           f"docker restart {c.name} (the boot recreates it)"))
    return out


def shared_volumes(containers: list[HermesContainer]) -> list[Finding]:
    users = defaultdict(list)
    for c in containers:
        for v in c.volumes:
            users[(c.endpoint, v)].append(c.name)
    return [Finding(endpoint, ",".join(names), "shared-volume", False,
                    f"{len(names)} containers share /opt/data volume {v}: s6-log locks and gateways collide",
                    "give every container its own volume")
            for (endpoint, v), names in users.items() if len(names) > 1]


def _apply_fix(fleet: Fleet, c: HermesContainer, f: Finding) -> bool:
    if f.check == "ownership":
        return fleet.run(c, [SETUP_HOOK], user="root").ok
    if f.check == "slot-supervised":
        return fleet.run(c, [f"{contract.S6_DIR}/s6-svscanctl", "-a", contract.SCANDIR]).ok
    if f.check == "gateway-orphaned":
        # As hermes: it can end only hermes' own processes, whatever a pid turned out to be.
        ended = fleet.run(c, agent.argv("end-processes", *map(str, f.pids or []))).ok
        if ended and f.restart:
            return fleet.run(c, agent.argv("operate", "start", f.restart, "--settle", "1"),
                             timeout=fleet.exec_timeout + 60).ok
        return ended
    return False


def doctor(out: "Output", fleet: Fleet, targets: list[Target], *, fix: bool) -> ExitStatus:
    everything = fleet.containers()
    if targets:
        chosen = {c.key for t in targets for c in fleet.containers_matching(t)}
        containers = [c for c in everything if c.key in chosen]
    else:
        containers = everything
    findings: list[Finding] = shared_volumes(containers)
    by_name = {(c.endpoint, c.name): c for c in containers}
    # A new key every run: a hash means nothing later. os.urandom is what secrets.token_bytes
    # returns, without importing secrets (hashlib, hmac, base64: ~5 ms of every doctor's start).
    token_key, tokens = os.urandom(32), {}
    for o in fan_out(lambda c: check_container(fleet, c, token_key, tokens), containers):
        if o.ok:
            findings.extend(o.value)
        else:
            entry = fleet.did_not_answer(o.item, o.error)
            findings.append(Finding(o.item.endpoint, o.item.name, "reachable", False,
                                    f"{entry.reason}: {entry.message}",
                                    "see `docker logs` and the exec that hangs (hermesctl --timeout)"))
    findings.extend(shared_tokens(tokens))
    # The host's own records of operations stopped midway (this fleet's, or the targets').
    for r in journal.interrupted_in(fleet, journal.instance_names(containers) if targets else None):
        d = journal.describe(r)
        findings.append(Finding(d["where"] or "-", d["instance"] or "-", "interrupted-operation", False,
                                f"{r.what} stopped at step {d['step']} (backup {d['backup'] or 'not made'})",
                                f"`{journal.RECOVER_HINT}` (with the same --host/--swarm options)"))
    if fix:
        for f in findings:
            if not f.ok and f.fixable and (f.endpoint, f.container) in by_name:
                f.fixed = _apply_fix(fleet, by_name[(f.endpoint, f.container)], f)
    problems = [f for f in findings if not f.ok and not f.fixed]
    if out.json:
        out.document("doctor", {"ok": not problems, "findings": [asdict(f) for f in findings],
                                "problems": len(problems)})
    else:
        rows = [[f.container, f.check, "ok" if f.ok else ("fixed" if f.fixed else "PROBLEM"),
                 f.detail if not f.ok else "", "" if f.ok or f.fixed else f.fix] for f in findings]
        out.print(out.table(["CONTAINER", "CHECK", "RESULT", "DETAIL", "FIX"], rows,
                            endpoints=[f.endpoint for f in findings]))
    return exit_status([f.as_result() for f in findings])
