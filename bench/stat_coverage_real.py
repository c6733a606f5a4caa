"""Interval coverage on real model outputs: GSM8K test, 1,319 problems, four real model systems
(../shared/data/real/gsm8k_test_model_solutions.jsonl, each row labelled correct or not by the benchmark).

For each system, the share of the 1,319 problems it solves is the truth. A check sees only the prompts it
sampled, so draw k problems at random (8, 16, 50, 200; without replacement, as an eval set is a draw from a
task) and ask whether pass@1's interval (`stats.clustered_proportion`, what base_model and stability quote)
holds the truth. One solution per problem and system: the samples-per-prompt part of the interval is not
exercised there, the prompts-as-clusters part and the unseen-share bound are.

Repeated samples, real outputs: the policy that answers each problem with one of its four real solutions,
drawn at random for every sample. It is a real sampler, so R x n samples a problem are independent draws of
labelled real outputs, and its truths are exact over all 1,319 problems: the pass rate, the mean share of
the four solutions correct; the zero-variance share at G, the mean of q^G + (1 - q)^G (q that share, the
reward the label); a run's outcome, the majority of its n samples (ties wrong), so stability's agreement
is exact too. This exercises every interval a headline quotes (pass@1 and per-run accuracy, stability's
agreement, grpo_readiness's zero-variance share at G=4 and 8) with several samples a prompt, on a
difficulty mix nobody here chose: 432 of the problems no system solves, 156 all four do.

    .venv/bin/python bench/stat_coverage_real.py [--reps 2000] [--data DIR]

Prints JSON: per system and k, and per mixture cell (k prompts, R x n), the truth, the coverage of the
nominal 95% interval, its Monte Carlo standard error, and the mean width; a summary per interval."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phasecheck.jsonl import json_lines  # noqa: E402
from phasecheck.stats import (  # noqa: E402
    clustered_mean,
    clustered_proportion,
    disjoint_groups,
    wilson,
    zero_variance_share,
)

sys.path.insert(0, str(ROOT / "bench"))
from _simulate import agreement_truth  # noqa: E402

PROMPT_COUNTS = (8, 16, 50, 200)
DESIGNS = ((2, 2), (2, 4), (4, 4))  # (runs, n) for the mixture policy: 4, 8 and 16 samples a prompt
GROUP_SIZES = (4, 8)


def _cover(rng: random.Random, reps: int, draw, truth: dict[str, float]) -> dict:
    """Coverage of each truth by the interval of that name in `draw(rng)`, over `reps` draws, with its
    Monte Carlo standard error and the mean width."""
    hits, width = dict.fromkeys(truth, 0), dict.fromkeys(truth, 0.0)
    for _ in range(reps):
        for name, ci in draw(rng).items():
            hits[name] += ci.low <= truth[name] <= ci.high
            width[name] += ci.high - ci.low
    out = {}
    for name in truth:
        cov = hits[name] / reps
        out[name] = {
            "coverage": round(cov, 4),
            "coverage_se": round((cov * (1 - cov) / reps) ** 0.5, 4),
            "mean_width": round(width[name] / reps, 4),
        }
    return out


def per_system(correct: dict[str, dict[str, bool]], rng: random.Random, reps: int) -> dict:
    """pass@1's interval against each system's solve rate, one solution a problem."""
    out = {}
    for model, by_q in sorted(correct.items()):
        values = list(by_q.values())
        truth = {"pass_at_1": sum(values) / len(values)}
        cells = {
            str(k): _cover(
                rng,
                reps,
                lambda r, k=k, vs=values: {"pass_at_1": clustered_proportion([(int(v), 1) for v in r.sample(vs, k)])},
                truth,
            )["pass_at_1"]
            for k in PROMPT_COUNTS
        }
        out[model] = {"problems": len(values), "truth": round(truth["pass_at_1"], 4), "by_prompts": cells}
    return out


def _intervals(draw: list[list[list[bool]]]) -> dict:
    """What base_model, stability and grpo_readiness quote, from one draw (prompt x run x sample labels)."""
    runs, n = len(draw[0]), len(draw[0][0])
    flat = [[c for run in p for c in run] for p in draw]
    naive = wilson(sum(map(sum, flat)), len(flat) * runs * n)
    out = {
        "pass_at_1": clustered_proportion([(sum(v), len(v)) for v in flat]),
        "per_run_accuracy": clustered_proportion([(sum(p[0]), n) for p in draw]),
        # The contrast: every sample as an independent draw, as the checks did before prompts were clusters.
        "old: Wilson over all samples": SimpleNamespace(low=naive[0], high=naive[1]),
    }
    yes = [sum(sum(run) * 2 > n for run in p) for p in draw]  # run outcomes by majority, ties wrong
    out["stability agreement"] = clustered_mean([max(y, runs - y) / runs for y in yes], cap=len(draw) * runs, floor=0.5)
    rewards = {str(j): [float(c) for c in v] for j, v in enumerate(flat)}
    for g in GROUP_SIZES:
        if runs * n >= g:
            zv = zero_variance_share(rewards, g)
            out[f"zero_variance G={g}"] = zv.interval
            # The interval it replaced: effective size capped at the disjoint groups of G.
            out[f"old: zero_variance G={g}, disjoint-group cap"] = clustered_mean(
                list(zv.per_prompt.values()), cap=disjoint_groups([runs * n] * len(draw), g)
            )
    return out


def mixture_labels(correct: dict[str, dict[str, bool]]) -> list[list[bool]]:
    """Per problem that every system answered, its four solutions' labels: what the mixture policy draws from."""
    problems = sorted(set.intersection(*(set(by_q) for by_q in correct.values())))
    return [[correct[m][q] for m in sorted(correct)] for q in problems]


