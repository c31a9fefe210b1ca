"""The fleet: every endpoint, the Hermes containers on them, and target selection."""
import fnmatch
import os
import sys
import time
from dataclasses import asdict, dataclass, field

from hermesctl.agent import client as agent
from hermesctl.agent.contract import AGENT_SOCKET
from hermesctl.backends.docker import execs
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.core.errors import (ContainerStoppedError, ExecTimeoutError, HermesctlError, NotFoundError,
                              NotHermesError, UnansweredError, UsageError, describe)
from hermesctl.backends.docker.inventory import (COMPOSE_PROJECT, LABEL, UNANSWERED_STATES, WORKING_DIR, HermesContainer,
                                 list_containers)
from hermesctl.agent.probe import ContainerSnapshot, snapshot_from_status
from hermesctl.config.settings import DEFAULT_EXEC_TIMEOUT
from hermesctl.core.parallel import Outcome, fan_out
from hermesctl.model.results import unreachable_warning
from hermesctl.model.targets import Candidate, Target, is_glob, match_containers, match_profiles
from hermesctl.render.terminal import safe

# The resident agent's answer is one document of some KB. hermes owns /run/service and may put
# anything at the socket's path, even a server that streams forever: whatever answers there gets
# one read of at most FAST_MAX_BYTES within FAST_TIMEOUT_S (head(1) on the connection, which
# s6-ipcclient hands over as fd 6), then the one-shot agent is asked instead.
FAST_MAX_BYTES = 4 << 20
FAST_TIMEOUT_S = 5.0
BOUNDED_STATUS_ARGV = ("/command/s6-ipcclient", AGENT_SOCKET, "/usr/lib/execline/bin/fdmove", "0", "6",
                       "/usr/bin/head", "-c", str(FAST_MAX_BYTES))


def candidates(containers: list[HermesContainer]) -> list[Candidate]:
    """What targets are matched against (targets.selected_names)."""
    return [Candidate(c.name, c.id, c.service, c.endpoint) for c in containers]


@dataclass
class Unreachable:
    """An endpoint, or one container on it, that did not answer: the rest of the answer stands."""
    endpoint: str
    message: str
    container: str | None = None   # None: the whole endpoint
    reason: str = "error"          # error, timeout

    @classmethod
    def of(cls, container: HermesContainer, exc: BaseException) -> "Unreachable":
        return cls(container.endpoint, describe(exc), container.name,
                   "timeout" if isinstance(exc, ExecTimeoutError) else "error")

    @classmethod
    def wanted_missing(cls, container: HermesContainer) -> "Unreachable | None":
        """An instance the orchestrator wants that has no container to ask (its task is pending,
        its node does not answer): what did not answer for it, as listing it reports it."""
        if container.state not in UNANSWERED_STATES:
            return None
        return cls(container.endpoint, container.status, container.name, container.state)

    def warning(self) -> str:
        """The line every command ends with for it (one wording, also for a served `ps`)."""
        return unreachable_warning(asdict(self))


@dataclass
class Selection:
    """The gateways one command acts on in one container."""
    container: HermesContainer
    snapshot: ContainerSnapshot
    profiles: list[str]


