"""Fleet-file values that are references, not literals, so the file can live in git:

    env:
      OPENROUTER_API_KEY: {from_env: OPENROUTER_API_KEY}   # the operator's environment
      TELEGRAM_BOT_TOKEN: {from_file: secrets/telegram}    # a file, relative to the fleet file
      DISCORD_BOT_TOKEN: {from_secret: discord-token-v2}   # --swarm: a Docker Swarm secret

A file's value is its whole content without one final newline; it must be one line, and the
file must be readable by its owner only (mode 0600 or 0400), as ssh demands of private keys.
A swarm secret is never read here: apply attaches it to the service and the image writes it
into .env inside the container. What is shown instead of a value: `hmac()`, a keyed hash.
"""
import hmac
import os
import stat
from dataclasses import dataclass, field, replace

from hermesctl.config.envvalues import value_problem
from hermesctl.core.errors import UsageError

MAX_VALUE = 64 * 1024

# A value by reference in `model:`/`config:` never lands in config.yaml: it goes to the profile's
# .env under this name, and config.yaml holds `${NAME}`, which hermes expands from its .env when it
# loads its settings (hermes_cli.config._expand_env_vars; the gateway does it too). So a config
# secret travels, is attached (swarm), diffed by keyed hash and never printed exactly as an env one.
CONFIG_ENV_PREFIX = "HERMESCTL_CONFIG_"


def config_env_name(key: str) -> str:
    """The .env variable that holds the referenced value of config key `key`."""
    return CONFIG_ENV_PREFIX + key.upper().replace(".", "__").replace("-", "_")


def config_template(key: str) -> str:
    """What config.yaml holds for a referenced key: hermes' own `${VAR}` form."""
    return "${" + config_env_name(key) + "}"


@dataclass(frozen=True)
class Reference:
    source: str   # env, file or secret
    name: str     # variable name, path as written, or secret name
    line: int     # where the fleet file names it
    value: str | None = field(default=None, repr=False, compare=False)  # env and file, once resolved
    label: str = field(default="", compare=False)  # how errors name its place, when not `env KEY`

    def describe(self) -> str:
        return f"from_{self.source}:{self.name}"


