"""Benchmark: math grading speed against a plain math_verify loop, hostile inputs idle and loaded, verdict flips.

Usage: python bench/verify.py [--pairs 10000] [--rounds 5] [--hostile-load 2] [--reps 6] [--load 3]; prints JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter


def make_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    distinct: dict[tuple[str, str], None] = {}
    while len(distinct) < max(1, int(n * 0.7)):  # 70% distinct pairs, 30% repeats of them
        a, b = rng.randint(1, 999), rng.randint(2, 19)
        kind = rng.randrange(6)
        if kind == 0:
            ref, ans = str(a), rng.choice([str(a), str(a + 1), f"{a}.0"])
        elif kind == 1:
            ref, ans = (
                f"\\frac{{{a}}}{{{b}}}",
                rng.choice([f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}", f"\\frac{{{a + 1}}}{{{b}}}"]),
            )
        elif kind == 2:
            ref, ans = f"{a / 4:g}", rng.choice([f"\\frac{{{a}}}{{4}}", f"{a / 4:g}", f"{a / 4 + 1:g}"])
        elif kind == 3:
            ref, ans = f"(x+{a})^2", rng.choice([f"x^2+{2 * a}x+{a * a}", f"(x+{a})^2", f"x^2+{a * a}"])
        elif kind == 4:
            ref, ans = f"[{a},{a + b})", rng.choice([f"[{a}, {a + b})", f"({a},{a + b})", f"[{a},{a + b})"])
        else:
            ref, ans = (
                f"{a}\\sqrt{{{b}}}",
                rng.choice([f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}", f"{a + 1}\\sqrt{{{b}}}"]),
            )
        distinct[(f"Let me work it out. The answer is $\\boxed{{{ans}}}$.", ref)] = None
    pairs = list(distinct)
    pairs += [rng.choice(pairs) for _ in range(n - len(pairs))]
    rng.shuffle(pairs)
    return pairs


def baseline(pairs: list[tuple[str, str]], timeout: int) -> tuple[float, float, list[bool]]:
    """Wall and CPU seconds of a plain sequential math_verify loop, and its verdicts."""
    from math_verify import parse, verify

    t, c = time.perf_counter(), time.process_time()
    out = [
        verify(
            parse(f"${ref}$", parsing_timeout=timeout), parse(comp, parsing_timeout=timeout), timeout_seconds=timeout
        )
        for comp, ref in pairs
    ]
    return time.perf_counter() - t, time.process_time() - c, out


def ours(pairs: list[tuple[str, str]], workers: int, timeout: float) -> tuple[float, float, float, list]:
    """Pool start-up seconds, then wall and CPU seconds (this process and its workers) of our grading."""
    from phasecheck.grading import Grader
    from phasecheck.grading.pool import cpu_seconds
    from phasecheck.records import Example
    from phasecheck.task import TaskSpec

    task = TaskSpec.model_validate(
        {
            "name": "bench",
            "grader": {"verifier": {"kind": "math", "extract": "boxed", "timeout": timeout}, "workers": workers},
        }
    )
    with Grader(task) as g:
        t0 = time.perf_counter()
        g.pool.map(abs, [(1,)] * workers, 120)  # start-up, reported separately
        pids = [w.proc.pid for w in list(g.pool._all)]
        c1, w1 = time.process_time(), sum(cpu_seconds(p) or 0.0 for p in pids)
        t1 = time.perf_counter()
        grades = g.grade_many([(c, Example(id=str(i), prompt="", reference=r)) for i, (c, r) in enumerate(pairs)])
        t2 = time.perf_counter()
        cpu = time.process_time() - c1 + sum(cpu_seconds(p) or 0.0 for p in pids) - w1
    return t1 - t0, t2 - t1, cpu, grades


def hostile(timeout: float, workers: int) -> dict:
    """Each hostile input's wall seconds, and the worker CPU seconds it was stopped at (from the detail)."""
    from phasecheck.grading.math import Math
    from phasecheck.grading.pool import TimeoutPool

    inputs = {
        "tower": "2^{2^{2^{2^{2^{2}}}}}",
        "plain_tower": "The answer is 9**9**9**9",
        "big_power": "10^{10^{8}}",
        "deep_parens": "(" * 3000 + "1" + ")" * 3000,
        "100k_chars": "1+" * 50_000 + "1",
    }
    out: dict = {"load_average_before": round(os.getloadavg()[0], 2)}
    with TimeoutPool(workers) as pool:
        v = Math(Math.Params(), timeout=timeout, pool=pool)
        v.score(["1"], reference=["1+0"])
        for name, text in inputs.items():
            pool.map(abs, [(1,)] * workers, 120, chunk=1)  # a killed worker's replacement has started up
            t = time.perf_counter()
            [j] = v.judge([text], reference=["1"])
            cpu = re.search(r"([\d.]+)s CPU", j.detail)
            out[name] = {
                "seconds": round(time.perf_counter() - t, 3),
                "cpu_seconds": float(cpu.group(1)) if cpu else None,
                "outcome": j.why or ("correct" if j.score else "wrong"),
                "detail": j.detail[:100],
            }
        out["pool"] = pool.stats()
    out["load_average_after"] = round(os.getloadavg()[0], 2)
    return out


