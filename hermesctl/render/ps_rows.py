"""The one `ps` pipeline's answer (issue 25: `ps` was built four times, each with its own document
and exit rule): the row model, the `hermesctl.ps/v1` document built from rows, what did not answer
and the interrupted operations (`document`), its exit code (`exit_status`), its warnings, and how
it reads as a table or as plain lines. Every path goes through these: direct `ps`
(commands/ps.py), the fast direct path (quick_direct), serve's /api/ps and the page's state
(serve/server.py), and `ps` answered by serve (commands/ps_served.py on either CLI path); the
rows themselves are judged once, by engine/rows.py. Stdlib only: the fast paths import neither
rich nor typer nor the Docker SDK."""
import sys
from dataclasses import asdict, dataclass, fields

from hermesctl.core.exit_codes import ExitStatus
from hermesctl.model.results import exit_status as overall_status
from hermesctl.model.results import unreachable_warning
from hermesctl.render.documents import document_text
from hermesctl.render.plain_table import ansi, duration, layout, platforms_summary, printable, state_cell, wants_colour

SCHEMA = "hermesctl.ps/v1"
# A row's state that is not its gateway's own (models.Slot.run_state): a profile with no slot yet,
# and a gateway with processes outside its supervisor (which hides its run_state).
NO_SLOT = "no slot"
ORPHANED = "orphaned"


@dataclass
class GatewayRow:
    endpoint: str
    container: str
    service: str | None
    profile: str | None
    state: str              # up/down/parked/crash-loop/unsupervised, or the container's state
    pid: int | None = None
    uptime_s: int | None = None
    wanted: str | None = None
    crash_looping: bool = False
    parked: bool = False
    exit_code: int | None = None
    deaths_recent: int = 0
    gateway_state: str | None = None
    desired_state: str | None = None
    platforms: dict | None = None
    health: str | None = None
    error: str | None = None  # the container did not answer (state timeout or error)
    orphan_pids: list[int] | None = None  # gateway processes of the profile outside its supervisor
    last_death: str | None = None  # models.Slot.last_death: "killed by signal 9 (SIGKILL)", "stopped by hermesctl"
    engine: str | None = None  # the endpoint's engine: docker, podman (hermesctl.backends.docker.podman)

    @property
    def target(self) -> str:
        return self.container if self.profile is None else f"{self.container}:{self.profile}"

    @property
    def wanted_but_not_up(self) -> bool:
        return self.profile is not None and self.state != "up" and (
            self.wanted == "up" or self.desired_state == "running")


_FIELDS = [f.name for f in fields(GatewayRow)]


def document(rows: list[GatewayRow], *, endpoints: list[str], unreachable: list[dict], interrupted: list[dict],
             source: dict | None = None) -> dict:
    """The `hermesctl.ps/v1` document: the endpoints asked (answering or not, in the order they
    were given), the rows (each with its target), the operations stopped midway
    (engine.journal.describe), where the answer came from when it was not asked now (`source`:
    serve), and what did not answer (fleet.Unreachable as a dict: an endpoint, or one container
    on it; each container is also a row of state timeout/error)."""
    doc = {"schema": SCHEMA, "endpoints": list(endpoints), "gateways": [asdict(r) | {"target": r.target} for r in rows],
           "interrupted_operations": list(interrupted)}
    if source is not None:
        doc["source"] = source
    # One rule and one order, whoever collected them and when: every endpoint that did not answer
    # (it may hold what was asked for), as asked; then the containers among the rows, as listed
    # (not an instance the targets did not select, such as another service's pending task).
    where = {e: i for i, e in reversed(list(enumerate(endpoints)))}
    listed = {(r.endpoint, r.container): i for i, r in reversed(list(enumerate(rows)))}
    shown = [u for u in unreachable if u.get("container") is None or (u.get("endpoint"), u.get("container")) in listed]
    doc["unreachable"] = sorted(shown, key=lambda u: (
        (0, where.get(u.get("endpoint"), len(where))) if u.get("container") is None
        else (1, listed[(u.get("endpoint"), u.get("container"))])))
    return doc


def endpoints_asked(endpoints: list[str], unreachable: list[dict]) -> list[str]:
    """The document's `endpoints`: those connected, then those that could not even be connected
    to (an endpoint entry of `unreachable` naming another), each once."""
    names = list(dict.fromkeys(endpoints))
    return names + list(dict.fromkeys(u["endpoint"] for u in unreachable
                                      if u.get("container") is None and u["endpoint"] not in names))


