"""diversity (advisory): has the policy kept room to explore? Flags entropy collapse before GRPO."""

from __future__ import annotations

from collections import defaultdict

from pydantic import Field

from ..names import CheckId
from ..stats import clustered_mean
from ._common import (
    Check,
    Condition,
    Finding,
    Measurement,
    Status,
    StrictParams,
    Unavailable,
    band,
    pass_at_k,
    pct,
    rows_finding,
)


def _answer_key(g) -> str:
    text = g.grade.answer if g.grade.answer is not None else g.sample.completion
    return " ".join(str(text).lower().split())


class Diversity(Check):
    id = CheckId.DIVERSITY
    question = "Has the policy kept room to explore?"

    class Params(StrictParams):
        min_distinct_ratio: float = Field(
            0.25,
            ge=0,
            le=1,
            description="Mean share of distinct answers per prompt below which the policy looks collapsed.",
        )
        min_headroom: float = Field(
            0.05, ge=0, le=1, description="pass@k - pass@1 below which sampling more finds nothing new."
        )

    conditions = (
        Condition(
            "room to explore: distinct answers ≥ min_distinct_ratio, or headroom ≥ min_headroom, or all solved",
            lambda m, p: (
                not (
                    m["distinct_ratio"] < p.min_distinct_ratio
                    and m["headroom"] < p.min_headroom
                    and m["pass_at_1"] < 1.0
                )
            ),
            fails_as=Status.WARN,
            advice=lambda m, p: Finding(
                message="Answers have collapsed to one mode and sampling more finds "
                "nothing new: GRPO has little room to explore."
            ),
        ),
    )

    def measure(self, evidence, params):
        per: dict[str, list] = defaultdict(list)
        for g in evidence.graded_samples:
            per[g.sample.example_id].append(g)
        if not per or min(len(v) for v in per.values()) < 2:
            raise Unavailable("diversity needs at least 2 samples per prompt (runs x n)")
        k = min(len(v) for v in per.values())
        distinct, p1, pk, collapsed = [], [], [], []
        for ex_id, gs in per.items():
            keys = {_answer_key(g) for g in gs}
            ratio = (len(keys) - 1) / (len(gs) - 1)  # 0 when every answer is the same, 1 when all differ
            distinct.append(ratio)
            c = sum(bool(g.grade.correct) for g in gs)
            p1.append(c / len(gs))
            pk.append(pass_at_k(len(gs), c, k))
            if len(keys) == 1 and c == 0:
                collapsed.append(ex_id)
        d = sum(distinct) / len(distinct)
        a1, ak = sum(p1) / len(p1), sum(pk) / len(pk)
        samples = sum(len(v) for v in per.values())
        # Prompts are the clusters: the headroom is a mean of per-prompt differences, each in [0, 1].
        room = clustered_mean([b - a for a, b in zip(p1, pk)], cap=samples)
        metrics = {
            "distinct_ratio": d,
            "pass_at_1": a1,
            "pass_at_1_ci": clustered_mean(p1, cap=samples).bounds(),
            "pass_at_k": ak,
            "k": k,
            "headroom": ak - a1,
            "headroom_ci": room.bounds(),
            "collapsed_wrong": len(collapsed),
            "prompts": len(per),
        }
        findings = []
        if collapsed:
            findings.append(rows_finding(collapsed, "prompts get the same wrong answer in every sample"))
        headline = (
            f"distinct answers {pct(d)}, pass@{k} − pass@1 = {100 * (ak - a1):.0f} pts "
            f"({room.confidence:.0%} CI {band(room.low, room.high).rstrip('%')})"
        )
        return Measurement(metrics, headline, findings)
