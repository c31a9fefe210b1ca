# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""s6's own files, read directly: supervise/status, supervise/death_tally and the control FIFO.

What s6-svstat, s6-svdt and s6-svok print, without starting a program per slot (the agent
answers for every slot of a container in one exec). Formats are s6 2.11's (Debian bookworm):
status is 35 bytes (stamp, ready stamp: TAI64N; pid: u64; wait status: u16; flags), a death
tally record 14 bytes (TAI64N, exit code, signal). Stdlib only: os and struct.
"""
import os
import stat
import struct

STATUS_SIZE = 35
DEATH_SIZE = 14
TAI_EPOCH = 1 << 62
# TAI - UTC in seconds (10 + 27 leap seconds, unchanged since 2017): skalibs stamps in TAI, the
# rest of the world (gateway_state.json, operation records) in Unix seconds.
TAI_UTC_S = 37
FLAG_WANTUP = 0x04
FLAG_FINISHING = 0x02
_STATUS = struct.Struct(">QL QL QH B")
# Linux signal numbers (x86_64 and arm64 agree), as s6-svstat names them; `signal` would import
# enum, which costs the agent more than everything else it does.
SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
           8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
           14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
           20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
           26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS"}


def tai_to_unix(seconds: int, nanoseconds: int) -> float:
    return seconds - TAI_EPOCH - TAI_UTC_S + nanoseconds / 1e9


def signal_name(number: int) -> str:
    return SIGNALS.get(number, f"SIG{number}")


def read_small(path: str, limit: int = 65536) -> bytes | None:
    """A regular file's bytes, or None. Never blocks: hermes could leave a FIFO anywhere."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def supervised(service: str) -> bool:
    """s6-svok: an s6-supervise holds the control FIFO open for reading. Opening it for writing
    without blocking fails with ENXIO when nobody reads it; nothing is written."""
    try:
        fd = os.open(service + "/supervise/control", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def parse_status(raw: bytes, now: float, normally_up: bool) -> dict | None:
    """supervise/status as s6-svstat -o up,wantedup,normallyup,pid,exitcode,signal,updownfor
    reads it; `since` is the last change in Unix seconds."""
    if raw is None or len(raw) != STATUS_SIZE:
        return None
    stamp_s, stamp_ns, _ready_s, _ready_ns, pid, wstat, flags = _STATUS.unpack(raw)
    up = pid != 0 and not flags & FLAG_FINISHING
    since = tai_to_unix(stamp_s, stamp_ns)
    exited = wstat & 0x7F == 0
    signalled = not exited and wstat & 0x7F != 0x7F
    return {
        "up": up,
        "wanted_up": bool(flags & FLAG_WANTUP),
        "normally_up": normally_up,
        "pid": pid if up else None,
        "exit_code": (wstat >> 8) & 0xFF if not up and exited else None,
        "signal": signal_name(wstat & 0x7F) if not up and signalled else None,
        "since": round(since, 3),
        "seconds": max(0, int(now - since)),
    }


def parse_deaths(raw: bytes | None, keep: int) -> list[dict]:
    """supervise/death_tally: the last `keep` deaths, oldest first, as s6-svdt words them."""
    if not raw:
        return []
    deaths = []
    usable = len(raw) - len(raw) % DEATH_SIZE
    for offset in range(max(0, usable - keep * DEATH_SIZE), usable, DEATH_SIZE):
        seconds, nanoseconds, code, sig = struct.unpack_from(">QLBB", raw, offset)
        how = f"signal {signal_name(sig)}" if sig else f"exitcode {code}"
        deaths.append({"at": round(tai_to_unix(seconds, nanoseconds), 3), "how": how})
    return deaths
