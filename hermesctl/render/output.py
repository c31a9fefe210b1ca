"""All printing goes through one Output per run: tables or JSON on stdout, errors on stderr.
Tests and --json get the same data; only the rendering differs.

Output is hermesctl.render.plain_output.PlainOutput (what the quick read path prints with, stdlib
only) with rich consoles: tables, documents and JSON lines are the base class's, so both paths
print the same bytes; rich draws what only some commands use (ps --watch's live screen)."""
import sys
from dataclasses import dataclass, field
from typing import Callable

from rich.console import Console
from rich.text import Text

from hermesctl.render.plain_output import PlainOutput, PlainTable
from hermesctl.render.plain_table import state_cell
from hermesctl.render.terminal import safe


@dataclass
class Output(PlainOutput):
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
    wrote: bool = False

    def print(self, renderable: object = "") -> None:
        self.wrote = True
        self.console.print(renderable)

    def styled_line(self, parts: list[tuple[str, str | None]]) -> None:
        self.print(PlainTable([parts]))

    def line(self, text: str) -> None:
        # A Text, not a str: rich would read `:name:` in container text as an emoji code.
        self.print(Text(safe(text)))

    def error(self, text: str) -> None:
        self.err.print(Text(f"hermesctl: {safe(text)}", style="red"))

    def warn(self, text: str) -> None:
        self.err.print(Text(f"hermesctl: {safe(text)}", style="yellow"))


def state_text(state: str) -> Text:
    cell = state_cell(state)
    return Text(cell.text, style=cell.style)