@contextlib.contextmanager
def burners(n: int, seconds: float = 600):
    """`n` busy processes of our own, each ending by itself after `seconds` even if this one is killed."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    try:
        time.sleep(1.0)  # let the load register
        yield
    finally:
        for b in procs:
            b.kill()
            b.wait()


def hostile_targets(runs: dict, timeout: float, wall_factor: float) -> dict:
    """Which hostile-input targets each run meets: CPU <= timeout + 1 s always; wall <= timeout + 1 s on an
    idle machine; wall <= the wall cap (twice, with its one retry) under load."""

    def items(run):
        return [h for k, h in run.items() if isinstance(h, dict) and "seconds" in h]

    out = {}
    for name, run in runs.items():
        worst_wall = max(h["seconds"] for h in items(run))
        worst_cpu = max((h["cpu_seconds"] or 0.0) for h in items(run))
        out[name] = {
            "worst_wall_s": worst_wall,
            "worst_cpu_s": worst_cpu,
            "cpu_le_timeout_plus_1": worst_cpu <= timeout + 1,
            "wall_le_timeout_plus_1": worst_wall <= timeout + 1,
            "wall_le_cap": worst_wall <= 2 * timeout * wall_factor + 1,
        }
    return out


SLOW_PAIR = ("\\sum_{k=1}^{n} k^3", "$\\left(\\frac{n(n+1)}{2}\\right)^2$")  # ~0.5 s of sympy on an idle core


def _judge_slow_pair(clock: str, budget: float, reps: int) -> dict:
    from phasecheck.grading.math import Math
    from phasecheck.grading.pool import TimeoutPool

    seen, walls = Counter(), []
    for _ in range(reps):
        with TimeoutPool(1) as pool:  # a fresh worker: no parse cached from the last repetition
            pool.call(abs, (1,), 120)  # start-up is not judged time
            v = Math(Math.Params(clock=clock), timeout=budget, pool=pool)
            t = time.perf_counter()
            [j] = v.judge([SLOW_PAIR[1]], reference=[SLOW_PAIR[0]])
            walls.append(time.perf_counter() - t)
            seen[j.why or ("correct" if j.score else "wrong")] += 1
    return {"verdicts": dict(seen), "wall_seconds": [round(min(walls), 2), round(max(walls), 2)]}


def stability(reps: int, load: int, budget: float) -> dict:
    """Verdicts of one slow pair judged `reps` times per clock, as the machine is, then under `load` busy
    processes of our own: a verdict that changes between the two flips with machine load."""
    out: dict = {"load_processes": load, "cpu_count": os.cpu_count(), "budget_s": budget}
    for clock in ("cpu", "wall"):
        out[clock] = {"as_is": _judge_slow_pair(clock, budget, reps)}
    with burners(load):
        for clock in ("cpu", "wall"):
            out[clock]["loaded"] = _judge_slow_pair(clock, budget, reps)
    for clock in ("cpu", "wall"):
        seen = set(out[clock]["as_is"]["verdicts"]) | set(out[clock]["loaded"]["verdicts"])
        out[clock]["flips_with_load"] = len(seen) > 1
    return out


def speed(args) -> dict:
    """Our grading against a plain sequential math_verify loop, in `rounds` that alternate which runs first
    (the machine's load drifts from minute to minute), on fresh pairs each round."""
    rows = []
    for r in range(args.rounds):
        pairs = make_pairs(args.pairs // args.rounds, args.seed + r)
        first_ours = r % 2 == 0
        if not first_ours:
            base_s, base_cpu, base = baseline(pairs, int(args.timeout))
        startup, ours_s, ours_cpu, grades = ours(pairs, args.workers, args.timeout)
        if first_ours:
            base_s, base_cpu, base = baseline(pairs, int(args.timeout))
        rows.append(
            {
                "pairs": len(pairs),
                "ours_s": round(ours_s, 2),
                "baseline_s": round(base_s, 2),
                "speedup": round(base_s / ours_s, 2),
                "ours_cpu_s": round(ours_cpu, 2),
                "baseline_cpu_s": round(base_cpu, 2),
                "startup_s": round(startup, 2),
                "agree": sum((g.correct is True) == b for g, b in zip(grades, base)),
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    ours_s, base_s = sum(x["ours_s"] for x in rows), sum(x["baseline_s"] for x in rows)
    n = sum(x["pairs"] for x in rows)
    return {
        "pairs": n,
        "rounds": rows,
        "ours_pairs_per_s": round(n / ours_s, 1),
        "baseline_pairs_per_s": round(n / base_s, 1),
        "speedup": round(base_s / ours_s, 2),
        "speedup_median_round": statistics.median(x["speedup"] for x in rows),
        "speedup_including_startup": round(base_s / (ours_s + sum(x["startup_s"] for x in rows)), 2),
        "cpu_ratio": round(sum(x["baseline_cpu_s"] for x in rows) / sum(x["ours_cpu_s"] for x in rows), 2),
        "agreement_with_baseline": round(sum(x["agree"] for x in rows) / n, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=5, help="Speed rounds, alternating which side runs first.")
    ap.add_argument("--reps", type=int, default=6, help="Repetitions per clock for the stability measure (0 = skip).")
    ap.add_argument("--load", type=int, default=3, help="Busy processes run during the stability measure.")
    ap.add_argument("--hostile-load", type=int, default=2, help="Busy processes for the loaded hostile run (0 = skip).")
    ap.add_argument("--skip-speed", action="store_true", help="Only the hostile inputs and the stability measure.")
    ap.add_argument("--stability-budget", type=float, default=1.0, help="Budget (s) for the stability measure.")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    out: dict = {"load_average_start": round(os.getloadavg()[0], 2), "workers": args.workers, "timeout_s": args.timeout}
    if not args.skip_speed:
        out.update(speed(args))
    worst = hostile(args.timeout, args.workers)
    pool_stats = worst.pop("pool")
    runs = {"as_is": worst}
    if args.hostile_load:
        with burners(args.hostile_load):
            runs[f"loaded_{args.hostile_load}_burners"] = loaded = hostile(args.timeout, args.workers)
        loaded.pop("pool")
    from phasecheck.grading.math import Math

    targets = hostile_targets(runs, args.timeout, Math.Params().wall_factor)
    stable = stability(args.reps, args.load, args.stability_budget) if args.reps else None
    out.update(
        {
            "worst_hostile_seconds": targets["as_is"]["worst_wall_s"],
            "hostile": runs,
            "hostile_targets": targets,
            "hostile_pool": pool_stats,
            "clock": "cpu",
            "load_average_end": round(os.getloadavg()[0], 2),
            "stability": stable,
        }
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
