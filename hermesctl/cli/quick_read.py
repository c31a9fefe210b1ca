"""The read commands (`gateway status`, `logs [-n N] [-f]`, `events`, `profile list`, `boot-log`,
`doctor` without --fix, `usage`) before typer, rich or the Docker SDK are imported (issue 28):
on local Docker sockets, the containers are asked through hermesctl.backends.docker.unix_api (the
stdlib client a direct `ps` uses, hermesctl.cli.quick_direct), and the command runs the same body as
the full CLI (hermesctl.cli.reads, with a hermesctl.cli.run.Run) printing through
hermesctl.render.plain_output.PlainOutput, which lays out every table, document and line with the same
code as the full CLI's Output. What the user waits for is then Python's start, the imports the
command needs, and its execs.

Only a plain invocation takes this path: global options -H/--host, -p/--project, --engine,
--json, --no-headers, --timeout, then the command with the options the full CLI gives it, every value
checked as the full CLI checks it. Anything else (--help, an unknown or malformed option, a
value given twice, `doctor --fix`, a Docker context, --fleet, --swarm, a tcp:// or
ssh:// endpoint, TLS) returns None, and the full CLI runs as if this module did not exist. An
error the command itself raises (a target not found, a daemon unreachable) is printed here as
the full CLI prints it, with the same exit code.
"""
import os
from dataclasses import dataclass, field

from hermesctl.cli import quick_options


@dataclass(frozen=True)
class Grammar:
    """A command's options as the full CLI (hermesctl.cli.app) declares them: option -> (key,
    kind) where kind is "flag", "str", "int" or "float"; how many arguments it takes."""
    options: dict
    min_args: int = 0
    max_args: int | None = None
    refuse: frozenset = field(default_factory=frozenset)  # option keys this path leaves to the full CLI


_JSON = {"--json": ("json", "flag")}
_TIMEOUT = {"--timeout": ("timeout", "float")}
_TAIL = {"--tail": ("lines", "int"), "-n": ("lines", "int")}
GRAMMARS = {
    ("gateway", "status"): Grammar({**_JSON, **_TIMEOUT, "--direct": ("direct", "flag")}, min_args=1),
    ("events",): Grammar(_JSON),
    ("profile", "list"): Grammar({**_JSON, **_TIMEOUT}),
    ("logs",): Grammar({**_TAIL, "--follow": ("follow", "flag"), "-f": ("follow", "flag"),
                        "--raw": ("raw", "flag")}, min_args=1),
    ("boot-log",): Grammar({**_TAIL, **_JSON}, min_args=1, max_args=1),
    ("doctor",): Grammar({**_JSON, **_TIMEOUT, "--fix": ("fix", "flag")}, refuse=frozenset({"fix"})),
    ("usage",): Grammar({**_JSON, **_TIMEOUT, "--no-headers": ("no_headers", "flag"),
                         "--since": ("since", "str"), "--by": ("by", "str"), "--source": ("source", "str"),
                         "--file": ("file", "str"), "-f": ("file", "str")}),
}
DEFAULTS = {("logs",): {"lines": 20}, ("boot-log",): {"lines": 50}, ("usage",): {"since": "24h", "by": "profile"}}


def _value(kind: str, text: str):
    """The value as the full CLI converts it (hermesctl.cli.values), or None: its own
    conversion decides (and reports) anything less plain."""
    from hermesctl.cli.values import _INT
    if kind == "str":
        return text
    if kind == "int":
        return int(text) if _INT.fullmatch(text) else None
    return quick_options.decimal(text)


