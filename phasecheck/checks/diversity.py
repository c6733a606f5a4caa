"""diversity (advisory): has the policy kept room to explore? Read from the coverage curve (pass@k and pass^k for
k = 1 … m samples a prompt): a curve that rises has room; answers collapsed onto one and a flat curve have none."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import Field

from ..names import CheckId, CheckMetric
from ..stats import clustered_mean
from ._common import (
    COVERAGE_DENSE,
    Check,
    Condition,
    Finding,
    Measurement,
    Status,
    StrictParams,
    Unavailable,
    band,
    coverage_curve,
    coverage_ks,
    pass_at_k,
    pct,
    rows_finding,
)


def _answer_key(g) -> str:
    text = g.grade.answer if g.grade.answer is not None else g.sample.completion
    return " ".join(str(text).lower().split())


def _flat_but_unsure(m, p) -> str | None:
    """A clause when the curve looks flat but its interval still reaches the headroom that would be room."""
    if m["headroom_ci"][1] >= p.min_headroom:
        return f"; too few to rule out a rise ≥ {100 * p.min_headroom:.0f} pts"
    return None


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
            0.05,
            ge=0,
            le=1,
            description="Rise of the coverage curve, pass@m - pass@1 (m samples a prompt), below which it is "
            "flat: sampling more finds nothing new.",
        )

    conditions = (
        Condition(
            "room to explore: the coverage curve rises (pass@m − pass@1 ≥ min_headroom), or distinct answers "
            "≥ min_distinct_ratio, or all solved",
            lambda m, p: (
                not (
                    m["distinct_ratio"] < p.min_distinct_ratio
                    and m["headroom"] < p.min_headroom
                    and m["pass_at_1"] < 1.0
                )
            ),
            fails_as=Status.WARN,
            says=_flat_but_unsure,
            advice=lambda m, p: Finding(
                message=f"Answers have collapsed to one mode and the coverage curve is flat (pass@1 "
                f"{pct(m['pass_at_1'])}, pass@{m['k']} {pct(m['pass_at_k'])}): sampling more finds nothing new, "
                "so GRPO has little room to explore."
            ),
        ),
    )

    def measure(self, evidence, params):
        per: dict[str, list] = defaultdict(list)
        for g in evidence.graded_samples:
            per[g.sample.example_id].append(g)
        if not per or min(len(v) for v in per.values()) < 2:
            raise Unavailable("diversity needs at least 2 samples per prompt (runs x n)")
        m = min(len(v) for v in per.values())
        distinct, counts, collapsed = [], [], []
        for ex_id, gs in per.items():
            keys = {_answer_key(g) for g in gs}
            distinct.append((len(keys) - 1) / (len(gs) - 1))  # 0 when every answer is the same, 1 when all differ
            c = sum(bool(g.grade.correct) for g in gs)
            counts.append((len(gs), c))
            if len(keys) == 1 and c == 0:
                collapsed.append(ex_id)
        curve = coverage_curve(counts, coverage_ks(m))
        first, last = curve[0], curve[-1]
        # The curve's rise, with prompts as clusters: a mean of per-prompt differences, each in [0, 1].
        room = clustered_mean([pass_at_k(n, c, m) - c / n for n, c in counts], cap=sum(n for n, _ in counts))
        d = sum(distinct) / len(distinct)
        metrics: dict[str, Any] = {
            "distinct_ratio": d,
            "pass_at_1": first["pass_at_k"],
            "pass_at_1_ci": first["pass_at_k_ci"],
            "pass_at_k": last["pass_at_k"],
            "k": m,
            "pass_hat_k": last["pass_hat_k"],
            "headroom": last["pass_at_k"] - first["pass_at_k"],
            "headroom_ci": room.bounds(),
            "collapsed_wrong": len(collapsed),
            "prompts": len(per),
            CheckMetric.COVERAGE: curve,
        }
        findings = []
        if collapsed:
            findings.append(rows_finding(collapsed, "prompts get the same wrong answer in every sample"))
        if len(curve) < m:
            findings.append(
                Finding(
                    message=f"The coverage curve shows {len(curve)} of k = 1 … {m}: every k up to "
                    f"{COVERAGE_DENSE}, then powers of two and {m}."
                )
            )
        if evidence.previous is not None:
            findings += _compare(evidence.previous, curve, metrics)
        headline = (
            f"distinct answers {pct(d)}, pass@{m} − pass@1 = {100 * metrics['headroom']:.0f} pts "
            f"({room.confidence:.0%} CI {band(room.low, room.high).rstrip('%')})"
        )
        return Measurement(metrics, headline, findings)


def _moved(before: dict, now: dict) -> str | None:
    """'up' or 'down' when the two intervals do not overlap, else None: no change is claimed."""
    if now["pass_at_k_ci"][0] > before["pass_at_k_ci"][1]:
        return "up"
    if now["pass_at_k_ci"][1] < before["pass_at_k_ci"][0]:
        return "down"
    return None


def _at(point: dict) -> str:
    lo, hi = point["pass_at_k_ci"]
    return f"{pct(point['pass_at_k'])} [{band(lo, hi)}]"


_WORDS = {  # (which end, how it moved) -> what that says about the policy
    (1, "up"): "sharpened (pass@1 up)",
    (1, "down"): "pass@1 down",
    (1, None): "pass@1 unchanged within its intervals",
    ("L", "up"): "broadened (pass@{L} up)",
    ("L", "down"): "narrowed (pass@{L} down)",
    ("L", None): "pass@{L} unchanged within its intervals",
}


def _compare(previous, curve: list[dict], metrics: dict) -> list[Finding]:
    """The earlier verdict's curve beside this one, and whether pass@1 and pass@L (the largest k both curves
    show) moved: a change is claimed only where the two intervals do not overlap, which is conservative
    (the same prompts drawn twice would allow a paired interval, but an earlier verdict keeps only its curve)."""
    old = next((c for c in previous.checks if c.id == CheckId.DIVERSITY), None)
    before = (old.metrics.get(CheckMetric.COVERAGE) if old else None) or []
    if not before:
        return []
    metrics[CheckMetric.COVERAGE_BEFORE] = before
    old_at = {p["k"]: p for p in before}
    now_at = {p["k"]: p for p in curve}
    L = max(set(old_at) & set(now_at))
    one, large = _moved(old_at[1], now_at[1]), _moved(old_at[L], now_at[L])
    change = {"k": L, "pass_at_1": one, "pass_at_k": large}
    metrics[CheckMetric.COVERAGE_CHANGE] = change
    if one is None and large is None:
        said = "no change the intervals can show"
    else:
        said = f"{_WORDS[1, one]}, {_WORDS['L', large].format(L=L)}"
    if one == "up" and large == "down":
        said += ", the trade-off reported for RL-trained models against their base at large k"
    return [
        Finding(
            message=f"Coverage against the earlier verdict: {said}. pass@1 {_at(old_at[1])} → {_at(now_at[1])}, "
            f"pass@{L} {_at(old_at[L])} → {_at(now_at[L])} (a change is claimed only where the intervals do not "
            "overlap).",
            data={CheckMetric.COVERAGE_CHANGE: change},
        )
    ]
