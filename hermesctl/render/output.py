"""All printing goes through one Output per run: tables or JSON on stdout, errors on stderr.
Tests and --json get the same data; only the rendering differs."""
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hermesctl.render.documents import SCHEMA_VERSION, document_text  # noqa: F401 - SCHEMA_VERSION re-exported
from hermesctl.render.plain_table import Styled, duration, layout, state_cell  # noqa: F401 - duration re-exported
from hermesctl.render.terminal import is_safe, safe

# Colour rotation for per-target prefixes, as `docker compose logs` does.
PREFIX_COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "bright_cyan", "bright_yellow",
                  "bright_green", "bright_magenta", "bright_blue")


@dataclass
class Output:
    json: bool = False
    no_headers: bool = False
    several_endpoints: bool = False  # then every table row says which endpoint it came from
    # What did not answer (endpoints, containers): every JSON document carries it.
    unreachable: Callable[[], list] = field(default=lambda: [])
    endpoint_column: str = "ENDPOINT"  # NODE on a swarm, where each node is an endpoint
    # Piped output is for scripts: never truncate it to an imaginary 80-column terminal.
    console: Console = field(default_factory=lambda: Console(
        highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 4096))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True))

    def document(self, kind: str, body: dict, *, unreachable: list[dict] | None = None) -> None:
        """One JSON document per command: {"schema": "hermesctl.<kind>/v1", ..., "unreachable": [...]}.
        The kind is the command's name, words joined by '-' (ps, gateway-restart, profile-list).
        `unreachable` as already reported elsewhere (by a server), else this run's."""
        sys.stdout.write(document_text(kind, body, unreachable if unreachable is not None
                                       else [asdict(u) for u in self.unreachable()]))
        sys.stdout.flush()

    def json_line(self, doc: dict) -> None:
        """One compact JSON document on a line of its own (event streams), flushed at once."""
        sys.stdout.write(json.dumps(doc, default=str) + "\n")
        sys.stdout.flush()

    def table(self, columns: list[str], rows: list[list[object]], *, endpoints: list[str] | None = None) -> Table:
        """A table; with several endpoints in play and `endpoints` given (one per row), an
        ENDPOINT column comes first."""
        if self.several_endpoints and endpoints is not None:
            columns = [self.endpoint_column, *columns]
            rows = [[e, *row] for e, row in zip(endpoints, rows)]
        table = Table(show_header=not self.no_headers, box=None, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(*[_cell(cell) for cell in row])
        return table

    def text_table(self, columns: list[str], rows: list[list[object]]) -> "PlainTable":
        """The same table as `table` (columns two spaces apart, `-` for nothing), laid out here
        as lines of styled segments (hermesctl.render.plain_table): about twenty times cheaper to draw
        than a rich Table of hundreds of rows, which is what `ps --watch` redraws on every change."""
        cells = [[None if c is None else Styled((t := _cell(c)).plain, t.style or None) for c in row] for row in rows]
        return PlainTable(layout(columns, cells, headers=not self.no_headers))

    def print(self, renderable: object = "") -> None:
        self.console.print(renderable)

    def line(self, text: str) -> None:
        self.console.print(safe(text), markup=False, highlight=False, emoji=False)

    def error(self, text: str) -> None:
        self.err.print(Text(f"hermesctl: {safe(text)}", style="red"))

    def warn(self, text: str) -> None:
        self.err.print(Text(f"hermesctl: {safe(text)}", style="yellow"))


def _cell(cell: object) -> Text:
    """A table cell; what a container reported may hold escape sequences: shown escaped."""
    if isinstance(cell, Styled):
        cell = Text(cell.text, style=cell.style or "")
    if isinstance(cell, Text):
        return cell if is_safe(cell.plain) else Text(safe(cell.plain), style=cell.style)
    return Text("-" if cell is None else safe(str(cell)))



class PlainTable:
    """Lines of (text, style) parts, rendered as they are: no measuring, no wrapping."""

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


def state_text(state: str) -> Text:
    cell = state_cell(state)
    return Text(cell.text, style=cell.style)
