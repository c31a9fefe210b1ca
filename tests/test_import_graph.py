"""The module structure issue 14 asks for, checked on the source: no import circles, nothing
imports upward (cli > commands > serve/engine > backends > the rest), only backends use the
Docker SDK's API, and no command picks a backend by its class."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hermesctl"
# Layers, highest first: a module may import its own layer or lower ones only. serve and
# commands are one layer apart so that the server never reaches into a command.
# The layers are folders; the modules in agent/, config/, core/, model/ and render/ are the base
# every layer may use (rank 1).
LAYERS = [("hermesctl.cli", 6), ("hermesctl.__main__", 6), ("hermesctl.commands", 5), ("hermesctl.serve", 4),
          ("hermesctl.engine", 3), ("hermesctl.backends", 2)]
# Only backends/ imports the Docker SDK or holds its client. The one exception, by name and why:
SDK_IMPORT_EXCEPTIONS = {
    # Endpoint resolution reads DOCKER_TLS_VERIFY/DOCKER_CERT_PATH and the CLI's context store
    # with the SDK's own helpers (docker.utils.kwargs_from_env, docker.context, docker.tls), so
    # hermesctl resolves an endpoint exactly as docker-py does; it never connects (no API client).
    "hermesctl.config.endpoints": "resolves endpoints with the SDK's TLS and context helpers",
}
# `.daemon` is the endpoint's Docker client (hermesctl.backends.docker.endpoint.Endpoint.daemon);
# outside backends/ the word may only name something else, each named here with what it is:
DAEMON_ATTRIBUTE_EXCEPTIONS = {
    "hermesctl.core.interrupt": "threading.Timer's daemon flag (a thread, not the Docker client)",
}


def _in_backends(module: str) -> bool:
    return module == "hermesctl.backends" or module.startswith("hermesctl.backends.")


def _imports_the_sdk(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Import) and any(a.name.split(".")[0] == "docker" for a in n.names)
               or isinstance(n, ast.ImportFrom) and not n.level and (n.module or "").split(".")[0] == "docker"
               for n in ast.walk(tree))


def _uses_daemon_attribute(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "daemon" for n in ast.walk(tree))


def layer(module: str) -> int:
    if module == "hermesctl":  # the package's own start-up (sshcompat.defer before any SDK import)
        return 6
    return next((rank for prefix, rank in LAYERS if module == prefix or module.startswith(prefix + ".")), 1)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> hermesctl modules it imports (anywhere in it, functions included; imports
    under `if TYPE_CHECKING` are annotations, not imports)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_lines(tree)
        deps = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    package = name if modules[name].name == "__init__.py" else name.rsplit(".", 1)[0]
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
                deps.add(base)
                deps.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    # Package __init__ modules are only docstrings here; an edge to one is no dependency.
    graph = imports(_modules())
    assert _cycles(graph) == []


def test_nothing_imports_upward():
    graph = imports(_modules())
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if layer(d) > layer(m))
    assert upward == []


def test_only_backends_use_the_docker_sdk_api():
    """The engine's client is reached only through backends/ (issue 25, "a real seam"): no SDK
    import and no `.daemon` elsewhere; what the layers above need (an exec stream, a container's
    inspect, a started container's state) is a method of the fleet or of backends.base.Started."""
    offenders = []
    for name, path in _modules().items():
        text = path.read_text()
        tree = ast.parse(text)
        if ".client.api" in text or "client.api." in text:
            offenders.append(f"{name}: .client.api")
        if _in_backends(name):
            continue
        if _imports_the_sdk(tree) and name not in SDK_IMPORT_EXCEPTIONS:
            offenders.append(f"{name}: imports docker")
        if _uses_daemon_attribute(tree) and name not in DAEMON_ATTRIBUTE_EXCEPTIONS:
            offenders.append(f"{name}: reaches an endpoint's Docker client (.daemon)")
        if "execs.run(" in text:  # an exec goes through the fleet (fleet.run), so its backend decides
            offenders.append(f"{name}: execs around the fleet's backend")
        if "isinstance(" in text and ("SwarmBackend" in text or "SwarmFleet" in text):
            offenders.append(f"{name}: picks a backend by its class")
    assert offenders == []


def test_the_seam_exceptions_are_still_needed():
    """An exception that no longer applies is removed, so the lists say what is true today."""
    modules = _modules()
    trees = {name: ast.parse(modules[name].read_text()) for name in
             {*SDK_IMPORT_EXCEPTIONS, *DAEMON_ATTRIBUTE_EXCEPTIONS}}
    assert [n for n in SDK_IMPORT_EXCEPTIONS if not _imports_the_sdk(trees[n])] == []
    assert [n for n in DAEMON_ATTRIBUTE_EXCEPTIONS if not _uses_daemon_attribute(trees[n])] == []
    # The checks see what they check: a module reaching the client is caught.
    assert _uses_daemon_attribute(ast.parse("fleet.endpoint(c.endpoint).daemon.exec_stream(c.id, argv)"))
    assert _imports_the_sdk(ast.parse("import docker.errors")) and _imports_the_sdk(ast.parse("from docker import tls"))
    assert not _uses_daemon_attribute(ast.parse("threading.Thread(target=f, daemon=True)"))


def test_the_checks_see_what_they_check():
    """The graph is real: known edges are found, so an empty list above means something."""
    graph = imports(_modules())
    assert "hermesctl.engine.upgrade" in graph["hermesctl.commands.upgrade"]
    assert "hermesctl.backends.docker.daemon" in graph["hermesctl.backends.docker.backend"]
    assert layer("hermesctl.commands.ps") > layer("hermesctl.serve.refresher") > layer("hermesctl.engine.rows")
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def test_every_json_document_goes_through_output():
    """Commands print JSON only through output.Output (document, json_line)."""
    offenders = []
    for name, path in _modules().items():
        if name.startswith(("hermesctl.commands.", "hermesctl.engine.", "hermesctl.cli.app")):
            text = path.read_text()
            if "json.dumps" in text or "sys.stdout.write(json" in text:
                offenders.append(name)
    assert offenders == []


def test_commands_never_import_commands():
    # What two commands share lives in a lower layer (engine/, render/), so each command module
    # can be read, and changed, alone.
    graph = imports(_modules())
    crossing = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.startswith("hermesctl.commands.")
                      for d in deps if d.startswith("hermesctl.commands.") and d != "hermesctl.commands")
    assert crossing == []


def test_the_layers_are_folders():
    # A newcomer finds the layers as folders: the package's top holds only its entry points.
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"]


def test_a_fleet_holds_its_backend_rather_than_being_one():
    # Issue 25: selection, probes and the agent's questions are the fleet's, the same code for
    # every orchestrator; what differs (listing, execs, instances) is the backend it holds.
    from hermesctl.backends.docker.backend import DockerBackend
    from hermesctl.backends.docker.fleet import ContainerBackend, Fleet
    from hermesctl.backends.swarm.backend import SwarmBackend
    for backend in (ContainerBackend, DockerBackend, SwarmBackend):
        assert not issubclass(backend, Fleet)
        assert Fleet(endpoints=[], backend=backend()).kind == backend.kind
    assert [DockerBackend.kind, SwarmBackend.kind] == ["docker", "swarm"]
