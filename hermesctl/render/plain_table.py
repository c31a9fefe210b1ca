"""Tables as plain lines of styled text, drawn without rich: columns two spaces apart, `-` for
nothing, styles as ANSI colours on a terminal only. `ps --watch` redraws hundreds of rows on
every change and `ps` answered by `hermesctl serve` must start in milliseconds; both draw with
this (output.Output.text_table hands these lines to rich; quick_ps writes them itself).

Cells hold text from containers (gateway_state.json is hermes-writable): control characters are
shown escaped, never sent to the terminal. Stdlib only.
"""
import os
from typing import NamedTuple

from hermesctl.render.terminal import safe

STATE_STYLES = {"up": "green", "down": "dim", "parked": "yellow", "crash-loop": "bold red",
                "unsupervised": "red", "booting": "yellow", "exited": "red", "timeout:": "bold red",
                "error:": "red", "orphaned": "bold red",
                "platforms-fatal": "bold red", "no": "yellow"}
# SGR codes as rich writes them for these styles (the standard 16 colours: 30-37, bright 90-97).
_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35",
        "cyan": "36", "bright_green": "92", "bright_yellow": "93", "bright_blue": "94", "bright_magenta": "95",
        "bright_cyan": "96"}


class Styled(NamedTuple):
    """A cell with a style (rich's style names: "bold red", "dim")."""
    text: str
    style: str | None


def state_cell(state: str) -> Styled:
    return Styled(state, STATE_STYLES.get(state.split()[0], "") if state else "")


def duration(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def platforms_summary(platforms: dict | None) -> str:
    """`telegram:connected,discord:fatal` for tables."""
    parts = []
    for name, info in sorted((platforms or {}).items()):
        state = info.get("state") if isinstance(info, dict) else None
        parts.append(f"{name}:{state or '?'}")
    return ",".join(parts)


def printable(text: str) -> str:
    """`text` with every control character (ESC, CR, BEL, bidi overrides, ...) written as an
    escape (hermesctl.render.terminal)."""
    return safe(text)


Line = list[tuple[str, str | None]]


def layout(columns: list[str], rows: list[list[object]], *, headers: bool = True) -> list[Line]:
    """Each row as (text, style) parts, columns padded to their widest cell; unstyled text
    runs are merged into one part and trailing blanks dropped."""
    every = ([[Styled(c, "bold") for c in columns]] if headers else []) + rows
    cells = [[c if isinstance(c, Styled) else Styled("-" if c is None else str(c), None) for c in row]
             for row in every]
    cells = [[Styled(printable(c.text), c.style) for c in row] for row in cells]
    widths = [max((len(r[i].text) for r in cells if i < len(r)), default=0) for i in range(len(columns))]
    lines = []
    for row in cells:
        parts: Line = []
        pending = ""
        last = len(row) - 1
        for i, cell in enumerate(row):
            pad = "" if i == last else " " * (widths[i] - len(cell.text) + 2)
            if cell.style:
                parts += [(pending, None), (cell.text, cell.style)]
                pending = pad
            else:
                pending += cell.text + pad
        parts.append((pending.rstrip(), None))
        lines.append(parts)
    return lines


def wants_colour(stream) -> bool:
    """Colour as rich decides it for these cases: a terminal, unless NO_COLOR or a dumb TERM;
    FORCE_COLOR forces it."""
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def ansi(lines: list[Line], *, colour: bool) -> str:
    out = []
    for parts in lines:
        text = []
        for chunk, style in parts:
            codes = ";".join(_SGR[w] for w in (style or "").split() if w in _SGR) if colour else ""
            text.append(f"\x1b[{codes}m{chunk}\x1b[0m" if codes and chunk else chunk)
        out.append("".join(text))
    return "\n".join(out) + "\n" if out else ""
