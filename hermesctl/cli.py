"""The command line: parse, build the run's context, hand over to hermesctl.commands.*.

Exit codes are documented in hermesctl.exit_codes; every error becomes one line on stderr.
"""
import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional

import typer

from hermesctl import __version__
from hermesctl.errors import HermesctlError, UsageError
from hermesctl.exit_codes import ExitStatus
from hermesctl.fleet import Fleet
from hermesctl.output import Output
from hermesctl.targets import parse_target, parse_targets

HELP = """Operate fleets of Hermes Agent containers: gateways, profiles, logs and health.

Hermes containers are found by the label io.hermes-agent.managed=true, which the Hermes image
sets. Targets read CONTAINER or CONTAINER:PROFILE, with globs on either side ('*:coder',
'web-*'); containers by name or id prefix; `default` is a profile.

Exit codes: 0 ok, 1 failed, 2 usage, 3 not running, 4 not found, 5 container stopped,
6 invalid profile name, 7 partial (an endpoint did not answer), 8 not a Hermes container,
9 container running (restore), 69 Docker daemon unreachable, 130 interrupted.
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
gateway_app = typer.Typer(help="Start, stop, restart and inspect profile gateways.", no_args_is_help=True)
profile_app = typer.Typer(help="Create, list and delete profiles (through the container's hermes).",
                          no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
app.add_typer(profile_app, name="profile")


@dataclass
class Run:
    """Per-invocation context: output settings and a lazily connected fleet."""
    out: Output
    hosts: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    project: Optional[str] = None
    fleet_file: Optional[str] = None
    swarm: Optional[str] = None
    _fleet: Optional[Fleet] = None

    def fleet(self) -> Fleet:
        if self._fleet is None:
            from hermesctl.compose import detect_project
            from hermesctl.multihost import build_fleet
            if self.swarm:
                from hermesctl.swarm import build_swarm_fleet
                self._fleet = build_swarm_fleet(self.swarm, stack=self.project, fleet_file=self.fleet_file)
                self.out.several_endpoints, self.out.endpoint_column = True, "NODE"
                return self._fleet
            project = self.project or detect_project()
            self._fleet = build_fleet(self.hosts, self.contexts, project=project,
                                      fleet_file=self.fleet_file)
            self.out.several_endpoints = self._fleet.configured > 1
        return self._fleet


def _run(ctx: typer.Context, json_output: bool = False) -> Run:
    """The run's context; a command's own --json (after the subcommand) counts too."""
    run: Run = ctx.find_root().obj
    run.out.json = run.out.json or json_output
    return run


JSON = typer.Option(False, "--json", help="one JSON document (versioned schema)")


def _exit(ctx: typer.Context, status: int) -> None:
    """End the command. Endpoints that did not answer are reported here, once, for every
    command; an otherwise successful answer that lacks them exits PARTIAL."""
    run: Optional[Run] = ctx.find_root().obj
    fleet = run._fleet if run else None
    if fleet and fleet.unreachable:
        for u in fleet.unreachable:
            run.out.warn(f"endpoint {u.endpoint} did not answer: {u.message}")
        if status == ExitStatus.OK:
            status = ExitStatus.PARTIAL
    raise typer.Exit(int(status))


@app.callback()
def main_options(
    ctx: typer.Context,
    host: List[str] = typer.Option([], "--host", "-H", help="Docker endpoint URL (repeatable): unix://, tcp://, ssh://"),
    context: List[str] = typer.Option([], "--context", "-c", help="Docker context name (repeatable)"),
    project: Optional[str] = typer.Option(None, "--project", "-p", help="only this compose project's containers"),
    fleet_file: Optional[str] = typer.Option(None, "--fleet", help="fleet file whose endpoints to span"),
    swarm: Optional[str] = typer.Option(None, "--swarm", help="a swarm manager's Docker endpoint: Hermes services' tasks, "
                                        "exec'd on their nodes (--project = stack)"),
    json_output: bool = typer.Option(False, "--json", help="one JSON document (versioned schema)"),
    no_headers: bool = typer.Option(False, "--no-headers", help="tables without a header row"),
    version: bool = typer.Option(False, "--version", help="print the version and exit", is_eager=True),
):
    if version:
        typer.echo(f"hermesctl {__version__}")
        raise typer.Exit(0)
    ctx.obj = Run(out=Output(json=json_output, no_headers=no_headers), hosts=host, contexts=context,
                  project=project, fleet_file=fleet_file, swarm=swarm)


TARGETS = typer.Argument(None, help="CONTAINER[:PROFILE], globs allowed; none = everything")


@app.command()
def ps(ctx: typer.Context, targets: Optional[List[str]] = TARGETS,
       wide: bool = typer.Option(False, "--wide", "-w", help="more columns"),
       quiet: bool = typer.Option(False, "--quiet", "-q", help="only CONTAINER:PROFILE ids"),
       watch: bool = typer.Option(False, "--watch", help="a live table until Ctrl-C"),
       interval: float = typer.Option(2.0, "--interval", help="--watch refresh, seconds"),
       json_output: bool = JSON):
    """One row per container x gateway (exit 3 if a gateway wanted up is not up)."""
    from hermesctl.commands.ps import ps as run_ps
    r = _run(ctx, json_output)
    parsed = parse_targets(targets or [])
    _exit(ctx, run_ps(r.out, r.fleet(), parsed, wide=wide, quiet=quiet, watch=watch, interval=interval))


def _lifecycle(verb: str):
    def command(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER[:PROFILE], globs allowed"),
                timeout: float = typer.Option(20.0, "--timeout", help="seconds to wait for the change"),
                settle: float = typer.Option(1.0, "--settle", help="seconds a started gateway must stay up"),
                rolling: bool = typer.Option(False, "--rolling", help="restart: one container at a time, stop at the first failure"),
                json_output: bool = JSON):
        from hermesctl.commands.gateway import lifecycle
        r = _run(ctx, json_output)
        if rolling and verb != "restart":
            raise UsageError("--rolling only applies to restart")
        _exit(ctx, lifecycle(r.out, r.fleet(), verb, parse_targets(targets), timeout=timeout,
                        settle=settle if verb != "stop" else 0, rolling=rolling))
    command.__doc__ = {"start": "Start gateways (records desired_state=running).",
                       "stop": "Stop gateways (records desired_state=stopped).",
                       "restart": "Restart gateways; a stopped one is started."}[verb]
    return command


for _verb in ("start", "stop", "restart"):
    gateway_app.command(_verb)(_lifecycle(_verb))


@gateway_app.command("status")
def gateway_status(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER[:PROFILE]"),
                   json_output: bool = JSON):
    """Exit 0 when every targeted gateway is up, 3 otherwise (as systemctl is-active)."""
    from hermesctl.commands.gateway import status
    r = _run(ctx, json_output)
    _exit(ctx, status(r.out, r.fleet(), parse_targets(targets)))


@gateway_app.command("register")
def gateway_register(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER:PROFILE"),
                     up: bool = typer.Option(False, "--up", help="start it now (default: registered down)")):
    """Create the s6 slot of an existing profile."""
    from hermesctl.commands.gateway import registration
    r = _run(ctx)
    _exit(ctx, registration(r.out, r.fleet(), "register", parse_targets(targets), up=up))


@gateway_app.command("unregister")
def gateway_unregister(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER:PROFILE")):
    """Stop a gateway and remove its s6 slot (the profile stays)."""
    from hermesctl.commands.gateway import registration
    r = _run(ctx)
    _exit(ctx, registration(r.out, r.fleet(), "unregister", parse_targets(targets), up=False))


@profile_app.command("create")
def profile_create(ctx: typer.Context, target: str = typer.Argument(..., help="CONTAINER:NAME"),
                   start: bool = typer.Option(False, "--start", help="start its gateway too")):
    """Create a profile (hermes profile create, as hermes); its gateway is registered down."""
    from hermesctl.commands.profile import create
    r = _run(ctx)
    _exit(ctx, create(r.out, r.fleet(), parse_target(target), start=start))


@profile_app.command("list")
def profile_list(ctx: typer.Context, targets: Optional[List[str]] = TARGETS, json_output: bool = JSON):
    """List profile directories and whether the reconciler will pick them up."""
    from hermesctl.commands.profile import list_command
    r = _run(ctx, json_output)
    _exit(ctx, list_command(r.out, r.fleet(), parse_targets(targets or [])))


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
         lines: int = typer.Option(20, "--tail", "-n", help="lines per gateway to start with")):
    """Gateway logs (logs/gateways/<p>/current), prefixed per target."""
    from hermesctl.commands.logs import logs as run_logs
    r = _run(ctx)
    _exit(ctx, run_logs(r.out, r.fleet(), parse_targets(targets), lines=lines, follow=follow))


@app.command("boot-log")
def boot_log(ctx: typer.Context, container: str = typer.Argument(...),
             lines: int = typer.Option(50, "--tail", "-n"), json_output: bool = JSON):
    """The reconciler's container-boot.log."""
    from hermesctl.commands.boot_log import boot_log as run_boot_log
    r = _run(ctx, json_output)
    _exit(ctx, run_boot_log(r.out, r.fleet(), parse_target(container), lines=lines))


