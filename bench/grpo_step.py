"""Builtin GRPO step time vs TRL's GRPOTrainer, same tiny model, same G, prompts, completion length,
LoRA and KL settings, measured in one run (CPU unless a GPU is present).

    .venv/bin/python bench/grpo_step.py [--steps 10] [--rounds 3] [--group-size 4] [--prompts 8] [--max-new-tokens 16]

Each round trains `steps` steps with each backend, in alternating order (builtin first in odd
rounds, TRL first in even ones), so a slow phase of a shared machine lands on both. A round's first
step of each backend is warm-up and not counted. Prints JSON with the median seconds per optimiser
step of each over all rounds, the per-round medians and the speedup."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from _tiny import tiny_task  # noqa: E402  (bench/ is sys.path[0] when run as a script)

TASK = """\
name: grpo step bench
model: {model}
data: {{eval: eval.jsonl}}
grader:
  verifier: {{kind: regex, pattern: "[0-9]", mode: search}}
sampling: {{max_new_tokens: {L}, temperature: 1.0}}
training:
  grpo: {{preset: conservative, group_size: {G}, batch_prompts: {B}, epochs: {epochs}, learning_rate: 1.0e-4}}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=10, help="steps per backend per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a tiny model on a shared CPU)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="grpo-step-"))
    prompts = [f"What is {i % 10} + {i // 10} ?" for i in range(args.prompts * args.steps)]
    task, _ = tiny_task(root, TASK, prompts, L=args.max_new_tokens, G=args.group_size, B=args.prompts, epochs=1.0)
    from transformers import TrainerCallback

    from phasecheck.jsonl import json_lines
    from phasecheck.training.grpo import train_grpo
    from phasecheck.training.trl_backend import build_grpo_trainer

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], None

        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self.t0)

    def run_builtin(r: int) -> tuple[list[float], list[dict]]:
        res = train_grpo(task, out_dir=root / f"builtin{r}", max_steps=args.steps)
        lines = [row for _, row in json_lines(res.metrics)]
        return [x["step_s"] for x in lines], lines

    def run_trl(r: int) -> tuple[list[float], list[float]]:
        trainer, _, dropped_ = build_grpo_trainer(task, out_dir=root / f"trl{r}", max_steps=args.steps)
        timer = Timer()
        trainer.add_callback(timer)
        trainer.train()
        lengths = [e["completions/mean_length"] for e in trainer.state.log_history if "completions/mean_length" in e]
        dropped.update(dropped_)
        return timer.times, lengths

    builtin, trl_times, rounds, lines, trl_lengths, dropped = [], [], [], [], [], set()
    for r in range(args.rounds):
        order = ("builtin", "trl") if r % 2 == 0 else ("trl", "builtin")
        got = {}
        for name in order:
            if name == "builtin":
                times, lines_r = run_builtin(r)
                lines += lines_r[1:]
            else:
                times, lengths = run_trl(r)
                trl_lengths += lengths
            got[name] = times[1:]
        builtin += got["builtin"]
        trl_times += got["trl"]
        rounds.append(
            {
                "first": order[0],
                "builtin_step_s_median": round(statistics.median(got["builtin"]), 4),
                "trl_step_s_median": round(statistics.median(got["trl"]), 4),
            }
        )
    b, t = statistics.median(builtin), statistics.median(trl_times)
    import trl

    print(
        json.dumps(
            {
                "device": "cuda" if torch.cuda.is_available() else "cpu",
                "torch_threads": torch.get_num_threads(),
                "model": "tiny 2-layer Llama (hidden 32), LoRA r=4 alpha=8, beta=0.2 (conservative preset)",
                "group_size": args.group_size,
                "prompts_per_step": args.prompts,
                "max_new_tokens": args.max_new_tokens,
                "steps_per_round": args.steps,
                "rounds": rounds,
                "steps_counted": {"builtin": len(builtin), "trl": len(trl_times)},
                "builtin_step_s_median": round(b, 4),
                "trl_step_s_median": round(t, 4),
                "speedup": round(t / b, 2),
                "builtin_step_s_min": round(min(builtin), 4),
                "trl_step_s_min": round(min(trl_times), 4),
                "builtin_gen_s_median": round(statistics.median(x["gen_s"] for x in lines), 4),
                "builtin_mean_completion_tokens": round(statistics.mean(x["completion_length"] for x in lines), 2),
                "trl_mean_completion_tokens": round(statistics.mean(trl_lengths), 2) if trl_lengths else None,
                "trl_version": trl.__version__,
                "trl_dropped_config_keys": sorted(dropped),
                "command": "python bench/grpo_step.py " + " ".join(sys.argv[1:]),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
