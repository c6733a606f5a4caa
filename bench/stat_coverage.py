"""Do phasecheck's intervals cover, and is its zero-variance prediction unbiased? Prints JSON.

    .venv/bin/python bench/stat_coverage.py [--reps 1000] [--blocks 30] [--grpo-seeds 40] [--skip-sim] [--skip-toy]

1. Simulated models with known per-prompt pass rates (bench/_simulate.py: five rate populations, 8 to
   200 prompts, R x n from 4 to 64, a banded reward with a format bonus): the empirical coverage of each
   nominal 95% interval (per-run accuracy, pass@1 = the stability check's accuracy, agreement, the
   zero-variance share), their widths, and the bias of the zero-variance estimate: by Monte Carlo, and
   exactly (our estimator on every multinomial outcome, weighted by its probability); for contrast, the
   bias of the plug-in p^G + (1-p)^G it replaces.
2. The tiny toy model with real sampling (bench/_tiny.py, digit-regex verifier): truth from 1,024
   independent samples a prompt, then `--blocks` task seeds of R=4 x n=4, each through the transformers
   engine and the checks; the same under the old seed plan (every prompt of a run on one seed block)
   with the old Wilson-over-samples interval.
3. GRPO on the same toy: the first step's frac_zero_std of `train grpo` (builtin) and TRL's logged
   frac_reward_zero_std, over `--grpo-seeds` training seeds, against the prediction."""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from _simulate import POPULATIONS, agreement_truth, draw_samples, reward_probs, zero_variance_truth  # noqa: E402
from _tiny import tiny_task  # noqa: E402

PROMPT_COUNTS = (8, 16, 50, 200)
DESIGNS = ((1, 4), (2, 2), (4, 1), (2, 8), (4, 4), (4, 16))  # (runs, n): R x n = 4, 16, 64
GROUP_SIZES = (4, 8)
TARGET = (0.93, 0.97)


def _agreement(correct):
    """Per-prompt agreement as the stability check counts it (run outcomes by majority, ties wrong)."""
    runs = correct.shape[1]
    outcome = correct.sum(axis=2) * 2 > correct.shape[2]
    yes = outcome.sum(axis=1)
    return [max(int(y), runs - int(y)) / runs for y in yes]


def _cell(rng, pop, prompts: int, runs: int, n: int, reps: int) -> dict:
    from phasecheck.stats import clustered_mean, clustered_proportion, disjoint_groups, wilson, zero_variance_share

    mu = pop.expect(lambda p: p)
    agree_truth = pop.expect(lambda p: agreement_truth(p, runs, n)) if runs > 1 else None
    zv_truth = {g: pop.expect(lambda p, g=g: zero_variance_truth(p, g)) for g in GROUP_SIZES}
    hits: dict[str, int] = {}
    widths: dict[str, list[float]] = {}
    zv_est: dict[int, list[float]] = {g: [] for g in GROUP_SIZES}
    plug: dict[int, list[float]] = {g: [] for g in GROUP_SIZES}

    def tally(name, ci_low, ci_high, truth):
        hits[name] = hits.get(name, 0) + (ci_low <= truth <= ci_high)
        widths.setdefault(name, []).append(ci_high - ci_low)

    for _ in range(reps):
        rates = pop.draw(rng, prompts)
        correct, reward = draw_samples(rng, rates, runs, n)
        all_ci = clustered_proportion([(int(c.sum()), c.size) for c in correct])
        tally("pass_at_1 (= stability accuracy)", all_ci.low, all_ci.high, mu)
        run_ci = clustered_proportion([(int(c[0].sum()), n) for c in correct])
        tally("per_run_accuracy", run_ci.low, run_ci.high, mu)
        lo, hi = wilson(int(correct.sum()), correct.size)
        tally("old: Wilson over all samples", lo, hi, mu)
        if agree_truth is not None:
            ag = clustered_mean(_agreement(correct), cap=prompts * runs, floor=0.5)
            tally("stability agreement", ag.low, ag.high, agree_truth)
        rewards = {str(j): reward[j].ravel().tolist() for j in range(prompts)}
        for g in GROUP_SIZES:
            if runs * n < g:
                continue
            zv = zero_variance_share(rewards, g)
            tally(f"zero_variance G={g}", zv.interval.low, zv.interval.high, zv_truth[g])
            # The interval it replaced: effective size capped at the disjoint groups of G.
            old = clustered_mean(list(zv.per_prompt.values()), cap=disjoint_groups([runs * n] * prompts, g))
            tally(f"old: zero_variance G={g}, disjoint-group cap", old.low, old.high, zv_truth[g])
            zv_est[g].append(zv.interval.estimate)
            # The plug-in it replaces: per-reward-value frequencies to the power G.
            plug[g].append(
                sum(sum((c / (runs * n)) ** g for c in _counts(v).values()) for v in rewards.values()) / prompts
            )
    out = {
        "population": pop.name,
        "prompts": prompts,
        "runs": runs,
        "n": n,
        "reps": reps,
        "coverage": {k: round(v / reps, 4) for k, v in hits.items()},
        # Monte Carlo standard error of each coverage: a cell 2 of these below 0.95 may be noise.
        "coverage_se": {k: round((v / reps * (1 - v / reps) / reps) ** 0.5, 4) for k, v in hits.items()},
        "mean_width": {k: round(statistics.fmean(v), 4) for k, v in widths.items()},
    }
    out["zero_variance_bias"] = {
        f"G={g}": round(statistics.fmean(zv_est[g]) - zv_truth[g], 4) for g in GROUP_SIZES if zv_est[g]
    }
    # Monte Carlo standard error of that bias: how far from 0 it may sit by chance alone.
    out["zero_variance_bias_se"] = {
        f"G={g}": round(statistics.stdev(zv_est[g]) / reps**0.5, 4) for g in GROUP_SIZES if len(zv_est[g]) > 1
    }
    out["zero_variance_exact_bias"] = {
        f"G={g}": exact_expectation(pop, runs * n, g) - zv_truth[g] for g in GROUP_SIZES if runs * n >= g
    }
    out["plug_in_bias"] = {f"G={g}": round(statistics.fmean(plug[g]) - zv_truth[g], 4) for g in GROUP_SIZES if plug[g]}
    return out