def parse(argv: list[str]) -> tuple[tuple, dict, dict, list[str]] | None:
    """(command, global options, command options, arguments) of a plain read command, or None."""
    split = quick_options.split(argv)
    if split is None:
        return None
    glob, i = split
    command: tuple = ()
    while i < len(argv) and command not in GRAMMARS:  # the command's words
        command += (argv[i],)
        if argv[i].startswith("-") or not any(c[:len(command)] == command for c in GRAMMARS):
            return None
        i += 1
    if command not in GRAMMARS:
        return None
    grammar = GRAMMARS[command]
    opts: dict = {}
    args: list[str] = []
    while i < len(argv):
        token = argv[i]
        name = quick_options.option_name(token)
        if name in grammar.options:
            key, kind = grammar.options[name]
            if kind == "flag":
                if token != name:  # `--json=…`: the full CLI's to refuse
                    return None
                opts[key] = True
                i += 1
                continue
            taken = quick_options.option_value(argv, i)
            if taken is None:
                return None
            value, i = _value(kind, taken[1]), taken[2]
            if value is None or key in opts:
                return None
            opts[key] = value
        elif token.startswith("-"):
            return None
        else:
            args.append(token)
            i += 1
    if len(args) < grammar.min_args or (grammar.max_args is not None and len(args) > grammar.max_args):
        return None
    if any(opts.get(k) for k in grammar.refuse):
        return None
    return command, glob, {**DEFAULTS.get(command, {}), **opts}, args


def _local_run(glob: dict):
    """The Run of the full CLI's main_options for these global options, over local sockets; or
    None when a value is one the full CLI would refuse or the endpoints are not local sockets."""
    if glob["fleet_file"] or glob["swarm"] or glob["contexts"] or not quick_options.checked(glob):
        return None
    from hermesctl.config.endpoints import resolve_local
    from hermesctl.core.errors import HermesctlError
    try:
        specs = resolve_local(glob["hosts"])
    except HermesctlError:
        return None
    if specs is None:
        return None
    from hermesctl.render.plain_output import PlainOutput
    from hermesctl.cli.run import Run
    return Run(out=PlainOutput(json=glob["json"], no_headers=glob["no_headers"]), hosts=glob["hosts"],
               project=glob["project"], exec_timeout=quick_options.exec_timeout(glob["timeout"]),
               engine=glob["engine"], local=specs)


def _body(command: tuple, run, opts: dict, args: list[str]) -> int:
    """The full CLI's command body (hermesctl.cli.app), with the same Run.options."""
    from hermesctl.cli import reads
    if command == ("gateway", "status"):
        return reads.gateway_status(run.options(opts.get("json", False), opts.get("timeout")), args,
                                    direct=opts.get("direct", False))
    if command == ("events",):
        return reads.events(run.options(opts.get("json", False)), args)
    if command == ("profile", "list"):
        return reads.profile_list(run.options(opts.get("json", False), opts.get("timeout")), args)
    if command == ("logs",):
        return reads.logs(run.options(), args, lines=opts["lines"], follow=opts.get("follow", False),
                          raw=opts.get("raw", False))
    if command == ("boot-log",):
        return reads.boot_log(run.options(opts.get("json", False)), args[0], lines=opts["lines"])
    if command == ("doctor",):
        return reads.doctor(run.options(opts.get("json", False), opts.get("timeout")), args, fix=False)
    run.options(opts.get("json", False), opts.get("timeout"), opts.get("no_headers", False))
    return reads.usage(run, args, since=opts["since"], by=opts["by"], source=opts.get("source"),
                       file=opts.get("file"))


def run(argv: list[str]) -> int | None:
    """The exit status of a read command answered here, or None: the full CLI takes over."""
    parsed = parse(argv)
    if parsed is None:
        return None
    command, glob, opts, args = parsed
    ctx = _local_run(glob)
    if ctx is None:
        return None
    from hermesctl.core.errors import HermesctlError
    from hermesctl.cli.run import finish
    try:
        status = _body(command, ctx, opts, args)
    except HermesctlError as exc:  # as hermesctl.cli.app.main reports it
        ctx.out.error(exc.message)
        return int(exc.status)
    except BrokenPipeError:  # `hermesctl logs ... | head -1`: the reader has what it wanted
        return 1
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001
        from hermesctl.core.interrupt import came_from_ctrl_c
        if came_from_ctrl_c(exc):
            raise KeyboardInterrupt from exc
        if os.environ.get("HERMESCTL_DEBUG"):
            raise
        if not ctx.out.wrote:  # nothing printed: the full CLI answers instead, and reports it
            return None
        first = str(exc).splitlines()[0] if str(exc) else ""
        ctx.out.error(f"unexpected {type(exc).__name__}: {first} (HERMESCTL_DEBUG=1 shows the traceback)")
        return 1
    return finish(ctx, status)
