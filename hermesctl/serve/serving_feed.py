"""Is each gateway serving, for `hermesctl serve`: every `interval` seconds, one exec of the
agent's `serving` per running container (its API servers' /health on the container's loopback;
never a chat completion: that would cost a model call per look). Scrapes read the latest
answers and judge them with the rows' states (hermesctl.agent.serving, as `hermesctl probe` does);
nothing here runs during a scrape. Containers come from the live fleet the refresher keeps."""
import threading
import time

from hermesctl.agent import client as agent
from hermesctl.core.errors import describe
from hermesctl.core.parallel import fan_out

DEFAULT_INTERVAL_S = 30.0
HEALTH_TIMEOUT_S = 5.0  # the agent's HTTP deadline; the exec's is a little longer


class ServingFeed:
    def __init__(self, live, fleet, *, interval: float = DEFAULT_INTERVAL_S, ready=None):
        self.live, self.fleet, self.interval = live, fleet, interval
        self.lock = threading.Lock()
        # (endpoint, container) -> {"time", "profiles": {P: answer}} or {"time", "error"}
        self.answers: dict[tuple[str, str], dict] = {}
        self._stop = threading.Event()
        self._ready = ready

    def start(self) -> None:
        threading.Thread(target=self._run, name="serving-feed", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while self._ready is not None and not self._ready.wait(1.0):
            if self._stop.is_set():
                return
        while not self._stop.is_set():
            self.look_once()
            self._stop.wait(self.interval)

    def look_once(self) -> None:
        with self.live.lock:
            running = [c for c in self.live.containers.values() if c.running]
        outcomes = fan_out(self._ask, running)
        now = time.time()
        with self.lock:
            self.answers = {(o.item.endpoint, o.item.name): ({"time": now, "profiles": o.value} if o.ok else
                                                             {"time": now, "error": describe(o.error)})
                            for o in outcomes}

    def _ask(self, c) -> dict:
        argv = agent.argv("serving", "--timeout", f"{HEALTH_TIMEOUT_S:g}")
        result = self.fleet.run(c, argv, timeout=HEALTH_TIMEOUT_S + 5)
        profiles = agent.answer(result, where=c.name).get("profiles")
        return profiles if isinstance(profiles, dict) else {}

    def answer_for(self, endpoint: str, container: str, profile: str) -> tuple[bool, dict | None]:
        """(looked, the profile's answer): looked is False before the first look at the container."""
        with self.lock:
            entry = self.answers.get((endpoint, container))
        if entry is None:
            return False, None
        answer = (entry.get("profiles") or {}).get(profile)
        return True, answer if isinstance(answer, dict) else None
