"""The fleet file: which containers run which profiles, with which gateway state and settings.

    version: 1
    endpoints:                      # optional; default: the current Docker endpoint
      lab: {host: "ssh://ops@lab:22"}  # or {context: NAME}
    containers:
      hermes-1:
        endpoint: lab               # optional
        profiles:
          coder:
            gateway: running        # running | stopped; omitted: leave as it is
            api_server: true        # a distinct API_SERVER_PORT and a key, allocated per container
            env:                    # written to the profile's own .env
              OPENROUTER_MODEL: x
              OPENROUTER_API_KEY: {from_env: NAME}   # or {from_file: PATH}, {from_secret: NAME}
                                                     # (hermesctl.config.references)
            budget: {daily_usd: 5, hourly_usd: 1}  # usage (daily) and serve's alerts
            model: {provider: custom, default: some-model, base_url: "http://127.0.0.1:18080/v1"}
            soul: {from_file: souls/coder.md}        # or {text: "..."}: the profile's SOUL.md
            config:                 # any key `hermes config set` takes (judged by the image's hermes)
              agent.max_turns: 40   # values as literals or references, as under env (a reference
                                    # goes to .env as HERMESCTL_CONFIG_<KEY>, config.yaml gets ${that})
            skills: [{from_dir: skills/review}]   # installed as the profile's skills/review
        budget: {daily_usd: 20}     # optional: the whole container's

Validation walks PyYAML's node tree, so every error names the file and line it is about.
The file is untrusted input: read with a size cap, as UTF-8 only, nesting depth-limited, values
without control characters, and errors never echo what the file holds beyond plain names.
"""
import hmac
import re
import secrets
from dataclasses import dataclass, field

import yaml

from hermesctl.agent.contract import PLATFORM_TOKEN_KEYS
from hermesctl.config.endpoint_urls import check_context, check_endpoint
from hermesctl.config.envvalues import DOTENV_VARIABLE, MAX_VALUE, control_characters, not_utf8, value_problem  # noqa: F401 - re-exported
from hermesctl.config.references import Reference, config_env_name
from hermesctl.core.errors import FleetFileError, InvalidNameError, UsageError
from hermesctl.model.names import DEFAULT_PROFILE, normalize_profile, require_creatable

# Applied with fullmatch: `$` would also match before a final newline.
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
CONTAINER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_BYTES = 1024 * 1024  # a fleet file is a few KiB; /dev/zero must not be read forever
MAX_DEPTH = 32           # the schema needs 6 levels; 3,000 would exhaust Python's stack
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
# Keys whose literal value apply warns about: a secret belongs in a reference.
SECRET_LOOKING = re.compile(r".*_(KEY|TOKEN|SECRET|PASSWORD|PAT)", re.IGNORECASE)
SWARM_SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
REFERENCE_KINDS = ("from_env", "from_file", "from_secret")


def shown(text: str) -> str:
    """`text` quoted for an error message when it is a plain name; otherwise a placeholder, so
    a file that is not a fleet file (/etc/shadow) never has its contents printed."""
    return repr(text) if _PLAIN.fullmatch(text) else "(a value that is not a plain name)"


