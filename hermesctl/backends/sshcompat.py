"""A workaround for docker-py's ssh shell-out transport (docker/docker-py#3218, open in 7.1).

When an exec's output has been read, docker-py closes the connection; SSHSocket.close() flushes
stdin of an ssh process that has already exited and raises BrokenPipeError, so exec_start loses
output it had read. Closing a socket whose process is gone is simply done: we let it be.
"""
import docker.transport.sshconn as sshconn

_original_close = sshconn.SSHSocket.close


def _close_tolerating_exited_ssh(self) -> None:
    try:
        _original_close(self)
    except BrokenPipeError:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()


def install() -> None:
    if sshconn.SSHSocket.close is not _close_tolerating_exited_ssh:
        sshconn.SSHSocket.close = _close_tolerating_exited_ssh
