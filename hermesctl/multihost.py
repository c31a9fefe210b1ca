"""Building the fleet's endpoints from --host, --context, a fleet file, or the environment."""
from hermesctl.endpoints import Endpoint, connect, resolve
from hermesctl.errors import describe
from hermesctl.fleet import Fleet, Unreachable
from hermesctl.parallel import fan_out


def build_fleet(hosts: list[str], contexts: list[str], *, project: str | None,
                fleet_file: str | None) -> Fleet:
    specs = [resolve(host=h) for h in hosts] + [resolve(context=c) for c in contexts]
    if fleet_file:
        from hermesctl.fleetfile import load_fleet_file
        for e in load_fleet_file(fleet_file).endpoints:
            _, url, tls = resolve(host=e.url) if e.url else resolve(context=e.context)
            specs.append((e.name, url, tls))
    if not specs:
        specs = [resolve()]
    # Same URL named twice (a context and its URL) is one endpoint.
    unique = list({url: (name, url, tls) for name, url, tls in specs}.values())
    connected = fan_out(lambda spec: connect(*spec), unique)
    endpoints: list[Endpoint] = [o.value for o in connected if o.ok]
    failures = [o for o in connected if not o.ok]
    if not endpoints:
        raise failures[0].error  # connect() raises DaemonUnreachableError; nothing answered at all
    fleet = Fleet(endpoints=endpoints, project=project, configured=len(unique))
    for o in failures:
        fleet.unreachable.append(Unreachable(o.item[0], describe(o.error)))
    return fleet
