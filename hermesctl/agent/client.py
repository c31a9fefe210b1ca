"""Asking a container's agent (hermes-ctl-agent, hermes-contract/v1): argv in, JSON document out.

The host never builds a shell script: every question is `AGENT VERB ARGS...`, and every answer
is one JSON object with "schema"; a failure is {"error": {"code", "message"}} whose code maps to
one of our errors (contract.ERROR_EXITS is the agent's side of the same table).
"""
import json

from hermesctl.agent.contract import AGENT, AGENT_QUERY_SOCKET, LIFELINE_OPTION, QUERY_ENV, QUERY_MAX_BYTES, SCHEMA
from hermesctl.core.errors import ExecError, HermesctlError, InvalidNameError, NotFoundError, UsageError

# Error codes with an exit status of ours; the others (busy, failed) raise AgentError(code).
_ERRORS = {"not-found": NotFoundError, "invalid-name": InvalidNameError, "usage": UsageError}


class AgentError(HermesctlError):
    """The agent answered with an error document (code in `code`)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def argv(verb: str, *args: str) -> list[str]:
    return [AGENT, verb, *args]


# The resident agent's answer to a question is read as its status is (fleet.BOUNDED_STATUS_ARGV):
# hermes owns the socket's directory, so at most RESIDENT_MAX_BYTES are read, by head(1).
RESIDENT_MAX_BYTES = 4 << 20
RESIDENT_ARGV = ("/command/s6-ipcclient", AGENT_QUERY_SOCKET, "/usr/lib/execline/bin/fdmove", "0", "6",
                 "/usr/bin/head", "-c", str(RESIDENT_MAX_BYTES))


def resident_question(verb: str, *args: str) -> tuple[list[str], dict]:
    """The same question for the resident agent: (argv, environment) of an exec of C programs
    only (no Python starts). s6-ipcclient connects to the agent's query socket and becomes
    head(1) on it; the agent reads the question from that process's environment (QUERY_ENV)."""
    question = json.dumps([verb, *args])
    if len(question.encode()) > QUERY_MAX_BYTES:
        raise ValueError("question too long for the resident agent")
    return list(RESIDENT_ARGV), {QUERY_ENV: question}


def parse(text: str, *, where: str) -> dict:
    """The agent's answer, checked: a document of our schema, or the error it reports."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = _last_line_document(text)
    if doc is None:
        raise ExecError(f"{where}: the agent's answer is not JSON: {text.strip()[:200]!r}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ExecError(f"{where}: unexpected answer (schema {doc.get('schema') if isinstance(doc, dict) else None!r}, "
                        f"want {SCHEMA}): is the image older than hermesctl?")
    error = doc.get("error")
    if isinstance(error, dict):
        code, message = str(error.get("code", "failed")), str(error.get("message", ""))
        if code in _ERRORS:
            raise _ERRORS[code](message)
        raise AgentError(code, message)
    return doc


# One line of a held-open stream (watch, usage-watch): a whole status is the largest, well under
# this; a stream that sends more without a newline is cut off, not buffered without end.
STREAM_LINE_MAX_BYTES = 16 << 20


def stream_lines(chunks, *, max_line: int):
    """The lines (bytes, without their newline) of a held-open exec's output as it comes; a run of
    more than `max_line` bytes without a newline is given out as a line of its own, so the memory
    held stays bounded whatever the container sends."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        if len(buffer) > max_line:
            complete.append(buffer)
            buffer = b""
        yield from complete


def stream_documents(chunks, *, where: str):
    """The agent's documents on a held-open exec stream, one per line, each checked as `parse`
    checks an answer; a line longer than STREAM_LINE_MAX_BYTES is an error, not a document."""
    for line in stream_lines(chunks, max_line=STREAM_LINE_MAX_BYTES):
        if len(line) > STREAM_LINE_MAX_BYTES:
            raise ExecError(f"{where}: the agent's stream sent more than {STREAM_LINE_MAX_BYTES} bytes "
                            "without a line's end")
        if line.strip():
            yield parse(line.decode("utf-8", "replace"), where=where)


def _last_line_document(text: str) -> dict | None:
    """A command run under `locked` may print before the agent's own error line."""
    lines = text.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError:
        return None


def answer(result, *, where: str) -> dict:
    """The document of an exec of the agent; an exec that printed nothing says why (stderr)."""
    if not result.stdout.strip() and result.exit_code in (126, 127):  # exec: no such program
        raise ExecError(f"{where}: no {AGENT} in the container: its image predates {SCHEMA}; "
                        "rebuild or pull the Hermes image")
    if not result.stdout.strip():
        raise ExecError(f"{where}: the agent printed nothing (exit {result.exit_code}): "
                        f"{result.stderr.strip()[:200]}")
    return parse(result.stdout, where=where)


AGENT_CONFIG_ENV = "HERMESCTL_AGENT_CONFIG"  # agent-config's request (agentconfig.REQUEST_ENV in the image)


def agent_config_environment(wanted: dict, skills: dict | None = None) -> dict:
    """The exec environment of `agent-config` for {profile: {dotted.key: value}} (and the
    skills asked about, {profile: [name]}): values never travel in argv."""
    return {AGENT_CONFIG_ENV: json.dumps({"profiles": wanted, "skills": skills or {}})}


CONFIG_VALUES_ENV = "HERMESCTL_CONFIG_VALUES"  # config-set's {key: value} (agentconfig.VALUES_ENV in the image)


def config_values_environment(values: dict) -> dict:
    """The exec environment of `config-set P KEY...`: the values never travel in argv."""
    return {CONFIG_VALUES_ENV: json.dumps(values, sort_keys=True)}


def skill_environment_value(files: dict) -> str:
    """write-skill's HERMESCTL_SKILL: {relative path: base64}."""
    return json.dumps(files, sort_keys=True)


def ask(fleet, container, verb: str, *args: str, **kwargs) -> dict:
    """One question to the agent of `container`, within the fleet's exec deadline."""
    return answer(fleet.run(container, argv(verb, *args), **kwargs), where=container.name)


def tail_argv(profile: str, lines: int, follow: bool) -> list[str]:
    """The agent's `tail`: its first line is {"pid": N}, so a follower can be stopped afterwards.
    A follower also holds its stdin open (the exec attaches it): when this process goes, however
    it goes, Docker closes that stdin and the follower ends (contract.LIFELINE_OPTION)."""
    return argv("tail", profile, "--lines", str(lines), *(["--follow", LIFELINE_OPTION] if follow else []))
