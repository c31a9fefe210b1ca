"""One result model for every command: a result per item (what, ok, a reason code, a message),
and one function from a command's results and what did not answer to its exit code (as
kubectl's NewAggregate turns many errors into one)."""
from dataclasses import dataclass
from typing import Iterable

from hermesctl.core.exit_codes import ExitStatus


@dataclass(frozen=True)
class ItemResult:
    item: str            # ENDPOINT/CONTAINER[:PROFILE], or a service
    ok: bool
    reason: str = "ok"   # a code: ok, failed, timeout, not-running, not-found, rolled-back, ...
    message: str = ""


# A failed item's reason -> the exit status it stands for, when no worse one applies.
REASON_STATUS = {"not-running": ExitStatus.NOT_RUNNING, "timeout": ExitStatus.PARTIAL,
                 "unreachable": ExitStatus.PARTIAL, "pending": ExitStatus.PARTIAL,
                 "not-found": ExitStatus.NOT_FOUND, "not-serving": ExitStatus.NOT_RUNNING}


def exit_status(results: Iterable[ItemResult], unreachable: Iterable = (),
                base: ExitStatus = ExitStatus.OK) -> ExitStatus:
    """0 when every item is ok and everything answered. An item that failed outright is 1 and
    wins; an item or instance that did not answer (timeout, unreachable, pending) is 7, which wins
    over 0 and 3 (nothing can be claimed about what was not seen); items merely not running are
    3. `base` is what the command found besides its items (e.g. 3 from ps' judgments)."""
    status = base
    failed = partial = False
    for r in results:
        if r.ok:
            continue
        kind = REASON_STATUS.get(r.reason, ExitStatus.FAILED)
        if kind == ExitStatus.PARTIAL:
            partial = True
        elif kind == ExitStatus.FAILED:
            failed = True
        elif status in (ExitStatus.OK, ExitStatus.NOT_RUNNING):
            status = kind
    if failed:
        return ExitStatus.FAILED
    if partial or any(True for _ in unreachable):
        if status in (ExitStatus.OK, ExitStatus.NOT_RUNNING):
            return ExitStatus.PARTIAL
    return status
