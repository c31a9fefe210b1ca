"""hermesctl logs: gateways' persistent logs, prefixed per target like `docker compose logs`."""
import json
import queue
import threading

from rich.text import Text

from hermesctl import agent, execs
from hermesctl.contract import LIFELINE_OPTION
from hermesctl.errors import describe
from hermesctl.exit_codes import ExitStatus
from hermesctl.fleet import Fleet
from hermesctl.inventory import HermesContainer
from hermesctl.output import PREFIX_COLOURS, Output
from hermesctl.parallel import fan_out
from hermesctl.targets import Target


def _tail_argv(profile: str, lines: int, follow: bool) -> list[str]:
    """The agent's `tail`: its first line is {"pid": N}, so a follower can be stopped afterwards.
    A follower also holds its stdin open (the exec attaches it): when this process goes, however
    it goes, Docker closes that stdin and the follower ends (contract.LIFELINE_OPTION)."""
    return agent.argv("tail", profile, "--lines", str(lines),
                      *(["--follow", LIFELINE_OPTION] if follow else []))


def _sort_key(line: str) -> str:
    # s6-log's T prefix: "2026-11-25 01:28:04.131110895 ..." sorts lexically.
    return line[:29]


def logs(out: Output, fleet: Fleet, targets: list[Target], *, lines: int, follow: bool) -> ExitStatus:
    pairs = [(sel.container, p) for sel in fleet.select(targets) for p in sel.profiles]
    # With several endpoints, prefixes say where: ENDPOINT/CONTAINER:PROFILE.
    names = {(c.key, p): (f"{c.endpoint}/" if out.several_endpoints else "") + f"{c.name}:{p}" for c, p in pairs}
    width = max(map(len, names.values()))
    prefixes = {key: Text(name.ljust(width) + " | ", style=PREFIX_COLOURS[i % len(PREFIX_COLOURS)])
                for i, (key, name) in enumerate(names.items())}
    if follow:
        return _follow(out, fleet, pairs, prefixes, lines)

    def fetch(pair):
        c, p = pair
        return fleet.run(c, _tail_argv(p, lines, False)).stdout

    merged = []
    for o in fan_out(fetch, pairs):
        (c, p), text = o.item, o.value
        if not o.ok:
            out.warn(f"{c.name}:{p}: {describe(o.error)}")
            continue
        merged += [(_sort_key(l), prefixes[(c.key, p)], l) for l in text.splitlines()[1:]]
    for _, prefix, line in sorted(merged, key=lambda t: t[0]) if len(pairs) > 1 else merged:
        out.print(prefix + Text(line))
    return ExitStatus.OK


def _follow(out: Output, fleet: Fleet, pairs, prefixes, lines: int) -> ExitStatus:
    """Stream every target until Ctrl-C; `tail -F` keeps following across s6-log rotation."""
    lines_q: queue.Queue = queue.Queue()
    pids: dict = {}

    def reader(c: HermesContainer, p: str) -> None:
        try:
            api = fleet.endpoint(c.endpoint).client.api
            ex = api.exec_create(c.id, _tail_argv(p, lines, True), user=execs.HERMES_USER, stdin=True)
            buffer = b""
            for chunk in api.exec_start(ex["Id"], stream=True):
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    text = raw.decode("utf-8", "replace")
                    if (c.key, p) not in pids and text.startswith("{"):
                        pids[(c.key, p)] = (c, str(json.loads(text).get("pid")))
                        continue
                    lines_q.put((prefixes[(c.key, p)], text))
            lines_q.put((None, f"{c.name}:{p}: log stream ended (container stopped?)"))
        except Exception as exc:  # noqa: BLE001 - one target's failure; the others go on
            lines_q.put((None, f"{c.name}:{p}: {describe(exc)}"))

    for c, p in pairs:
        threading.Thread(target=reader, args=(c, p), daemon=True).start()
    try:
        ended = 0
        while ended < len(pairs):  # like `docker compose logs -f`: done when every stream is
            prefix, text = lines_q.get()
            if prefix is None:
                ended += 1
                out.warn(text)
            else:
                out.print(prefix + Text(text))
        return ExitStatus.FAILED
    except KeyboardInterrupt:
        for c, pid in pids.values():
            try:
                fleet.run(c, ["kill", pid])
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        raise