@cache
def exact_expectation(pop, m: int, g: int) -> float:
    """E[zero_variance_share's per-prompt estimate] over the population, exactly: our own estimator applied
    to every composition of m rewards over the four reward values, weighted by its multinomial probability.
    Unlike the Monte Carlo bias, this has no sampling error, so it tests the estimator, not the replicates."""
    import numpy as np

    from phasecheck.stats import equal_group_share

    values = list(reward_probs(0.5))
    comps = np.array(
        [(a, b, c, m - a - b - c) for a in range(m + 1) for b in range(m + 1 - a) for c in range(m + 1 - a - b)]
    )
    est = np.array([equal_group_share({v: int(n) for v, n in zip(values, comp) if n}, m, g) for comp in comps])
    log_coef = math.lgamma(m + 1) - np.vectorize(math.lgamma)(comps + 1.0).sum(axis=1)

    def per_rate(p: float) -> float:
        probs = np.array(list(reward_probs(float(p)).values()))
        # An outcome that puts a reward where its probability is 0 (p = 0 or 1) has probability 0.
        impossible = ((comps > 0) & (probs == 0)).any(axis=1)
        logp = (comps * np.log(np.where(probs > 0, probs, 1.0))).sum(axis=1)
        return float((est * np.exp(log_coef + logp) * ~impossible).sum())

    return pop.expect(per_rate)


def _counts(values):
    from phasecheck.stats import reward_classes

    return reward_classes(values)


def _wanted(only: list[str]):
    """--cell POPULATION:PROMPTS:RxN (population by the start of its name): which cells to simulate."""

    def keep(pop, k: int, r: int, n: int) -> bool:
        return not only or any(
            pop.name.startswith(c.split(":")[0]) and c.split(":")[1:] == [str(k), f"{r}x{n}"] for c in only
        )

    return keep


def _recheck(cells: list[dict], grid: list, reps: int, seed: int) -> list[dict]:
    """Each cell with an interval under the target, simulated again with ten times the replicates and a
    fresh stream: a shortfall that was Monte Carlo noise comes back inside, a real one stays out."""
    import numpy as np

    out = []
    for c, (pop, k, r, n) in zip(cells, grid):
        low = [name for name, v in c["coverage"].items() if v < TARGET[0] and not name.startswith("old")]
        if not low:
            continue
        again = _cell(np.random.default_rng([seed, 1, len(out)]), pop, k, r, n, 10 * reps)
        for name in low:
            out.append(
                {
                    "cell": f"{pop.name}, {k} prompts, R={r} n={n}",
                    "interval": name,
                    "coverage": c["coverage"][name],
                    "rechecked": again["coverage"][name],
                    "rechecked_se": again["coverage_se"][name],
                    "rechecked_reps": 10 * reps,
                }
            )
    return out


