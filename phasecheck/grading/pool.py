"""A bounded pool of worker processes that kills and replaces a worker stuck past its timeout.

concurrent.futures cannot kill a hung worker and math-verify's own timeout uses SIGALRM (main thread
only), so sympy work runs here: one pipe per worker, safe to call from any thread, started lazily.
"""
from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import queue
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

__all__ = ["TimeoutPool", "shared_pool", "OK", "TIMEOUT", "ERROR", "DEFAULT_MEMORY_MB"]

OK, TIMEOUT, ERROR = "ok", "timeout", "error"
DEFAULT_MEMORY_MB = 2048          # address-space cap per worker: a runaway sympy object hits MemoryError
_PRELOAD = ("sympy", "math_verify")


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
    except (ImportError, ValueError, OSError):   # not POSIX, or a tighter limit already applies
        pass


def _worker_main(conn: Any, memory_mb: int | None, preload: tuple[str, ...]) -> None:
    """Worker loop: receive (fn, args), send (status, value); None means stop."""
    import importlib
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C is the parent's business
    for mod in preload:
        try:
            importlib.import_module(mod)
        except ImportError:
            pass
    _set_limits(memory_mb)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            out = (OK, fn(*args))
        except MemoryError:
            out = (ERROR, "MemoryError: the expression needs more memory than the worker limit")
        except RecursionError:
            out = (ERROR, "RecursionError: the expression is nested too deeply")
        except BaseException as exc:  # noqa: BLE001 - a judgement failure is reported, never raised here
            out = (ERROR, f"{exc.__class__.__name__}: {str(exc)[:300]}")
        try:
            conn.send(out)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result
            conn.send((ERROR, f"cannot return result ({exc.__class__.__name__})"))


def _context() -> mp.context.BaseContext:
    # fork is unsafe once torch/tokenizers threads exist; forkserver forks from a clean preloaded server.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        try:
            ctx.set_forkserver_preload(list(_PRELOAD))
        except Exception:  # noqa: BLE001 - preload is an optimisation only
            pass
        return ctx
    return mp.get_context("spawn")


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext, memory_mb: int | None):
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, memory_mb, _PRELOAD), daemon=True,
                                name="phasecheck-grader")
        self.proc.start()
        child.close()

    def call(self, fn: Callable, args: tuple, timeout: float) -> tuple[str, Any]:
        try:
            self.conn.send((fn, args))
            if not self.conn.poll(timeout):
                return TIMEOUT, f"no answer within {timeout:g}s"
            return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = self.proc.exitcode
            return ERROR, f"grading worker died (exit code {code})"

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.join(5)
        except Exception:  # noqa: BLE001 - best effort during teardown
            pass
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.join(1)
        except Exception:  # noqa: BLE001
            pass
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


class TimeoutPool:
    """`call(fn, args, timeout)` and `map(fn, args_list, timeout)` return (status, value) pairs.

    status is OK (value = fn's result), TIMEOUT (the worker was killed and will be replaced) or ERROR
    (value = one-line reason). `fn` must be a module-level function (it is pickled by reference).
    """

    def __init__(self, workers: int = 0, memory_mb: int | None = DEFAULT_MEMORY_MB):
        self.size = workers or min(4, os.cpu_count() or 1)
        self.memory_mb = memory_mb
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._started = 0                 # live workers, idle or busy
        self._all: weakref.WeakSet = weakref.WeakSet()
        self._ctx: mp.context.BaseContext | None = None
        self._closed = False
        self._pid = os.getpid()
        self.killed = 0                   # workers killed for running past their timeout

    @property
    def started(self) -> bool:
        return self._started > 0

    def _acquire(self) -> _Worker:
        if self._closed:
            raise RuntimeError("the grading pool is closed")
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._started < self.size:
                self._started += 1
                spawn = True
            else:
                spawn = False
        if not spawn:
            return self._idle.get()
        try:
            if self._ctx is None:
                self._ctx = _context()
            w = _Worker(self._ctx, self.memory_mb)
        except BaseException:
            with self._lock:
                self._started -= 1
            raise
        self._all.add(w)
        return w

    def _release(self, w: _Worker, healthy: bool) -> None:
        if healthy and not self._closed:
            self._idle.put(w)
            return
        w.kill()
        with self._lock:
            self._started -= 1    # the next _acquire spawns its replacement

    def call(self, fn: Callable, args: tuple, timeout: float) -> tuple[str, Any]:
        w = self._acquire()
        status, value = w.call(fn, args, timeout)
        if status == TIMEOUT:
            self.killed += 1
        self._release(w, status != TIMEOUT and w.alive())
        return status, value

    def map(self, fn: Callable, args_list: Sequence[tuple], timeout: float) -> list[tuple[str, Any]]:
        """Run every call, up to `size` at a time; each call gets its own timeout."""
        if len(args_list) <= 1:
            return [self.call(fn, a, timeout) for a in args_list]
        n = min(self.size, len(args_list))
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="phasecheck-grade") as ex:
            return list(ex.map(lambda a: self.call(fn, a, timeout), args_list))

    def close(self) -> None:
        """Stop every worker; a later call raises."""
        self._closed = True
        if os.getpid() != self._pid:      # a forked child must not reap its parent's workers
            return
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                break
        for w in list(self._all):
            if w.alive():
                w.kill()
        self._started = 0

    def __enter__(self) -> "TimeoutPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: dict[tuple, TimeoutPool] = {}
_shared_lock = threading.Lock()


def shared_pool(workers: int = 0, memory_mb: int | None = DEFAULT_MEMORY_MB) -> TimeoutPool:
    """One pool per (size, memory) per process, closed at exit; creating it spawns nothing."""
    key = (workers or min(4, os.cpu_count() or 1), memory_mb, os.getpid())
    with _shared_lock:
        pool = _shared.get(key)
        if pool is None or pool._closed:
            pool = _shared[key] = TimeoutPool(key[0], memory_mb)
        return pool


@atexit.register
def _close_shared() -> None:
    for pool in list(_shared.values()):
        pool.close()
