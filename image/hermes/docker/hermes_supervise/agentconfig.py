# Runs as hermes: the agent's `agent-config`, `write-soul`, `config-set`, `config-unset`, `write-skill` and `remove-skill` verbs, as hermes only.
"""A profile's agent settings as hermes-agent itself defines them: the fleet file's `model:` and
`config:` keys judged by hermes' own rules (hermes_cli/config.py of the image's venv: the key
check `hermes config set` warns with, its DEFAULT_CONFIG for types and defaults, its coercion of
the value it is given), each profile's current value of them, and the digest of its SOUL.md.

Read-only on purpose: hermes' load_config() creates HERMES_HOME's layout (SOUL.md, skills/, ...)
as a side effect, so it is not called; a profile's config.yaml is read here (bounded, never through
a symlink) and looked up over DEFAULT_CONFIG, which is what hermes falls back to for a key the
file does not set. The values proposed travel in the exec's environment (REQUEST_ENV), never in
argv, and no problem message repeats a value.
"""
import hashlib
import json
import os
import stat

from . import contract as C
from .names import require_valid_profile
from .paths import profile_dir

REQUEST_ENV = "HERMESCTL_AGENT_CONFIG"  # {"profiles": {P: {dotted.key: "value as for config set"}}}
SOUL_ENV = "HERMESCTL_SOUL"             # write-soul: the new SOUL.md's text
VALUES_ENV = "HERMESCTL_CONFIG_VALUES"  # config-set: JSON {key: value} (never argv of the exec)
HERMES = "/opt/hermes/bin/hermes"       # the image's hermes (its wrapper, as the user runs it)
CONFIG_SET_TIMEOUT_S = 60
SKILL_ENV = "HERMESCTL_SKILL"           # write-skill: {relative path: base64}
SKILL_NAME = __import__("re").compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # fullmatch
PATH_PART = __import__("re").compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # fullmatch
MAX_SKILL_FILES = 64                    # as the host's reader (hermesctl.references)
MAX_SKILL_BYTES = 64 * 1024             # all files together: one exec environment string, in base64
MAX_SKILL_SCAN = 1024                   # entries of an installed skill looked at for its digest
_KEY = __import__("re").compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(\.[A-Za-z0-9_-]{1,64}){0,15}")
MAX_CONFIG_BYTES = 1 << 20              # config.yaml: a few KiB; hermes owns it, so bound the read
MAX_SOUL_BYTES = 64 * 1024              # what write-soul accepts (an exec's environment string)
MAX_SHOWN = 200                         # characters of a current value sent back for display
_TRUE, _FALSE = ("true", "yes", "on"), ("false", "no", "off")  # hermes' set_config_value