def simulate(reps: int, seed: int, only: list[str] | None = None) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    keep = _wanted(only or [])
    grid = [(pop, k, r, n) for pop in POPULATIONS for k in PROMPT_COUNTS for r, n in DESIGNS if keep(pop, k, r, n)]
    if not grid:
        raise SystemExit(f"--cell {only}: no such cell (POPULATION:PROMPTS:RxN, e.g. rare:200:2x8)")
    cells = [_cell(rng, pop, k, r, n, reps) for pop, k, r, n in grid]
    recheck = _recheck(cells, grid, reps, seed)
    summary: dict[str, dict] = {}
    for name in sorted({k for c in cells for k in c["coverage"]}):
        cov = [(c["coverage"][name], c) for c in cells if name in c["coverage"]]
        vals = [v for v, _ in cov]
        big = [v for v, c in cov if c["prompts"] >= 50]
        # The price of coverage: the median over cells of a cell's mean width, overall and by prompts drawn.
        width = {
            k: round(statistics.median(ws), 4)
            if (ws := [c["mean_width"][name] for _, c in cov if c["prompts"] == k])
            else None
            for k in PROMPT_COUNTS
        }
        summary[name] = {
            "cells": len(vals),
            "min": min(vals),
            "median": statistics.median(vals),
            "max": max(vals),
            "median_width": round(statistics.median(c["mean_width"][name] for _, c in cov), 4),
            "median_width_by_prompts": {k: v for k, v in width.items() if v is not None},
            "in_target": sum(TARGET[0] <= v <= TARGET[1] for v in vals),
            "median_at_50_prompts_or_more": statistics.median(big) if big else None,
            "below_target": [
                f"{c['population']}, {c['prompts']} prompts, R={c['runs']} n={c['n']}: {v}"
                for v, c in cov
                if v < TARGET[0]
            ],
        }
    biases = [abs(b) for c in cells for b in c["zero_variance_bias"].values()]
    z = [
        abs(b) / c["zero_variance_bias_se"][k]
        for c in cells
        for k, b in c["zero_variance_bias"].items()
        if c["zero_variance_bias_se"].get(k)
    ]
    plug = [b for c in cells for b in c["plug_in_bias"].values()]
    return {
        "target_coverage": list(TARGET),
        "coverage_summary": summary,
        "zero_variance_bias": {
            "max_abs": max(biases),
            "mean_abs": round(statistics.fmean(biases), 4),
            "target_max_abs": 0.01,
            "monte_carlo_reps": reps,
            "max_abs_in_monte_carlo_se": round(max(z), 2),
            "cells_beyond_2_se": sum(v > 2 for v in z),
            "cells": len(z),
        },
        "zero_variance_exact_bias": {
            "max_abs": max(abs(b) for c in cells for b in c["zero_variance_exact_bias"].values()),
            "target_max_abs": 0.01,
            "cells": sum(len(c["zero_variance_exact_bias"]) for c in cells),
            "how": "our estimator on every multinomial outcome of m rewards, weighted exactly",
        },
        "plug_in_bias": {"mean": round(statistics.fmean(plug), 4), "max": max(plug)},
        "below_target_rechecked": recheck,
        "cells": cells,
    }


TOY = """\
name: stat toy digits
model: {model}
data: {{eval: eval.jsonl}}
grader:
  verifier: {{kind: regex, pattern: "[0-9]", mode: search}}
  default: {{correct: 1.0, wrong: 0.0}}
sampling: {{engine: transformers, runs: 4, n: 4, max_new_tokens: 8, temperature: 1.0, seed: 0}}
training:
  grpo: {{preset: none, group_size: 8, batch_prompts: 8, learning_rate: 1.0e-3, beta: 0.0, epochs: 1.0, seed: {train_seed}}}
"""
PROMPTS = [f"What is {a} + {b} ?" for a in range(4) for b in range(4)]


