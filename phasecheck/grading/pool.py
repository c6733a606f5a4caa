"""A bounded pool of worker processes that kills and replaces a worker stuck past its time budget.

concurrent.futures cannot kill a hung worker and math-verify's own timeout uses SIGALRM (main thread
only), so sympy work runs here: one pipe per worker, safe to call from any thread, started lazily. The
budget is wall-clock seconds, or (clock="cpu") the worker's own CPU seconds, which machine load does not stretch.
"""

from __future__ import annotations

import atexit
import os
import queue
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["TimeoutPool", "shared_pool", "OK", "TIMEOUT", "ERROR", "DEFAULT_MEMORY_MB"]

OK, TIMEOUT, ERROR = "ok", "timeout", "error"  # the same strings as in _worker (not imported here:
# running `-m _worker` must not find it already loaded)

DEFAULT_MEMORY_MB = 2048  # address-space cap per worker: a runaway sympy object hits MemoryError
STARTUP_TIMEOUT = 120.0  # importing sympy on a loaded machine can take seconds
POLL_SECONDS = 0.05  # how often a CPU budget is checked while a call runs
try:
    _CLK_TCK = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):
    _CLK_TCK = 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` (Linux /proc), or None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


class _Worker:
    """A fresh interpreter (`python -m phasecheck.grading._worker`) talking over two pipes.

    Not multiprocessing.Process: spawn/forkserver re-run the caller's __main__ in the child, which breaks
    any script without an `if __name__ == "__main__"` guard (TRL training scripts often have none).
    """

    def __init__(self, memory_mb: int | None):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "phasecheck.grading._worker",
                    str(to_child_r),
                    str(from_child_w),
                    str(memory_mb or 0),
                ],
                pass_fds=(to_child_r, from_child_w),
                env=env,
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._out = Connection(to_child_w, readable=False)
        self._in = Connection(from_child_r, writable=False)
        self._ready = False

    def _wait_ready(self) -> None:
        if not self._in.poll(STARTUP_TIMEOUT):
            raise EOFError
        self._in.recv()
        self._ready = True

    def _await(self, budget: float, clock: str, wall_factor: float) -> tuple[str, bool] | None:
        """None once a reply is ready; else (why, retry) when the call ran past its budget.

        With the cpu clock the call may use `budget` CPU seconds however long the machine makes it wait, up
        to `budget * wall_factor` wall seconds; that wall cap (a starved or stalled worker) is worth a retry."""
        t0, c0 = time.monotonic(), cpu_seconds(self.proc.pid) if clock == "cpu" else None
        wall = budget * wall_factor if c0 is not None else budget
        while True:
            left = wall - (time.monotonic() - t0)
            if left <= 0:
                used = cpu_seconds(self.proc.pid) if c0 is not None else None
                cpu = f", {used - c0:.2f}s CPU" if used is not None and c0 is not None else ""
                return f"no answer within {wall:g}s wall clock{cpu}", c0 is not None
            if self._in.poll(min(left, POLL_SECONDS) if c0 is not None else left):
                return None
            if not self.alive():
                raise EOFError
            if c0 is not None and (used := cpu_seconds(self.proc.pid)) is not None and used - c0 >= budget:
                return f"{used - c0:.2f}s CPU, budget {budget:g}s", False

    def run(
        self, fn: Callable, batch: list[tuple], timeout: float, clock: str = "wall", wall_factor: float = 3.0
    ) -> list[tuple[str, Any]]:
        """Results for a prefix of `batch`; shorter than the batch when an item timed out or the worker died
        (the last result then says which). `self.retry` says whether a timeout is worth one retry."""
        out: list[tuple[str, Any]] = []
        self.retry = False
        try:
            if not self._ready:
                self._wait_ready()
            self._out.send((fn, batch))
            for _ in batch:
                late = self._await(timeout, clock, wall_factor)
                if late is not None:
                    out.append((TIMEOUT, late[0]))
                    self.retry = late[1]
                    return out
                out.append(self._in.recv())
        except (EOFError, OSError):
            try:
                self.proc.wait(1)
            except subprocess.TimeoutExpired:
                pass
            out.append((ERROR, f"grading worker died (exit code {self.proc.returncode})"))
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _close_pipes(self) -> None:
        for c in (self._out, self._in):
            try:
                c.close()
            except OSError:
                pass

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(5)
        except Exception:  # noqa: BLE001 - best effort during teardown
            pass
        self._close_pipes()

    def stop(self) -> None:
        try:
            self._out.send(None)
            self.proc.wait(1)
        except Exception:  # noqa: BLE001
            pass
        self.kill()


class TimeoutPool:
    """`call(fn, args, timeout)` and `map(fn, args_list, timeout)` return (status, value) pairs.

    status is OK (value = fn's result), TIMEOUT (the worker was killed and will be replaced) or ERROR
    (value = one-line reason). `fn` must be a module-level function (it is pickled by reference).
    """

    def __init__(self, workers: int = 0, memory_mb: int | None = DEFAULT_MEMORY_MB):
        self.size = workers or min(4, os.cpu_count() or 1)
        self.memory_mb = memory_mb
        self._idle: queue.Queue[_Worker] = queue.Queue()  # FIFO: a just-respawned worker goes last
        self._lock = threading.Lock()
        self._started = 0  # live workers, idle or busy
        self._all: weakref.WeakSet = weakref.WeakSet()
        self._closed = False
        self._pid = os.getpid()
        self.killed = 0  # workers killed for running past their timeout
        self.retried = 0  # calls retried once on a fresh worker after a wall-clock cap
        self.timeouts = 0  # calls whose result is TIMEOUT (after any retry)

    @property
    def started(self) -> bool:
        return self._started > 0

    def _acquire(self) -> _Worker:
        if self._closed:
            raise RuntimeError("the grading pool is closed")
        while True:
            try:
                w = self._idle.get_nowait()
            except queue.Empty:
                break
            if w.alive():
                return w
            self._release(w, healthy=False)
        with self._lock:
            if self._started < self.size:
                self._started += 1
                spawn = True
            else:
                spawn = False
        if not spawn:
            return self._idle.get()
        try:
            w = _Worker(self.memory_mb)
        except BaseException:
            with self._lock:
                self._started -= 1
            raise
        self._all.add(w)
        while True:  # start the rest too, so they import in parallel with this one
            with self._lock:
                if self._started >= self.size:
                    break
                self._started += 1
            try:
                extra = _Worker(self.memory_mb)
            except OSError:
                with self._lock:
                    self._started -= 1
                break
            self._all.add(extra)
            self._idle.put(extra)
        return w

    def _release(self, w: _Worker, healthy: bool) -> None:
        if healthy and not self._closed:
            self._idle.put(w)
            return
        w.kill()
        if self._closed:
            return
        try:  # start the replacement now: it imports sympy while the caller moves on
            fresh = _Worker(self.memory_mb)
        except OSError:
            with self._lock:
                self._started -= 1  # the next _acquire tries again
            return
        self._all.add(fresh)
        self._idle.put(fresh)

    def _run_chunk(
        self, fn: Callable, chunk: list[tuple], timeout: float, clock: str = "wall", wall_factor: float = 3.0
    ) -> list[tuple[str, Any]]:
        results: list[tuple[str, Any]] = []
        retried = -1  # index of the item already retried once
        while len(results) < len(chunk):
            w = self._acquire()
            got = w.run(fn, chunk[len(results) :], timeout, clock, wall_factor)
            timed_out = bool(got) and got[-1][0] == TIMEOUT
            failed = bool(got) and got[-1][0] != OK and (timed_out or not w.alive())
            self._release(w, not failed and w.alive())
            with self._lock:
                self.killed += timed_out
                if timed_out and w.retry and retried != len(results) + len(got) - 1:
                    retried = len(results) + len(got) - 1
                    self.retried += 1
                    got = got[:-1]  # a starved worker's cap: the same call once more, on a fresh worker
                else:
                    self.timeouts += timed_out
            results.extend(got)  # the failed item keeps its TIMEOUT/ERROR; the rest go to a fresh worker
        return results

    def call(
        self, fn: Callable, args: tuple, timeout: float, *, clock: str = "wall", wall_factor: float = 3.0
    ) -> tuple[str, Any]:
        return self._run_chunk(fn, [args], timeout, clock, wall_factor)[0]

    def map(
        self,
        fn: Callable,
        args_list: Sequence[tuple],
        timeout: float,
        chunk: int = 0,
        *,
        clock: str = "wall",
        wall_factor: float = 3.0,
    ) -> list[tuple[str, Any]]:
        """Run every call, `size` workers at a time, in chunks; each call still gets its own budget."""
        items = list(args_list)
        if not items:
            return []
        chunk = chunk or max(1, min(64, len(items) // (self.size * 4)))
        chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
        if len(chunks) == 1:
            return self._run_chunk(fn, chunks[0], timeout, clock, wall_factor)
        with ThreadPoolExecutor(max_workers=min(self.size, len(chunks)), thread_name_prefix="phasecheck-grade") as ex:
            parts = list(ex.map(lambda c: self._run_chunk(fn, c, timeout, clock, wall_factor), chunks))
        return [r for part in parts for r in part]

    def stats(self) -> dict[str, int]:
        """Counts since the pool was made: timeouts (final), retried calls, workers killed."""
        return {"timeouts": self.timeouts, "retried": self.retried, "workers_killed": self.killed}

    def close(self) -> None:
        """Stop every worker; a later call raises."""
        self._closed = True
        if os.getpid() != self._pid:  # a forked child must not reap its parent's workers
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

    def __enter__(self) -> TimeoutPool:
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
