"""Shared helpers for the benchmark scripts: start and remove labelled Hermes containers."""
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import docker

IMAGE = "hermes-agent:local"


def client() -> docker.DockerClient:
    return docker.from_env(max_pool_size=64)


def wait_booted(container, timeout: float = 120.0) -> float:
    """Seconds until stage 2 finished (cont-init done, reconciler wrote its default line)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if container.exec_run(["test", "-e", "/run/s6/stage2-done"]).exit_code == 0:
            return time.monotonic() - start
        time.sleep(0.05)
    raise TimeoutError(f"{container.name} did not boot")


def start_fleet(dc, count: int, prefix: str, image: str = IMAGE):
    def one(i):
        return dc.containers.run(image, ["sleep", "infinity"], name=f"{prefix}-{i:02d}", detach=True)
    with ThreadPoolExecutor(max_workers=8) as pool:
        containers = list(pool.map(one, range(count)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(wait_booted, containers))
    return containers


def remove(containers) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: c.remove(force=True, v=True), containers))


def run_id() -> str:
    return uuid.uuid4().hex[:6]


def timed(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls of fn()."""
    runs = []
    for _ in range(repeat):
        start = time.monotonic()
        fn()
        runs.append(time.monotonic() - start)
    return statistics.median(runs)


def summary(values: list[float]) -> str:
    return (f"min {min(values):.2f}s  median {statistics.median(values):.2f}s  "
            f"max {max(values):.2f}s  (n={len(values)})")