def _read_bounded(path: str, limit: int) -> bytes | None:
    """A regular file's bytes (None when it is not there); ValueError for a symlink, a
    non-regular file or one larger than `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{os.path.basename(path)}: cannot read it: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{os.path.basename(path)} is not a regular file")
        data = b""
        while len(data) <= limit:
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{os.path.basename(path)} is larger than {limit} bytes")
    return data


# What apply set in a profile, so `apply --prune` removes only that: the config keys it wrote
# through config-set and the skills it installed through write-skill. hermes owns the file (it is in
# the profile's directory), so it is read back as hostile input: bounded, never through a symlink,
# every entry checked, and a malformed one counts as empty (prune then removes nothing).
RECORD_FILE = ".hermesctl-applied.json"
MAX_RECORD_BYTES = 64 * 1024
MAX_RECORD_ENTRIES = 512            # per list


def read_record(directory: str) -> tuple[dict, str | None]:
    """({"config": [keys], "skills": [names]}, None) or (the empty record, why it is unusable)."""
    empty = {"config": [], "skills": []}
    try:
        data = _read_bounded(os.path.join(directory, RECORD_FILE), MAX_RECORD_BYTES)
    except ValueError as exc:
        return empty, str(exc)
    if data is None:
        return empty, None
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError:
        return empty, f"{RECORD_FILE} is not JSON"
    if not isinstance(doc, dict):
        return empty, f"{RECORD_FILE} is not an object"
    out = {}
    for field, pattern in (("config", _KEY), ("skills", SKILL_NAME)):
        entries = doc.get(field, [])
        if not isinstance(entries, list) or len(entries) > MAX_RECORD_ENTRIES or \
                not all(isinstance(e, str) and pattern.fullmatch(e) for e in entries):
            return empty, f"{RECORD_FILE}: {field} is not a list of names"
        out[field] = sorted(set(entries))
    return out, None


def write_whole(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (os.write may take less than it is given), then to the disk."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def replace_file(directory: str, name: str, data: bytes, mode: int) -> None:
    """`directory`/`name` replaced atomically, as hermes: a temporary file beside it (never through
    a link: O_NOFOLLOW and O_EXCL), written whole and synced, then renamed over it; a reader sees
    the old file or the new one, never half of one."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        temporary = f".{name}.hermesctl-{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                     dir_fd=dfd)
        try:
            try:
                write_whole(fd, data)
            finally:
                os.close(fd)
            os.replace(temporary, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=dfd)
            except OSError:
                pass
            raise
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _write_record(directory: str, record: dict) -> None:
    data = json.dumps({"config": sorted(set(record["config"])), "skills": sorted(set(record["skills"]))},
                      indent=1).encode()
    replace_file(directory, RECORD_FILE, data, 0o600)


def update_record(directory: str, field: str, name, *, present: bool) -> None:
    """`name` (or a list of names) added to (present) or removed from the record's `field`; an
    unusable record starts over (what it held cannot be trusted, so it is not kept)."""
    record, _ = read_record(directory)
    entries, names = set(record[field]), [name] if isinstance(name, str) else list(name)
    if present:
        entries.update(names)
    else:
        entries.difference_update(names)
    if len(entries) > MAX_RECORD_ENTRIES:
        raise ValueError(f"{RECORD_FILE}: more than {MAX_RECORD_ENTRIES} {field}")
    record[field] = sorted(entries)
    _write_record(directory, record)


def _recorded(profile: str, field: str, name: str) -> str:
    """The profile's directory, when `name` is in its record's `field`; ValueError otherwise:
    what apply did not set, prune never touches (the host decides, this checks again)."""
    directory = str(profile_dir(require_valid_profile(profile)))
    if not stat.S_ISDIR(os.lstat(directory).st_mode):
        raise FileNotFoundError(f"no profile {profile}")
    record, why = read_record(directory)
    if why or name not in record[field]:
        raise ValueError(f"{name} was not set by hermesctl apply in {profile}: left alone")
    return directory


def _walk(node, key: str):
    """(found, value) of a dotted key in a mapping; numeric segments index lists (as hermes'
    _set_nested does)."""
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def judge(cfg, key: str, value: str) -> tuple[str | None, object]:
    """(why hermes would not take `value` for `key`, or None; the value as `hermes config set`
    writes it). `cfg` is hermes_cli.config."""
    if not isinstance(value, str):
        return "the value is not text", None
    if cfg._is_env_config_key(key):
        return "hermes config set writes this key to .env: give it under env", None
    known, suggestion = cfg._validate_config_key(key)
    if not known:
        hint = f" (did you mean {suggestion}?)" if suggestion and len(suggestion) < 120 else ""
        return f"not a setting hermes-agent knows{hint}", None
    found, default = _walk(cfg.DEFAULT_CONFIG, key)
    if found and isinstance(default, dict) and default:
        return "a section of settings, not one setting: name a key below it", None
    if found and isinstance(default, list):
        return "a list: hermes config set writes one value, not a list", None
    # hermes' own coercion (set_config_value): a key whose default is text stays text.
    coerced: object = value
    if not isinstance(cfg._default_value_for_key(key), str):
        low = value.lower()
        if low in _TRUE:
            coerced = True
        elif low in _FALSE:
            coerced = False
        elif value.isascii() and value.isdigit():
            coerced = int(value)
        elif value.isascii() and value.replace(".", "", 1).isdigit():
            coerced = float(value)
    if isinstance(default, bool) and not isinstance(coerced, bool):
        return "must be true or false", None
    if isinstance(default, int) and not isinstance(default, bool) and not isinstance(coerced, int):
        return "must be a whole number (0 or more)", None
    if isinstance(default, float) and (isinstance(coerced, bool) or not isinstance(coerced, (int, float))):
        return "must be a number (0 or more)", None
    return None, coerced


