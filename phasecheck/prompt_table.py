"""The per-prompt table: what R x n samples say about each prompt before training (prompts.jsonl).

For each eval prompt: its pass rate with an interval, the mean and spread of the banded reward (what GRPO
sees), the chance that a GRPO group of G of its samples has zero reward variance (no learning signal), and
its class: never solved, learnable, always solved. The plan, the exports and `training.grpo.prompts` read it."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

from .stats import Interval, equal_group_mean, equal_group_share, modified_wilson, reward_classes
from .stats import disjoint_groups as _disjoint_groups

__all__ = [
    "PromptRow",
    "prompt_table",
    "read_prompt_table",
    "zero_variance_interval",
    "disjoint_groups",
    "NEVER",
    "LEARNABLE",
    "ALWAYS",
    "CLASSES",
]

NEVER, LEARNABLE, ALWAYS = "never_solved", "learnable", "always_solved"
CLASSES = (NEVER, LEARNABLE, ALWAYS)

PromptRow = dict[str, Any]


def prompt_table(graded: Iterable[Any], group_size: int, confidence: float = 0.95) -> list[PromptRow]:
    """One row per prompt (first-seen order) from graded samples (GradedSample: sample, example, grade).

    A prompt's samples are independent draws given the prompt (each has its own seed), so its pass rate
    gets a binomial interval (Wilson with the boundary fix). The zero-variance chance is the unbiased
    sum_v C(c_v, G) / C(m, G) over its reward classes when m >= G; with fewer samples it is estimated at
    G' = m, an upper bound for G, and `zero_variance_exact` says so."""
    rewards: dict[str, list[float]] = defaultdict(list)
    correct: dict[str, list[bool]] = defaultdict(list)
    scenario: dict[str, str | None] = {}
    for g in graded:
        rewards[g.sample.example_id].append(float(g.grade.reward))
        correct[g.sample.example_id].append(bool(g.grade.correct))
        scenario.setdefault(g.sample.example_id, g.example.scenario)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return [_row(i, scenario[i], rewards[i], correct[i], group_size, z, confidence) for i in rewards]


def _row(
    example_id: str,
    scenario: str | None,
    rewards: Sequence[float],
    correct: Sequence[bool],
    group_size: int,
    z: float,
    confidence: float,
) -> PromptRow:
    m, c = len(rewards), sum(correct)
    mean = sum(rewards) / m
    spread = math.sqrt(sum((r - mean) ** 2 for r in rewards) / m)
    at = min(group_size, m)
    zero = equal_group_share(reward_classes(rewards), m, at) if at >= 2 else 1.0
    low, high = modified_wilson(c, m, z, confidence)
    return {
        "id": example_id,
        "scenario": scenario,
        "samples": m,
        "correct": c,
        "pass_rate": c / m,
        "pass_rate_ci": [low, high],
        "reward_mean": mean,
        "reward_std": spread,
        "group_size": group_size,
        "zero_variance": zero,
        "zero_variance_exact": at == group_size,
        "class": NEVER if c == 0 else ALWAYS if c == m else LEARNABLE,
    }


def read_prompt_table(verdict: Any, verdict_path: str | Path) -> list[PromptRow]:
    """The per-prompt table saved beside a verdict; DataError (naming the file) when it has none or it is empty."""
    from .data_formats import show_path
    from .errors import DataError
    from .jsonl import json_lines
    from .names import Artifact

    table = Path(verdict_path).parent / verdict.artifacts.get(Artifact.PROMPTS, "prompts.jsonl")
    if not table.is_file():
        raise DataError(
            f"{show_path(table)}: no per-prompt table beside {show_path(Path(verdict_path))}; run `phasecheck "
            "check` with samples (a model or data.samples) first"
        )
    rows = [row for _, row in json_lines(table, "per-prompt table") if isinstance(row, dict)]
    if not rows:
        raise DataError(f"{show_path(table)}: the per-prompt table is empty; run `phasecheck check` first")
    return rows


def zero_variance_interval(rows: Sequence[PromptRow], confidence: float = 0.95) -> Interval:
    """The expected share of zero-variance groups when GRPO draws its prompts from `rows`, with an interval
    over prompts as clusters (`stats.equal_group_mean`)."""
    values = [float(r["zero_variance"]) for r in rows]
    return equal_group_mean(values, [r["samples"] for r in rows], rows[0]["group_size"] if rows else 2, confidence)


def disjoint_groups(rows: Sequence[PromptRow]) -> int:
    """The disjoint groups of G the prompts' samples could form (`stats.disjoint_groups`)."""
    return _disjoint_groups([r["samples"] for r in rows], rows[0]["group_size"]) if rows else 0
