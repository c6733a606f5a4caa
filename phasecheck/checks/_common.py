"""Pieces shared by the built-in checks: the contract (from base.py), unbiased pass@k, and how an interval and the
sample behind it are said in a headline (the statistics themselves are in phasecheck.stats)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ..results import Finding, Status, band, pct
from ..stats import Interval, clustered_mean, wilson  # noqa: F401 - re-exported (wilson lived here first)
from .base import Check, Condition, Measurement, Output, StrictParams, Unavailable

__all__ = [
    "Check",
    "Condition",
    "Measurement",
    "Output",
    "Unavailable",
    "StrictParams",
    "Finding",
    "Status",
    "wilson",
    "pass_at_k",
    "per_prompt_correct",
    "pct",
    "default_ks",
    "ci_text",
    "design_text",
    "sample_note",
    "band",
    "FEW_PROMPTS",
    "rows_finding",
    "pass_hat_k",
    "coverage_ks",
    "coverage_curve",
    "COVERAGE_DENSE",
]

# Fewer prompts than this and the share of the task they could all have missed (stats.unseen_share: 17%
# at 20 prompts, 37% at 8) is most of an interval's width, so the headline says why it is wide.
FEW_PROMPTS = 20


def rows_finding(ids: list[str], what: str, limit: int = 50) -> Finding:
    """'<count> <what>' naming the first `limit` example ids, the count kept in data."""
    return Finding(message=f"{len(ids)} {what}", example_ids=ids[:limit], data={"count": len(ids)})


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), as a stable product."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if n >= 1 and n not in ks:
        ks.append(n)
    return ks


def per_prompt_correct(graded: Iterable[Any]) -> dict[str, list[tuple[int, int, bool]]]:
    """example id (in first-seen order) -> [(run, index, correct)], sorted; an unjudged sample (correct None) counts as wrong."""
    table: dict[str, list[tuple[int, int, bool]]] = defaultdict(list)
    for g in graded:
        table[g.sample.example_id].append((g.sample.run, g.sample.index, bool(g.grade.correct)))
    return {k: sorted(v) for k, v in table.items()}  # eval order, not string order


def ci_text(ci: Interval, short: bool = False) -> str:
    """'62% (95% CI 48–74%)', or '62% [48–74%]' when short: never a point estimate alone."""
    band_ = band(ci.low, ci.high)
    return f"{pct(ci.estimate)} [{band_}]" if short else f"{pct(ci.estimate)} ({ci.confidence:.0%} CI {band_})"


def design_text(prompts: int, runs: int, n: int) -> str:
    """'16 prompts × 2 runs × 4 samples'."""
    return f"{prompts} prompt{'s' * (prompts != 1)} × {runs} run{'s' * (runs != 1)} × {n} sample{'s' * (n != 1)}"


def sample_note(ci: Interval, threshold: float, passed: bool, design: str) -> str | None:
    """A clause for the headline (which already quotes the interval) when the interval reaches across the
    threshold the verdict compares against, so the sample is too small for the verdict it supports, or
    when so few prompts back it that the share of the task they could all miss is what widens it."""
    if passed and ci.low < threshold:
        return f"{design}: too few to confirm ≥ {pct(threshold)}"
    if not passed and ci.high >= threshold:
        return f"{design}: too few to rule out ≥ {pct(threshold)}"
    if 1 < ci.prompts < FEW_PROMPTS:
        return f"{design}: only {ci.prompts} prompts, which can miss {pct(ci.unseen)} of the task entirely"
    return None


# The coverage curve keeps every k up to here, then powers of two and m: past 16 the curve bends slowly, and a
# point per k would make verdict.json grow with R x n (64 samples a prompt would be 64 points, 16 + 2 here).
COVERAGE_DENSE = 16


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k (all k correct, drawn without replacement from n with c correct): C(c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass^{k} needs at least {k} samples, got {n}")
    prod = 1.0
    for i in range(k):
        prod *= max(c - i, 0) / (n - i)
        if prod == 0.0:
            break
    return prod


def coverage_ks(m: int, dense: int = COVERAGE_DENSE) -> list[int]:
    """The k of the coverage curve for m samples a prompt: every k up to `dense`, then powers of two, and m."""
    ks = list(range(1, min(m, dense) + 1))
    k = 1
    while k <= dense:
        k *= 2
    while k < m:
        ks.append(k)
        k *= 2
    if m > dense:
        ks.append(m)
    return ks


def coverage_curve(counts: list[tuple[int, int]], ks: Iterable[int]) -> list[dict[str, Any]]:
    """Mean pass@k and pass^k over prompts at each k, each with its interval (prompts as clusters), from
    (samples, correct) per prompt. Every k must be at most the fewest samples any prompt has."""
    samples = sum(n for n, _ in counts)
    points = []
    for k in ks:
        at = clustered_mean([pass_at_k(n, c, k) for n, c in counts], cap=samples)
        hat = clustered_mean([pass_hat_k(n, c, k) for n, c in counts], cap=samples)
        points.append(
            {
                "k": k,
                "pass_at_k": at.estimate,
                "pass_at_k_ci": at.bounds(),
                "pass_hat_k": hat.estimate,
                "pass_hat_k_ci": hat.bounds(),
            }
        )
    return points