def _toy_truth(task, examples, per_prompt: int):
    """Per-prompt pass rates and zero-variance shares (G=8) from `per_prompt` independent samples each."""
    from phasecheck.grading import Grader
    from phasecheck.sampling.base import render_prompt
    from phasecheck.sampling.hf import generate
    from phasecheck.sampling.models import load_model, resolve_model
    from phasecheck.stats import zero_variance_share

    model, tok = load_model(resolve_model(task.model))
    texts = [render_prompt(tok, ex.prompt, None) for ex in examples]
    # One seed block per prompt far from any task seed's blocks; every sample its own stream.
    seeds = [3_000_000_000 + j * per_prompt for j in range(len(texts))]
    gens = generate(model, tok, texts, n=per_prompt, seeds=seeds, temperature=1.0, top_p=1.0, max_new_tokens=8)
    with Grader(task) as grader:
        grades = grader.grade_many([(g.text, ex) for ex, row in zip(examples, gens) for g in row])
    rates, rewards = {}, {}
    for j, ex in enumerate(examples):
        mine = grades[j * per_prompt : (j + 1) * per_prompt]
        rates[ex.id] = sum(g.correct is True for g in mine) / per_prompt
        rewards[ex.id] = [g.reward for g in mine]
    zv = zero_variance_share(rewards, 8)
    return rates, zv.interval.estimate, (model, tok, texts)


def toy(blocks: int, root: Path) -> dict:
    from phasecheck.checks.base_model import BaseModel
    from phasecheck.checks.grpo_readiness import GrpoReadiness
    from phasecheck.checks.stability import Stability
    from phasecheck.evidence import Evidence
    from phasecheck.grading import Grader
    from phasecheck.records import Sample
    from phasecheck.sampling import sample_task
    from phasecheck.sampling.hf import generate
    from phasecheck.stats import wilson
    from phasecheck.training.common import task_examples

    task, _ = tiny_task(root, TOY, PROMPTS, seed=1, train_seed=0)
    examples = task_examples(task)
    rates, zv_truth, (model, tok, texts) = _toy_truth(task, examples, 1024)
    truth = statistics.fmean(rates.values())
    new, old = [], []
    for b in range(blocks):
        t = task.model_copy(update={"sampling": task.sampling.model_copy(update={"seed": b})})
        res = sample_task(t, examples, use_cache=False, progress=False)
        ev = Evidence(t, examples=examples, samples=res.samples)
        bm = BaseModel().run(ev, BaseModel.Params()).metrics
        st = Stability().run(ev, Stability.Params()).metrics
        gr = GrpoReadiness().run(ev, GrpoReadiness.Params()).metrics
        new.append(
            {
                "run_ci": bm["per_run_accuracy_ci"],
                "runs": bm["per_run_accuracy"],
                "acc": bm["pass_at_1"],
                "acc_ci": st["accuracy_ci"],
                "zv": gr["zero_variance_share"],
                "zv_ci": gr["zero_variance_ci"],
            }
        )
        # The old plan: sample i of run r used seed + r*n + i for every prompt.
        samples = []
        for r in range(4):
            gens = generate(
                model,
                tok,
                texts,
                n=4,
                seeds=[b * 16 + r * 4] * len(texts),
                temperature=1.0,
                top_p=1.0,
                max_new_tokens=8,
            )
            samples += [
                Sample(example_id=ex.id, run=r, index=k, seed=b * 16 + r * 4 + k, completion=g.text)
                for ex, row in zip(examples, gens)
                for k, g in enumerate(row)
            ]
        by_id = {ex.id: ex for ex in examples}
        with Grader(task) as grader:
            ok = [g.correct is True for g in grader.grade_many([(s.completion, by_id[s.example_id]) for s in samples])]
        runs_old = [statistics.fmean(ok[r * 64 : (r + 1) * 64]) for r in range(4)]
        old.append({"acc": statistics.fmean(ok), "acc_ci": list(wilson(sum(ok), len(ok))), "runs": runs_old})

    def cover(rows, key):
        return round(statistics.fmean(r[key][0] <= truth <= r[key][1] for r in rows), 3)

    def eff_n(rows):
        # What the block-to-block spread of accuracy says the 256 samples were worth.
        var = statistics.variance([r["acc"] for r in rows])
        return round(truth * (1 - truth) / var, 1) if var > 0 else None

    runs_new = [a for r in new for a in r["runs"]]
    runs_old = [a for r in old for a in r["runs"]]
    zv = [r["zv"] for r in new]
    return {
        "model": "tiny 2-layer Llama (bench/_tiny.py, seed 1), digit-regex verifier, temperature 1.0, 8 tokens",
        "prompts": len(examples),
        "design": "R=4 x n=4 per block",
        "blocks": blocks,
        "true_pass_rate": round(truth, 4),
        "true_pass_rate_per_prompt_range": [min(rates.values()), max(rates.values())],
        "truth_samples_per_prompt": 1024,
        "new_seed_plan": {
            "pass_at_1_coverage": cover(new, "acc_ci"),
            "per_run_accuracy_coverage": round(
                statistics.fmean(lo <= truth <= hi for r in new for lo, hi in r["run_ci"]), 3
            ),
            "effective_samples_of_256": eff_n(new),
            "per_run_accuracy_range": [min(runs_new), max(runs_new)],
            "zero_variance_G8": {
                "truth": round(zv_truth, 4),
                "mean_estimate": round(statistics.fmean(zv), 4),
                "bias": round(statistics.fmean(zv) - zv_truth, 4),
                "bias_se": round(statistics.stdev(zv) / len(zv) ** 0.5, 4),
                "coverage": round(statistics.fmean(r["zv_ci"][0] <= zv_truth <= r["zv_ci"][1] for r in new), 3),
            },
        },
        "old_seed_plan": {
            "wilson_coverage": cover(old, "acc_ci"),
            "effective_samples_of_256": eff_n(old),
            "per_run_accuracy_range": [min(runs_old), max(runs_old)],
        },
        "task": task,
        "examples": examples,
    }


