"""The grading pool: hung workers are killed and replaced, off the main thread too; hostile math finishes."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from phasecheck.grading.math import Math
from phasecheck.grading.pool import ERROR, OK, TIMEOUT, TimeoutPool

HOSTILE = [
    "2^{2^{2^{2^{2^{2}}}}}",  # a tower of exponents: sympy tries to evaluate it
    "The answer is 9**9**9**9",  # the same through math-verify's plain-expression path
    "10^{10^{8}}",
    "(" * 3000 + "1" + ")" * 3000,  # deep nesting: recursion in the parser
    "1+" * 50_000 + "1",  # a 100k-character expression
]


@pytest.fixture(scope="module")
def pool():
    with TimeoutPool(2, memory_mb=1024) as p:
        yield p


def test_pool_starts_lazily_and_closes():
    p = TimeoutPool(1)
    assert not p.started
    assert p.call(abs, (-3,), 30) == (OK, 3)
    assert p.started
    p.close()
    assert not p.started
    with pytest.raises(RuntimeError, match="closed"):
        p.call(abs, (1,), 1)


def test_hung_worker_is_killed_and_replaced(pool):
    pool.map(abs, [(1,), (2,)], 60)  # start-up is not part of the timeout
    t = time.monotonic()
    assert pool.call(time.sleep, (60,), 1.0)[0] == TIMEOUT
    assert time.monotonic() - t < 3
    assert pool.call(abs, (-2,), 30) == (OK, 2)  # a fresh worker took its place


def test_errors_crashes_and_memory_are_reported_not_raised(pool):
    assert pool.call(int, ("x",), 30)[0] == ERROR
    status, why = pool.call(bytearray, (8 * 1024**3,), 30)
    assert status == ERROR and "MemoryError" in why
    status, why = pool.call(os._exit, (3,), 30)
    assert status == ERROR and "died" in why
    assert pool.call(abs, (-1,), 30) == (OK, 1)


def test_map_pins_a_timeout_to_its_item(pool):
    got = pool.map(time.sleep, [(0,)] * 10 + [(60,)] + [(0,)] * 10, 1.0, chunk=7)
    assert [s for s, _ in got] == [OK] * 10 + [TIMEOUT] + [OK] * 10


def test_timeout_works_off_the_main_thread(pool):
    out = []
    threads = [threading.Thread(target=lambda: out.append(pool.call(time.sleep, (60,), 0.5))) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert [s for s, _ in out] == [TIMEOUT, TIMEOUT]


# A wall budget stops a call at timeout; a CPU budget at timeout CPU seconds, capped at timeout x wall_factor
# of wall time and retried once on a fresh worker (whose start-up, on a loaded machine, takes seconds).
BOUNDS = {"wall": 2.0 + 1.5, "cpu": 2 * 2.0 * 1.5 + 10}


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_hostile_math_finishes_within_its_bound(pool, clock):
    v = Math(Math.Params(max_chars=200_000, clock=clock, wall_factor=1.5), timeout=2.0, pool=pool)
    v.score(["1"], reference=["1 + 0"])  # warm the workers: start-up is not judged time
    for text in HOSTILE:
        pool.map(abs, [(1,)] * pool.size, 120, chunk=1)  # replacements started: start-up is not judged
        t = time.monotonic()
        [j] = v.judge([text], reference=["1"])
        took = time.monotonic() - t
        assert took < BOUNDS[clock], (text[:30], took)
        assert j.score in (0.0, None), text[:30]
        if j.score is None:
            assert j.why in ("timeout", "error", "unparsed")
        if j.why == "timeout":
            assert ("CPU" in j.detail) == (clock == "cpu" and "budget" in j.detail) or "wall clock" in j.detail
        if clock == "cpu" and (cpu := re.search(r"([\d.]+)s CPU, budget", j.detail)):
            assert float(cpu.group(1)) <= 2.0 + 1, j.detail  # stopped within timeout + 1 s of CPU, at any load


def test_hostile_math_from_a_thread_and_the_length_guard(pool):
    v = Math(Math.Params(clock="wall"), timeout=2.0, pool=pool)
    out = []
    th = threading.Thread(target=lambda: out.extend(v.judge(HOSTILE[:2] + [HOSTILE[-1]], reference=["1"] * 3)))
    t = time.monotonic()
    th.start()
    th.join(30)
    assert time.monotonic() - t < 2 * (2.0 + 1.5)
    assert "longer than 2000" in out[2].detail  # rejected before any parsing