def _same(a, b) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool) and isinstance(a, str) == isinstance(b, str)


def _shown(value) -> object:
    """A current value for the host's display: scalars as they are, text cut, the rest summarised."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "…"
    return f"({type(value).__name__})"


def current_config(directory: str) -> dict:
    """The profile's config.yaml as hermes' yaml reads it ({} when there is none)."""
    import yaml
    data = _read_bounded(os.path.join(directory, "config.yaml"), MAX_CONFIG_BYTES)
    if not data:
        return {}
    try:
        doc = yaml.load(data.decode("utf-8", "replace"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        raise ValueError("config.yaml is not valid YAML") from None
    return doc if isinstance(doc, dict) else {}


def effective(cfg, user: dict, key: str):
    """What hermes uses for `key`: the file's value, else DEFAULT_CONFIG's (None: neither)."""
    if key.startswith("model.") and isinstance(user.get("model"), str):
        # The older form `model: NAME`, which hermes reads as model.default.
        return (True, user["model"]) if key == "model.default" else (False, None)
    found, value = _walk(user, key)
    return (found, value) if found else _walk(cfg.DEFAULT_CONFIG, key)


def soul_digest(directory: str) -> str | None:
    try:
        data = _read_bounded(os.path.join(directory, C.SOUL_FILE), MAX_CONFIG_BYTES)
    except ValueError:
        return "unreadable"
    return None if data is None else hashlib.sha256(data).hexdigest()


def agent_config(environ) -> dict:
    """The verb's document; ValueError for a malformed request."""
    try:
        request = json.loads(environ.get(REQUEST_ENV) or "{}")
    except ValueError:
        raise ValueError(f"{REQUEST_ENV} is not JSON") from None
    wanted = request.get("profiles") if isinstance(request, dict) else None
    if not isinstance(wanted, dict):
        raise ValueError(f"{REQUEST_ENV} needs {{\"profiles\": {{P: {{key: value}}}}}}")
    skills = request.get("skills") or {}
    if not isinstance(skills, dict) or not all(isinstance(v, list) for v in skills.values()):
        raise ValueError(f"{REQUEST_ENV}: skills must be {{P: [name]}}")
    import hermes_cli.config as cfg  # the image's own hermes-agent: its schema, not a copy
    profiles = {}
    for profile, keys in wanted.items():
        require_valid_profile(profile)
        if not isinstance(keys, dict):
            raise ValueError(f"profile {profile}: keys must be a mapping")
        directory = str(profile_dir(profile))
        exists = os.path.isdir(directory) and not os.path.islink(directory)
        entry = {"exists": exists, "soul_sha256": soul_digest(directory) if exists else None, "keys": {}}
        try:
            user = current_config(directory) if exists else {}
        except ValueError as exc:
            user, entry["config_error"] = {}, str(exc)
        for key, value in keys.items():
            problem, coerced = judge(cfg, key, value)
            found, current = effective(cfg, user, key) if exists else (False, None)
            entry["keys"][key] = {"problem": problem, "set": found, "current": _shown(current),
                                  "same": problem is None and exists and found and _same(current, coerced)}
        if exists:
            entry["applied"], why = read_record(directory)
            if why:
                entry["applied_error"] = why
        names = skills.get(profile) or []
        if names:
            entry["skills"] = {name: installed_digest(directory, name) if exists else None for name in names
                               if isinstance(name, str) and SKILL_NAME.fullmatch(name)}
        profiles[profile] = entry
    return {"schema": C.SCHEMA, "verb": "agent-config", "profiles": profiles}


