"""What an .env value may hold so that hermes reads it back exactly: one set of rules for the
fleet file's literals and for referenced values (hermesctl.config.references), the same as the
in-container writer's (hermes_supervise/envfile.py)."""
import re
import unicodedata

MAX_VALUE = 64 * 1024


# python-dotenv (hermes' .env loader) expands ${NAME} and ${NAME:-default} in every value, quoted
# or not, and has no escape for it: such a value cannot reach hermes as written.
DOTENV_VARIABLE = re.compile(r"\$\{[^}:]*(?::-[^}]*)?\}")


def value_problem(value: str) -> str | None:
    """Why a value cannot reach hermes' .env as written; None when it can."""
    if not_utf8(value):
        return "a lone surrogate (e.g. \\ud800) is not text UTF-8 can carry"
    if control_characters(value):
        return "control characters (NUL, CR, LF, TAB ...) are not allowed in values"
    if DOTENV_VARIABLE.search(value):
        return "${...} would be expanded by hermes' .env loader (python-dotenv)"
    if len(value) > MAX_VALUE:
        return f"longer than {MAX_VALUE} characters"
    return None


def control_characters(value: str) -> bool:
    """NUL, CR, LF, TAB and every other C0/C1 control, or a Unicode line/paragraph separator:
    what the in-container writer (hermes_supervise/envfile.py) refuses too."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value)


def not_utf8(value: str) -> bool:
    """A lone surrogate (YAML's "\\ud800" escape makes one): not text that UTF-8, and so the
    container's .env, can carry; written as U+FFFD it would never match, and every `apply` would
    see drift and restart the gateway."""
    return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
