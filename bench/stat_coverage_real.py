"""Interval coverage on real model outputs: GSM8K test, 1,319 problems, four real model systems
(../shared/data/real/gsm8k_test_model_solutions.jsonl, each row labelled correct or not by the benchmark).

For each system, the share of the 1,319 problems it solves is the truth. A check sees only the prompts it
sampled, so draw k problems at random (8, 16, 50, 200; without replacement, as an eval set is a draw from a
task) and ask whether pass@1's interval (`stats.clustered_proportion`, what base_model and stability quote)
holds the truth. One solution per problem and system: the samples-per-prompt part of the interval is not
exercised here, the prompts-as-clusters part and the unseen-share bound are.

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
from phasecheck.stats import clustered_proportion  # noqa: E402

PROMPT_COUNTS = (8, 16, 50, 200)


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
    out = {}
    for model, by_q in sorted(correct.items()):
        values = list(by_q.values())
        truth = sum(values) / len(values)
        cells = {}
        for k in PROMPT_COUNTS:
            hits, width = 0, 0.0
            for _ in range(args.reps):
                ci = clustered_proportion([(int(v), 1) for v in rng.sample(values, k)])
                hits += ci.low <= truth <= ci.high
                width += ci.high - ci.low
            cov = hits / args.reps
            cells[str(k)] = {
                "coverage": round(cov, 4),
                "coverage_se": round((cov * (1 - cov) / args.reps) ** 0.5, 4),
                "mean_width": round(width / args.reps, 4),
            }
        out[model] = {"problems": len(values), "truth": round(truth, 4), "by_prompts": cells}
    print(
        json.dumps(
            {
                "pass_at_1": out,
                "reps": args.reps,
                "nominal": 0.95,
                "command": "python bench/stat_coverage_real.py " + " ".join(sys.argv[1:]),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
