"""Records of operations in progress, so that one interrupted at any step (Ctrl-C, kill -9, a
lost connection) is found by the next command: `ps` and `doctor` show it with its fix, and
`hermesctl upgrade --recover` finishes or undoes it.

One JSON file per operation under $XDG_STATE_HOME/hermesctl/operations/ (default
~/.local/state), written before each step by an atomic rename and removed when the operation
ends, whichever way it ends. It holds what undoing needs: the instance's identity (container id,
or the service's previous spec and replica count), the backup made before anything changed, the
step reached.
"""
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = "hermesctl.operation/v1"
RECOVER_HINT = "hermesctl upgrade --recover"


def operations_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "hermesctl" / "operations"


@dataclass
class Record:
    path: Path
    body: dict

    @property
    def what(self) -> str:
        inst = self.body.get("instance") or {}
        name = inst.get("name") or inst.get("service") or "?"
        where = inst.get("endpoint") or inst.get("node") or "?"
        return f"{self.body.get('operation')} of {name} on {where} to {self.body.get('image')}"

    @property
    def step(self) -> str:
        return str(self.body.get("step"))

    def update(self, step: str, **fields) -> None:
        self.body.update(fields, step=step, updated=time.time())
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.body, fh, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def done(self) -> None:
        # The .tmp too: a run killed between writing it and renaming it leaves one behind.
        for path in (self.path, self.path.with_name(self.path.name + ".tmp")):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def begin(operation: str, scope: dict, instance: dict, **fields) -> Record:
    directory = operations_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    import uuid  # here: uuid imports platform (~10 ms), and `ps` reads the journal only
    record = Record(directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.json",
                    {"schema": SCHEMA, "operation": operation, "scope": scope, "instance": instance,
                     "started": time.time(), "pid": os.getpid(), **fields})
    record.update("starting")
    return record


def pending() -> list[Record]:
    """Records of operations that did not end (their process is gone, or still running)."""
    directory = operations_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(body, dict) and body.get("schema") == SCHEMA:
            found.append(Record(path, body))
    return found


def sweep_orphans() -> list[Path]:
    """Remove `.tmp` files whose record never came to be (a run killed while writing its first
    step, before anything changed) and whose process is gone; returns them."""
    directory = operations_dir()
    swept = []
    for tmp in sorted(directory.glob("*.json.tmp")) if directory.is_dir() else []:
        if tmp.with_name(tmp.name[: -len(".tmp")]).exists():
            continue
        try:
            body = json.loads(tmp.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            body = {}
        if isinstance(body, dict) and alive(Record(tmp, body)):
            continue
        tmp.unlink(missing_ok=True)
        swept.append(tmp)
    return swept


def alive(record: Record) -> bool:
    """Its process still runs (then it is in progress, not interrupted)."""
    pid = record.body.get("pid")
    if pid == os.getpid():
        return True
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(record: Record) -> dict:
    """What ps and doctor show of an interrupted operation, with its fix."""
    inst = record.body.get("instance") or {}
    return {"operation": record.body.get("operation"), "instance": inst.get("name") or inst.get("service"),
            "where": inst.get("endpoint") or inst.get("node"), "image": record.body.get("image"),
            "step": record.step, "backup": record.body.get("backup"), "record": str(record.path),
            "fix": RECOVER_HINT}


def interrupted(names: set[str] | None = None) -> list[Record]:
    """Records whose process is gone; with `names`, only those about one of these instances
    (a container's name, its NAME-pre-upgrade, or a service's name)."""
    found = [r for r in pending() if not alive(r)]
    if names is None:
        return found
    return [r for r in found if describe(r)["instance"] in names]


def in_scope(record: Record, *, endpoints: set[str], project: str | None, project_dir: str | None,
             present: set[str]) -> bool:
    """Whether a record belongs to the fleet a command was asked about. The state directory is
    shared by every hermesctl run of the user, whatever its endpoints and project: a record of
    another endpoint, or (with --project, or in a compose directory) of another compose project,
    is not this command's to show. `endpoints`: the fleet's, answering or not; `present`:
    instance_names of the fleet's containers (for records made before the project was kept)."""
    inst = record.body.get("instance") or {}
    if (inst.get("endpoint") or inst.get("node")) not in endpoints:
        return False
    if project is None and project_dir is None:
        return True
    if "compose_project" in inst:
        return inst["compose_project"] == project if project else inst.get("compose_working_dir") == project_dir
    return describe(record)["instance"] in present


def interrupted_in(fleet, names: set[str] | None = None, *, containers=None) -> list[Record]:
    """interrupted(names), only the records of `fleet`'s scope (in_scope): its endpoints and,
    when it is narrowed to one, its compose project. `containers`: the fleet's containers as
    known now (serve's live fleet), instead of listing them."""
    containers = fleet.containers() if containers is None else containers
    endpoints = fleet.scope_endpoints() | {u.endpoint for u in fleet.unreachable} | {c.endpoint for c in containers}
    present = instance_names(containers)
    return [r for r in interrupted(names) if in_scope(r, endpoints=endpoints, project=fleet.project,
                                                      project_dir=fleet.project_dir, present=present)]


def instance_names(containers) -> set[str]:
    """The instance names a list of HermesContainers stands for (for `interrupted`)."""
    names = set()
    for c in containers:
        names.add(c.name)
        if c.name.endswith("-pre-upgrade"):
            names.add(c.name[: -len("-pre-upgrade")])
        if c.service:
            names.add(c.service)
    return names
