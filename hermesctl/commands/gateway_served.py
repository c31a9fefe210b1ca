"""`hermesctl gateway status` answered by a running `hermesctl serve`: its ps document (the rows
every ps path builds, engine.rows.gateway_row) holds each gateway's state, pid and uptime, the
same figures a probe gives commands/gateway.status. Here the targets select from those rows by
the rules of Fleet.select (Fleet.match's order, targets.match_profiles), and
render.gateway_status reports them, as it reports a direct answer.

Only an answer that is certainly the direct one is given; anything else returns None and the
containers are asked: a target naming an endpoint, an id prefix or a service (the rows carry no
ids, and a container with no rows is missing from them); a selected container without gateway
rows (stopped, booting, did not answer: the direct path's errors and warnings are its own); a
profile with no slot yet, a missing exact profile (its error); a gateway with orphaned processes
(its row's state hides the run state); anything that did not answer (the direct path reports
it); a swarm (its nodes' column). Stdlib only, as ps_served."""
from hermesctl.core.errors import HermesctlError
from hermesctl.model.targets import Candidate, Target, is_glob, match_profiles, selected_names
from hermesctl.render import ps_rows
from hermesctl.render.gateway_status import GatewayStatus


def gateways(doc: dict, targets: list[Target]) -> list[GatewayStatus] | None:
    """The gateways a direct `gateway status` with these targets would report, from the served
    document; None when the containers must be asked."""
    if doc.get("schema") != ps_rows.SCHEMA or doc.get("unreachable") or (doc.get("scope") or {}).get("swarm"):
        return None
    rows = ps_rows.rows_of(doc)
    by_container: dict[tuple, list[ps_rows.GatewayRow]] = {}
    for r in rows:
        by_container.setdefault((r.endpoint, r.container), []).append(r)
    known = [Candidate(name, "", rs[0].service, endpoint) for (endpoint, name), rs in by_container.items()]
    chosen: dict[tuple, list[Target]] = {}  # Fleet.match: in the targets' order, each container once
    for t in targets:
        if t.endpoint is not None or not (is_glob(t.container) or any(c.name == t.container for c in known)):
            return None
        try:
            names = set(selected_names(t.container, known))
        except HermesctlError:
            return None
        found = [key for key in by_container if key[1] in names]
        if not found:
            return None
        for key in found:
            if any(r.profile is None for r in by_container[key]):
                return None
            chosen.setdefault(key, []).append(t)
    found_gateways = []
    for key, its_targets in chosen.items():
        slots = {r.profile: r for r in by_container[key] if r.state != ps_rows.NO_SLOT}
        unslotted = {r.profile for r in by_container[key] if r.state == ps_rows.NO_SLOT}
        profiles: list[str] = []
        for t in its_targets:  # Fleet.select's rule, on the served rows
            if t.profile in unslotted:
                if is_glob(t.container):
                    continue
                return None
            try:
                selected = match_profiles(t, key[1], list(slots), strict=not is_glob(t.container))
            except HermesctlError:
                return None
            profiles += [p for p in selected if p not in profiles]
        for p in sorted(profiles):
            row = slots[p]
            if row.state == ps_rows.ORPHANED or row.orphan_pids:
                return None
            found_gateways.append(GatewayStatus(row.endpoint, row.container, p, row.state, row.pid, row.uptime_s))
    return found_gateways or None