def grpo(task, examples, seeds: int, root: Path) -> dict:
    """First-step frac_zero_std of builtin GRPO and of TRL, over training seeds, against the prediction."""
    from phasecheck.checks.grpo_readiness import GrpoReadiness
    from phasecheck.evidence import Evidence
    from phasecheck.jsonl import json_lines
    from phasecheck.sampling import sample_task
    from phasecheck.stats import wilson
    from phasecheck.training.grpo import train_grpo
    from phasecheck.training.trl_backend import train_grpo_trl

    # The prediction from one ordinary check's worth of samples (R=4 x n=4, task seed 0).
    res = sample_task(task, examples, use_cache=False, progress=False)
    pred = GrpoReadiness().run(Evidence(task, examples=examples, samples=res.samples), GrpoReadiness.Params()).metrics
    out = {
        "prediction": {
            "share": round(pred["zero_variance_share"], 4),
            "ci": [round(x, 4) for x in pred["zero_variance_ci"]],
            "group_size": pred["group_size"],
            "samples_per_prompt": 16,
        }
    }
    for backend, fn in (("builtin", train_grpo), ("trl", train_grpo_trl)):
        zero, groups, per_seed, t0 = 0, 0, [], time.perf_counter()
        for s in range(seeds):
            t = task.model_copy(
                update={
                    "training": task.training.model_copy(
                        update={"grpo": task.training.grpo.model_copy(update={"seed": 100 + s})}
                    )
                }
            )
            result = fn(t, out_dir=root / f"{backend}-{s}", max_steps=1)
            first = next(row for _, row in json_lines(result.metrics))
            frac = first["frac_zero_std"]
            per_seed.append(frac)
            zero += round(frac * 8)
            groups += 8
        lo, hi = wilson(zero, groups)
        out[backend] = {
            "first_step_frac_zero_std": per_seed,
            "pooled": round(zero / groups, 4),
            "pooled_ci": [round(lo, 4), round(hi, 4)],
            "groups": groups,
            "agrees": lo <= pred["zero_variance_ci"][1] and pred["zero_variance_ci"][0] <= hi,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=1000, help="Replicates per simulated cell.")
    ap.add_argument("--blocks", type=int, default=30, help="Task seeds (seed blocks) on the toy model.")
    ap.add_argument("--grpo-seeds", type=int, default=40, help="Training seeds for the first-step comparison.")
    ap.add_argument("--skip-toy", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--cell",
        action="append",
        default=[],
        metavar="POP:PROMPTS:RxN",
        help="Simulate only this cell (repeatable), e.g. rare:200:2x8 with more --reps.",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    report = {} if args.skip_sim else {"simulated": simulate(args.reps, args.seed, args.cell)}
    if not args.skip_toy:
        import torch

        torch.set_num_threads(min(2, os.cpu_count() or 1))
        root = Path(tempfile.mkdtemp(prefix="stat-coverage-"))
        t = toy(args.blocks, root)
        task, examples = t.pop("task"), t.pop("examples")
        report["toy"] = t
        if args.grpo_seeds:
            report["grpo_first_step"] = grpo(task, examples, args.grpo_seeds, root)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["command"] = "python bench/stat_coverage.py " + " ".join(sys.argv[1:])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
