"""The real CLI as a user runs it: in its own process (forked from this worker's pre-imported
interpreter, tests/cli_zygote.py), in the background, interrupted with Ctrl-C."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.settings import ROOT


class CliResult:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self):
        import json
        return json.loads(self.stdout)

    def __repr__(self):
        return f"CliResult(code={self.code}, stdout={self.stdout[-1500:]!r}, stderr={self.stderr[-1500:]!r})"


def hermesctl(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 180) -> CliResult:
    """Run the real CLI in its own process, as a user would: `python -m hermesctl ARGS`, forked
    from this worker's pre-imported interpreter (tests/cli_zygote.py) unless the call's environment
    changes how Python itself starts."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if _ZYGOTE.usable and not _changes_interpreter_start(env or {}):
        return _ZYGOTE.run(list(args), full_env, str(cwd or ROOT), timeout)
    result = subprocess.run([sys.executable, "-m", "hermesctl", *args], capture_output=True, text=True,
                            timeout=timeout, env=full_env, cwd=cwd or ROOT)
    return CliResult(result.returncode, result.stdout, result.stderr)


def _changes_interpreter_start(env: dict) -> bool:
    """Variables read when Python starts (flags, I/O encoding, locale): those calls get a fresh one."""
    return any(k.startswith("PYTHON") and k != "PYTHONPATH" or k in ("LANG", "LANGUAGE") or k.startswith("LC_")
               for k in env)


class _Zygote:
    """The client of tests/cli_zygote.py: started on first use, shared by a worker's threads."""

    def __init__(self):
        import threading
        self.proc = None
        self.usable = os.environ.get("HERMES_TEST_NO_ZYGOTE") != "1"
        self.lock = threading.Lock()
        self.waiting: dict[str, dict] = {}
        self.next_id = 0

    def _start(self) -> None:
        import threading
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cli_zygote.py")], cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        threading.Thread(target=self._read_answers, args=(self.proc,), daemon=True).start()

    def _read_answers(self, proc) -> None:
        import json
        for line in proc.stdout:
            doc = json.loads(line)
            with self.lock:
                call = self.waiting.get(doc["id"])
            if call is not None:
                call.update(doc)
                if "status" in doc:
                    call["done"].set()
        with self.lock:  # the zygote is gone: nobody may wait forever
            for call in self.waiting.values():
                call.setdefault("status", None)
                call["done"].set()

    def spawn(self, args: list[str], env: dict, cwd: str) -> "ZygoteCall":
        """Fork one call; returns at once with its handle (its pid once the fork is answered)."""
        import json
        import threading
        out = tempfile.NamedTemporaryFile(prefix="hct-cli-", delete=False)
        err = tempfile.NamedTemporaryFile(prefix="hct-cli-", delete=False)
        out.close()
        err.close()
        call = {"done": threading.Event()}
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            self.next_id += 1
            ident = str(self.next_id)
            self.waiting[ident] = call
            request = {"id": ident, "args": args, "env": env, "cwd": cwd, "stdout": out.name, "stderr": err.name,
                       "umask": _umask()}
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
        return ZygoteCall(self, ident, call, args, out.name, err.name)

    def forget(self, ident: str) -> None:
        with self.lock:
            self.waiting.pop(ident, None)

    def run(self, args: list[str], env: dict, cwd: str, timeout: float) -> CliResult:
        call = self.spawn(args, env, cwd)
        try:
            call.wait(timeout)
            return call.result()
        finally:
            call.kill()
            call.close()