class ContainerBackend:
    """What plain Docker answers for a fleet: the Hermes containers on its endpoints (labelled,
    scoped to a compose project), an exec in one, its output as a stream, its inspect. No whole-
    instance operations (DockerBackend adds them) and no SDK import: the quick path runs it over
    the stdlib client (hermesctl.backends.docker.unix_api). A fleet holds one; its methods take
    the fleet, whose endpoints, scope and `unreachable[]` they read and add to."""
    kind = "docker"
    # False: no engine behind this backend runs healthchecks (a backend's own say, e.g. a test's
    # stand-in); otherwise each endpoint's engine says (Fleet.engine_runs_healthchecks).
    runs_healthchecks = True

    def containers(self, fleet: "Fleet") -> list[HermesContainer]:
        """Every Hermes container on every endpoint that answers (listed in parallel); an
        endpoint that does not is added to the fleet's unreachable[]."""
        found: list[HermesContainer] = []
        for o in fan_out(lambda e: list_containers(e, project=fleet.project, project_dir=fleet.project_dir),
                         fleet.endpoints):
            if o.ok:
                found.extend(o.value)
            else:
                fleet.unreachable.append(Unreachable(o.item.name, describe(o.error)))
        return found

    def run(self, fleet: "Fleet", container: HermesContainer, argv: list[str], **kwargs) -> execs.ExecResult:
        return execs.run(fleet.endpoint(container.endpoint), container, argv, **kwargs)

    def exec_stream(self, fleet: "Fleet", container: HermesContainer, argv: list[str], *, stderr: bool,
                    stdin: bool):
        return fleet.endpoint(container.endpoint).daemon.exec_stream(container.id, argv, user=execs.HERMES_USER,
                                                                     stderr=stderr, stdin=stdin)

    def inspect(self, fleet: "Fleet", container: HermesContainer) -> dict:
        return fleet.endpoint(container.endpoint).daemon.inspect_container(container.id)

    def names_matching(self, fleet: "Fleet", pattern: str) -> list[str]:
        """targets.selected_names over the fleet's containers; errors name close matches or a
        foreign container."""
        try:
            return match_containers(pattern, candidates(fleet.containers()))
        except NotFoundError:
            if not is_glob(pattern):
                self.why_not_found(fleet, pattern)
            raise

    def why_not_found(self, fleet: "Fleet", name: str) -> None:
        """Name the real reason a container exists yet is not selectable: no Hermes label, or
        a Hermes container outside the compose project in use."""
        for endpoint in fleet.endpoints:
            try:
                labels = endpoint.daemon.inspect_container(name)["Config"].get("Labels") or {}
            except Exception:  # noqa: BLE001 - absent or unreachable: not a reason to fail here
                continue
            if labels.get(LABEL) != "true":
                raise NotHermesError(f"container {name} is not a Hermes container (no label {LABEL}=true)")
            if fleet.project or fleet.project_dir:
                scope = f"compose project {fleet.project!r}" if fleet.project else \
                    f"the compose project of {fleet.project_dir}"
                other = labels.get(COMPOSE_PROJECT)
                where = f"it belongs to compose project {other!r}" if other else "it belongs to no compose project"
                raise NotFoundError(f"container {name} is outside {scope} ({where}): "
                                    "use --project, or run hermesctl outside the compose directory")

    def scope_endpoints(self, fleet: "Fleet") -> set[str]:
        return {e.name for e in fleet.endpoints}

    def refresh(self, fleet: "Fleet") -> None:
        """What the backend knows beyond the container list, read again (for --watch)."""

    def instances(self, fleet: "Fleet", targets: list[Target]) -> list:
        raise NotImplementedError(f"{self.kind}: no whole-instance operations")

    def instance_from_record(self, fleet: "Fleet", record: dict):
        raise NotImplementedError(f"{self.kind}: no whole-instance operations")