class _DepthLimitedLoader(yaml.SafeLoader):
    """PyYAML's composer recurses once per nesting level: cap it before Python's stack does."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise FleetFileError(f"{self.name}:{mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
API_SERVER_KEYS = ("API_SERVER_ENABLED", "API_SERVER_HOST", "API_SERVER_PORT", "API_SERVER_KEY")


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    url: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class SoulSpec:
    source: str            # "file" (a path relative to the fleet file) or "text"
    line: int
    path: str | None = None
    text: str | None = field(default=None, repr=False)  # from_file: once resolved


@dataclass(frozen=True)
class SkillSpec:
    name: str              # the directory's name: the profile's skills/<name>
    path: str              # as written: relative to the fleet file, or absolute
    line: int
    files: dict | None = field(default=None, repr=False, compare=False)  # {relative path: bytes}, once read


@dataclass(frozen=True)
class ProfileSpec:
    name: str
    gateway: str | None = None
    api_server: bool = False
    env: dict = field(default_factory=dict)  # KEY -> literal str, or a references.Reference
    budget_daily_usd: float | None = None  # read by usage and serve; apply leaves it alone
    budget_hourly_usd: float | None = None  # serve's alert rule only
    # hermes' config.yaml: dotted key -> literal str (as `hermes config set` takes it) or a
    # Reference; `model:` is written here as model.provider, model.default, model.base_url.
    config: dict = field(default_factory=dict)
    config_lines: dict = field(default_factory=dict, compare=False)  # dotted key -> fleet-file line
    soul: SoulSpec | None = None
    skills: tuple = ()  # SkillSpec, in the file's order


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    endpoint: str | None
    profiles: tuple[ProfileSpec, ...]
    budget_daily_usd: float | None = None
    budget_hourly_usd: float | None = None


@dataclass(frozen=True)
class FleetSpec:
    path: str
    endpoints: tuple[EndpointSpec, ...]
    containers: tuple[ContainerSpec, ...]
    warnings: tuple[str, ...] = ()  # file:line: literal values whose key looks like a secret


class _Reader:
    def __init__(self, path: str):
        self.path = path
        self.warnings: list[str] = []

    def fail(self, node, message: str):
        line = node.start_mark.line + 1 if node is not None else 1
        raise FleetFileError(f"{self.path}:{line}: {message}")

    def mapping(self, node, what: str, allowed: set[str] | None = None) -> dict:
        """{key: (key_node, value_node)}, rejecting non-mappings, duplicates and unknown keys."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, f"{what}: keys must be plain names")
            key = key_node.value
            if key in out:
                self.fail(key_node, f"{what}: {shown(key)} appears twice")
            if allowed is not None and key not in allowed:
                self.fail(key_node, f"{what}: unknown key {shown(key)} (expected one of {', '.join(sorted(allowed))})")
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{what} must be a single value")
        return node.value

    def boolean(self, node, what: str) -> bool:
        value = self.scalar(node, what).lower()
        if value not in ("true", "false", "yes", "no"):
            self.fail(node, f"{what} must be true or false, not {shown(value)}")
        return value in ("true", "yes")