def mixture_truth(labels: list[list[bool]], runs: int, n: int) -> dict[str, float]:
    """The exact truths over every problem, for R runs x n samples a prompt."""
    rates = [sum(v) / len(v) for v in labels]
    truth = dict.fromkeys(("pass_at_1", "per_run_accuracy", "old: Wilson over all samples"), statistics.fmean(rates))
    truth["stability agreement"] = statistics.fmean(agreement_truth(q, runs, n) for q in rates)
    for g in GROUP_SIZES:
        if runs * n >= g:
            truth[f"zero_variance G={g}"] = statistics.fmean(q**g + (1 - q) ** g for q in rates)
            truth[f"old: zero_variance G={g}, disjoint-group cap"] = truth[f"zero_variance G={g}"]
    return truth


def mixture_cell(labels: list[list[bool]], rng: random.Random, reps: int, k: int, runs: int, n: int) -> dict:
    """Coverage of each interval over `reps` draws of k problems (without replacement), each sampled
    R runs x n times from its real solutions."""

    def draw(r: random.Random) -> dict:
        picked = r.sample(range(len(labels)), k)
        return _intervals([[[r.choice(labels[i]) for _ in range(n)] for _ in range(runs)] for i in picked])

    return _cover(rng, reps, draw, mixture_truth(labels, runs, n))


def mixture(correct: dict[str, dict[str, bool]], rng: random.Random, reps: int) -> dict:
    """The intervals base_model, stability and grpo_readiness quote, for the policy that answers with one of
    a problem's four real solutions at random, R runs x n samples a problem."""
    labels = mixture_labels(correct)
    rates = [sum(v) / len(v) for v in labels]
    cells = {
        f"{k} prompts, R={runs} n={n}": mixture_cell(labels, rng, reps, k, runs, n)
        for runs, n in DESIGNS
        for k in PROMPT_COUNTS
    }
    return {
        "problems": len(labels),
        "rate_mix": {f"{c}/4 correct": sum(round(4 * q) == c for q in rates) for c in range(5)},
        "truth": {
            f"R={runs} n={n}": {k: round(v, 4) for k, v in mixture_truth(labels, runs, n).items()}
            for runs, n in DESIGNS
        },
        "cells": cells,
        "summary": _summary(cells),
    }


def _summary(cells: dict[str, dict]) -> dict:
    """Per interval: the least and the median coverage over cells, and the median at 50 prompts or more."""
    out = {}
    for name in sorted({k for c in cells.values() for k in c}):
        cov = {cell: c[name]["coverage"] for cell, c in cells.items() if name in c}
        big = [v for cell, v in cov.items() if int(cell.split()[0]) >= 50]
        out[name] = {
            "cells": len(cov),
            "min": min(cov.values()),
            "median": statistics.median(cov.values()),
            "median_at_50_prompts_or_more": statistics.median(big),
            "below_93": [cell for cell, v in cov.items() if v < 0.93],
        }
    return out


def load_labels(data: Path) -> dict[str, dict[str, bool]]:
    """system -> question -> the benchmark's correctness label."""
    correct: dict[str, dict[str, bool]] = defaultdict(dict)
    for _, row in json_lines(data / "gsm8k_test_model_solutions.jsonl", "real data"):
        correct[row["model"]][row["question"]] = bool(row["is_correct"])
    return correct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "real"))
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    correct = load_labels(Path(args.data))
    rng = random.Random(args.seed)
    per = per_system(correct, rng, args.reps)
    mix = mixture(correct, rng, args.reps)
    print(
        json.dumps(
            {
                "pass_at_1": per,
                "mixture_policy": mix,
                "reps": args.reps,
                "nominal": 0.95,
                "command": "python bench/stat_coverage_real.py " + " ".join(sys.argv[1:]),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