class ZygoteCall:
    """A hermesctl call forked by the zygote, handled as tests handle a subprocess.Popen: pid,
    poll, wait, send_signal, kill; its output is collected in files (result())."""

    def __init__(self, zygote: _Zygote, ident: str, call: dict, args: list[str], out: str, err: str):
        self.zygote, self.ident, self.call, self.args, self.out, self.err = zygote, ident, call, args, out, err

    @property
    def pid(self) -> int | None:
        return self.call.get("pid")

    @property
    def returncode(self) -> int | None:
        return self.call.get("status") if self.call["done"].is_set() else None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self.call["done"].wait(timeout):
            raise subprocess.TimeoutExpired([sys.executable, "-m", "hermesctl", *self.args], timeout)
        if self.call["status"] is None:
            raise RuntimeError("tests/cli_zygote.py ended during a call")
        return self.call["status"]

    def _forked_pid(self) -> int | None:
        # The fork's answer follows the request within milliseconds; a signal must reach the child.
        deadline = time.monotonic() + 10
        while self.pid is None and not self.call["done"].is_set() and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.pid

    def send_signal(self, sig: int) -> None:
        pid = self._forked_pid()
        if pid is not None and not self.call["done"].is_set():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def result(self) -> CliResult:
        return CliResult(self.call["status"], _read_text(self.out), _read_text(self.err))

    def close(self) -> None:
        self.zygote.forget(self.ident)
        for path in (self.out, self.err):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _umask() -> int:
    """This process's umask, read without changing it (os.umask can only set): a call forked by
    the zygote gets the caller's, as a subprocess would (tests of files' modes set their own)."""
    with open("/proc/self/status") as fh:
        return int(next(line for line in fh if line.startswith("Umask:")).split()[1], 8)


def _read_text(path: str) -> str:
    """Decoded as subprocess.run(text=True) decodes: the locale's encoding, universal newlines."""
    import locale
    data = Path(path).read_bytes().decode(locale.getpreferredencoding(False))
    return data.replace("\r\n", "\n").replace("\r", "\n")


_ZYGOTE = _Zygote()


def ctrl_c(proc: subprocess.Popen, timeout: float = 10) -> None:
    """End a server or follower the way its user would (SIGINT); killed if it does not end in time."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def popen_hermesctl(*args: str, env: dict | None = None):
    """Start `python -m hermesctl ARGS` in the background, for a test that signals it (Ctrl-C,
    kill -9): forked by the zygote like hermesctl(), else a subprocess. Either handle has pid,
    poll, wait, send_signal, kill; close_and_collect() ends it and returns its CliResult."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if _ZYGOTE.usable and not _changes_interpreter_start(env or {}):
        return _ZYGOTE.spawn(list(args), full_env, str(ROOT))
    out = tempfile.NamedTemporaryFile(prefix="hct-cli-", delete=False)
    err = tempfile.NamedTemporaryFile(prefix="hct-cli-", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", *args], cwd=ROOT, stdout=out, stderr=err,
                            env=full_env)
    out.close()
    err.close()
    proc.out, proc.err = out.name, err.name
    return proc


def close_and_collect(proc, timeout: float = 20) -> CliResult:
    """Wait for a popen_hermesctl() process to end (killed after timeout), its output read and removed."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    result = CliResult(proc.returncode, _read_text(proc.out), _read_text(proc.err))
    if isinstance(proc, ZygoteCall):
        proc.close()
    else:
        for path in (proc.out, proc.err):
            os.unlink(path)
    return result


def hermesctl_until_interrupted(args: list[str], during) -> CliResult:
    """Start hermesctl in the background, call during(), then Ctrl-C it (SIGINT) and collect."""
    proc = popen_hermesctl(*args)
    try:
        during()
        proc.send_signal(signal.SIGINT)
    except BaseException:
        proc.kill()
        close_and_collect(proc)
        raise
    return close_and_collect(proc)


def installed_launcher(tmp_path) -> str:
    """The `hermesctl` command with bin/ as pip lays it out: the launcher as it is, hermesctl-start's `#!python` rewritten."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(ROOT / "bin" / "hermesctl", bin_dir / "hermesctl")
    start = (ROOT / "bin" / "hermesctl-start").read_text().splitlines(keepends=True)
    assert start[0].strip() == "#!python"
    (bin_dir / "hermesctl-start").write_text(f"#!{sys.executable}\n" + "".join(start[1:]))
    for name in ("hermesctl", "hermesctl-start"):
        os.chmod(bin_dir / name, 0o755)
    return str(bin_dir / "hermesctl")