@app.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
def exec_(ctx: typer.Context, container: str = typer.Argument(...),
          command: List[str] = typer.Argument(..., help="-- CMD ARGS..."),
          tty: Optional[bool] = typer.Option(None, "--tty/--no-tty", help="default: when interactive")):
    """Run a command in a container as hermes."""
    from hermesctl.commands.exec_cmd import exec_command
    r = _run(ctx)
    _exit(ctx, exec_command(r.out, r.fleet(), parse_target(container), list(command), interactive=tty))


@app.command()
def doctor(ctx: typer.Context, targets: Optional[List[str]] = TARGETS,
           fix: bool = typer.Option(False, "--fix", help="apply the safe fixes"), json_output: bool = JSON):
    """Check containers for the known pitfalls; each finding names its fix."""
    from hermesctl.commands.doctor import doctor as run_doctor
    r = _run(ctx, json_output)
    _exit(ctx, run_doctor(r.out, r.fleet(), parse_targets(targets or []), fix=fix))


@app.command("backup")
def backup_cmd(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER, globs allowed"),
               output_dir: str = typer.Option(..., "--output", "-o", help="directory for the archives"),
               json_output: bool = JSON):
    """Back up containers' /opt/data: one archive each, SQLite copied consistently, with a manifest."""
    from pathlib import Path
    from hermesctl.commands.backup import backup_command
    r = _run(ctx, json_output)
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
def upgrade_cmd(ctx: typer.Context, targets: List[str] = typer.Argument(..., help="CONTAINER, globs allowed ('*' = all)"),
                image: str = typer.Option(..., "--image", help="the new image (present on each endpoint)"),
                dry_run: bool = typer.Option(False, "--dry-run", help="print the plan, change nothing"),
                backup_dir: Optional[str] = typer.Option(None, "--backup-dir", help="where pre-upgrade backups go "
                                                         "(default ~/.local/state/hermesctl/backups)"),
                timeout: float = typer.Option(180.0, "--timeout", help="seconds a container has to serve"),
                settle: float = typer.Option(3.0, "--settle", help="seconds wanted gateways must stay up"),
                json_output: bool = JSON):
    """Move containers to a new image one at a time: back up, recreate, wait until it serves; roll back on failure."""
    from pathlib import Path
    from hermesctl.commands.upgrade import upgrade
    r = _run(ctx, json_output)
    _exit(ctx, upgrade(r.out, r.fleet(), parse_targets(targets), image, dry_run=dry_run,
                       backup_dir=Path(backup_dir) if backup_dir else None, timeout=timeout, settle=settle))