def rows_of(doc: dict) -> list[GatewayRow]:
    """The document's rows as the row model (keys it does not know, such as serve's
    `restarts_seen`, dropped)."""
    return [GatewayRow(**{k: v for k, v in r.items() if k in _FIELDS})
            for r in doc.get("gateways", []) if isinstance(r, dict)]


def exit_status(doc: dict) -> ExitStatus:
    """The exit code of `ps` for its document, on every path: 3 if a gateway wanted up is not
    up (or crash-loops, parked, has orphans), 7 if anything did not answer (which wins over 0
    and 3: nothing can be claimed about what was not seen), else 0."""
    rows = rows_of(doc)
    judged = any(r.wanted_but_not_up or r.crash_looping or r.parked or r.orphan_pids for r in rows)
    return overall_status([], doc.get("unreachable") or [],
                          base=ExitStatus.NOT_RUNNING if judged else ExitStatus.OK)


def interrupted_warning(op: dict) -> str:
    """An interrupted operation (engine.journal.describe) as `ps` warns of it."""
    what = f"{op.get('operation')} of {op.get('instance') or '?'} on {op.get('where') or '?'} to {op.get('image')}"
    return f"interrupted: {what} (at step {op.get('step')}): `{op.get('fix')}` finishes or undoes it"


def warnings(doc: dict) -> list[str]:
    """The lines `ps` ends with, in order: interrupted operations, then what did not answer."""
    return [interrupted_warning(op) for op in doc.get("interrupted_operations") or []] + unreachable_warnings(doc)


def unreachable_warnings(doc: dict) -> list[str]:
    """What did not answer, as `ps` says it (and serve's page shows it)."""
    return [unreachable_warning(u) for u in doc.get("unreachable") or []]


def document_json(doc: dict) -> str:
    """The document as printed (documents.document_text: indented, strict JSON)."""
    body = {k: v for k, v in doc.items() if k not in ("schema", "unreachable")}
    return document_text("ps", body, doc["unreachable"])


def print_plain(doc: dict, *, json_output: bool, quiet: bool, wide: bool, no_headers: bool,
                nodes: bool = False, stdout=None) -> None:
    """The document as every `ps` path prints it (without rich): JSON, target ids (-q), or the
    table (plain_table), with an ENDPOINT column when several endpoints were asked; `nodes` (a
    swarm, whose endpoints are its nodes): always, as NODE."""
    stdout = stdout or sys.stdout
    rows = rows_of(doc)
    if json_output:
        stdout.write(document_json(doc))
    elif quiet:
        stdout.write("".join(printable(r.target) + "\n" for r in rows if r.profile is not None))
    else:
        columns, cells = table_cells(rows, multi=nodes or len(doc.get("endpoints") or []) > 1, wide=wide,
                                     endpoint_column="NODE" if nodes else "ENDPOINT")
        stdout.write(ansi(layout(columns, cells, headers=not no_headers), colour=wants_colour(stdout)))
    stdout.flush()


def print_warnings(doc: dict, stderr=None) -> None:
    stderr = stderr or sys.stderr
    colour = wants_colour(stderr)
    for text in warnings(doc):
        stderr.write(ansi([[(printable(f"hermesctl: {text}"), "yellow")]], colour=colour))


def table_cells(rows: list[GatewayRow], *, multi: bool, wide: bool,
                endpoint_column: str = "ENDPOINT") -> tuple[list[str], list[list[object]]]:
    """The ps table's columns and cells (the state as a plain_table.Styled)."""
    compose = wide or any(r.service for r in rows)
    columns = ([endpoint_column] if multi or wide else []) + (["ENGINE"] if wide else []) + ["CONTAINER"] + (
        ["SERVICE"] if compose else []) + [
        "PROFILE", "STATE", "PID", "UPTIME", "WANTED", "GATEWAY", "DESIRED", "PLATFORMS"]
    if wide:
        columns += ["EXIT", "DEATHS/60s", "LAST DEATH", "HEALTH"]
    body = []
    for r in rows:
        container = r.container if r.health in (None, "healthy") or wide else f"{r.container} ({r.health})"
        row = ([r.endpoint] if multi or wide else []) + ([r.engine] if wide else []) + [container] + (
            [r.service] if compose else []) + [
            r.profile, state_cell(f"{r.state}: {r.error}" if r.error else r.state), r.pid, duration(r.uptime_s),
            r.wanted, r.gateway_state, r.desired_state, platforms_summary(r.platforms) or None]
        if wide:
            row += [r.exit_code, r.deaths_recent, r.last_death, r.health]
        body.append(row)
    return columns, body