def write_soul(profile: str, environ) -> dict:
    """SOUL.md of `profile` replaced atomically by SOUL_ENV's text (a temporary file in the
    profile's directory, then rename): hermes never reads half a file."""
    text = environ.get(SOUL_ENV)
    if text is None:
        raise ValueError(f"no {SOUL_ENV} in the environment")
    data = text.encode("utf-8", "surrogateescape")
    if len(data) > MAX_SOUL_BYTES:
        raise ValueError(f"the soul is larger than {MAX_SOUL_BYTES} bytes")
    directory = str(profile_dir(require_valid_profile(profile)))
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode):
        raise FileNotFoundError(f"no profile {profile}")
    replace_file(directory, C.SOUL_FILE, data, 0o644)
    return {"schema": C.SCHEMA, "verb": "write-soul", "profile": profile, "sha256": hashlib.sha256(data).hexdigest()}


# config-set's writer: hermes' own set_config_value (what `hermes config set` calls: its key
# routing, its coercion, its atomic write of config.yaml), every key of one profile in one process
# of the image's venv Python with HERMES_HOME at the profile, as `hermes -p P` sets it: one Python
# start per profile instead of one hermes CLI start per key. Keys and values come on stdin (never
# argv); hermes' own printing is kept off the answer; the first key hermes refuses ends the run.
PYTHON = "/opt/hermes/.venv/bin/python"
WRITER = r"""
import contextlib, io, json, sys
pairs = json.load(sys.stdin)
from hermes_cli.config import set_config_value
done = {}
for key, value in pairs:
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(said):
            set_config_value(key, value)
    except SystemExit as exc:
        done[key] = (said.getvalue().strip().splitlines() or ["exit %s" % exc.code])[-1]
        break
    except Exception as exc:
        done[key] = "%s: %s" % (type(exc).__name__, exc)
        break
    done[key] = None
sys.__stdout__.write(json.dumps(done))
"""


def _writer_argv() -> list[str]:
    return [PYTHON, "-I", "-c", WRITER]  # -I: no PYTHON* variables, no current directory on the path


