"""The global options (those before the command) of an invocation the quick paths answer
(hermesctl.cli.quick_ps, hermesctl.cli.quick_read), read and checked once for both, so that the two
paths never disagree about what `hermesctl -p x --json ...` means.

The options are the full CLI's (hermesctl.cli.app.main_options): -H/--host, -c/--context
(repeatable), -p/--project, --fleet, --swarm, --engine, --timeout, --json, --no-headers. Whatever is
less plain returns None, and the full CLI runs and decides: a value option given twice or with no
value, a flag written `--json=…`, an unknown option, a value the full CLI would refuse or a number
written other than as a plain decimal (its conversion decides `1e3`). Stdlib only."""

VALUES = {"-H": "hosts", "--host": "hosts", "-c": "contexts", "--context": "contexts",
          "-p": "project", "--project": "project", "--fleet": "fleet_file", "--swarm": "swarm",
          "--timeout": "timeout", "--engine": "engine"}
FLAGS = {"--json": "json", "--no-headers": "no_headers"}
LISTS = ("hosts", "contexts")  # repeatable; every other value option is taken once


def option_value(argv: list[str], i: int) -> tuple[str, str, int] | None:
    """(option name, its value, index of the next word) of the value option at argv[i]: written
    `--name=value` or `--name value`; None when the value is missing."""
    token = argv[i]
    name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
    if eq:
        return name, inline, i + 1
    if i + 1 >= len(argv):
        return None
    return name, argv[i + 1], i + 2


def option_name(token: str) -> str:
    """The option a word names (`--timeout=5` names --timeout; a short option never has `=`)."""
    return token.partition("=")[0] if token.startswith("--") else token


def split(argv: list[str]) -> tuple[dict, int] | None:
    """(the global options, the index of the command's first word), or None when the words
    before the command are anything but plain global options."""
    glob: dict = {"hosts": [], "contexts": [], "project": None, "fleet_file": None, "swarm": None,
                  "engine": None, "timeout": None, "json": False, "no_headers": False}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        token = argv[i]
        if token in FLAGS:
            glob[FLAGS[token]] = True
            i += 1
            continue
        if option_name(token) not in VALUES:
            return None
        taken = option_value(argv, i)
        if taken is None:
            return None
        name, value, i = taken
        key = VALUES[name]
        if key in LISTS:
            glob[key].append(value)
        elif glob[key] is not None:  # given twice: the full CLI decides
            return None
        else:
            glob[key] = value
    return glob, i


def decimal(text: str) -> float | None:
    """A number as the full CLI converts a plain one (hermesctl.cli.values), or None: its own
    conversion decides (and reports) anything less plain."""
    from hermesctl.cli.values import _DECIMAL
    return float(text) if _DECIMAL.fullmatch(text) else None


def timeout_ok(text: str | None) -> bool:
    """A --timeout the full CLI takes (cli.run.valid_timeout), or none given."""
    if text is None:
        return True
    seconds = decimal(text)
    return seconds is not None and 0 < seconds <= 86400


def checked(glob: dict) -> bool:
    """Whether the full CLI takes these global values (main_options' checks, in its order of
    meaning); False: it refuses one, and says so itself."""
    from hermesctl.config.endpoint_urls import check_context, check_endpoint
    from hermesctl.core.errors import HermesctlError
    from hermesctl.model.names import COMPOSE_PROJECT_NAME
    try:
        for url in glob["hosts"]:
            check_endpoint(url)
        for name in glob["contexts"]:
            check_context(name)
    except HermesctlError:
        return False
    if glob["project"] is not None and not COMPOSE_PROJECT_NAME.fullmatch(glob["project"]):
        return False
    if glob["engine"] is not None and glob["engine"] not in ("docker", "podman"):
        return False
    if glob["engine"] == "podman" and glob["swarm"] is not None:
        return False  # a swarm is Docker's: refused
    return timeout_ok(glob["timeout"])


def exec_timeout(*given: str | None) -> float:
    """The exec deadline: the last of the timeouts given (the global one, then the command's
    own, which wins as Run.options makes it), or the default."""
    from hermesctl.config.settings import DEFAULT_EXEC_TIMEOUT
    chosen = [t for t in given if t is not None]
    return decimal(chosen[-1]) if chosen else DEFAULT_EXEC_TIMEOUT
