"""The command line: parse, build the run's context, hand over to hermesctl.commands.*.

Exit codes are documented in hermesctl.core.exit_codes; every error becomes one line on stderr.
"""
import os
import sys
from typing import List, Optional

import typer

from hermesctl import __version__
from hermesctl.cli import values as cli_values
from hermesctl.cli.run import Run, finish, valid_timeout as _valid_timeout
from hermesctl.config.settings import DEFAULT_EXEC_TIMEOUT
from hermesctl.core.errors import HermesctlError, UsageError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.model.names import COMPOSE_PROJECT_NAME as COMPOSE_PROJECT
from hermesctl.model.targets import parse_target, parse_targets

HELP = """Operate fleets of Hermes Agent containers: gateways, profiles, logs and health.

Hermes containers are found by the label io.hermes-agent.managed=true, which the Hermes image
sets. Targets read CONTAINER or CONTAINER:PROFILE, with globs on either side ('*:coder',
'web-*'); containers by name or id prefix; `default` is a profile.

Every exec in a container has a deadline (--timeout, default 30 s); a container that does not
answer in time is reported as such and the rest of the fleet still answers.

Exit codes: 0 ok, 1 failed, 2 usage, 3 not running, 4 not found, 5 container stopped,
6 invalid profile name, 7 partial (an endpoint or a container did not answer, or timed out;
the rest is shown), 8 not a Hermes container, 9 container running (restore), 69 Docker daemon
unreachable, 130 interrupted; `exec` passes the command's own exit code through.
"""

