"""Property-based fuzzing (Hypothesis) of what users and files feed hermesctl: targets, profile
names, fleet files, endpoint URLs and .env values. No Docker: these are the parsers.

The .env properties run the real python-dotenv (the version in the image's venv) against the
very writer the container runs (image/hermes/docker/hermes_supervise/envfile.py)."""
import io
import sys
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from hermesctl.config.endpoints import check_endpoint
from hermesctl.config.fleetfile import FleetFileError, load_fleet_file
from hermesctl.core.errors import HermesctlError, InvalidNameError, UsageError
from hermesctl.model.names import PROFILE_NAME, normalize_profile
from hermesctl.model.targets import is_glob, parse_target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "image" / "hermes" / "docker"))
from hermes_supervise import envfile  # noqa: E402  the in-container module, as the image runs it

# Derandomized, no example database: every run, on every machine, tries the same examples (a
# random run once failed the suite on a fresh machine; what it found is an @example now).
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
# Text that stresses parsers: ASCII punctuation, controls, lookalikes (Kelvin sign, fullwidth,
# dotless i), line and paragraph separators, NUL, BOM.
TRICKY = st.text(alphabet=st.one_of(
    st.sampled_from(list("abcXYZ019_-.:/*?[]!@ #'\"\\$={}\t\r\n\0") +
                    ["\u212a", "\u0130", "\u0131", "\uff41", "\u2028", "\u2029", "\x85", "\ufeff", "\u00e9"]),
    st.characters()), max_size=40)


@FUZZ
@given(TRICKY)
@example("c:coder\n")
@example("c:\u212aey")
@example("c:CODER")
def test_targets_parse_to_ascii_whole_names_or_fail_with_our_error(text):
    try:
        t = parse_target(text)
    except HermesctlError:
        return
    assert text.isascii() and text.isprintable()
    assert "\n" not in t.container and t.container
    if t.profile is not None and not is_glob(t.profile):
        assert PROFILE_NAME.fullmatch(t.profile)
        assert t.profile == text.rsplit(":", 1)[1].lower()


@FUZZ
@given(TRICKY)
@example("\u212aey")
@example("coder\n")
def test_profile_names_are_never_normalised_into_another_name(name):
    try:
        got = normalize_profile(name)
    except InvalidNameError:
        return
    assert name.isascii() and got == name.lower() and PROFILE_NAME.fullmatch(got)


@FUZZ
@given(TRICKY)
@example("tcp://[::1")
@example("http://localhost:99999")
@example("ssh://u@h:-oProxyCommand=touch")
@example("ssh://-oProxyCommand=x")
@example("")
def test_endpoint_urls_are_accepted_or_refused_as_usage_errors(url):
    try:
        check_endpoint(url)
    except UsageError:
        return
    assert url.isascii() and url.isprintable()
    assert not any(part.startswith("-") for part in url.replace("@", "/").replace(":", "/").split("/"))


def _yaml_values():
    scalars = st.one_of(TRICKY, st.integers(), st.booleans(), st.none())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(TRICKY, inner, max_size=4)), max_leaves=20)


FLEET_SHAPE = st.fixed_dictionaries({"version": st.sampled_from([1, "1", 2]), "containers": st.dictionaries(
    st.sampled_from(["c1", "web-1", "C.2", "-bad", "\u212a"]) | TRICKY,
    st.fixed_dictionaries({"profiles": st.dictionaries(
        st.sampled_from(["coder", "default", "Key", "\u212aey", "../x", "hermes"]) | TRICKY,
        st.fixed_dictionaries({}, optional={
            "gateway": st.sampled_from(["running", "stopped", "runing"]),
            "api_server": st.sampled_from([True, "yes", "maybe"]),
            "env": st.dictionaries(st.sampled_from(["A", "API_SERVER_PORT", "BAD-KEY", "\u212a"]) | TRICKY,
                                   TRICKY | st.integers(), max_size=3)}), max_size=3)}), max_size=3)})


@FUZZ
@given(st.one_of(FLEET_SHAPE, _yaml_values()))
@example({"version": 1, "containers": {"c1": {"profiles": {"coder": {"env": {"A": "a\ud800b"}}}}}})
@example({"version": 1, "containers": {"c1": {"profiles": {"coder": {"env": {"A": "\udcff"}}}}}})
def test_fleet_files_load_or_fail_with_a_usage_error(tmp_path, data):
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        spec = load_fleet_file(str(path))
    except FleetFileError as exc:
        event("refused")
        assert exc.status == 2 and "\n" not in exc.message
        return
    event("loaded")
    for c in spec.containers:
        assert c.name.isascii()
        for p in c.profiles:
            assert PROFILE_NAME.fullmatch(p.name)
            for key, value in p.env.items():
                # Whatever the host accepts, the container writes so that hermes reads it exactly.
                # (The file is UTF-8: the text must survive being encoded, as a lone surrogate does not.)
                assert envfile.problem(key, value) is None
                text = envfile.render("", {key: value}).encode("utf-8").decode("utf-8")
                assert dotenv_values(stream=io.StringIO(text)) == {key: value}