@dataclass
class Fleet:
    """Every endpoint, the Hermes containers on them, and target selection; what the
    orchestrator answers comes from the backend it holds (`backend`: ContainerBackend,
    DockerBackend, SwarmBackend: hermesctl.backends.base.Backend)."""
    endpoints: list[Endpoint]
    project: str | None = None
    project_dir: str | None = None  # no project yet: only containers compose starts from here
    configured: int = 1  # endpoints asked for, answering or not
    unreachable: list[Unreachable] = field(default_factory=list)
    exec_timeout: float = DEFAULT_EXEC_TIMEOUT
    _containers: list[HermesContainer] | None = None
    backend: ContainerBackend = field(default_factory=ContainerBackend)

    @property
    def kind(self) -> str:
        """The backend: docker, swarm."""
        return self.backend.kind

    @property
    def runs_healthchecks(self) -> bool:
        """Whether the engine runs healthchecks at all (the backend's to say)."""
        return self.backend.runs_healthchecks

    def instances(self, targets: list[Target]) -> list:
        """Whole instances (hermesctl.backends.base.Instance): the backend's to say."""
        return self.backend.instances(self, targets)

    def instance_from_record(self, record: dict):
        """The instance an interrupted operation left, found again."""
        return self.backend.instance_from_record(self, record)

    def engine_runs_healthchecks(self, endpoint: Endpoint) -> bool:
        """Whether a container's healthcheck will ever give a status on this endpoint (Podman
        without systemd runs none): when not, the agent's boot gate alone decides, at once
        (hermesctl.engine.health_gate)."""
        if not self.runs_healthchecks:
            return False
        from hermesctl.backends.docker.podman import dialect
        return dialect(endpoint).runs_healthchecks(getattr(endpoint, "daemon", None))

    def empty_reason(self, here=None, *, project_given: bool = False) -> str:
        """Why no Hermes container was found: the compose project in use (`here`, the compose
        directory the command runs in, hermesctl.config.compose), or the endpoints asked."""
        if self.project:
            source = f" (the project of {here.describe()})" if here and not project_given else ""
            return f"no Hermes container in compose project {self.project!r}{source}"
        if self.project_dir:
            return (f"no Hermes container was started by docker compose from {here.describe()}; "
                    "outside this directory (or with --project) hermesctl sees every Hermes container")
        return f"no Hermes container (label {LABEL}=true) on " + ", ".join(e.name for e in self.endpoints)

    def endpoint(self, name: str) -> Endpoint:
        return next(e for e in self.endpoints if e.name == name)

    def scope_endpoints(self) -> set[str]:
        """Every endpoint this fleet stands for, whether or not it holds a container now (records
        of operations are shown for these)."""
        return self.backend.scope_endpoints(self)

    def containers(self) -> list[HermesContainer]:
        """Every instance the backend knows of (listed once, until `refresh`)."""
        if self._containers is None:
            self._containers = self.backend.containers(self)
        return self._containers

    def run(self, container: HermesContainer, argv: list[str], **kwargs) -> execs.ExecResult:
        """argv in the container, within the run's exec deadline unless the caller gives one."""
        kwargs.setdefault("timeout", self.exec_timeout)
        return self.backend.run(self, container, argv, **kwargs)

    def exec_stream(self, container: HermesContainer, argv: list[str], *, stderr: bool = True,
                    stdin: bool = False):
        """argv in the container as hermes, its output as it comes: a generator of byte chunks
        with a close(). The caller bounds it (a follower runs until closed). With `stdin`, the
        exec's stdin is attached and never written: it closes when we go (contract.LIFELINE_OPTION)."""
        return self.backend.exec_stream(self, container, argv, stderr=stderr, stdin=stdin)

    def inspect(self, container: HermesContainer) -> dict:
        """The orchestrator's own description of the container (Docker's inspect: its State, the
        health log), for what the listing does not carry."""
        return self.backend.inspect(self, container)

    def did_not_answer(self, container: HermesContainer, exc: BaseException) -> Unreachable:
        """Record a container that failed or timed out; the command goes on with the others."""
        entry = Unreachable.of(container, exc)
        self.unreachable.append(entry)
        return entry

    def ask(self, container: HermesContainer, verb: str, *args: str, **kwargs) -> dict:
        """One question to the container's agent (hermes-contract/v1); its JSON answer."""
        return agent.ask(self, container, verb, *args, **kwargs)

    def ask_resident(self, container: HermesContainer, verb: str, *args: str) -> dict:
        """A question (contract.QUERY_SOCKET_VERBS) for the resident agent over its query socket,
        in one exec of C programs; when it does not answer (an older image, the service down,
        any error), the one-shot agent in a second exec, which also says what was wrong."""
        deadline = time.monotonic() + self.exec_timeout  # for both execs together
        why = None
        try:
            argv, environment = agent.resident_question(verb, *args)
            fast = self.run(container, argv, environment=environment,
                            timeout=max(min(FAST_TIMEOUT_S, self.exec_timeout), self.exec_timeout / 2))
            if fast.ok and fast.stdout.startswith("{") and len(fast.stdout) < agent.RESIDENT_MAX_BYTES:
                return agent.parse(fast.stdout, where=container.name)
            why = f"exit {fast.exit_code}: {fast.stderr.strip()[:200]}"
        except ExecTimeoutError as exc:
            if deadline - time.monotonic() < 1.0:
                raise  # the whole deadline is spent: the container did not answer
            why = describe(exc)
        except (HermesctlError, ValueError) as exc:
            why = describe(exc)
        if os.environ.get("HERMESCTL_DEBUG"):
            print(f"hermesctl: {container.name}: the resident agent did not answer {verb} ({safe(why)})",
                  file=sys.stderr)
        return self.ask(container, verb, *args, timeout=max(1.0, deadline - time.monotonic()))

    def probe(self, container: HermesContainer) -> ContainerSnapshot:
        """Everything about the container's gateways, in one exec: the resident agent's answer
        through a C client (no Python starts), or, when it does not answer (an older image, the
        service down), the one-shot agent's `status` in a second exec."""
        deadline = time.monotonic() + self.exec_timeout  # for both execs together
        try:
            fast = self.run(container, list(BOUNDED_STATUS_ARGV), timeout=min(FAST_TIMEOUT_S, self.exec_timeout))
        except ExecTimeoutError as exc:
            if deadline - time.monotonic() < 1.0:
                raise  # the whole deadline is spent: the container did not answer
            fast, why = None, describe(exc)
        if fast is None:
            pass
        elif fast.ok and fast.stdout.startswith("{") and len(fast.stdout) < FAST_MAX_BYTES:
            try:
                return snapshot_from_status(agent.answer(fast, where=container.name))
            except HermesctlError as exc:
                why = describe(exc)
        else:
            why = f"exit {fast.exit_code}: {fast.stderr.strip()[:200]}"
        if os.environ.get("HERMESCTL_DEBUG"):
            print(f"hermesctl: {container.name}: the resident agent did not answer ({safe(why)})", file=sys.stderr)
        return snapshot_from_status(self.ask(container, "status", timeout=max(1.0, deadline - time.monotonic())))

    def probe_all(self, containers: list[HermesContainer]) -> list[Outcome[HermesContainer, ContainerSnapshot]]:
        return fan_out(self.probe, containers)

    def names_matching(self, pattern: str) -> list[str]:
        """Container names a target's container part selects (targets.selected_names: a glob over
        names and services, a name, an id prefix, or a service with one container; a backend
        may know more names, as swarm's SERVICE.SLOT). Errors name close matches or a foreign
        container."""
        return self.backend.names_matching(self, pattern)

    def containers_matching(self, target: Target) -> list[HermesContainer]:
        """Containers (running or not) a target selects, on its endpoint if it names one."""
        if target.endpoint and not any(fnmatch.fnmatchcase(e.name, target.endpoint) for e in self.endpoints):
            known = ", ".join(e.name for e in self.endpoints)
            raise NotFoundError(f"no endpoint matches {target.endpoint!r} (endpoints: {known})")
        names = set(self.names_matching(target.container))
        found = [c for c in self.containers() if c.name in names
                 and (target.endpoint is None or fnmatch.fnmatchcase(c.endpoint, target.endpoint))]
        if not found:
            raise NotFoundError(f"no Hermes container matches {str(Target(target.container, None, target.endpoint))!r}")
        return found

    def match(self, targets: list[Target]) -> list[tuple[HermesContainer, list[Target]]]:
        """Containers selected by the targets, each with the targets that selected it.
        An explicitly named stopped container is an error; glob matches skip stopped ones."""
        chosen: dict[str, tuple[HermesContainer, list[Target]]] = {}
        for target in targets:
            found = self.containers_matching(target)
            matched = sorted({c.name for c in found})
            live = [c for c in found if c.running]
            unanswered = [c for c in found if c.state in UNANSWERED_STATES]
            if not live and unanswered:
                raise UnansweredError("; ".join(f"{c.name} is {c.state}: {c.status}" for c in unanswered))
            if not live:
                stopped = ", ".join(matched)
                raise ContainerStoppedError(f"container {stopped} is not running"
                                            if len(matched) == 1 else
                                            f"no running container matches {target.container!r} ({stopped} stopped)")
            if not is_glob(target.container):
                for c in found:
                    if not c.running and c.state not in UNANSWERED_STATES:
                        raise ContainerStoppedError(f"container {c.name} is not running ({c.status})")
            for c in live:
                chosen.setdefault(c.key, (c, []))[1].append(target)
        return list(chosen.values())

    def narrow_to_compose(self, project: str | None, project_dir: str | None) -> None:
        """Limit the fleet to a compose project, or (none yet) to what compose starts from project_dir."""
        self.project, self.project_dir = project, project_dir
        if self._containers is not None:
            self._containers = [c for c in self._containers if
                                (c.compose_project == project if project else c.labels.get(WORKING_DIR) == project_dir)]

    def refresh(self) -> None:
        """Forget the container list (for --watch): containers come and go."""
        self._containers = None
        self.unreachable.clear()
        self.backend.refresh(self)

    def one(self, target: Target) -> HermesContainer:
        """The single running container a command like exec or boot-log acts on."""
        if is_glob(target.container) or (target.endpoint and is_glob(target.endpoint)):
            raise UsageError(f"{target}: this command takes one container, not a glob")
        matched = [c for c, _ in self.match([Target(target.container, None, target.endpoint)])]
        if len(matched) > 1:
            where = ", ".join(sorted(c.endpoint for c in matched))
            raise UsageError(f"container {target.container} exists on several endpoints ({where}): "
                             f"name one as ENDPOINT/{target.container}")
        return matched[0]

    def select(self, targets: list[Target], *, unslotted: bool = False) -> list[Selection]:
        """Resolve targets down to gateways, probing each container once. Nothing is changed,
        so a bad target fails the whole command before any container is touched. A container
        that fails or times out while probed is recorded in `unreachable` and left out; only
        when no container answered at all is that an error. `unslotted` (gateway start, restart):
        a profile named exactly that has no slot yet but qualifies for one is selected too (the
        agent registers it first); a glob selects only slots."""
        if not targets:
            targets = [Target("*", None)]
        matched = self.match(targets)
        outcomes = self.probe_all([c for c, _ in matched])
        selections = []
        failed: list[BaseException] = []
        for (container, its_targets), o in zip(matched, outcomes):
            if not o.ok:
                self.did_not_answer(container, o.error)
                failed.append(o.error)
                continue
            snap = o.value
            profiles: list[str] = []
            for target in its_targets:
                among = list(snap.slots)
                if target.profile in snap.unslotted:
                    if not unslotted and is_glob(target.container):
                        continue  # a glob over containers: one without the gateway simply has none
                    if not unslotted:
                        raise NotFoundError(f"profile {target.profile!r} in {container.name} has no gateway slot "
                                            f"yet: `hermesctl gateway start {container.name}:{target.profile}` "
                                            "registers and starts it")
                    among.append(target.profile)
                for p in match_profiles(target, container.name, among,
                                        strict=not is_glob(target.container)):
                    if p not in profiles:
                        profiles.append(p)
            if profiles:
                selections.append(Selection(container, snap, sorted(profiles)))
        if not selections:
            if failed:
                raise failed[0] if len(failed) == 1 else HermesctlError(
                    f"no selected container answered ({len(failed)} failed): {describe(failed[0])}")
            raise NotFoundError(f"no gateway matches {' '.join(map(str, targets))}")
        return selections