def _fleet_command(ctx: typer.Context, file: str, json_output: bool):
    from hermesctl.fleetfile import load_fleet_file
    r = _run(ctx, json_output)
    spec = load_fleet_file(file)  # validated before any endpoint is contacted
    if r.fleet_file is None and spec.endpoints:
        r.fleet_file = file
    return r, spec


@app.command("apply")
def apply_cmd(ctx: typer.Context, file: str = typer.Option(..., "--file", "-f", help="fleet file (YAML)"),
              dry_run: bool = typer.Option(False, "--dry-run", help="print the plan, change nothing"),
              prune: bool = typer.Option(False, "--prune", help="delete profiles the file does not name"),
              json_output: bool = JSON):
    """Converge containers to a fleet file: profiles, settings, gateway states."""
    from hermesctl.commands.apply import apply
    r, spec = _fleet_command(ctx, file, json_output)
    _exit(ctx, apply(r.out, r.fleet(), spec, dry_run=dry_run, prune=prune))


@app.command("diff")
def diff_cmd(ctx: typer.Context, file: str = typer.Option(..., "--file", "-f", help="fleet file (YAML)"),
             prune: bool = typer.Option(False, "--prune", help="include deletions of unnamed profiles"),
             json_output: bool = JSON):
    """Show what apply would change (same as apply --dry-run)."""
    from hermesctl.commands.apply import apply
    r, spec = _fleet_command(ctx, file, json_output)
    _exit(ctx, apply(r.out, r.fleet(), spec, dry_run=True, prune=prune))


def main(argv: Optional[List[str]] = None) -> None:
    out = Output()
    try:
        status = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        status = exc.exit_code
    except typer.Abort:
        status = ExitStatus.INTERRUPTED
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        exc.show()
        status = getattr(exc, "exit_code", ExitStatus.USAGE) or ExitStatus.USAGE
    except HermesctlError as exc:
        out.error(exc.message)
        status = exc.status
    except KeyboardInterrupt:
        status = ExitStatus.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, not a traceback
        if os.environ.get("HERMESCTL_DEBUG"):
            raise
        out.error(f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                  "(HERMESCTL_DEBUG=1 shows the traceback)")
        status = ExitStatus.FAILED
    sys.exit(int(status or 0))
