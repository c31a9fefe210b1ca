"""Text from a container, made safe for the operator's terminal.

Everything a container reports (slot and profile names, labels, container names, log lines,
error messages) is written by whoever runs in it: hermes runs whatever its agent's shell runs.
Written raw, an escape sequence clears the screen, draws fake rows, erases the line above or
writes the clipboard (OSC 52). So control characters (C0, DEL, C1) and the invisible
bidirectional overrides are shown escaped (`\\x1b`, `\\u202e`) wherever such text is printed;
JSON output needs nothing more (json.dumps escapes them itself).
"""
import re

# C0 controls, DEL, C1 controls; bidi embeddings, overrides and isolates (text that reads
# differently from what it is); the line and paragraph separators; lone surrogates (bytes that
# were not UTF-8, kept by surrogateescape: they cannot even be encoded for the terminal).
_OTHERS = "\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_KEEP_TAB = re.compile(f"[\x00-\x08\x0a-\x1f{_OTHERS}]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """One line of untrusted text, every control character escaped (newlines too)."""
    return _UNSAFE.sub(_escape, text)


def safe_line(text: str) -> str:
    """A log line: the same, but a TAB stays a TAB (it moves the cursor right, nothing more)."""
    return _UNSAFE_KEEP_TAB.sub(_escape, text)


def is_safe(text: str) -> bool:
    return _UNSAFE.search(text) is None
