"""The worker side of the grading pool: `python -m phasecheck.grading._worker READ_FD WRITE_FD MEMORY_MB`."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

OK, TIMEOUT, ERROR = "ok", "timeout", "error"
_PRELOAD = ("sympy", "math_verify", "phasecheck.grading.math")


def _set_limits(memory_mb: int | None) -> None:
    if not memory_mb:
        return
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or a tighter limit already applies
        pass


def _worker_main(conn: Connection, reply: Connection, memory_mb: int | None, preload: tuple[str, ...]) -> None:
    """Worker loop: receive (fn, [args, ...]), send one (status, value) per args; None means stop."""
    import importlib
    import logging
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for mod in preload:
        try:
            warm = getattr(importlib.import_module(mod), "warm_up", None)
        except ImportError:
            continue
        if warm is not None:  # one-off parser set-up belongs to start-up, not to the first call's budget
            try:
                warm()
            except Exception:  # noqa: BLE001 - a failed warm-up only costs the first call time
                pass
    _set_limits(memory_mb)
    reply.send((OK, "ready"))  # start-up time never counts against a call's timeout
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, batch = msg
        for args in batch:  # one reply per call, so a hang is pinned to its item
            try:
                out = (OK, fn(*args))
            except MemoryError:
                out = (ERROR, "MemoryError: the expression needs more memory than the worker limit")
            except RecursionError:
                out = (ERROR, "RecursionError: the expression is nested too deeply")
            except BaseException as exc:  # noqa: BLE001 - a judgement failure is reported, never raised here
                out = (ERROR, f"{exc.__class__.__name__}: {str(exc)[:300]}")
            try:
                reply.send(out)
            except Exception as exc:  # noqa: BLE001 - an unpicklable result
                reply.send((ERROR, f"cannot return result ({exc.__class__.__name__})"))


if __name__ == "__main__":
    _worker_main(
        Connection(int(sys.argv[1]), writable=False),
        Connection(int(sys.argv[2]), readable=False),
        int(sys.argv[3]) or None,
        _PRELOAD,
    )
