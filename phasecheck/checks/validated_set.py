"""validated_set: can you construct a validated training set? Verifies, dedups and writes validated.jsonl."""

from __future__ import annotations

import re
from collections import defaultdict

from pydantic import Field

from ..names import Artifact, CheckId, CheckMetric
from ..records import prompt_text
from ._common import Check, Condition, Finding, Measurement, Output, StrictParams, pct, rows_finding

_PUNCT = re.compile(r"[^\w\s]")


def _norm(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _shingles(text: str, k: int = 3) -> frozenset:
    words = text.split()
    return frozenset(tuple(words[i : i + k]) for i in range(max(1, len(words) - k + 1)))


class ValidatedSet(Check):
    id = CheckId.VALIDATED_SET
    question = "Can you construct a validated training set?"
    uses_samples = False  # only after GRPO (the runner knows) or with from_samples

    @classmethod
    def reads_samples(cls, params) -> bool:
        return params.from_samples

    class Params(StrictParams):
        min_examples: int = Field(200, ge=1, description="Verified, de-duplicated examples needed to pass.")
        min_pass_rate: float = Field(
            0.95, ge=0, le=1, description="Share of demonstrations that must pass the verifier."
        )
        near_duplicate: float = Field(
            0.9,
            gt=0,
            le=1,
            description="Word 3-gram Jaccard similarity (same prompt) at which two completions count as one.",
        )
        write: bool = Field(True, description="Write validated.jsonl to the output directory.")
        from_samples: bool = Field(
            False,
            description="Also take the model's own samples that pass the verifier (rejection sampling), "
            "de-duplicated, with provenance: a model that already solves the task can crystallise its verified "
            "outputs without demonstrations. After GRPO (check --after-grpo) the checkpoint's are always taken.",
        )

    conditions = (
        Condition(
            "at least min_examples verified, de-duplicated examples",
            lambda m, p: m["validated"] >= p.min_examples,
            says=lambda m, p: f", need {p.min_examples}",
        ),
        Condition(
            "at least min_pass_rate of the demonstrations pass the verifier",
            lambda m, p: m["pass_rate"] is None or m["pass_rate"] >= p.min_pass_rate,
            says=lambda m, p: f", need {pct(p.min_pass_rate)} passing" if m["validated"] >= p.min_examples else None,
        ),
    )

    def measure(self, evidence, params):
        rows, per = [], defaultdict(lambda: {"candidates": 0, "passed": 0, "duplicates": 0})
        for d in evidence.graded_demonstrations:
            s = per[d.demo.scenario or "default"]
            s["candidates"] += 1
            if d.grade.correct:
                s["passed"] += 1
                rows.append((d.demo, d.demo.completion, {"source": d.demo.source, "row": d.demo.row}))
        demo_candidates = sum(s["candidates"] for s in per.values())
        demo_passed = sum(s["passed"] for s in per.values())
        model_rows, source = _model_rows(evidence, params.from_samples)
        model_outputs = len(model_rows)
        rows += model_rows
        kept, dup_ids = self._dedup(rows, params.near_duplicate)
        for ex in dup_ids:
            per[ex.scenario or "default"]["duplicates"] += 1
        for s in per.values():
            s["pass_rate"] = s["passed"] / s["candidates"] if s["candidates"] else None
        pass_rate = demo_passed / demo_candidates if demo_candidates else None
        metrics = {
            "candidates": demo_candidates,
            "passed": demo_passed,
            "duplicates": len(dup_ids),
            "pass_rate": pass_rate,
            "model_outputs": model_outputs,
            **({"model_outputs_from": source} if source else {}),
            "validated": len(kept),
            "min_examples": params.min_examples,
            "min_pass_rate": params.min_pass_rate,
            CheckMetric.PER_SCENARIO: {k: dict(v) for k, v in sorted(per.items())},
        }
        findings = _findings(evidence.graded_demonstrations, dup_ids)
        if params.from_samples and source is None:
            findings.append(
                Finding(
                    message="from_samples is set, but this run has no samples to take verified "
                    "outputs from (set a model, or data.samples)"
                )
            )
        outputs = [_validated_file(kept)] if params.write else []
        if demo_candidates == 0 and model_outputs == 0:
            return Measurement(
                metrics,
                "no demonstrations (data.train) and no verified model outputs",
                findings,
                outputs,
                judgeable=False,
            )
        headline = f"{len(kept)} examples confirmed"
        if pass_rate is not None:
            headline += f" ({pct(pass_rate)} of {demo_candidates} demonstrations pass)"
        if source:
            own = sum("run" in prov for *_, prov in kept)  # model rows carry their run; demonstrations do not
            whose = "the checkpoint's" if source == AFTER_GRPO else "the model's own"
            headline += f"; {own} of them {whose} verified samples"
        return Measurement(metrics, headline, findings, outputs)

    @staticmethod
    def _dedup(rows, threshold):
        """Keep the first of each exact duplicate (prompt, completion), normalised duplicate, or near duplicate."""
        seen_exact, seen_norm = set(), set()
        by_prompt: dict[str, list[frozenset]] = defaultdict(list)
        kept, dups = [], []
        for ex, completion, prov in rows:
            p = prompt_text(ex.prompt)
            exact = (p, completion)
            np_, nc = _norm(p), _norm(completion)
            if exact in seen_exact or (np_, nc) in seen_norm:
                dups.append(ex)
                continue
            sh = _shingles(nc)
            others = by_prompt[np_]
            # Bounded comparisons per prompt keep this linear on large sets.
            if any(len(sh & o) / len(sh | o) >= threshold for o in others[-64:]):
                dups.append(ex)
                continue
            seen_exact.add(exact)
            seen_norm.add((np_, nc))
            others.append(sh)
            kept.append((ex, completion, prov))
        return kept, dups


AFTER_GRPO, REJECTION_SAMPLING = "after_grpo", "rejection_sampling"


def _model_rows(evidence, from_samples: bool) -> tuple[list[tuple], str | None]:
    """The model's verified outputs that join the set, with provenance, and where they come from: after GRPO
    the checkpoint's correct samples; with from_samples the sampled model's (rejection sampling)."""
    after = evidence.after_grpo
    if after is None and not (from_samples and evidence.has_graded_samples):
        return [], None
    rows = []
    for g in evidence.graded_samples:
        if not g.grade.correct:
            continue
        where = {"run": g.sample.run, "index": g.sample.index, "seed": g.sample.seed}
        if after is not None:
            prov = {"model": after.get("model"), "step": after.get("step"), **where}
        else:
            prov = {"model": g.sample.model, "source": REJECTION_SAMPLING, **where}
        rows.append((g.example, g.sample.completion, prov))
    return rows, AFTER_GRPO if after is not None else REJECTION_SAMPLING


def _findings(graded_demos, dup_ids) -> list[Finding]:
    """Demonstrations the verifier rejects, and verified rows dropped as duplicates."""
    findings = []
    failed = [d.demo.id for d in graded_demos if not d.grade.correct]
    if failed:
        findings.append(rows_finding(failed, "demonstrations fail the verifier"))
    if dup_ids:
        findings.append(
            Finding(
                message=f"{len(dup_ids)} verified rows were exact or near duplicates and were dropped",
                example_ids=sorted({e.id for e in dup_ids})[:50],
            )
        )
    return findings


def _validated_file(kept) -> Output:
    return Output(
        Artifact.VALIDATED,
        "validated.jsonl",
        [
            {
                "id": ex.id,
                "prompt": ex.prompt,
                "completion": completion,
                "reference": ex.reference,
                "scenario": ex.scenario,
                "provenance": prov,
            }
            for ex, completion, prov in kept
        ],
    )
