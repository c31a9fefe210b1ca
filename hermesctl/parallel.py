"""Fan work out over containers or endpoints; results come back in input order."""
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_WORKERS = 32


def fan_out(fn: Callable[[T], R], items: Iterable[T]) -> list[R | BaseException]:
    """fn(item) for every item, in parallel; an exception is returned in place of its result."""
    items = list(items)
    if not items:
        return []

    def guarded(item: T) -> R | BaseException:
        try:
            return fn(item)
        except Exception as exc:  # noqa: BLE001 - handed back to the caller, per item
            return exc

    if len(items) == 1:
        return [guarded(items[0])]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items))) as pool:
        return list(pool.map(guarded, items))
