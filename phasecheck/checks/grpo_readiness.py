"""grpo_readiness (advisory): will GRPO get a learning signal? A group whose rewards are all equal teaches nothing."""
from __future__ import annotations

from pydantic import Field

from ..results import Finding, Status
from ._common import Check, StrictParams, pct, per_prompt_correct

CONSERVATIVE_GROUP_SIZE = 4


class GrpoReadiness(Check):
    id = "grpo_readiness"
    question = "Will GRPO get a learning signal?"

    class Params(StrictParams):
        group_size: int | None = Field(None, ge=2, description="G; None uses training.grpo.group_size (4 under the conservative preset).")
        max_zero_variance: float = Field(0.5, ge=0, le=1, description="Largest predicted share of zero-variance groups that passes.")

    def run(self, evidence, params):
        g = params.group_size or evidence.task.training.grpo.group_size or CONSERVATIVE_GROUP_SIZE
        table = per_prompt_correct(evidence.graded_samples)
        if not table:
            return self.result(Status.FAIL, "no samples to judge")
        ps = {i: sum(c for *_, c in rows) / len(rows) for i, rows in table.items()}
        # P(all G rewards equal) for a prompt solved with probability p: all right or all wrong.
        never_part = sum((1 - p) ** g for p in ps.values()) / len(ps)
        always_part = sum(p ** g for p in ps.values()) / len(ps)
        zero = never_part + always_part
        never = [i for i, p in ps.items() if p == 0]
        always = [i for i, p in ps.items() if p == 1]
        metrics = {"group_size": g, "zero_variance_share": zero, "zero_variance_unsolved": never_part,
                   "zero_variance_solved": always_part, "never_solved": len(never),
                   "sometimes_solved": len(ps) - len(never) - len(always), "always_solved": len(always),
                   "prompts": len(ps)}
        findings = []
        if never:
            findings.append(Finding(message=f"{len(never)} prompts never solved in any sample",
                                    example_ids=never[:50], data={"count": len(never)}))
        headline = f"{pct(zero)} of groups of {g} predicted to have zero reward variance"
        if zero <= params.max_zero_variance:
            return self.result(Status.PASS, headline, metrics, findings)
        if never_part >= always_part:
            findings.insert(0, Finding(message="Most GRPO groups would teach nothing because the model almost never "
                                               "solves these prompts: it needs a warm start first, not more GRPO."))
            return self.result(Status.WARN, headline + " (mostly unsolved: warm start first)", metrics, findings)
        # Mostly always-solved: nothing left for GRPO to learn, which is not a risk to flag.
        return self.result(Status.PASS, headline + " (mostly already solved)", metrics, findings)
