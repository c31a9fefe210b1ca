"""Fan work out over containers or endpoints; outcomes come back in input order.

An outcome is the item with either its value or the error it raised: failures are data, so
every caller decides per item (report it, count it, go on) instead of stopping at the first.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_WORKERS = 32


@dataclass
class Outcome(Generic[T, R]):
    item: T
    value: R | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def fan_out(fn: Callable[[T], R], items: Iterable[T]) -> list[Outcome[T, R]]:
    """fn(item) for every item, in parallel."""
    items = list(items)

    def guarded(item: T) -> Outcome[T, R]:
        try:
            return Outcome(item, value=fn(item))
        except Exception as exc:  # noqa: BLE001 - handed back to the caller, per item
            return Outcome(item, error=exc)

    if len(items) <= 1:
        return [guarded(i) for i in items]
    # Worker threads blocked on a container never hold the process up: hermesctl ends with
    # os._exit (hermesctl.core.interrupt), and every exec has a deadline (hermesctl.backends.docker.execs).
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items))) as pool:
        return list(pool.map(guarded, items))