cli_values.install()  # str/int/float options converted without importing pydantic

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
gateway_app = typer.Typer(help="Start, stop, restart and inspect profile gateways.", no_args_is_help=True)
profile_app = typer.Typer(help="Create, list and delete profiles (through the container's hermes).",
                          no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
app.add_typer(profile_app, name="profile")


def _run(ctx: typer.Context, json_output: bool = False, timeout: Optional[float] = None,
         no_headers: bool = False) -> Run:
    """The run's context; a command's own --json, --timeout, --no-headers (after the
    subcommand) count too."""
    run: Run = ctx.find_root().obj
    return run.options(json_output, timeout, no_headers)


JSON = typer.Option(False, "--json", help="one JSON document (versioned schema)")
TIMEOUT = typer.Option(None, "--timeout", help=f"deadline of each exec in a container, seconds "
                       f"(default {DEFAULT_EXEC_TIMEOUT:g})")
NO_HEADERS = typer.Option(False, "--no-headers", help="tables without a header row")


def _exit(ctx: typer.Context, status: int) -> None:
    """End the command (hermesctl.cli.run.finish: what did not answer is reported, once)."""
    raise typer.Exit(finish(ctx.find_root().obj, status))


def _print_version(value: bool) -> None:
    """Runs while options are parsed, before click asks for a command: `hermesctl --version` alone works."""
    if value:
        typer.echo(f"hermesctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    host: List[str] = typer.Option([], "--host", "-H", help="Docker endpoint URL (repeatable): unix://, tcp://, ssh://"),
    context: List[str] = typer.Option([], "--context", "-c", help="Docker context name (repeatable)"),
    project: Optional[str] = typer.Option(None, "--project", "-p", help="only this compose project's containers"),
    fleet_file: Optional[str] = typer.Option(None, "--fleet", help="fleet file whose endpoints to span"),
    swarm: Optional[str] = typer.Option(None, "--swarm", help="a swarm manager's Docker endpoint: Hermes services' tasks, "
                                        "exec'd on their nodes (--project = stack)"),
    engine: Optional[str] = typer.Option(None, "--engine", help="docker or podman: the engine behind every endpoint "
                                         "(default: each endpoint's own answer says)"),
    json_output: bool = typer.Option(False, "--json", help="one JSON document (versioned schema)"),
    no_headers: bool = typer.Option(False, "--no-headers", help="tables without a header row"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help=f"deadline of each exec in a container, "
                                            f"seconds (default {DEFAULT_EXEC_TIMEOUT:g})"),
    version: bool = typer.Option(False, "--version", help="print the version and exit", is_eager=True,
                                 callback=_print_version),
):
    from hermesctl.config.endpoint_urls import check_context, check_endpoint
    for url in host:  # an empty or malformed endpoint is a usage error, never the local daemon
        check_endpoint(url)
    for name in context:
        check_context(name)
    if engine is not None:
        from hermesctl.backends.docker.podman import PODMAN, choose
        choose(None, engine, "")  # the one check of the value
        if engine == PODMAN and swarm:
            raise UsageError("--engine podman with --swarm: a swarm is Docker's (Podman has none)")
    if project is not None and not COMPOSE_PROJECT.fullmatch(project):
        raise UsageError(f"invalid compose project name {project[:100]!r}: a-z 0-9 _ -, starting with a letter or digit")
    from hermesctl.render.output import Output
    ctx.obj = Run(out=Output(json=json_output, no_headers=no_headers), hosts=host, contexts=context,
                  project=project, fleet_file=fleet_file, swarm=swarm, engine=engine,
                  exec_timeout=DEFAULT_EXEC_TIMEOUT if timeout is None else _valid_timeout(timeout))


TARGETS = typer.Argument(None, help="CONTAINER[:PROFILE], globs allowed; none = everything")


@app.command()
def ps(ctx: typer.Context, targets: Optional[List[str]] = TARGETS,
       wide: bool = typer.Option(False, "--wide", "-w", help="more columns"),
       quiet: bool = typer.Option(False, "--quiet", "-q", help="only CONTAINER:PROFILE ids"),
       watch: bool = typer.Option(False, "--watch", help="a live table until Ctrl-C"),
       interval: float = typer.Option(1.0, "--interval", help="--watch: redraw at least this often (uptimes), seconds; changes show at once"),
       direct: bool = typer.Option(False, "--direct", help="ask the containers even when hermesctl serve runs"),
       json_output: bool = JSON, timeout: Optional[float] = TIMEOUT, no_headers: bool = NO_HEADERS):
    """One row per container x gateway.

    STATE is up, down, parked (exit 78: fatal configuration), unsupervised, or crash-loop:
    down while wanted up, or up for less than 60 s after 3 or more unplanned deaths in the last
    60 s. Deaths during a hermesctl start/stop/restart and clean exits (code 0, hermes'
    planned stop) are not counted. platforms-fatal: the process is up but hermes gave up on
    every platform it started (`hermesctl probe` says whether a gateway serves). orphaned: a
    gateway process of the profile runs outside its supervisor (`doctor --fix` ends it). timeout / error: the container did not answer.
    no slot: a profile made since the boot (SOUL.md, no s6 slot yet); `gateway start` registers it.

    Off a terminal, --watch prints the table once, then each changed row as a line.

    When `hermesctl serve` runs on this host with the same endpoint options, its live state
    answers (and says how fresh it is); --direct asks the containers.

    Exit 0, 3 if a gateway wanted up is not up, 7 if a container or endpoint did not answer.
    """
    r = _run(ctx, json_output, timeout, no_headers)
    parsed = parse_targets(targets or [])
    if not direct and not watch:
        from hermesctl.serve.client import ps_from_server
        served = ps_from_server(r.scope())
        if served is not None:
            from hermesctl.commands.ps_served import show
            status = show(r.out, served, parsed, wide=wide, quiet=quiet)
            if status is not None:
                raise typer.Exit(int(status))
    from hermesctl.commands.ps import ps as run_ps
    status = run_ps(r.out, r.fleet(), parsed, wide=wide, quiet=quiet, watch=watch, interval=interval)
    if watch:
        _exit(ctx, status)
    # The document's own warnings and exit code (render/ps_rows), as on every ps path: what did
    # not answer was said in them, not again by _exit.
    raise typer.Exit(int(status))


@app.command()
def events(ctx: typer.Context, targets: Optional[List[str]] = TARGETS,
           json_output: bool = typer.Option(False, "--json", help="JSON lines (hermesctl.event/v1), one per change")):
    """One line per change, as it happens, until Ctrl-C: gateways (up, down, restart, add,
    remove, state, want-up/down, parked, crash-loop, orphaned, operation) from one held-open
    stream per container, and containers (start, stop, die, health_status, ...) from Docker.
    A broken stream is reopened; a container that starts is picked up. --json: JSON lines."""
    from hermesctl.cli import reads
    _exit(ctx, reads.events(_run(ctx, json_output), targets or []))


def _lifecycle(verb: str):
    def command(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER[:PROFILE], globs allowed"),
                timeout: float = typer.Option(20.0, "--timeout", help="seconds to wait for the change"),
                settle: float = typer.Option(1.0, "--settle", help="seconds a started gateway must stay up"),
                rolling: bool = typer.Option(False, "--rolling", help="restart: one container at a time, stop at the first failure"),
                running_only: bool = typer.Option(False, "--running-only", help="restart: only gateways that are up; stopped ones stay stopped (as systemctl try-restart)"),
                wait_ready: Optional[bool] = typer.Option(
                    None, "--wait-ready/--no-wait-ready",
                    help="before settling, wait (up to --timeout) until hermes itself says each start went well "
                         "or failed (default: with --rolling)"),
                json_output: bool = JSON):
        from hermesctl.commands.gateway import lifecycle
        r = _run(ctx, json_output)
        if rolling and verb != "restart":
            raise UsageError("--rolling only applies to restart")
        if running_only and verb != "restart":
            raise UsageError("--running-only only applies to restart")
        parsed = parse_targets(targets)  # before any endpoint is contacted
        _exit(ctx, lifecycle(r.out, r.fleet(), verb, parsed, timeout=timeout,
                        settle=settle if verb != "stop" else 0, rolling=rolling, running_only=running_only,
                        wait_ready=rolling if wait_ready is None else wait_ready))
    command.__doc__ = {"start": "Start gateways (records desired_state=running).",
                       "stop": "Stop gateways (records desired_state=stopped).",
                       "restart": "Restart gateways; a stopped one is started, unless --running-only."}[verb]
    return command


for _verb in ("start", "stop", "restart"):
    gateway_app.command(_verb)(_lifecycle(_verb))


@gateway_app.command("status")
def gateway_status(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER[:PROFILE]"),
                   direct: bool = typer.Option(False, "--direct", help="ask the containers even when hermesctl serve runs"),
                   json_output: bool = JSON, timeout: Optional[float] = TIMEOUT):
    """Exit 0 when every targeted gateway is up, 3 otherwise (as systemctl is-active); 7 when a
    targeted container did not answer. A crash-looping gateway is not up (see `ps --help`).

    When `hermesctl serve` runs on this host with the same endpoint options and saw every
    targeted gateway, its live state answers (and says how fresh it is); --direct asks the
    containers."""
    from hermesctl.cli import reads
    _exit(ctx, reads.gateway_status(_run(ctx, json_output, timeout), targets, direct=direct))


@app.command()
def probe(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER[:PROFILE], globs allowed"),
          prompt: Optional[str] = typer.Option(None, "--prompt", help="also send this as one chat completion through "
                                               "each API server (a real model call: it costs), and show the latency "
                                               "and the answer's first line"),
          json_output: bool = JSON, timeout: Optional[float] = TIMEOUT):
    """Is each gateway serving, not merely running? Its platforms (gateway_state.json: every one
    its process started must be connected; one whose token is set must have been started), its
    API server's /health where it has one (API_SERVER_ENABLED / API_SERVER_KEY), asked inside the
    container on its loopback as hermes (the key never leaves it), and with --prompt one chat
    completion (within --timeout). A gateway with neither platforms nor an API server serves nothing.

    Exit 0 when every target serves, 3 when some do not, 7 when some did not answer."""
    from hermesctl.commands.probe import probe as run_probe
    r = _run(ctx, json_output, timeout)
    if prompt is not None and (not prompt.strip() or len(prompt) > 4000 or "\x00" in prompt):
        raise UsageError("--prompt: some text, at most 4000 characters, no NUL")
    parsed = parse_targets(targets)
    _exit(ctx, run_probe(r.out, r.fleet(), parsed, prompt=prompt))


@gateway_app.command("register")
def gateway_register(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER:PROFILE"),
                     up: bool = typer.Option(False, "--up", help="start it now (default: registered down)")):
    """Create the s6 slot of an existing profile."""
    from hermesctl.commands.gateway import registration
    r = _run(ctx)
    parsed = parse_targets(targets)
    _exit(ctx, registration(r.out, r.fleet(), "register", parsed, up=up))


@gateway_app.command("unregister")
def gateway_unregister(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER:PROFILE")):
    """Stop a gateway and remove its s6 slot (the profile stays)."""
    from hermesctl.commands.gateway import registration
    r = _run(ctx)
    parsed = parse_targets(targets)
    _exit(ctx, registration(r.out, r.fleet(), "unregister", parsed, up=False))


@profile_app.command("create")
def profile_create(ctx: typer.Context, target: str = typer.Argument(..., help="CONTAINER:NAME"),
                   start: bool = typer.Option(False, "--start", help="start its gateway too")):
    """Create a profile (hermes profile create, as hermes); its gateway is registered down."""
    from hermesctl.commands.profile import create
    r = _run(ctx)
    parsed = parse_target(target)
    _exit(ctx, create(r.out, r.fleet(), parsed, start=start))


@profile_app.command("list")
def profile_list(ctx: typer.Context, targets: Optional[List[str]] = TARGETS, json_output: bool = JSON,
                 timeout: Optional[float] = TIMEOUT):
    """List profile directories and whether the reconciler will pick them up."""
    from hermesctl.cli import reads
    _exit(ctx, reads.profile_list(_run(ctx, json_output, timeout), targets or []))


@profile_app.command("delete")
def profile_delete(ctx: typer.Context, target: str = typer.Argument(..., help="CONTAINER:NAME"),
                   yes: bool = typer.Option(False, "--yes", "-y", help="do not ask")):
    """Delete a profile and its gateway slot."""
    from hermesctl.commands.profile import delete
    r = _run(ctx)
    parsed = parse_target(target)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("refusing to delete without --yes when not interactive")
        typer.confirm(f"Delete profile {target}?", abort=True)
    _exit(ctx, delete(r.out, r.fleet(), parsed))


@app.command()
def logs(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER[:PROFILE], globs allowed"),
         follow: bool = typer.Option(False, "--follow", "-f", help="keep following, across rotation"),
         lines: int = typer.Option(20, "--tail", "-n", help="lines per gateway to start with"),
         raw: bool = typer.Option(False, "--raw", help="pass the lines' bytes through as they are, "
                                  "even to a terminal (by default control characters are shown escaped there)")):
    """Gateway logs (logs/gateways/<p>/current), prefixed per target."""
    from hermesctl.cli import reads
    _exit(ctx, reads.logs(_run(ctx), targets, lines=lines, follow=follow, raw=raw))


@app.command("boot-log")
def boot_log(ctx: typer.Context, container: str = typer.Argument(...),
             lines: int = typer.Option(50, "--tail", "-n"), json_output: bool = JSON):
    """The reconciler's container-boot.log."""
    from hermesctl.cli import reads
    _exit(ctx, reads.boot_log(_run(ctx, json_output), container, lines=lines))


@app.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
def exec_(ctx: typer.Context, container: str = typer.Argument(...),
          command: List[str] = typer.Argument(..., help="-- CMD ARGS..."),
          tty: Optional[bool] = typer.Option(None, "--tty/--no-tty", help="default: when interactive")):
    """Run a command in a container as hermes."""
    from hermesctl.commands.exec_cmd import exec_command
    r = _run(ctx)
    parsed = parse_target(container)
    _exit(ctx, exec_command(r.out, r.fleet(), parsed, list(command), interactive=tty))


@app.command()
def doctor(ctx: typer.Context, targets: Optional[List[str]] = TARGETS,
           fix: bool = typer.Option(False, "--fix", help="apply the safe fixes"), json_output: bool = JSON,
           timeout: Optional[float] = TIMEOUT):
    """Check containers for the known pitfalls; each finding names its fix."""
    from hermesctl.cli import reads
    _exit(ctx, reads.doctor(_run(ctx, json_output, timeout), targets or [], fix=fix))


@app.command()
def usage(ctx: typer.Context, targets: Optional[List[str]] = TARGETS,
          since: str = typer.Option("24h", "--since", help="30m, 24h, 7d, 2w, or a date (2026-05-01, UTC unless it says)"),
          by: str = typer.Option("profile", "--by", help="rows per profile (container x profile), container, model or platform"),
          source: Optional[str] = typer.Option(None, "--source", help="one platform only (cli, telegram, ...), as hermes insights --source"),
          file: Optional[str] = typer.Option(None, "--file", "-f", help="fleet file whose budgets apply (default: --fleet's)"),
          json_output: bool = JSON, timeout: Optional[float] = TIMEOUT, no_headers: bool = NO_HEADERS):
    """Sessions (total, active), messages, tool calls, tokens (input, output, cache read/write,
    reasoning), estimated and actual cost, top model and last activity of every profile, from
    its state.db (read-only, one exec per container), with hermes insights' definitions: one
    profile and --source equal `hermes -p PROFILE insights --source S` over the same window.

    Budgets (`budget: {daily_usd: N}` on a profile or container in the fleet file) apply to
    the estimated cost, scaled to the window. Exit 0, 3 when something is over budget, 7 when a
    container did not answer or a profile's state.db could not be read (locked, corrupt, of an
    unknown schema); the rest is shown.
    """
    from hermesctl.cli import reads
    r = _run(ctx, json_output, timeout, no_headers)
    _exit(ctx, reads.usage(r, targets or [], since=since, by=by, source=source, file=file))


SHOW_VALUES = typer.Option(False, "--show-values", help="print .env values (masked by default: they hold secrets)")


@app.command()
def serve(ctx: typer.Context,
          listen: str = typer.Option("127.0.0.1:9477", "--listen", help="ADDRESS:PORT of the web page and /metrics"),
          token_file: Optional[str] = typer.Option(None, "--token-file", help="file holding the token that may act "
                                                   "(default: a random one, printed once)"),
          socket_path: Optional[str] = typer.Option(None, "--socket", help="unix socket the CLI asks (mode 0600; "
                                                    "default $XDG_RUNTIME_DIR/hermesctl/serve.sock)"),
          interval: float = typer.Option(2.0, "--interval", help="seconds between publications when nothing "
                                         "changed, and between endpoint checks (changes arrive as they happen)"),
          usage_interval: float = typer.Option(15.0, "--usage-interval", help="seconds between looks at each "
                                               "profile's state.db (a stat; a read only when it changed)"),
          probe_interval: float = typer.Option(30.0, "--probe-interval", help="seconds between looks at whether "
                                               "each gateway serves (its API server's /health, asked in the "
                                               "container: one exec per container; 0: never)"),
          allow_host: List[str] = typer.Option([], "--allow-host", help="a host name this server is reached by "
                                               "(Host header); IP addresses and localhost always are"),
          timeout: Optional[float] = TIMEOUT):
    """Serve the fleet: Prometheus /metrics, a live web page, and the state `ps` reads.

    Binds loopback unless --listen says otherwise, and refuses a non-loopback address without
    --token-file. Over TCP everything but the empty page needs the token (Authorization: Bearer;
    the page keeps it in its own tab); state changes must also come from the page itself. The
    unix socket (0600) answers reads without it. Runs until Ctrl-C.
    """
    from hermesctl.commands.serve import serve as run_serve
    r = _run(ctx, timeout=timeout)
    if not 0.1 <= interval <= 3600:
        raise UsageError(f"--interval must be between 0.1 and 3600 seconds, not {interval:g}")
    if not 0.2 <= usage_interval <= 3600:
        raise UsageError(f"--usage-interval must be between 0.2 and 3600 seconds, not {usage_interval:g}")
    if probe_interval != 0 and not 5 <= probe_interval <= 3600:
        raise UsageError(f"--probe-interval must be 0 or between 5 and 3600 seconds, not {probe_interval:g}")
    budgets = None
    if r.fleet_file:  # budgets of the fleet file serve spans: exported for the alert rules
        from hermesctl.config.fleetfile import load_fleet_file
        from hermesctl.serve.usage_feed import budgets_of
        budgets = budgets_of(load_fleet_file(r.fleet_file))
    _exit(ctx, run_serve(r.out, r.new_fleet, r.scope(), listen=listen, token_file=token_file,
                         socket_path=socket_path, interval=interval, allow_hosts=allow_host,
                         usage_interval=usage_interval, budgets=budgets, probe_interval=probe_interval))


@app.command("backup")
def backup_cmd(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER, globs allowed"),
               output_dir: str = typer.Option(..., "--output", "-o", help="directory for the archives"),
               json_output: bool = JSON, timeout: Optional[float] = TIMEOUT):
    """Back up containers' /opt/data: one archive each (0600, in a directory created 0700), SQLite copied consistently, with a manifest."""
    from pathlib import Path
    from hermesctl.commands.backup import backup_command
    r = _run(ctx, json_output, timeout)
    _exit(ctx, backup_command(r.out, r.fleet(), parse_targets(targets), Path(output_dir)))


@app.command("restore")
def restore_cmd(ctx: typer.Context, archive: str = typer.Argument(..., help="an archive made by hermesctl backup"),
                container: str = typer.Argument(..., help="CONTAINER to restore into (its /opt/data is replaced)"),
                force: bool = typer.Option(False, "--force", help="a running container: stop it, restore, start it"),
                json_output: bool = JSON):
    """Replace a container's /opt/data with a backup (exit 9 if it is running, without --force)."""
    from pathlib import Path
    from hermesctl.commands.backup import restore_command
    r = _run(ctx, json_output)
    _exit(ctx, restore_command(r.out, r.fleet(), Path(archive), parse_target(container), force=force))


@app.command("upgrade")
def upgrade_cmd(ctx: typer.Context, targets: Optional[List[str]] = typer.Argument(None, help="CONTAINER or SERVICE, globs allowed ('*' = all)"),
                image: Optional[str] = typer.Option(None, "--image", help="the new image (present on each endpoint)"),
                recover: bool = typer.Option(False, "--recover", help="finish or undo upgrades that were interrupted "
                                             "(Ctrl-C, kill -9, a lost connection)"),
                dry_run: bool = typer.Option(False, "--dry-run", help="print the plan, change nothing"),
                backup_dir: Optional[str] = typer.Option(None, "--backup-dir", help="where pre-upgrade backups go "
                                                         "(default ~/.local/state/hermesctl/backups)"),
                timeout: float = typer.Option(180.0, "--timeout", help="seconds a container has to serve"),
                settle: float = typer.Option(3.0, "--settle", help="seconds wanted gateways must stay up"),
                canary: str = typer.Option("0", "--canary", help="N or P%: upgraded first, side by side; any "
                                           "failure among them stops the run before the first batch"),
                parallel: str = typer.Option("1", "--parallel", help="N or P%: instances upgraded side by side "
                                             "in each batch after the canary"),
                max_failures: str = typer.Option("0", "--max-failures", help="N or P%: failures tolerated; no "
                                                 "new batch starts once more have failed"),
                soak: float = typer.Option(0.0, "--soak", help="seconds the canary must keep serving before it "
                                           "is committed and the batches start"),
                json_output: bool = JSON):
    """Move containers to a new image (a canary, then batches): back up, recreate, wait until it serves; roll back on failure."""
    from pathlib import Path
    from hermesctl.commands import upgrade as command
    from hermesctl.engine.upgrade import rollout_from_options
    r = _run(ctx, json_output)
    options = {"canary": canary, "parallel": parallel, "max_failures": max_failures, "soak": soak}
    given = [flag for flag, value, default in (("--canary", canary, "0"), ("--parallel", parallel, "1"),
                                               ("--max-failures", max_failures, "0"), ("--soak", soak, 0.0))
             if value != default]
    if recover:
        if targets or image or dry_run or given:
            raise UsageError("upgrade --recover takes no targets, --image, --dry-run or rollout options: it "
                             "finishes or undoes what the interrupted upgrades recorded")
        _exit(ctx, command.recover(r.out, r.fleet(), timeout=timeout, settle=settle))
    if not targets or not image:
        raise UsageError("upgrade needs TARGET... and --image IMAGE (or --recover)")
    rollout_from_options(0, **options)  # a malformed value is refused before any endpoint is asked
    _exit(ctx, command.upgrade(r.out, r.fleet(), parse_targets(targets), image, dry_run=dry_run,
                               backup_dir=Path(backup_dir) if backup_dir else None, timeout=timeout,
                               settle=settle, scope=r.scope(), rollout_options=options))


def _fleet_command(ctx: typer.Context, file: str, json_output: bool, timeout: Optional[float] = None):
    from hermesctl.config.fleetfile import load_fleet_file, one_token_one_gateway
    r = _run(ctx, json_output, timeout)
    from hermesctl.config.references import resolve
    spec = resolve(load_fleet_file(file))  # validated, references read, before any endpoint is contacted
    one_token_one_gateway(spec)
    if r.fleet_file is None and spec.endpoints:
        r.fleet_file = file
    return r, spec


@app.command("apply")
def apply_cmd(ctx: typer.Context, file: str = typer.Option(..., "--file", "-f", help="fleet file (YAML)"),
              dry_run: bool = typer.Option(False, "--dry-run", help="print the plan, change nothing"),
              prune: bool = typer.Option(False, "--prune", help="delete profiles the file does not name, and the config keys and skills apply set "
                                          "that the file no longer lists"),
              show_values: bool = SHOW_VALUES, json_output: bool = JSON, timeout: Optional[float] = TIMEOUT):
    """Converge containers to a fleet file: profiles, settings, gateway states."""
    from hermesctl.commands.apply import apply
    r, spec = _fleet_command(ctx, file, json_output, timeout)
    _exit(ctx, apply(r.out, r.fleet(), spec, dry_run=dry_run, prune=prune, show_values=show_values))


@app.command("diff")
def diff_cmd(ctx: typer.Context, file: str = typer.Option(..., "--file", "-f", help="fleet file (YAML)"),
             prune: bool = typer.Option(False, "--prune", help="include what --prune would remove (unnamed profiles; keys and skills apply set)"),
             show_values: bool = SHOW_VALUES, json_output: bool = JSON, timeout: Optional[float] = TIMEOUT):
    """Show what apply would change; exit 1 when there is drift, 0 when none (as kubectl diff)."""
    from hermesctl.commands.apply import diff
    r, spec = _fleet_command(ctx, file, json_output, timeout)
    _exit(ctx, diff(r.out, r.fleet(), spec, prune=prune, show_values=show_values))


def _error_line(text: str) -> None:
    from hermesctl.render.output import Output
    Output().error(text)


def main(argv: Optional[List[str]] = None) -> None:
    try:
        status = app(args=argv, prog_name="hermesctl", standalone_mode=False)
    except typer.Exit as exc:
        status = exc.exit_code
    except typer.Abort:
        status = ExitStatus.INTERRUPTED
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        exc.show()
        status = getattr(exc, "exit_code", ExitStatus.USAGE) or ExitStatus.USAGE
    except HermesctlError as exc:
        _error_line(exc.message)
        status = exc.status
    except KeyboardInterrupt:
        status = ExitStatus.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, not a traceback
        from hermesctl.core.interrupt import came_from_ctrl_c
        if came_from_ctrl_c(exc):
            sys.exit(int(ExitStatus.INTERRUPTED))
        if os.environ.get("HERMESCTL_DEBUG"):
            raise
        _error_line(f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                  "(HERMESCTL_DEBUG=1 shows the traceback)")
        status = ExitStatus.FAILED
    sys.exit(int(status or 0))
