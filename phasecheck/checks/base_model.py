"""base_model: has the model completed the task reliably? Every sampled run must reach min_accuracy."""

from __future__ import annotations

from collections import defaultdict

from pydantic import Field

from ..names import CheckId, CheckMetric
from ..stats import clustered_proportion
from ._common import (
    Check,
    Condition,
    Finding,
    Measurement,
    Status,
    StrictParams,
    ci_text,
    default_ks,
    design_text,
    pass_at_k,
    pct,
    per_prompt_correct,
    sample_note,
)


class BaseModel(Check):
    id = CheckId.BASE_MODEL
    question = "Has the model completed the task reliably?"

    class Params(StrictParams):
        min_accuracy: float = Field(0.8, ge=0, le=1, description="Accuracy every run must reach.")
        min_runs: int | None = Field(None, ge=1, description="Runs that must pass; None means all of them.")
        k: list[int] | None = Field(
            None, description="pass@k values to report; None gives 1, 2, 4, ... up to the samples per prompt."
        )
        confidence: float = Field(
            0.95,
            gt=0,
            lt=1,
            description="Level of the intervals on pass@1 and per-run "
            "accuracy (prompts as clusters: a prompt's samples are not independent draws).",
        )

    conditions = (
        Condition(
            "min_runs runs (all when unset) reach min_accuracy",
            lambda m, p: m["runs_passing"] >= (p.min_runs or m["runs"]),
        ),
        Condition(
            "the sample confirms it: pass@1 interval's low end ≥ min_accuracy",
            lambda m, p: m["pass_at_1_ci"][0] >= p.min_accuracy,
            fails_as=Status.WARN,
        ),
    )

    def measure(self, evidence, params):
        graded = evidence.graded_samples
        if not graded:
            return Measurement({"runs": 0, "runs_passing": 0}, "no samples to judge", judgeable=False)
        runs: dict[int, list[bool]] = defaultdict(list)
        scen: dict[str, list[bool]] = defaultdict(list)
        for g in graded:
            ok = bool(g.grade.correct)
            runs[g.sample.run].append(ok)
            scen[g.example.scenario or "default"].append(ok)
        run_ids = sorted(runs)
        acc = [sum(runs[r]) / len(runs[r]) for r in run_ids]
        passing = sum(a >= params.min_accuracy for a in acc)
        table = per_prompt_correct(graded)
        n_min = min(len(v) for v in table.values())
        ks = [k for k in (params.k or default_ks(n_min)) if 1 <= k <= n_min]
        pak = {
            str(k): sum(pass_at_k(len(v), sum(c for *_, c in v), k) for v in table.values()) / len(table) for k in ks
        }
        pass1 = clustered_proportion([(sum(c for *_, c in v), len(v)) for v in table.values()], params.confidence)
        run_cis = [
            clustered_proportion(
                [(sum(c for rr, _, c in v if rr == r), sum(rr == r for rr, *_ in v)) for v in table.values()],
                params.confidence,
            )
            for r in run_ids
        ]
        design = design_text(len(table), len(run_ids), max(1, round(len(graded) / len(table) / len(run_ids))))
        metrics = {
            CheckMetric.PER_RUN_ACCURACY: acc,
            CheckMetric.PER_RUN_ACCURACY_CI: [ci.bounds() for ci in run_cis],
            "runs": len(run_ids),
            "runs_passing": passing,
            CheckMetric.THRESHOLD: params.min_accuracy,
            "pass_at_1": pass1.estimate,
            "pass_at_1_ci": pass1.bounds(),
            "pass_at_1_interval": pass1.to_dict(),
            "confidence": params.confidence,
            "pass_at_k": pak,
            "prompts": len(table),
            "samples": len(graded),
            "design": design,
            CheckMetric.PER_SCENARIO: {
                s: {"accuracy": sum(v) / len(v), "n": len(v), "correct": sum(v)} for s, v in sorted(scen.items())
            },
        }
        worst = min(range(len(acc)), key=acc.__getitem__)
        headline = (
            f"{passing}/{len(run_ids)} runs ≥ {pct(params.min_accuracy)} "
            f"(best {pct(max(acc))}, worst {ci_text(run_cis[worst], short=True)}); pass@1 {ci_text(pass1)}"
        )
        note = sample_note(pass1, params.min_accuracy, passing >= (params.min_runs or len(run_ids)), design)
        metrics["sample_note"] = note
        if note:
            headline += f"; {note}"
        return Measurement(metrics, headline, _scenario_findings(graded, scen, params.min_accuracy))


def _scenario_findings(graded, scen: dict[str, list[bool]], threshold: float) -> list[Finding]:
    """One finding per scenario below the threshold, worst first, naming its wrong prompts."""
    findings = []
    for s, v in sorted(scen.items(), key=lambda kv: sum(kv[1]) / len(kv[1])):
        if sum(v) / len(v) < threshold:
            wrong = list(
                dict.fromkeys(
                    g.example.id for g in graded if (g.example.scenario or "default") == s and not g.grade.correct
                )
            )
            findings.append(
                Finding(
                    message=f"scenario {s}: {pct(sum(v) / len(v))} correct over {len(v)} "
                    f"samples, below {pct(threshold)}",
                    example_ids=wrong[:20],
                    data={"scenario": s},
                )
            )
    return findings