def read_text(path: str) -> str:
    """The file's text: at most MAX_BYTES, UTF-8 (a BOM-less UTF-16 or latin-1 file is refused)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FleetFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise FleetFileError(f"{path}: larger than {MAX_BYTES // 1024} KiB: not a fleet file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FleetFileError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None
    if "\0" in text:
        raise FleetFileError(f"{path}:{text[:text.index(chr(0))].count(chr(10)) + 1}: binary data (NUL byte)")
    return text.removeprefix("\ufeff")


def load_fleet_file(path: str) -> FleetSpec:
    text = read_text(path)
    try:
        loader = _DepthLimitedLoader(text)
        loader.name = path
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise FleetFileError(f"{path}{line}: not valid YAML: {problem}") from None
    r = _Reader(path)
    if root is None:
        r.fail(None, "the file is empty")
    top = r.mapping(root, "the fleet file", {"version", "endpoints", "containers"})
    if "version" in top and r.scalar(top["version"][1], "version") != "1":
        r.fail(top["version"][1], "only version 1 is understood")
    endpoints = _endpoints(r, top["endpoints"][1]) if "endpoints" in top else ()
    if "containers" not in top:
        r.fail(root, "missing 'containers'")
    names = {e.name for e in endpoints}
    containers = []
    for name, (key_node, node) in r.mapping(top["containers"][1], "containers").items():
        if not CONTAINER_NAME.fullmatch(name):
            r.fail(key_node, f"{shown(name)} is not a container name")
        body = r.mapping(node, f"container {name}", {"endpoint", "profiles", "budget"})
        endpoint = r.scalar(body["endpoint"][1], "endpoint") if "endpoint" in body else None
        if endpoint is not None and endpoint not in names:
            r.fail(body["endpoint"][1], f"endpoint {endpoint!r} is not defined under 'endpoints'")
        profiles = _profiles(r, name, body["profiles"][1]) if "profiles" in body else ()
        budget = _budget(r, body["budget"][1], f"budget of {name}") if "budget" in body else (None, None)
        containers.append(ContainerSpec(name, endpoint, profiles, *budget))
    return FleetSpec(path, endpoints, tuple(containers), tuple(r.warnings))


def _endpoints(r: _Reader, node) -> tuple[EndpointSpec, ...]:
    specs = []
    for name, (key_node, value) in r.mapping(node, "endpoints").items():
        if not CONTAINER_NAME.fullmatch(name):
            r.fail(key_node, f"{shown(name)} is not an endpoint name (letters, digits, _ . -)")
        body = r.mapping(value, f"endpoint {name}", {"host", "context"})
        if len(body) != 1:
            r.fail(value, f"endpoint {name}: give exactly one of host or context")
        (kind, (_, v)), = body.items()
        target = r.scalar(v, f"endpoint {name} {kind}")
        try:
            check_endpoint(target) if kind == "host" else check_context(target)
        except UsageError as exc:
            r.fail(v, f"endpoint {name}: {exc.message}")
        specs.append(EndpointSpec(name, url=target if kind == "host" else None,
                                  context=target if kind == "context" else None))
    return tuple(specs)


def _profiles(r: _Reader, container: str, node) -> tuple[ProfileSpec, ...]:
    specs = []
    for raw, (key_node, value) in r.mapping(node, f"profiles of {container}").items():
        try:
            name = normalize_profile(raw) if raw == DEFAULT_PROFILE else require_creatable(raw)
        except InvalidNameError as exc:
            r.fail(key_node, exc.message)
        body = r.mapping(value, f"profile {raw}", {"gateway", "api_server", "env", "budget", "model", "soul",
                                                   "config", "skills"}) \
            if not (isinstance(value, yaml.ScalarNode) and value.value in ("", "null")) else {}
        gateway = None
        if "gateway" in body:
            gateway = r.scalar(body["gateway"][1], "gateway")
            if gateway not in ("running", "stopped"):
                r.fail(body["gateway"][1], f"gateway must be running or stopped, not {shown(gateway)}")
        api_server = r.boolean(body["api_server"][1], "api_server") if "api_server" in body else False
        env = {}
        if "env" in body:
            for key, (k_node, v_node) in r.mapping(body["env"][1], f"env of {raw}").items():
                if not ENV_KEY.fullmatch(key):
                    r.fail(k_node, f"{shown(key)} is not an environment variable name")
                if api_server and key in ("API_SERVER_PORT", "API_SERVER_KEY"):
                    r.fail(k_node, f"{key} is allocated by api_server: true; remove one of them")
                if isinstance(v_node, yaml.MappingNode):
                    env[key] = _reference(r, f"env {key}", v_node)
                    continue
                value_text = r.scalar(v_node, f"env {key}")
                why = value_problem(value_text)
                if why:
                    r.fail(v_node, f"env {key}: {why}")
                env[key] = value_text
                if SECRET_LOOKING.fullmatch(key):
                    r.warnings.append(f"{r.path}:{v_node.start_mark.line + 1}: env {key} is a literal value "
                                      "in the fleet file; use {from_env: NAME}, {from_file: PATH} or "
                                      "{from_secret: NAME}")
        budget = _budget(r, body["budget"][1], f"budget of {raw}") if "budget" in body else (None, None)
        config, lines = _agent_settings(r, raw, body, env)
        soul = _soul(r, raw, body["soul"][1]) if "soul" in body else None
        skills = _skills(r, raw, body["skills"][1]) if "skills" in body else ()
        specs.append(ProfileSpec(name, gateway, api_server, env, *budget, config=config, config_lines=lines,
                                 soul=soul, skills=skills))
    return tuple(specs)


# A dotted key as `hermes config set` takes it; whether hermes knows it is the image's to say
# (the agent's `agent-config`), this is only its form.
CONFIG_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(\.[A-Za-z0-9_-]{1,64}){0,15}")
MODEL_KEYS = ("provider", "default", "base_url", "api_key")
MAX_SOUL_BYTES = 64 * 1024  # the image's write-soul takes at most this (an exec environment string)


def _agent_settings(r: _Reader, profile: str, body: dict, env: dict) -> tuple[dict, dict]:
    """`model:` and `config:` as one map of dotted keys (model.X for model's), with their lines.
    A reference also goes into `env` under config_env_name(key) (see CONFIG_ENV_PREFIX)."""
    config, lines = {}, {}
    derived: dict[str, str] = {}  # env name -> the config key it holds
    sections = []
    if "model" in body:
        sections.append(("model", {f"model.{k}": v for k, v in
                                   r.mapping(body["model"][1], f"model of {profile}", set(MODEL_KEYS)).items()}))
    if "config" in body:
        sections.append(("config", r.mapping(body["config"][1], f"config of {profile}")))
    for section, entries in sections:
        for key, (k_node, v_node) in entries.items():
            what = f"{section} {key.removeprefix('model.')}" if section == "model" else f"config {key}"
            if not CONFIG_KEY.fullmatch(key):
                r.fail(k_node, f"config of {profile}: {shown(key)} is not a dotted settings key")
            if key in config:
                r.fail(k_node, f"config of {profile}: {key} is also given by model: (line {lines[key]})")
            if isinstance(v_node, yaml.MappingNode):
                ref = _reference(r, what, v_node, label=what)
                name = config_env_name(key)
                if not ENV_KEY.fullmatch(name):
                    r.fail(k_node, f"{what}: the key is too long for a value by reference")
                if name in derived:
                    r.fail(k_node, f"{what}: a value by reference here and for {derived[name]} would share "
                                   f"the .env variable {name}")
                if name in env:
                    r.fail(k_node, f"{what}: its value by reference is kept in env {name}, which env sets too")
                derived[name] = key
                env[name] = ref
                config[key] = ref
            else:
                text = r.scalar(v_node, what)
                if text == "" or (v_node.tag == "tag:yaml.org,2002:null"):
                    r.fail(v_node, f"{what} needs a value")
                why = value_problem(text)
                if why:
                    r.fail(v_node, f"{what}: {why}")
                config[key] = text
            lines[key] = v_node.start_mark.line + 1
    return config, lines


SKILL_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # as the image's write-skill takes it


def _skills(r: _Reader, profile: str, node) -> tuple:
    """`[{from_dir: PATH}, ...]`: each directory a skill named after it (its SKILL.md inside)."""
    if not isinstance(node, yaml.SequenceNode):
        r.fail(node, f"skills of {profile} must be a list of {{from_dir: PATH}}")
    specs, lines = [], {}
    for item in node.value:
        body = r.mapping(item, f"a skill of {profile}", {"from_dir"})
        if "from_dir" not in body:
            r.fail(item, f"a skill of {profile}: give from_dir")
        v_node = body["from_dir"][1]
        path = r.scalar(v_node, "skill from_dir")
        if not path or control_characters(path):
            r.fail(v_node, "skill: from_dir needs a path")
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if not SKILL_NAME.fullmatch(name):
            r.fail(v_node, f"skill: {shown(name)} is not a skill name (1-64 of a-z 0-9 _ . -)")
        line = v_node.start_mark.line + 1
        if name in lines:
            r.fail(v_node, f"skill {name} is also given on line {lines[name]}")
        lines[name] = line
        specs.append(SkillSpec(name, path, line))
    return tuple(specs)


def _soul(r: _Reader, profile: str, node) -> SoulSpec:
    body = r.mapping(node, f"soul of {profile}", {"from_file", "text"})
    if len(body) != 1:
        r.fail(node, f"soul of {profile}: give exactly one of from_file or text")
    (kind, (_, v_node)), = body.items()
    text = r.scalar(v_node, f"soul {kind}")
    line = v_node.start_mark.line + 1
    if kind == "from_file":
        if not text or control_characters(text):
            r.fail(v_node, "soul: from_file needs a path")
        return SoulSpec("file", line, path=text)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOUL_BYTES or "\0" in text:
        r.fail(v_node, f"soul: text must be at most {MAX_SOUL_BYTES // 1024} KiB of text")
    return SoulSpec("text", line, text=text)


def _reference(r: _Reader, what: str, node, *, label: str = "") -> Reference:
    """`{from_env: NAME}`, `{from_file: PATH}` or `{from_secret: NAME}` (for `what`, e.g. "env KEY"):
    checked here for form only; references.resolve reads the environment and files (apply and
    diff, not ps)."""
    body = r.mapping(node, what, set(REFERENCE_KINDS))
    if len(body) != 1:
        r.fail(node, f"{what}: give exactly one of {', '.join(REFERENCE_KINDS)}")
    (kind, (_, v_node)), = body.items()
    target = r.scalar(v_node, f"{what} {kind}")
    line = v_node.start_mark.line + 1
    if kind == "from_env" and not ENV_KEY.fullmatch(target):
        r.fail(v_node, f"{what}: from_env needs an environment variable name, not {shown(target)}")
    if kind == "from_secret" and not SWARM_SECRET_NAME.fullmatch(target):
        r.fail(v_node, f"{what}: from_secret needs a Docker secret name, not {shown(target)}")
    if kind == "from_file" and (not target or control_characters(target)):
        r.fail(v_node, f"{what}: from_file needs a path")
    return Reference(kind.removeprefix("from_"), target, line, label=label)


MAX_BUDGET_USD = 1e9


def _budget(r: _Reader, node, what: str) -> tuple[float | None, float | None]:
    """`{daily_usd: N, hourly_usd: M}` (either or both): finite, non-negative US dollars."""
    body = r.mapping(node, what, {"daily_usd", "hourly_usd"})
    if not body:
        r.fail(node, f"{what}: give daily_usd (and/or hourly_usd)")
    values = []
    for key in ("daily_usd", "hourly_usd"):
        if key not in body:
            values.append(None)
            continue
        text = r.scalar(body[key][1], f"{what} {key}")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 <= value <= MAX_BUDGET_USD:  # also refuses nan and inf
            r.fail(body[key][1], f"{what}: {key} must be a number of dollars from 0 to "
                   f"{MAX_BUDGET_USD:.0e}, not {shown(text)}")
        values.append(value)
    return values[0], values[1]


def one_token_one_gateway(spec: FleetSpec) -> None:
    """Refuse a fleet file that gives one platform token (contract.PLATFORM_TOKEN_KEYS) to two
    profiles: their gateways would fight over one bot (Telegram answers the second poller 409
    Conflict). Values are compared by a keyed hash made for this call (literals and resolved
    from_env/from_file values alike) and swarm secrets by name; the error names keys, profiles and
    lines, never a value. Call it after references.resolve."""
    key = secrets.token_bytes(32)
    holders: dict[tuple[str, str], list[str]] = {}
    for c in spec.containers:
        for p in c.profiles:
            for env_key, value in p.env.items():
                if env_key not in PLATFORM_TOKEN_KEYS:
                    continue
                where = f"{c.name}:{p.name}"
                if isinstance(value, Reference):
                    where += f" (line {value.line})"
                    if value.source == "secret":
                        holders.setdefault((env_key, "secret:" + value.name), []).append(where)
                        continue
                    value = value.value
                if not isinstance(value, str) or not value.strip():
                    continue
                digest = hmac.new(key, value.strip().encode("utf-8", "surrogatepass"), "sha256").hexdigest()
                holders.setdefault((env_key, digest), []).append(where)
    shared = [(env_key, places) for (env_key, _), places in sorted(holders.items()) if len(places) > 1]
    if shared:
        what = "; ".join(f"{env_key} is one token for {', '.join(places)}" for env_key, places in shared)
        raise UsageError(f"{spec.path}: {what}: two gateways holding one bot token fight over it (Telegram "
                     "answers the second poller 409 Conflict); give each profile its own token")
