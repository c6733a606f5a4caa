"""grpo_readiness (advisory): will GRPO get a learning signal? A group whose rewards are all equal teaches
nothing; the share of such groups is predicted on the banded reward, at the group size GRPO will use."""

from __future__ import annotations

import math
from collections import defaultdict

from pydantic import Field

from ..names import CheckId, CheckMetric
from ..stats import equal_group_share, reward_classes, zero_variance_share
from ._common import (
    Check,
    Condition,
    Finding,
    Measurement,
    Status,
    StrictParams,
    Unavailable,
    ci_text,
    design_text,
    pct,
    rows_finding,
)


def _too_many(m, p) -> bool:
    return m["zero_variance_share"] > p.max_zero_variance


def _mostly_unsolved(m) -> bool:
    return m["zero_variance_unsolved"] >= m["zero_variance_solved"]


_WARM_START = Finding(
    message="Most GRPO groups would teach nothing because the model almost never solves these "
    "prompts: it needs a warm start first, not more GRPO."
)


class GrpoReadiness(Check):
    id = CheckId.GRPO_READINESS
    question = "Will GRPO get a learning signal?"

    class Params(StrictParams):
        group_size: int | None = Field(
            None,
            ge=2,
            description="G; None uses the G `train grpo` will use "
            "(training.grpo.group_size, else its preset's: 4 conservative, 8 none).",
        )
        max_zero_variance: float = Field(
            0.5, ge=0, le=1, description="Largest predicted share of zero-variance groups that passes."
        )
        confidence: float = Field(0.95, gt=0, lt=1, description="Level of the interval on the predicted share.")

    # Many equal-reward groups because the model always solves the prompts leaves nothing for GRPO to learn,
    # which is not a risk to flag; because it never solves them, it needs a warm start first.
    conditions = (
        Condition(
            "at most max_zero_variance of groups have zero reward variance, unless they are mostly solved",
            lambda m, p: not (_too_many(m, p) and _mostly_unsolved(m)),
            fails_as=Status.WARN,
            says=lambda m, p: " (mostly unsolved: warm start first)",
            advice=lambda m, p: _WARM_START,
        ),
    )

    def measure(self, evidence, params):
        from ..training.grpo_settings import group_size_for, resolve_grpo

        task = evidence.task
        g, source = (
            (params.group_size, "checks.grpo_readiness.group_size") if params.group_size else group_size_for(task)
        )
        rewards, correct = _per_prompt(evidence.graded_samples)
        if not rewards:
            return Measurement({}, "no samples to judge", judgeable=False)
        if min(len(v) for v in rewards.values()) < 2:
            raise Unavailable("grpo_readiness needs at least 2 samples per prompt (runs x n)")
        zv = zero_variance_share(rewards, g, params.confidence)
        ci, at = zv.interval, zv.estimated_at
        # Which equal-reward groups are all right and which all wrong, on the same unbiased footing.
        solved = sum(_part(rewards[i], correct[i], at, True) for i in rewards) / len(rewards)
        unsolved = sum(_part(rewards[i], correct[i], at, False) for i in rewards) / len(rewards)
        never = [i for i, c in correct.items() if not any(c)]
        always = [i for i, c in correct.items() if all(c)]
        runs = len({s.sample.run for s in evidence.graded_samples})
        m = min(len(v) for v in rewards.values())
        design = design_text(len(rewards), runs, max(1, m // runs))
        cfg = resolve_grpo(task)
        metrics = {
            CheckMetric.GROUP_SIZE: g,
            "group_size_source": source,
            "estimated_at": at,
            CheckMetric.EXACT: zv.exact,
            CheckMetric.ZERO_VARIANCE_SHARE: ci.estimate,
            CheckMetric.ZERO_VARIANCE_CI: ci.bounds(),
            "zero_variance_interval": ci.to_dict(),
            "zero_variance_solved": solved,
            "zero_variance_unsolved": unsolved,
            "never_solved": len(never),
            "sometimes_solved": len(rewards) - len(never) - len(always),
            "always_solved": len(always),
            "prompts": len(rewards),
            "reward": "banded",
            "design": design,
            "sampled_temperature": task.sampling.temperature,
            "grpo_temperature": cfg.temperature,
        }
        findings = _findings(never, task, cfg)
        if zv.exact:
            headline = f"{ci_text(ci)} of groups of {g} predicted to have zero reward variance"
        else:
            headline = (
                f"at most {pct(ci.estimate)} (CI up to {math.ceil(100 * ci.high - 1e-9)}%) of groups of {g} predicted to "
                f"have zero reward variance; {design}: {m} samples a prompt < G, so estimated at G={at}"
            )
            findings.append(_too_few(m, g, at))
        if _too_many(metrics, params) and not _mostly_unsolved(metrics):
            headline += " (mostly already solved)"
        elif ci.high > params.max_zero_variance and not _too_many(metrics, params):
            headline += f"; {design}: too few samples to confirm ≤ {pct(params.max_zero_variance)}"
        return Measurement(metrics, headline, findings)


def _per_prompt(graded) -> tuple[dict[str, list[float]], dict[str, list[bool]]]:
    """Each prompt's banded rewards and correctness, in sample order."""
    rewards: dict[str, list[float]] = defaultdict(list)
    correct: dict[str, list[bool]] = defaultdict(list)
    for s in graded:
        rewards[s.sample.example_id].append(float(s.grade.reward))
        correct[s.sample.example_id].append(bool(s.grade.correct))
    return rewards, correct


def _findings(never: list[str], task, cfg) -> list[Finding]:
    """Prompts never solved, and sampling settings that differ from the ones GRPO will sample with."""
    findings = []
    if never:
        findings.append(rows_finding(never, "prompts never solved in any sample"))
    sampled = task.sampling
    if abs(cfg.temperature - sampled.temperature) > 1e-9 or cfg.max_new_tokens != sampled.max_new_tokens:
        findings.append(
            Finding(
                message=f"sampled at temperature {sampled.temperature:g}, {sampled.max_new_tokens} tokens; GRPO samples at "
                f"{cfg.temperature:g}, {cfg.max_new_tokens} tokens: the prediction is for the sampled settings"
            )
        )
    return findings


def _too_few(m: int, g: int, at: int) -> Finding:
    return Finding(
        message=f"{m} samples a prompt cannot estimate groups of {g} without bias: the share of equal-reward groups "
        f"of {at} is reported, an upper bound for {g}. Sample runs x n >= {g} per prompt for the figure itself."
    )


def _part(rewards: list[float], correct: list[bool], g: int, right: bool) -> float:
    """The unbiased share of equal-reward groups of g whose samples are all right (or all wrong)."""
    picked = [r for r, c in zip(rewards, correct) if c is right]
    return equal_group_share(reward_classes(picked), len(rewards), g) if len(picked) >= g else 0.0
