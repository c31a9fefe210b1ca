"""hermesctl logs: gateways' persistent logs, prefixed per target like `docker compose logs`.

Log lines are whatever the gateway (hermes) wrote: on a terminal their control characters are
shown escaped, so no escape sequence reaches it; piped, or with --raw, they pass through as
they are."""
import json
import queue
import sys
import threading
from typing import TYPE_CHECKING

from hermesctl.agent import client as agent
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.core import interrupt
from hermesctl.core.errors import describe
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.core.parallel import fan_out
from hermesctl.model.targets import Target
from hermesctl.render.plain_output import PREFIX_COLOURS
from hermesctl.render.terminal import safe_line

# A followed log's line held at most (hermes' code writes the log): a run without a newline
# beyond it is shown in pieces rather than buffered without end.
FOLLOWED_LINE_MAX = 1 << 20

if TYPE_CHECKING:  # rich: not on the quick read path (hermesctl.cli.quick_read)
    from hermesctl.render.output import Output

Prefix = tuple[str, str]  # "web-1:coder | " and its colour


class LinePrinter:
    """Prefixed lines: escaped and coloured for a terminal, or the line's bytes as they came."""

    def __init__(self, out: "Output", escape: bool):
        self.out, self.escape = out, escape

    def __call__(self, prefix: Prefix, line: str) -> None:
        if self.escape:
            self.out.styled_line([prefix, (safe_line(line), None)])
        else:
            self.out.wrote = True
            sys.stdout.flush()
            binary = getattr(sys.stdout, "buffer", None)
            if binary is None:  # a text-only stream (a test runner's): the text as it is
                sys.stdout.write(prefix[0] + line + "\n")
                return
            binary.write(prefix[0].encode() + line.encode("utf-8", "surrogateescape") + b"\n")
            binary.flush()


def _sort_key(line: str) -> str:
    # s6-log's T prefix: "2026-11-25 01:28:04.131110895 ..." sorts lexically.
    return line[:29]


def logs(out: "Output", fleet: Fleet, targets: list[Target], *, lines: int, follow: bool,
         escape: bool = True) -> ExitStatus:
    emit = LinePrinter(out, escape)
    pairs = [(sel.container, p) for sel in fleet.select(targets) for p in sel.profiles]
    # With several endpoints, prefixes say where: ENDPOINT/CONTAINER:PROFILE.
    names = {(c.key, p): (f"{c.endpoint}/" if out.several_endpoints else "") + f"{c.name}:{p}" for c, p in pairs}
    width = max(map(len, names.values()))
    # Names are container and profile names (checked by the agent and by Docker), escaped all the same.
    prefixes = {key: (safe_line(name.ljust(width) + " | "), PREFIX_COLOURS[i % len(PREFIX_COLOURS)])
                for i, (key, name) in enumerate(names.items())}
    if follow:
        return _follow(out, fleet, pairs, prefixes, lines, emit)

    def fetch(pair):
        c, p = pair
        return fleet.run(c, agent.tail_argv(p, lines, False)).stdout

    merged = []
    for o in fan_out(fetch, pairs):
        (c, p), text = o.item, o.value
        if not o.ok:  # reported once at the end, with the exit code of an answer that lacks it (7)
            fleet.did_not_answer(c, o.error)
            continue
        # Only "\n" ends a line (splitlines would also split at \x1c, \x85, \u2028 ...).
        merged += [(_sort_key(l), prefixes[(c.key, p)], l) for l in text.rstrip("\n").split("\n")[1:]]
    for _, prefix, line in sorted(merged, key=lambda t: t[0]) if len(pairs) > 1 else merged:
        emit(prefix, line)
    return ExitStatus.OK


def _follow(out: "Output", fleet: Fleet, pairs, prefixes, lines: int, emit: LinePrinter) -> ExitStatus:
    """Stream every target until Ctrl-C; `tail -F` keeps following across s6-log rotation."""
    lines_q: queue.Queue = queue.Queue()
    pids: dict = {}

    def reader(c: HermesContainer, p: str) -> None:
        try:
            # A follower holds its stdin open: when we go, Docker closes it and the follower ends.
            stream = fleet.exec_stream(c, agent.tail_argv(p, lines, True), stdin=True)
            # One line as it came; a longer run without a newline is cut (the memory held is bounded).
            for raw in agent.stream_lines(stream, max_line=FOLLOWED_LINE_MAX):
                text = raw.decode("utf-8", "surrogateescape")
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
            prefix, text = interrupt.next_item(lines_q)
            if prefix is None:
                ended += 1
                out.warn(text)
            else:
                emit(prefix, text)
        return ExitStatus.FAILED
    except KeyboardInterrupt:
        for c, pid in pids.values():
            try:
                fleet.run(c, ["kill", pid])
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        raise
