"""What every read command prints, drawn without rich (issue 28): tables as plain lines
(hermesctl.render.plain_table), JSON documents, warnings and errors, prefixed log lines. The full CLI's
Output (hermesctl.render.output, rich) is this class with rich consoles for the commands that draw rich
renderables; the quick read path (hermesctl.cli.quick_read) uses this class itself, before typer,
rich or the Docker SDK are imported. Both lay out every table with the same code
(table_lines), so that the same state prints the same bytes whichever path answered.

Stdlib only. Text from containers is escaped here (plain_table.layout, terminal.safe)."""
import json
import sys
from dataclasses import asdict
from typing import Callable

from hermesctl.render.documents import document_text
from hermesctl.render.plain_table import Styled, ansi, layout, wants_colour
from hermesctl.render.terminal import safe

# Colour rotation for per-target prefixes, as `docker compose logs` does.
PREFIX_COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "bright_cyan", "bright_yellow",
                  "bright_green", "bright_magenta", "bright_blue")


class PlainTable:
    """Lines of (text, style) parts, rendered as they are: no measuring, no wrapping. Written
    by PlainOutput.print as ANSI text, and by rich (Output.print) segment by segment: the same
    bytes (tests/test_quick_read.py compares them on and off a terminal)."""

    def __init__(self, lines: list[list[tuple[str, object]]]):
        self.lines = lines

    def __rich_console__(self, console, options):
        from rich.segment import Segment
        newline = Segment.line()
        for parts in self.lines:
            for text, style in parts:
                if text:
                    yield Segment(text, console.get_style(style) if style else None)
            yield newline


def styled(cell: object) -> object:
    """A cell as plain_table lays it out: rich Text (what a few commands still build) becomes
    Styled; anything else is left to layout (None is `-`, the rest str())."""
    if hasattr(cell, "plain") and hasattr(cell, "style"):
        style = cell.style
        return Styled(cell.plain, str(style) if style else None)
    return cell


def table_lines(columns: list[str], rows: list[list[object]], *, endpoints: list[str] | None,
                several_endpoints: bool, endpoint_column: str, headers: bool) -> PlainTable:
    """A table; with several endpoints in play and `endpoints` given (one per row), an
    ENDPOINT column comes first. Cells are escaped by layout (they may hold container text)."""
    if several_endpoints and endpoints is not None:
        columns = [endpoint_column, *columns]
        rows = [[e, *row] for e, row in zip(endpoints, rows)]
    return PlainTable(layout(columns, [[styled(c) for c in row] for row in rows], headers=headers))


class PlainOutput:
    """Output's interface (hermesctl.render.output.Output) on sys.stdout / sys.stderr, without rich."""

    def __init__(self, *, json: bool = False, no_headers: bool = False):  # noqa: A002 - Output's word
        self.json = json
        self.no_headers = no_headers
        self.several_endpoints = False  # then every table row says which endpoint it came from
        self.unreachable: Callable[[], list] = lambda: []
        self.endpoint_column = "ENDPOINT"
        self.wrote = False  # anything printed yet, out or err (the quick path may still hand over if not)

    # --- shared with Output -------------------------------------------------------------------
    def document(self, kind: str, body: dict) -> None:
        """One JSON document per command: {"schema": "hermesctl.<kind>/v1", ..., "unreachable": [...]}.
        The kind is the command's name, words joined by '-' (ps, gateway-restart, profile-list)."""
        self.wrote = True
        sys.stdout.write(document_text(kind, body, [asdict(u) for u in self.unreachable()]))
        sys.stdout.flush()

    def json_line(self, doc: dict) -> None:
        """One compact JSON document on a line of its own (event streams), flushed at once."""
        self.wrote = True
        sys.stdout.write(json.dumps(doc, default=str) + "\n")
        sys.stdout.flush()

    def table(self, columns: list[str], rows: list[list[object]], *, endpoints: list[str] | None = None) -> PlainTable:
        return table_lines(columns, rows, endpoints=endpoints, several_endpoints=self.several_endpoints,
                           endpoint_column=self.endpoint_column, headers=not self.no_headers)

    def text_table(self, columns: list[str], rows: list[list[object]]) -> PlainTable:
        """The same as table without an endpoint column (ps --watch's lines)."""
        return table_lines(columns, rows, endpoints=None, several_endpoints=False,
                           endpoint_column=self.endpoint_column, headers=not self.no_headers)

    # --- writing: rich's consoles in Output ---------------------------------------------------
    def print(self, renderable: object = "") -> None:
        self.wrote = True
        if isinstance(renderable, PlainTable):
            sys.stdout.write(ansi(renderable.lines, colour=wants_colour(sys.stdout)))
        else:  # no read command prints anything else; were one to, escaped (it may be container text)
            sys.stdout.write(f"{safe(str(renderable))}\n")
        sys.stdout.flush()

    def styled_line(self, parts: list[tuple[str, str | None]]) -> None:
        """One line of parts the caller made safe (a log line's prefix and its escaped text)."""
        self.print(PlainTable([parts]))

    def line(self, text: str) -> None:
        self.print(PlainTable([[(safe(text), None)]]))

    def error(self, text: str) -> None:
        self.wrote = True
        sys.stdout.flush()
        sys.stderr.write(ansi([[(f"hermesctl: {safe(text)}", "red")]], colour=wants_colour(sys.stderr)))
        sys.stderr.flush()

    def warn(self, text: str) -> None:
        self.wrote = True
        sys.stdout.flush()
        sys.stderr.write(ansi([[(f"hermesctl: {safe(text)}", "yellow")]], colour=wants_colour(sys.stderr)))
        sys.stderr.flush()