@FUZZ
@given(st.binary(max_size=300))
@example(b"\xff\xfev\x00e\x00r\x00")  # UTF-16
@example("version: 1\ncontainers:\n  c\xe9: {}\n".encode("latin-1"))
@example(b"a: " + b"[" * 3000 + b"]" * 3000)
def test_arbitrary_bytes_are_a_fleet_file_or_a_usage_error(tmp_path, data):
    path = tmp_path / "fleet.yaml"
    path.write_bytes(data)
    try:
        load_fleet_file(str(path))
    except FleetFileError as exc:
        assert "\n" not in exc.message
        # never the file's contents (beyond plain names): not even its first line
        first = data.split(b"\n")[0].decode("utf-8", "replace").strip()
        if len(first) > 12 and not first.replace("_", "").replace("-", "").isalnum():
            assert first not in exc.message


ENV_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@FUZZ
@given(existing=st.dictionaries(ENV_KEYS, TRICKY, max_size=4), junk=st.lists(TRICKY, max_size=3),
       values=st.dictionaries(ENV_KEYS, TRICKY, min_size=1, max_size=3))
@example(existing={"A": "1"}, junk=["A=8642 # note"], values={"A": "x\rINJECTED_KEY=y"})
@example(existing={}, junk=[], values={"A": "a #b 'q' \"d\" \\ $HOME $ end\\"})
@example(existing={"B": "x"}, junk=["C='tail"], values={"A": "end\\", "D": "it's"})
def test_env_values_reach_dotenv_exactly_or_are_refused_before_writing(tmp_path, existing, junk, values):
    path = tmp_path / ".env"
    start = "".join(envfile.render("", {k: v}) for k, v in existing.items()
                    if envfile.problem(k, v) is None) + "".join(j.replace("\0", "") + "\n" for j in junk)
    path.write_text(start, encoding="utf-8", newline="")
    before = path.read_bytes()
    others = {k: v for k, v in dotenv_values(path, interpolate=False).items() if k not in values}
    bad = {k: envfile.problem(k, v) for k, v in values.items() if envfile.problem(k, v)}
    try:
        envfile.set_env(path, values)
    except envfile.EnvValueError as exc:
        event("refused")
        assert path.read_bytes() == before  # nothing written
        for v in values.values():
            assert len(v) < 4 or v not in str(exc)  # the message never carries a value
        return
    assert not bad, bad
    event("written")
    seen = dotenv_values(path)  # as hermes loads it (interpolating)
    assert {k: seen.get(k) for k in values} == values
    raw = dotenv_values(path, interpolate=False)
    assert {k: raw.get(k) for k in others} == others  # every other key as it was
    assert path.stat().st_mode & 0o777 == 0o600


def test_env_reader_is_dotenv(tmp_path):
    path = tmp_path / ".env"
    path.write_text("A=8642 # note\nexport B='x y' # c\nC=\"a\\\"b\"\nD\n")
    assert envfile.read_env(path) == {"A": "8642", "B": "x y", "C": 'a"b'}
    assert envfile.set_env(path, {"A": "8642"}) == []  # what hermes sees already: no write
    assert path.read_text().startswith("A=8642 # note\n")


@pytest.mark.parametrize("value", ["x\rINJECTED_KEY=y", "a\0b", "a\nB=c", "tab\there", "${HOME}", "x\u2028y"])
def test_dangerous_values_are_refused_and_the_file_is_untouched(tmp_path, value):
    path = tmp_path / ".env"
    path.write_text("KEEP=1\n")
    with pytest.raises(envfile.EnvValueError):
        envfile.set_env(path, {"OK": "fine", "A": value})
    assert path.read_text() == "KEEP=1\n"


PRINTABLE_VALUES = st.text(alphabet=st.one_of(st.sampled_from(list(" #'\"\\$={}:-!&|;`~")),
                                              st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))),
                           max_size=40)


@FUZZ
@given(values=st.dictionaries(ENV_KEYS.filter(lambda k: not k.startswith("API_SERVER_")), PRINTABLE_VALUES,
                              min_size=1, max_size=4))
@example(values={"A": "a #b 'q' \"d\" \\ $HOME $ end\\"})
def test_fleet_file_env_values_reach_hermes_unchanged(tmp_path, values):
    """A fleet file's env values, as YAML carries them, through the host's validation and the
    container's writer, read back by dotenv exactly; or refused with file:line (${...} only)."""
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "containers": {"c1": {"profiles": {"coder": {"env": values}}}}},
                                   allow_unicode=True), encoding="utf-8")
    try:
        spec = load_fleet_file(str(path))
    except FleetFileError as exc:
        event("refused")
        assert "${...}" in exc.message and f"{path}:" in exc.message
        return
    event("loaded")
    env = spec.containers[0].profiles[0].env
    assert env == values
    dotenv_path = tmp_path / ".env"
    dotenv_path.unlink(missing_ok=True)  # tmp_path is shared by every example
    envfile.set_env(dotenv_path, env)
    assert dotenv_values(dotenv_path) == values
