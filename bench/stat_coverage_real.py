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
reward the label). This exercises pass@1's interval with several samples a prompt and grpo_readiness's
zero-variance interval (`stats.zero_variance_share`) on a difficulty mix nobody here chose.

    .venv/bin/python bench/stat_coverage_real.py [--reps 2000] [--data DIR]

Prints JSON: per system and k, the truth, the coverage of the nominal 95% interval, its Monte Carlo
standard error, and the mean width."""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phasecheck.jsonl import json_lines  # noqa: E402
from phasecheck.stats import clustered_proportion, zero_variance_share  # noqa: E402

PROMPT_COUNTS = (8, 16, 50, 200)
DESIGNS = (4, 8, 16)  # samples a prompt (R x n) for the mixture policy
GROUP_SIZES = (4, 8)


def _cover(rng: random.Random, reps: int, draw, truth: float) -> dict:
    """Coverage of `truth` by the interval `draw(rng)` returns, over `reps` draws, with its Monte Carlo
    standard error and the mean width."""
    hits, width = 0, 0.0
    for _ in range(reps):
        ci = draw(rng)
        hits += ci.low <= truth <= ci.high
        width += ci.high - ci.low
    cov = hits / reps
    return {
        "coverage": round(cov, 4),
        "coverage_se": round((cov * (1 - cov) / reps) ** 0.5, 4),
        "mean_width": round(width / reps, 4),
    }


def per_system(correct: dict[str, dict[str, bool]], rng: random.Random, reps: int) -> dict:
    """pass@1's interval against each system's solve rate, one solution a problem."""
    out = {}
    for model, by_q in sorted(correct.items()):
        values = list(by_q.values())
        truth = sum(values) / len(values)
        cells = {
            str(k): _cover(
                rng, reps, lambda r, k=k, vs=values: clustered_proportion([(int(v), 1) for v in r.sample(vs, k)]), truth
            )
            for k in PROMPT_COUNTS
        }
        out[model] = {"problems": len(values), "truth": round(truth, 4), "by_prompts": cells}
    return out


def mixture(correct: dict[str, dict[str, bool]], rng: random.Random, reps: int) -> dict:
    """pass@1's and the zero-variance share's intervals for the policy that answers with one of a problem's
    four real solutions at random, R x n samples a problem."""
    problems = sorted(set.intersection(*(set(by_q) for by_q in correct.values())))
    labels = [[correct[m][q] for m in sorted(correct)] for q in problems]
    rates = [sum(v) / len(v) for v in labels]
    truth = {"pass_at_1": sum(rates) / len(rates)}
    truth |= {f"zero_variance G={g}": sum(q**g + (1 - q) ** g for q in rates) / len(rates) for g in GROUP_SIZES}

    def draw(r: random.Random, k: int, m: int) -> list[list[float]]:
        return [[float(r.choice(labels[i])) for _ in range(m)] for i in r.sample(range(len(labels)), k)]

    cells: dict[str, dict] = {}
    for m in DESIGNS:
        for k in PROMPT_COUNTS:
            cell = {
                "pass_at_1": _cover(
                    rng,
                    reps,
                    lambda r, k=k, m=m: clustered_proportion([(int(sum(v)), m) for v in draw(r, k, m)]),
                    truth["pass_at_1"],
                )
            }
            for g in GROUP_SIZES:
                if m >= g:
                    name = f"zero_variance G={g}"
                    cell[name] = _cover(
                        rng,
                        reps,
                        lambda r, k=k, m=m, g=g: (
                            zero_variance_share({str(j): v for j, v in enumerate(draw(r, k, m))}, g).interval
                        ),
                        truth[name],
                    )
            cells[f"{k} prompts x {m} samples"] = cell
    shape = {f"{c}/4 correct": sum(round(4 * q) == c for q in rates) for c in range(5)}
    return {
        "problems": len(problems),
        "truth": {k: round(v, 4) for k, v in truth.items()},
        "rate_mix": shape,
        "cells": cells,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "real"))
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    correct: dict[str, dict[str, bool]] = defaultdict(dict)
    for _, row in json_lines(Path(args.data) / "gsm8k_test_model_solutions.jsonl", "real data"):
        correct[row["model"]][row["question"]] = bool(row["is_correct"])
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
