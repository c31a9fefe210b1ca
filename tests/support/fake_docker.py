"""The one fake Docker API of the daemon-free tests: the methods of
hermesctl.backends.docker.daemon.Daemon that hermesctl reaches, answered from what a test gives.
It stands where the real client stands (an endpoint's `daemon`, hermesctl.backends.docker.endpoint),
so the fleet, the backends, the execs' deadlines and the listing's parsing run as they do for real;
only what crosses to dockerd is faked.

What it holds, each part optional:
  containers  the Hermes containers it lists (HermesContainer; the list is kept, not copied, so a
              test may add one), or an exception the listing raises (a node that does not answer);
  answers     container name -> agent verb -> an answer to an exec of the agent: a document
              (exit 0), (exit code, document), an ExecResult as it is, or an exception to raise;
              `VERB@resident` is what the resident agent's query socket answers instead, once;
  states      ref -> what inspect_container answers, a list played in order (the last repeated;
              an exception in it is raised), for a container started and watched;
  streams     (container, argv, stdin) -> the chunks of an exec's output as it comes (exec_stream);
  exec_seconds  how long every exec takes (each counted while it runs: `most` at once);
  helper_output  what a helper container (create_helper, run once) prints;
  secrets, services  a swarm manager's secrets (name -> id) and services (name -> inspect
              document, or a function of nothing returning one).
What it was asked is recorded: `calls` (container name, the agent's argv, without the deadline's
timeout(1) wrapper), `resident` (containers asked through the query socket), `environments`
(each exec's environment), `inspected` (refs), `created` and `removed` (helpers).
"""
import json
import threading
import time
from typing import Callable

from hermesctl.agent.contract import AGENT, AGENT_QUERY_SOCKET, QUERY_ENV
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.backends.docker.execs import TIMEOUT_PROGRAM, ExecResult
from hermesctl.backends.docker.fleet import BOUNDED_STATUS_ARGV
from hermesctl.backends.docker.inventory import LABEL, HermesContainer


class FakeDocker:
    def __init__(self, containers: "list[HermesContainer] | BaseException | None" = None,
                 answers: dict | None = None, *, states: dict | None = None,
                 streams: Callable | None = None, exec_seconds: float = 0.0, helper_output: str = "",
                 secrets: dict | None = None, services: dict | None = None):
        self.listed = containers if containers is not None else []
        self.answers = answers if answers is not None else {}
        self.states = {ref: list(script) for ref, script in (states or {}).items()}
        self.streams = streams
        self.exec_seconds, self.running, self.most = exec_seconds, 0, 0
        self._lock = threading.Lock()
        self.helper_output = helper_output
        self.secret_ids = secrets or {}
        self.service_docs = services or {}
        self.calls: list[tuple[str, list[str]]] = []
        self.resident: list[str] = []
        self.environments: list[dict | None] = []
        self.inspected: list[str] = []
        self.created: list[tuple[str, dict]] = []
        self.removed: list[str] = []

    # --- reading ----------------------------------------------------------------------------
    def containers(self, filters: dict, *, all: bool = True) -> list[dict]:  # noqa: A002 - the API's word
        """Docker's rows for the containers whose labels match every `label` filter."""
        if isinstance(self.listed, BaseException):
            raise self.listed
        wanted = [f.split("=", 1) for f in filters.get("label", [])]
        rows = []
        for c in self.listed:
            labels = {LABEL: "true", **c.labels}
            if not any(labels.get(k) != v for k, v in wanted):
                rows.append({"Id": c.id, "Names": [f"/{c.name}"], "State": c.state, "Status": c.status,
                             "Labels": labels, "Mounts": [{"Destination": "/opt/data", "Name": v} for v in c.volumes]})
        return rows

    def inspect_container(self, ref: str) -> dict:
        self.inspected.append(ref)
        script = self.states[ref]
        state = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(state, BaseException):
            raise state
        return state

    def logs(self, ref: str) -> bytes:
        return self.helper_output.encode()

    # --- execs ------------------------------------------------------------------------------
    def _container(self, ref: str) -> HermesContainer:
        return next(c for c in self.listed if c.id == ref)

    def exec_run(self, ref: str, argv: list[str], *, user: str,
                 environment: dict | None = None) -> tuple[int | None, bytes, bytes]:
        """The agent's recorded answer; anything else the host runs is a test failure."""
        if self.exec_seconds:
            with self._lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(self.exec_seconds)  # an exec that takes this long, as a slow dockerd's
            with self._lock:
                self.running -= 1
        if argv[:2] == [TIMEOUT_PROGRAM, "-k"]:  # execs.run's deadline, kept inside the container too
            argv = argv[4:]
        c = self._container(ref)
        self.environments.append(environment)
        resident = argv[:2] == ["/command/s6-ipcclient", AGENT_QUERY_SOCKET]
        if resident:  # the same question, for the resident agent
            argv = [AGENT, *json.loads(environment[QUERY_ENV])]
            self.resident.append(c.name)
        self.calls.append((c.name, argv))
        if argv == list(BOUNDED_STATUS_ARGV):  # the resident agent's status: the same document
            argv = [AGENT, "status"]
        if argv[0] != AGENT:
            raise AssertionError(f"the host ran something other than the agent: {argv}")
        mine = self.answers.get(c.name, {})
        answer = mine.get(argv[1])
        if resident and f"{argv[1]}@resident" in mine:
            answer = mine.pop(f"{argv[1]}@resident")  # the resident agent's own answer, once
        if answer is None:
            raise AssertionError(f"no recorded answer for {c.name}: {argv[1:]}")
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, ExecResult):
            return answer.exit_code, answer.stdout.encode(), answer.stderr.encode()
        code, doc = answer if isinstance(answer, tuple) else (0, answer)
        return code, json.dumps(doc).encode(), b""

    def exec_stream(self, ref: str, argv: list[str], *, user: str, stderr: bool = True, stdin: bool = False):
        return self.streams(self._container(ref), argv, stdin)

    # --- helpers (a container run once to reach a volume or ask the image's agent) -------------
    def create_helper(self, image: str, **kwargs) -> str:
        self.created.append((image, kwargs))
        return f"helper-{len(self.created)}"

    def start(self, ref: str) -> None:
        pass

    def wait(self, ref: str, timeout: float) -> int:
        return 0

    def remove(self, ref: str, *, force: bool = False) -> None:
        self.removed.append(ref)

    # --- a swarm manager ----------------------------------------------------------------------
    def secrets(self) -> list[dict]:
        return [{"ID": sid, "Spec": {"Name": name}} for name, sid in self.secret_ids.items()]

    def inspect_service(self, ref: str) -> dict:
        doc = self.service_docs[ref] if ref in self.service_docs else self.service_docs["*"]
        return doc(ref) if callable(doc) else doc


def endpoint(docker: FakeDocker, name: str = "default", engine: str = "docker") -> Endpoint:
    """An endpoint whose client is the fake (speaking as `engine`: docker, podman)."""
    return Endpoint(name, f"fake://{name}", daemon=docker, engine=engine)
