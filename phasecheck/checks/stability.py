"""stability: is the correct pattern identified and stable? Per-prompt agreement across runs (and checkpoints)."""

from __future__ import annotations

from pydantic import Field

from ..names import CheckId, CheckMetric
from ..stats import clustered_mean, clustered_proportion
from ._common import (
    Check,
    Condition,
    Finding,
    Measurement,
    Status,
    StrictParams,
    band,
    ci_text,
    design_text,
    per_prompt_correct,
    rows_finding,
    sample_note,
)


def _agreed(m, p) -> bool:
    return m["agreement"] >= p.min_agreement


class Stability(Check):
    id = CheckId.STABILITY
    question = "Is the correct pattern identified and stable?"

    class Params(StrictParams):
        min_agreement: float = Field(
            0.8, ge=0, le=1, description="Mean per-prompt agreement across runs needed to pass."
        )
        confidence: float = Field(
            0.95,
            gt=0,
            lt=1,
            description="Level of the intervals on agreement and "
            "accuracy (prompts as clusters: a prompt's samples are not independent draws).",
        )
        min_accuracy: float = Field(
            0.5,
            ge=0,
            le=1,
            description="The interval's lower bound must reach this: "
            "a model that is stably wrong has not identified the correct pattern.",
        )

    conditions = (
        Condition(
            "the pattern is the correct one: accuracy interval's low end ≥ min_accuracy",
            lambda m, p: m["accuracy_ci"][0] >= p.min_accuracy,
            says=lambda m, p: (
                f": stable, but not on the correct pattern (needs ≥ {100 * p.min_accuracy:.0f}%)"
                if _agreed(m, p)
                else None
            ),
        ),
        Condition("agreement ≥ min_agreement", _agreed),
        Condition(
            "the sample confirms it: agreement interval's low end ≥ min_agreement",
            lambda m, p: m["agreement_ci"][0] >= p.min_agreement,
            fails_as=Status.WARN,
        ),
        Condition(
            "no prompt solved in the compared verdict is unsolved now",
            lambda m, p: not m.get(CheckMetric.REGRESSED),
            fails_as=Status.WARN,
            says=lambda m, p: f", {len(m[CheckMetric.REGRESSED])} regressed",
        ),
    )

    def measure(self, evidence, params):
        graded = evidence.graded_samples
        table = per_prompt_correct(graded)
        if not table:
            return Measurement({}, "no samples to judge", judgeable=False)
        agreements, flipped, per_prompt = [], [], {}
        units = 0
        for ex_id, rows in table.items():
            outcomes = _unit_outcomes(rows)
            yes = sum(outcomes)
            units += len(outcomes)
            agreements.append(max(yes, len(outcomes) - yes) / len(outcomes))
            if 0 < yes < len(outcomes):
                flipped.append(ex_id)
            per_prompt[ex_id] = sum(c for *_, c in rows) / len(rows)
        acc = clustered_proportion([(sum(c for *_, c in v), len(v)) for v in table.values()], params.confidence)
        # max(yes, no) / units is never below 1/2: the interval uses that range, not [0, 1].
        agree = clustered_mean(agreements, cap=units, confidence=params.confidence, floor=0.5)
        runs = len({r for rows in table.values() for r, *_ in rows})
        design = design_text(len(table), runs, max(1, round(len(graded) / len(table) / runs)))
        metrics = {
            "agreement": agree.estimate,
            "agreement_ci": agree.bounds(),
            "flip_rate": len(flipped) / len(table),
            "accuracy": acc.estimate,
            "accuracy_ci": acc.bounds(),
            "accuracy_interval": acc.to_dict(),
            "confidence": params.confidence,
            "prompts": len(table),
            CheckMetric.PER_PROMPT: per_prompt,
            "unit": "run" if runs > 1 else "sample",
            "design": design,
        }
        findings = []
        if flipped:
            findings.append(rows_finding(flipped, "prompts flip between right and wrong across runs"))
        headline = (
            f"agreement {ci_text(agree, short=True)}, accuracy {band(acc.low, acc.high)} ({params.confidence:.0%} CI)"
        )
        # A model short of min_accuracy fails whatever its agreement: no clause about agreement's sample then.
        short = acc.low < params.min_accuracy
        note = (
            None if short else sample_note(agree, params.min_agreement, agree.estimate >= params.min_agreement, design)
        )
        metrics["sample_note"] = note
        if note:
            headline += f"; {note}"
        if evidence.previous is not None:
            findings += _compare(evidence.previous, per_prompt, metrics)
        return Measurement(metrics, headline, findings)


def _compare(previous, per_prompt: dict[str, float], metrics: dict) -> list[Finding]:
    """Prompts solved (per-prompt accuracy ≥ 0.5) in the earlier verdict and not now, and the reverse."""
    old = next((c for c in previous.checks if c.id == Stability.id), None)
    old_pp = (old.metrics.get(CheckMetric.PER_PROMPT) if old else None) or {}
    regressed = [i for i, a in per_prompt.items() if i in old_pp and old_pp[i] >= 0.5 > a]
    improved = [i for i, a in per_prompt.items() if i in old_pp and old_pp[i] < 0.5 <= a]
    metrics.update(
        {CheckMetric.REGRESSED: regressed, "improved": improved, "compared_prompts": len(set(old_pp) & set(per_prompt))}
    )
    if not regressed:
        return []
    return [rows_finding(regressed, "prompts solved in the earlier verdict are no longer solved")]


def _unit_outcomes(rows: list[tuple[int, int, bool]]) -> list[bool]:
    """One outcome per run (majority of its samples, ties count as wrong); per sample when there is one run."""
    runs: dict[int, list[bool]] = {}
    for r, _, c in rows:
        runs.setdefault(r, []).append(c)
    if len(runs) < 2:
        return [c for *_, c in rows]
    return [sum(v) * 2 > len(v) for _, v in sorted(runs.items())]
