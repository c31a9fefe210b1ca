"""Building the fleet's endpoints from --host, --context, a fleet file, or the environment."""
from hermesctl.endpoints import Endpoint, Resolved, connect, resolve
from hermesctl.errors import describe
from hermesctl.fleet import Fleet, Unreachable
from hermesctl.parallel import fan_out


def build_fleet(hosts: list[str], contexts: list[str], *, project: str | None,
                fleet_file: str | None) -> Fleet:
    specs = [resolve(host=h) for h in hosts] + [resolve(context=c) for c in contexts]
    if fleet_file:
        from hermesctl.fleetfile import load_fleet_file
        for e in load_fleet_file(fleet_file).endpoints:
            r = resolve(host=e.url) if e.url else resolve(context=e.context)
            specs.append(Resolved(e.name, r.url, r.tls, r.cli_args))
    if not specs:
        specs = [resolve()]
    # Same URL named twice (a context and its URL) is one endpoint.
    unique = list({spec.url: spec for spec in specs}.values())
    connected = fan_out(connect, unique)
    endpoints: list[Endpoint] = [o.value for o in connected if o.ok]
    failures = [o for o in connected if not o.ok]
    if not endpoints:
        raise failures[0].error  # connect() raises DaemonUnreachableError; nothing answered at all
    fleet = Fleet(endpoints=endpoints, project=project, configured=len(unique))
    for o in failures:
        fleet.unreachable.append(Unreachable(o.item.name, describe(o.error)))
    return fleet
