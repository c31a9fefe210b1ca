"""The Docker SDK's ssh transport, loaded only for an ssh:// endpoint, and the one workaround it needs.

Importing `docker` imports `docker.transport.sshconn`, which imports paramiko: about 0.15 s of
every command's start, for a transport a unix socket or tcp:// endpoint never uses. `defer()`
runs before `docker` is first imported (hermesctl/__init__.py): the SDK then finds no ssh
transport, as it would without paramiko installed, and `install()` loads it, for real, the
moment an ssh:// endpoint is connected.

The workaround (docker/docker-py#3218, open in 7.1): when an exec's output has been read,
docker-py closes the connection; SSHSocket.close() flushes stdin of an ssh process that has
already exited and raises BrokenPipeError, so exec_start loses output it had read. Closing a
socket whose process is gone is simply done: we let it be.
"""
import importlib.abc
import sys
import threading

SSH_TRANSPORT = "docker.transport.sshconn"
_lock = threading.Lock()


class _DeferredSSHTransport(importlib.abc.MetaPathFinder):
    """Says "not installed" for the SDK's ssh transport until install() lifts it; the SDK
    imports it inside `try: ... except ImportError`, so it simply goes without."""

    def find_spec(self, name, path=None, target=None):
        if name == SSH_TRANSPORT:
            raise ModuleNotFoundError(f"{name} is loaded only for ssh:// endpoints (hermesctl.backends.docker.sshcompat)",
                                      name=name)
        return None


_finder = _DeferredSSHTransport()


def defer() -> None:
    """Before `docker` is imported: leave its ssh transport out (a no-op once it is loaded)."""
    if SSH_TRANSPORT not in sys.modules and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _close_tolerating_exited_ssh(self) -> None:
    try:
        _original_close(self)
    except BrokenPipeError:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()


_original_close = None


def install() -> None:
    """Load the ssh transport (once) and hand it to the SDK, with the BrokenPipe workaround."""
    global _original_close
    with _lock:
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        import docker.api.client
        import docker.transport
        import docker.transport.sshconn as sshconn
        # Modules that imported before the transport existed look the name up at connect time.
        for module in (docker.transport, docker.api.client):
            if getattr(module, "SSHHTTPAdapter", None) is not sshconn.SSHHTTPAdapter:
                module.SSHHTTPAdapter = sshconn.SSHHTTPAdapter
        if sshconn.SSHSocket.close is not _close_tolerating_exited_ssh:
            _original_close = sshconn.SSHSocket.close
            sshconn.SSHSocket.close = _close_tolerating_exited_ssh
