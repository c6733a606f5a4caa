"""Does training only on learnable prompts pay? Builtin GRPO with `training.grpo.prompts: all` against
`learnable`, the same number of steps from the same verdict, on a copy of a task (examples/arithmetic by
default, SmolLM2) or on the tiny toy (--toy: a random 2-layer Llama rewarded for a digit).

    .venv/bin/python bench/grpo_learnable.py [--task examples/arithmetic/tasks/arithmetic.yaml | --toy] [--steps 6]

Prints JSON: the per-prompt classes; the zero-variance share predicted for all prompts and for the
learnable ones (intervals over prompts); per arm the share GRPO met over its steps, training seconds, and
pass@1 on the eval prompts after training (check --after-grpo, the same seeds as the first check)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOY = """\
name: learnable toy digits
model: {model}
data: {{eval: eval.jsonl}}
grader:
  verifier: {{kind: regex, pattern: "[0-9]", mode: search}}
  default: {{correct: 1.0, wrong: 0.0}}
sampling: {{max_new_tokens: 8, temperature: 1.0, runs: 2, n: 4}}
training:
  grpo: {{preset: none, group_size: 8, batch_prompts: 8, learning_rate: 3.0e-3, beta: 0.0}}
"""


def _project(args, root: Path):
    from phasecheck.task import load_task

    if args.toy:
        from _tiny import tiny_task

        prompts = [f"What is {a} + {b} ?" for a in range(4) for b in range(4)]
        return tiny_task(root / "toy", TOY, prompts, seed=1)[0]
    src = Path(args.task).resolve()
    project = src.parent.parent if src.parent.name == "tasks" else src.parent
    shutil.copytree(project, root / "project", ignore=shutil.ignore_patterns(".phasecheck", "reports", "runs"))
    return load_task(root / "project" / src.relative_to(project))


def _pass1(verdict) -> dict:
    base = next(c for c in verdict.checks if c.id == "base_model")
    return {"pass_at_1": round(base.metrics["pass_at_1"], 4), "ci": [round(x, 4) for x in base.metrics["pass_at_1_ci"]]}


def _interval(ci) -> dict:
    return {"share": round(ci.estimate, 4), "ci": [round(x, 4) for x in ci.bounds()], "prompts": ci.prompts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default=str(ROOT / "examples" / "arithmetic" / "tasks" / "arithmetic.yaml"))
    ap.add_argument("--toy", action="store_true", help="The tiny random model instead of the task.")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    root = Path(args.out or tempfile.mkdtemp(prefix="grpo-learnable-"))
    from phasecheck.prompt_table import LEARNABLE, read_prompt_table, zero_variance_interval
    from phasecheck.runner import CheckOptions, check_task
    from phasecheck.training.grpo import train_grpo

    task = _project(args, root)
    verdict, path = check_task(task, CheckOptions(out_dir=root / "check-before"))
    table = read_prompt_table(verdict, path)
    learnable = [r for r in table if r["class"] == LEARNABLE]
    report = {
        "task": task.name,
        "classes": dict(Counter(r["class"] for r in table)),
        "predicted_zero_variance": {"all": _interval(zero_variance_interval(table))},
        "before": _pass1(verdict),
    }
    if learnable:
        report["predicted_zero_variance"]["learnable"] = _interval(zero_variance_interval(learnable))
    arms = {}
    for mode in ("all", "learnable") if learnable else ("all",):
        t = task.model_copy(deep=True)
        t.training.grpo.prompts, t.training.grpo.epochs = mode, 1000.0  # --steps decides the length
        t0 = time.perf_counter()
        res = train_grpo(t, out_dir=root / f"grpo-{mode}", max_steps=args.steps)
        arms[mode] = {
            "steps": res.steps,
            "train_seconds": round(time.perf_counter() - t0, 1),
            "zero_std": res.zero_std,
            "checkpoint": str(res.checkpoint),
        }
    for mode, arm in arms.items():  # after both runs: each check --after-grpo becomes the newest verdict
        after, _ = check_task(
            task, CheckOptions(after_grpo=True, out_dir=root / f"check-{mode}"), model_override=arm["checkpoint"]
        )
        arm["after"] = _pass1(after)
    report.update(arms=arms, out=str(root), command="python bench/grpo_learnable.py " + " ".join(sys.argv[1:]))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
