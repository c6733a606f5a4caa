"""Render time and file size of the HTML report for a 10k-sample run (targets: <= 5 s, <= 2 MB).
Prints one JSON object. Usage: python bench/report.py [--samples N] [--chars C]"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phasecheck.reports import render, write_reports  # noqa: E402
from phasecheck.results import ACTIONS, CheckResult, Finding, Fingerprint, Phase, Status, Verdict  # noqa: E402

SCENARIOS = [
    "forward_derivation",
    "reverse_lookup",
    "unit_conversion",
    "boundary_case",
    "symbolic_form",
    "unknown_tag",
    "multi_step",
]
TOKEN = "golden_hour_sun"


def fabricate(out: Path, n_samples: int, chars: int) -> Verdict:
    """A failing verdict with n_samples graded samples (~`chars` characters each) and 200 training steps."""
    rng = random.Random(0)
    runs, n = 4, 2
    n_examples = max(1, n_samples // (runs * n))
    filler = ("We write the Hamiltonian, take partial derivatives and solve for the period. " * 40)[:chars]
    with open(out / "samples.jsonl", "w", encoding="utf-8") as fh:
        for e in range(n_examples):
            scenario = SCENARIOS[e % len(SCENARIOS)]
            for r in range(runs):
                for i in range(n):
                    bad = e % 5 < 2
                    correct = rng.random() < (0.2 if bad else 0.75)
                    text = f"{filler} With {TOKEN} = 0.8, \\boxed{{{e}}}" if bad else f"{filler} \\boxed{{{e}}}"
                    fh.write(
                        json.dumps(
                            {
                                "example_id": f"ex-{e:05d}",
                                "run": r,
                                "index": i,
                                "seed": r * n + i,
                                "completion": text,
                                "finish_reason": "stop",
                                "n_tokens": len(text) // 4,
                                "model": "m",
                                "engine": "replay",
                                "prompt": f"Question {e} ({scenario}): derive the equations of motion. " + filler[:200],
                                "reference": str(e),
                                "scenario": scenario,
                                "correct": correct,
                                "reward": 1.0 if correct else -0.8,
                                "outcome": "correct" if correct else rng.choice(["wrong", "hedged", "unparsed"]),
                                "detail": "",
                            }
                        )
                        + "\n"
                    )
    with open(out / "metrics.jsonl", "w", encoding="utf-8") as fh:
        for s in range(200):
            fh.write(
                json.dumps(
                    {
                        "step": s,
                        "reward_mean": -0.5 + s / 200,
                        "reward_std": 0.3,
                        "kl": s * 1e-4,
                        "frac_zero_std": 0.4,
                        "entropy": 1.0,
                        "completion_len": 90,
                        "accuracy": 0.3 + s / 400,
                    }
                )
                + "\n"
            )
    checks = [
        CheckResult(
            id="contamination",
            question="Do you have correct examples you trust?",
            status=Status.FAIL,
            headline=f"1 ungrounded token: {TOKEN} in 40% of rows",
            blocking=True,
            findings=[
                Finding(
                    message=f"{TOKEN} in 40% of rows",
                    example_ids=[f"ex-{e:05d}" for e in range(n_examples) if e % 5 < 2],
                    data={
                        "token": TOKEN,
                        "kind": "identifier",
                        "rate": 0.4,
                        "n_rows": 400,
                        "position_consistency": 0.9,
                        "pass_rate_with": 0.2,
                        "pass_rate_without": 0.75,
                        "source": "samples",
                    },
                )
            ],
        ),
        CheckResult(
            id="base_model",
            question="Has the model completed the task reliably?",
            status=Status.FAIL,
            headline="1/4 runs ≥ 80% (best 83%, worst 41%)",
            blocking=True,
            metrics={
                "per_run_accuracy": [0.83, 0.41, 0.6, 0.55],
                "threshold": 0.8,
                "runs": 4,
                "runs_passing": 1,
                "per_scenario": {
                    s: {"accuracy": 0.2 + 0.1 * k, "n": n_examples // 7, "correct": 1} for k, s in enumerate(SCENARIOS)
                },
            },
        ),
    ]
    return Verdict(
        task="bench",
        status=Phase.GRPO_PHASE,
        action=ACTIONS[Phase.GRPO_PHASE],
        checks=checks,
        fingerprint=Fingerprint(task="t", sampling="s", version="0.1.0", digest="d"),
        created_at="2025-01-01T00:00:00Z",
        command=["phasecheck", "check", "bench"],
        artifacts={"samples": "samples.jsonl", "training_metrics": "metrics.jsonl"},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--chars", type=int, default=600, help="characters per completion")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        verdict = fabricate(out, args.samples, args.chars)
        samples_bytes = (out / "samples.jsonl").stat().st_size
        t0 = time.perf_counter()
        render(verdict, "html", out_dir=out)
        render_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        path = write_reports(verdict, out, ["html"])["html"]
        write_s = time.perf_counter() - t0
        size = path.stat().st_size
    print(
        json.dumps(
            {
                "bench": "report_html",
                "samples": args.samples,
                "samples_jsonl_bytes": samples_bytes,
                "render_s": round(render_s, 3),
                "write_s": round(write_s, 3),
                "html_bytes": size,
                "html_mb": round(size / 2**20, 3),
                "target_s": 5.0,
                "target_mb": 2.0,
                "ok": render_s <= 5.0 and size <= 2 * 2**20,
            }
        )
    )


if __name__ == "__main__":
    main()