def _fail(path: str, ref: Reference, what: str, why: str):
    raise UsageError(f"{path}:{ref.line}: {what}: {why}")


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    """A descriptor on a regular file (never blocking on a FIFO) and its stat; ValueError saying
    why not. The caller closes it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ValueError("not a regular file")
    return fd, st


def read_file_value(path: str) -> str:
    """The one-line value of a private file; ValueError saying why not (never the content)."""
    fd, st = _open_regular(path)
    try:
        if st.st_mode & 0o077:
            raise ValueError(f"mode {stat.S_IMODE(st.st_mode):04o} lets group or others read or write it; "
                             "chmod 600 it")
        data = b""
        while len(data) <= MAX_VALUE + 2:
            chunk = os.read(fd, MAX_VALUE + 3 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if "\n" in text or "\r" in text:
        raise ValueError("holds more than one line (a value is the file's one line)")
    return text


def _resolved(spec, base: str, ref: Reference, what: str) -> Reference:
    """`ref` with its value read (from_env, from_file), or UsageError naming the line."""
    if ref.source == "env":
        value = os.environ.get(ref.name)
        if value is None:
            _fail(spec.path, ref, what, f"{ref.name} is not set in the environment")
    else:
        try:
            value = read_file_value(os.path.join(base, ref.name))
        except ValueError as exc:
            _fail(spec.path, ref, what, f"from_file {ref.name!r}: {exc}")
    if value == "":
        _fail(spec.path, ref, what, f"{ref.describe()} is empty")
    why = value_problem(value)
    if why:
        _fail(spec.path, ref, what, f"{ref.describe()}: {why}")
    return replace(ref, value=value)


MAX_SOUL_BYTES = 64 * 1024  # as fleetfile.MAX_SOUL_BYTES: what the image's write-soul takes


def read_soul(path: str) -> str:
    """A soul file's text (any number of lines: it is the profile's SOUL.md); ValueError saying
    why not. Not a secret, so any mode; read with a size cap, UTF-8 only."""
    fd, _ = _open_regular(path)
    try:
        data = b""
        while len(data) <= MAX_SOUL_BYTES:
            chunk = os.read(fd, MAX_SOUL_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_SOUL_BYTES:
        raise ValueError(f"larger than {MAX_SOUL_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    if "\0" in text:
        raise ValueError("binary data (NUL byte)")
    return text


MAX_SKILL_FILES = 64        # as the image's write-skill takes them
MAX_SKILL_BYTES = 64 * 1024  # all files together: they travel in one exec environment string
_PATH_PART = __import__("re").compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def read_skill_dir(root: str) -> dict:
    """{relative path: bytes} of a skill directory: regular files and directories only (a
    symlink is refused, not followed), names of plain characters (no dotfiles), SKILL.md at its
    top, at most MAX_SKILL_FILES files and MAX_SKILL_BYTES together; ValueError saying why not."""
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            raise ValueError("not a directory")
    except FileNotFoundError:
        raise ValueError("no such directory") from None
    files, total, pending = {}, 0, [""]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = f"{rel}/{entry.name}" if rel else entry.name
                if not _PATH_PART.fullmatch(entry.name):
                    raise ValueError(f"{path!r}: file names must be plain (letters, digits, _ . -; no dotfiles)")
                if entry.is_symlink():
                    raise ValueError(f"{path!r} is a symlink: a skill is copied as files")
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise ValueError(f"{path!r} is not a regular file")
                with open(os.path.join(root, path), "rb") as f:
                    data = f.read(MAX_SKILL_BYTES + 1)
                total += len(data)
                if len(files) >= MAX_SKILL_FILES or total > MAX_SKILL_BYTES:
                    raise ValueError(f"more than {MAX_SKILL_FILES} files or {MAX_SKILL_BYTES // 1024} KiB")
                files[path] = data
    if "SKILL.md" not in files:
        raise ValueError("no SKILL.md in it")
    return files


def resolve(spec):
    """The fleet spec with every from_env and from_file value read (env and config values, soul
    files), or UsageError (exit 2) naming the key and the fleet file's line: called before any
    container is asked or changed."""
    base = os.path.dirname(os.path.abspath(spec.path))
    containers = []
    for c in spec.containers:
        profiles = []
        for p in c.profiles:
            env = {key: _resolved(spec, base, ref, ref.label or f"env {key}")
                   if isinstance(ref, Reference) and ref.source != "secret" and ref.value is None else ref
                   for key, ref in p.env.items()}
            # a config key's reference is read once, as the .env entry that carries it
            config = {key: env.get(config_env_name(key), ref) if isinstance(ref, Reference) else ref
                      for key, ref in p.config.items()}
            soul = p.soul
            if soul is not None and soul.source == "file" and soul.text is None:
                try:
                    soul = replace(soul, text=read_soul(os.path.join(base, soul.path)))
                except ValueError as exc:
                    raise UsageError(f"{spec.path}:{soul.line}: soul: from_file {soul.path!r}: {exc}") from None
            skills = []
            for skill in p.skills:
                if skill.files is None:
                    try:
                        skill = replace(skill, files=read_skill_dir(os.path.join(base, skill.path)))
                    except (ValueError, OSError) as exc:
                        why = exc if isinstance(exc, ValueError) else (exc.strerror or exc)
                        raise UsageError(f"{spec.path}:{skill.line}: skill {skill.name}: from_dir "
                                         f"{skill.path!r}: {why}") from None
                skills.append(skill)
            profiles.append(replace(p, env=env, config=config, soul=soul, skills=tuple(skills)))
        containers.append(replace(c, profiles=tuple(profiles)))
    return replace(spec, containers=tuple(containers))


def secret_references(spec) -> list[tuple[str, str, str, Reference]]:
    """(container, profile, KEY, reference) for every from_secret in the file (a config key's
    under its .env name, fleetfile.config_env_name)."""
    return [(c.name, p.name, key, ref) for c in spec.containers for p in c.profiles
            for key, ref in p.env.items() if isinstance(ref, Reference) and ref.source == "secret"]


def hmac_of(key: bytes, value: str) -> str:
    """What diff and apply show for a referenced value: HMAC-SHA256 under the container's own
    key, 12 hex digits. Enough to see that a value changed (or is the one a file holds, for
    whoever holds the key) while the output, in CI logs say, gives nothing to guess against."""
    return hmac.new(key, value.encode("utf-8"), "sha256").hexdigest()[:12]