def config_set(profile: str, keys: list[str], environ) -> dict:
    """`keys` of `profile` written by hermes' own set_config_value, as hermes, values from
    VALUES_ENV (JSON {key: value}); each key written is recorded (what apply set). A refusal is
    RuntimeError with hermes' last line, any value in it replaced by <hidden> (it may be a secret)."""
    import subprocess
    directory = str(profile_dir(require_valid_profile(profile)))
    if not keys or not all(_KEY.fullmatch(k) for k in keys):
        raise ValueError("not a dotted settings key")
    try:
        values = json.loads(environ.get(VALUES_ENV) or "")
    except ValueError:
        raise ValueError(f"{VALUES_ENV} is not JSON") from None
    if not isinstance(values, dict) or not all(isinstance(values.get(k), str) for k in keys):
        raise ValueError(f"{VALUES_ENV} needs a text value for every key")
    if not stat.S_ISDIR(os.lstat(directory).st_mode):
        raise FileNotFoundError(f"no profile {profile}")
    env = {k: v for k, v in environ.items() if k != VALUES_ENV}
    env["HERMES_HOME"] = directory
    pairs = json.dumps([[k, values[k]] for k in keys]).encode()
    res = subprocess.run(_writer_argv(), env=env, input=pairs, capture_output=True, timeout=CONFIG_SET_TIMEOUT_S,
                         cwd="/")
    try:
        done = json.loads(res.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        done = {}
    if not isinstance(done, dict):
        done = {}
    written = [k for k in keys if k in done and done[k] is None]
    if written:
        update_record(directory, "config", written, present=True)
    if len(written) < len(keys):
        key = next(k for k in keys if k not in written)
        said = done.get(key) or (res.stderr.decode("utf-8", "replace").strip().splitlines() or
                                 [f"exit {res.returncode}"])[-1]
        message = str(said)[:300]
        message = message.replace(values[key], "<hidden>") if values[key] else message
        raise RuntimeError(f"hermes config set {key}: {message}")
    return {"schema": C.SCHEMA, "verb": "config-set", "profile": profile, "keys": written}


def config_unset(profile: str, key: str, environ) -> dict:
    """`hermes [-p P] config unset -- KEY` (hermes' own writer) for a key the record says apply
    set, then the key out of the record. A key hermes says is not set is gone already: done."""
    import subprocess
    if not _KEY.fullmatch(key):
        raise ValueError("not a dotted settings key")
    directory = _recorded(profile, "config", key)
    argv = [HERMES, *([] if profile == C.DEFAULT_PROFILE else ["-p", profile]), "config", "unset", "--", key]
    res = subprocess.run(argv, env=dict(environ), stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=CONFIG_SET_TIMEOUT_S)
    said = (res.stderr or res.stdout).decode("utf-8", "replace").strip().splitlines() or [f"exit {res.returncode}"]
    if res.returncode != 0 and not said[-1].startswith("Config key not set"):
        raise RuntimeError(f"hermes config unset {key}: {said[-1][:300]}")
    update_record(directory, "config", key, present=False)
    return {"schema": C.SCHEMA, "verb": "config-unset", "profile": profile, "key": key}


def remove_skill(profile: str, name: str) -> dict:
    """skills/NAME of `profile` removed, when the record says apply installed it: renamed to a
    dot name first (a gateway sees it or nothing), then removed relative to directory descriptors,
    never following a symlink (a symlink there is removed itself); then out of the record."""
    import shutil
    if not SKILL_NAME.fullmatch(name):
        raise ValueError("a skill name is 1-64 of a-z 0-9 _ . -, starting with a letter or digit")
    directory = _recorded(profile, "skills", name)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    dfd = os.open(directory, flags)
    try:
        try:
            sfd = os.open(C.SKILLS_DIR, flags, dir_fd=dfd)
        except FileNotFoundError:
            sfd = None
        if sfd is not None:
            try:
                try:
                    st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                if st is not None and stat.S_ISDIR(st.st_mode):
                    gone = f".hermesctl-removed-{name}-{os.getpid()}"
                    os.rename(name, gone, src_dir_fd=sfd, dst_dir_fd=sfd)
                    shutil.rmtree(gone, dir_fd=sfd)
                elif st is not None:
                    os.unlink(name, dir_fd=sfd)
                os.fsync(sfd)
            finally:
                os.close(sfd)
    finally:
        os.close(dfd)
    update_record(directory, "skills", name, present=False)
    return {"schema": C.SCHEMA, "verb": "remove-skill", "profile": profile, "skill": name}


def installed_digest(directory: str, name: str) -> str | None:
    """contract.tree_digest of the profile's skills/NAME (None: not there; "unreadable": a
    symlink, something not a file or directory inside, or more than the scan's bounds)."""
    root = os.path.join(directory, C.SKILLS_DIR, name)
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "unreadable"
    files: dict = {}
    pending, seen, total = [""], 0, 0
    try:
        while pending:
            rel = pending.pop()
            with os.scandir(os.path.join(root, rel) if rel else root) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_SKILL_SCAN:
                        return "unreadable"
                    path = f"{rel}/{entry.name}" if rel else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(path)
                    elif entry.is_file(follow_symlinks=False):
                        data = _read_bounded(os.path.join(root, path), MAX_CONFIG_BYTES)
                        total += len(data or b"")
                        if total > 4 * MAX_CONFIG_BYTES:
                            return "unreadable"
                        files[path] = data or b""
                    else:
                        return "unreadable"
    except (OSError, ValueError):
        return "unreadable"
    return C.tree_digest(files)


def _skill_files(environ) -> dict:
    """SKILL_ENV's files, every path checked: relative, parts of plain names, no `..`."""
    import base64
    try:
        doc = json.loads(environ.get(SKILL_ENV) or "")
    except ValueError:
        raise ValueError(f"{SKILL_ENV} is not JSON") from None
    if not isinstance(doc, dict) or not doc or len(doc) > MAX_SKILL_FILES:
        raise ValueError(f"{SKILL_ENV} needs 1 to {MAX_SKILL_FILES} files")
    files, total = {}, 0
    for path, encoded in doc.items():
        parts = path.split("/") if isinstance(path, str) else []
        if not parts or len(parts) > 8 or not all(PATH_PART.fullmatch(p) for p in parts):
            raise ValueError("a skill's file path must be relative, of plain names")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (ValueError, TypeError):
            raise ValueError(f"{SKILL_ENV}: a file is not base64") from None
        total += len(data)
        files[path] = data
    if total > MAX_SKILL_BYTES:
        raise ValueError(f"the skill is larger than {MAX_SKILL_BYTES} bytes")
    if C.SKILL_FILE not in files:
        raise ValueError(f"the skill has no {C.SKILL_FILE}")
    return files


def _exchange(dir_fd: int, a: str, b: str) -> bool:
    """renameat2(RENAME_EXCHANGE): two names of one directory swapped in one step, so a gateway
    reading its skills sees the old copy or the new one, never none. False where the C library
    or the filesystem does not offer it (the caller then renames twice)."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(dir_fd, a.encode(), dir_fd, b.encode(), 2) == 0  # RENAME_EXCHANGE


def write_skill(profile: str, name: str, environ) -> dict:
    """skills/NAME of `profile` replaced by SKILL_ENV's files: written into a staging directory
    beside it (every step relative to directory descriptors opened without following a
    symlink), then renamed into place; the previous copy is removed after."""
    import shutil
    if not SKILL_NAME.fullmatch(name):
        raise ValueError("a skill name is 1-64 of a-z 0-9 _ . -, starting with a letter or digit")
    files = _skill_files(environ)
    directory = str(profile_dir(require_valid_profile(profile)))
    if not stat.S_ISDIR(os.lstat(directory).st_mode):
        raise FileNotFoundError(f"no profile {profile}")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    dfd = os.open(directory, flags)
    opened = []
    try:
        try:
            os.mkdir(C.SKILLS_DIR, 0o700, dir_fd=dfd)
        except FileExistsError:
            pass
        sfd = os.open(C.SKILLS_DIR, flags, dir_fd=dfd)
        opened.append(sfd)
        staging, old = f".hermesctl-{name}-{os.getpid()}", f".hermesctl-old-{name}-{os.getpid()}"
        os.mkdir(staging, 0o755, dir_fd=sfd)
        try:
            top = os.open(staging, flags, dir_fd=sfd)
            opened.append(top)
            for path, data in sorted(files.items()):
                parent = top
                for part in path.split("/")[:-1]:
                    try:
                        os.mkdir(part, 0o755, dir_fd=parent)
                    except FileExistsError:
                        pass
                    parent = os.open(part, flags, dir_fd=parent)
                    opened.append(parent)
                fd = os.open(path.split("/")[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644, dir_fd=parent)
                try:
                    write_whole(fd, data)
                finally:
                    os.close(fd)
            try:
                st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode) and _exchange(sfd, staging, name):
                old = staging  # swapped in one step: the staging name now holds the previous copy
            else:
                if st is not None and stat.S_ISDIR(st.st_mode):
                    os.rename(name, old, src_dir_fd=sfd, dst_dir_fd=sfd)
                elif st is not None:  # a symlink or a file hermes put there: replaced, never followed
                    os.unlink(name, dir_fd=sfd)
                os.rename(staging, name, src_dir_fd=sfd, dst_dir_fd=sfd)
        except BaseException:
            shutil.rmtree(staging, dir_fd=sfd, ignore_errors=True)
            raise
        if st is not None and stat.S_ISDIR(st.st_mode):
            shutil.rmtree(old, dir_fd=sfd, ignore_errors=True)
        os.fsync(sfd)
    finally:
        for fd in reversed(opened):
            os.close(fd)
        os.close(dfd)
    update_record(directory, "skills", name, present=True)
    return {"schema": C.SCHEMA, "verb": "write-skill", "profile": profile, "skill": name,
            "sha256": C.tree_digest(files)}
