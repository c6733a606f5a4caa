"""base_model: has the model completed the task reliably? Every sampled run must reach min_accuracy."""
from __future__ import annotations

from collections import defaultdict

from pydantic import Field

from ..results import Finding, Status
from ._common import Check, StrictParams, default_ks, pass_at_k, pct, per_prompt_correct


class BaseModel(Check):
    id = "base_model"
    question = "Has the model completed the task reliably?"

    class Params(StrictParams):
        min_accuracy: float = Field(0.8, ge=0, le=1, description="Accuracy every run must reach.")
        min_runs: int | None = Field(None, ge=1, description="Runs that must pass; None means all of them.")
        k: list[int] | None = Field(None, description="pass@k values to report; None gives 1, 2, 4, ... up to the samples per prompt.")

    def run(self, evidence, params):
        graded = evidence.graded_samples
        if not graded:
            return self.result(Status.FAIL, "no samples to judge", {"runs": 0, "runs_passing": 0})
        runs: dict[int, list[bool]] = defaultdict(list)
        scen: dict[str, list[bool]] = defaultdict(list)
        for g in graded:
            ok = bool(g.grade.correct)
            runs[g.sample.run].append(ok)
            scen[g.example.scenario or "default"].append(ok)
        run_ids = sorted(runs)
        acc = [sum(runs[r]) / len(runs[r]) for r in run_ids]
        need = params.min_runs or len(run_ids)
        passing = sum(a >= params.min_accuracy for a in acc)
        table = per_prompt_correct(graded)
        sizes = {len(v) for v in table.values()}
        n_min = min(sizes)
        ks = [k for k in (params.k or default_ks(n_min)) if 1 <= k <= n_min]
        pak = {str(k): sum(pass_at_k(len(v), sum(c for *_, c in v), k) for v in table.values()) / len(table)
               for k in ks}
        pass1 = sum(sum(c for *_, c in v) / len(v) for v in table.values()) / len(table)
        metrics = {
            "per_run_accuracy": acc, "runs": len(run_ids), "runs_passing": passing, "threshold": params.min_accuracy,
            "pass_at_1": pass1, "pass_at_k": pak, "prompts": len(table), "samples": len(graded),
            "per_scenario": {s: {"accuracy": sum(v) / len(v), "n": len(v), "correct": sum(v)}
                             for s, v in sorted(scen.items())},
        }
        status = Status.PASS if passing >= need else Status.FAIL
        headline = (f"{passing}/{len(run_ids)} runs ≥ {pct(params.min_accuracy)} "
                    f"(best {pct(max(acc))}, worst {pct(min(acc))})")
        findings = []
        for s, v in sorted(scen.items(), key=lambda kv: sum(kv[1]) / len(kv[1])):
            if sum(v) / len(v) < params.min_accuracy:
                wrong = list(dict.fromkeys(g.example.id for g in graded
                                           if (g.example.scenario or "default") == s and not g.grade.correct))
                findings.append(Finding(message=f"scenario {s}: {pct(sum(v) / len(v))} correct over {len(v)} "
                                                f"samples, below {pct(params.min_accuracy)}",
                                        example_ids=wrong[:20], data={"scenario": s}))
        return self.result(status, headline, metrics, findings)
