"""A container's execs as the daemon announces them (its exec_start events, pushed over one
event stream): a test waits for hermesctl's exec without an exec of its own, and sees this run's
exec, not a previous run's still ending."""
import queue
import threading
import time


class ExecStarts:
    def __init__(self, client, container):
        self.client = client
        self.found: queue.Queue = queue.Queue()  # (command, exec id, when in ns), in the daemon's order
        self.stream = client.events(decode=True, filters={"container": container.id, "event": "exec_start"})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self.stream:
                attributes = (event.get("Actor") or {}).get("Attributes", {})
                self.found.put((event.get("Action", ""), attributes.get("execID"), int(event.get("timeNano") or 0)))
        except Exception:  # noqa: BLE001 - the stream is closed at the end
            pass

    def wait_running(self, word: str, timeout: float = 60) -> int:
        """The pid of the next exec whose command holds word, once its process runs (the daemon
        announces exec_start before it starts the process, and knows the pid after)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                action, exec_id, _ = self.found.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no exec with {word!r} started within {timeout}s") from None
            if word in action:
                break
        while time.monotonic() < deadline:
            pid = self.client.api.exec_inspect(exec_id).get("Pid") or 0
            if pid:
                return pid
            time.sleep(0.01)
        raise AssertionError(f"the exec {action!r} did not run within {timeout}s")

    def started_between(self, word: str, since_ns: int, until_ns: int, settle: float = 0.5) -> bool:
        """Whether an exec whose command holds word started between the two instants (its event
        may come a little after; the queue is read empty, so an earlier moment's late event is
        never counted twice)."""
        deadline, seen = time.monotonic() + settle, False
        while True:
            try:
                action, _, when = self.found.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return seen
            seen = seen or (word in action and since_ns <= when < until_ns)

    def close(self) -> None:
        self.stream.close()
