"""Pieces shared by the built-in checks: the base class and the statistics (Wilson, unbiased pass@k)."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, ClassVar, Iterable

from pydantic import BaseModel, ConfigDict

from ..results import CheckResult, Finding, Status, pct  # noqa: F401 - re-exported to the checks

__all__ = ["Check", "StrictParams", "wilson", "pass_at_k", "per_prompt_correct", "pct", "default_ks"]


class StrictParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Check:
    """Base of the built-in checks: `run(evidence, params)` measures, then judges against params."""

    id: ClassVar[str]
    question: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = StrictParams
    # The engine samples up front only when a planned check reads samples (data-only runs never load a model).
    uses_samples: ClassVar[bool] = True

    @classmethod
    def reads_samples(cls, params: BaseModel) -> bool:
        """Whether this run of the check, with these params, reads model samples."""
        return cls.uses_samples

    def run(self, evidence: Any, params: BaseModel) -> CheckResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def result(self, status: Status, headline: str, metrics: dict | None = None,
               findings: Iterable[Finding] = ()) -> CheckResult:
        return CheckResult(id=self.id, question=self.question, status=status, headline=headline,
                           metrics=metrics or {}, findings=list(findings))


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


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
    return {k: sorted(v) for k, v in table.items()}     # eval order, not string order

