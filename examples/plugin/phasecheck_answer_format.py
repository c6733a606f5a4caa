"""answer_format: does the model answer in the task's format? A check written against phasecheck.api only.

A sample is off format when the grader could not find an answer in it (`unparsed`) or when it was cut
off at the token limit: either way GRPO's reward says nothing about the reasoning, and SFT data drawn
from such samples teaches the wrong shape."""

from __future__ import annotations

from collections import defaultdict

from pydantic import Field

from phasecheck import api


class AnswerFormat(api.Check):
    id = "answer_format"
    question = "Does the model answer in the task's format?"

    class Params(api.StrictParams):
        max_off_format: float = Field(0.2, ge=0, le=1, description="Largest share of samples off format that passes.")
        confidence: float = Field(0.95, gt=0, lt=1, description="Level of the interval (prompts as clusters).")

    conditions = (
        api.Condition(
            "at most max_off_format of samples are off format (no answer found, or cut off)",
            lambda m, p: m["off_format"] <= p.max_off_format,
            fails_as=api.Status.WARN,
            says=lambda m, p: f", above {p.max_off_format:.0%}",
        ),
    )

    def measure(self, evidence: api.EvidenceView, params: Params) -> api.Measurement:
        per_prompt: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # example id -> [off format, samples]
        unparsed = cut = 0
        for g in evidence.graded_samples:  # raises Unavailable (the check is skipped) without samples
            no_answer = g.grade.outcome is api.Outcome.UNPARSED
            cut_off = g.sample.finish_reason == "length"
            unparsed += no_answer
            cut += cut_off
            per_prompt[g.sample.example_id][0] += no_answer or cut_off
            per_prompt[g.sample.example_id][1] += 1
        if not per_prompt:
            return api.Measurement({}, "no samples to judge", judgeable=False)
        share = api.clustered_proportion([tuple(v) for v in per_prompt.values()], params.confidence)
        metrics = {
            "off_format": share.estimate,
            "off_format_ci": share.bounds(),
            "unparsed": unparsed,
            "cut_off": cut,
            "samples": sum(v[1] for v in per_prompt.values()),
            "prompts": len(per_prompt),
        }
        worst = sorted((i for i, v in per_prompt.items() if v[0]), key=lambda i: -per_prompt[i][0] / per_prompt[i][1])
        findings = (
            [
                api.Finding(
                    message=f"{len(worst)} prompts have samples off format",
                    example_ids=worst[:20],
                    data={"count": len(worst)},
                )
            ]
            if worst
            else []
        )
        headline = (
            f"{share.estimate:.0%} of samples off format ({share.confidence:.0%} CI "
            f"{share.low:.0%}–{share.high:.0%}): {unparsed} without an answer, {cut} cut off"
        )
        return api.Measurement(metrics, headline, findings)
