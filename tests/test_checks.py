"""The built-in checks on Evidence built directly from records (no files, no model)."""

from __future__ import annotations

import math

import pytest

from phasecheck.checks._common import pass_at_k, wilson
from phasecheck.checks.base_model import BaseModel
from phasecheck.checks.diversity import Diversity
from phasecheck.checks.grpo_readiness import GrpoReadiness
from phasecheck.checks.stability import Stability
from phasecheck.checks.validated_set import ValidatedSet
from phasecheck.evidence import Evidence, Unavailable
from phasecheck.records import Demonstration, Example, Sample
from phasecheck.results import CheckResult, Fingerprint, Phase, Status, Verdict
from phasecheck.task import TaskSpec

VERIFIER = {"kind": "exact", "extract": {"regex": r"answer is (-?\d+)"}}


def make_task(**extra) -> TaskSpec:
    return TaskSpec.model_validate({"name": "unit", "grader": {"verifier": VERIFIER}, **extra})


def make_examples(k: int = 10, scenario=lambda i: "even" if i % 2 == 0 else "odd") -> list[Example]:
    return [
        Example(id=f"e{i}", prompt=f"Compute item {i} twice.", reference=str(2 * i), scenario=scenario(i))
        for i in range(k)
    ]


def make_samples(examples, runs: int, n: int, correct) -> list[Sample]:
    """correct(i, run, index) -> bool decides whether the sample's answer is right."""
    out = []
    for i, ex in enumerate(examples):
        for r in range(runs):
            for j in range(n):
                ans = int(ex.reference) if correct(i, r, j) else int(ex.reference) + 1
                out.append(
                    Sample(
                        example_id=ex.id,
                        run=r,
                        index=j,
                        seed=r * n + j,
                        completion=f"The answer is {ans}.",
                        model="m",
                        engine="replay",
                    )
                )
    return out


def evidence(task=None, **kw) -> Evidence:
    return Evidence(task or make_task(), **kw)


# --- statistics --------------------------------------------------------------------------------


def test_pass_at_k_matches_the_combinatorial_formula():
    for n, c, k in [(8, 1, 2), (10, 3, 4), (5, 0, 1), (5, 5, 3), (16, 7, 16)]:
        expected = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(expected)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_wilson_interval_contains_the_proportion_and_narrows_with_n():
    lo, hi = wilson(8, 10)
    assert lo < 0.8 < hi
    lo2, hi2 = wilson(800, 1000)
    assert hi2 - lo2 < hi - lo
    assert wilson(0, 0) == (0.0, 1.0)


# --- base_model ----------------------------------------------------------------------------------


def test_base_model_passes_when_every_run_reaches_the_threshold():
    ex = make_examples(100)
    ev = evidence(examples=ex, samples=make_samples(ex, 4, 2, lambda i, r, j: i % 20 != 0))  # 95% each run
    res = BaseModel().run(ev, BaseModel.Params())
    assert res.status is Status.PASS
    lo, hi = res.metrics["pass_at_1_ci"]
    assert 0.8 < lo < 0.95 < hi < 1
    shown = f"{math.floor(100 * lo)}–{math.ceil(100 * hi)}%"  # rounded outward
    assert res.headline == f"4/4 runs ≥ 80% (best 95%, worst 95% [{shown}]); pass@1 95% (95% CI {shown})"


def test_base_model_says_when_the_sample_is_too_small_to_confirm_a_pass():
    ex = make_examples(10)
    ev = evidence(examples=ex, samples=make_samples(ex, 4, 2, lambda i, r, j: i != 0))  # 90% each run
    res = BaseModel().run(ev, BaseModel.Params())
    # Every run reaches 80%, but nine prompts solved and one not cannot confirm 80% for the task.
    assert res.status is Status.WARN
    assert res.headline.startswith("4/4 runs ≥ 80% (best 90%, worst 90% [")
    assert "; 10 prompts × 4 runs × 2 samples: too few to confirm ≥ 80%" in res.headline
    m = res.metrics
    assert m["per_run_accuracy"] == [0.9] * 4 and m["runs_passing"] == 4 and m["runs"] == 4
    assert m["pass_at_1"] == pytest.approx(0.9) and m["pass_at_1_ci"][0] < 0.8
    assert all(lo < 0.9 < hi for lo, hi in m["per_run_accuracy_ci"])
    assert set(m["pass_at_k"]) == {"1", "2", "4", "8"}
    assert m["per_scenario"]["even"] == {"accuracy": 0.8, "n": 40, "correct": 32}


def test_base_model_fails_with_one_bad_run_and_reports_pass_at_k():
    ex = make_examples(10)
    # Run 3 is wrong everywhere; prompt e1 is right in exactly one sample of 8.
    ev = evidence(examples=ex, samples=make_samples(ex, 4, 2, lambda i, r, j: r != 3 and (i != 1 or (r, j) == (0, 0))))
    res = BaseModel().run(ev, BaseModel.Params(min_accuracy=0.8))
    assert res.status is Status.FAIL
    assert res.headline.startswith("3/4 runs ≥ 80%")
    assert res.metrics["per_run_accuracy"][3] == 0.0
    p2 = res.metrics["pass_at_k"]["2"]
    # e1: c=1 of 8 -> 0.25; eight prompts with c=6 of 8 -> 1 - C(2,2)/C(8,2); e0..: see formula.
    expected = (0.25 + 9 * (1 - 1 / 28)) / 10
    assert p2 == pytest.approx(expected)


def test_sample_checks_skip_without_samples():
    ev = evidence(examples=make_examples(3))
    with pytest.raises(Unavailable, match="no model and no samples"):
        BaseModel().run(ev, BaseModel.Params())


# --- stability -------------------------------------------------------------------------------------


def test_stability_agreement_flip_rate_and_interval():
    ex = make_examples(10)
    # e0 and e1 flip between runs; the rest are always right.
    ev = evidence(examples=ex, samples=make_samples(ex, 4, 1, lambda i, r, j: i > 1 or r % 2 == 0))
    res = Stability().run(ev, Stability.Params())
    m = res.metrics
    assert m["flip_rate"] == pytest.approx(0.2)
    assert m["agreement"] == pytest.approx((8 + 2 * 0.5) / 10)
    lo, hi = m["accuracy_ci"]
    assert lo < m["accuracy"] < hi
    alo, ahi = m["agreement_ci"]
    assert alo < 0.8 < m["agreement"] < ahi
    # Agreement 90% over 10 prompts reaches the bar, but its interval does not: a warning, said why.
    assert res.status is Status.WARN and "too few to confirm ≥ 80%" in res.headline
    assert res.findings[0].example_ids == ["e0", "e1"]
    strict = Stability().run(ev, Stability.Params(min_agreement=0.95))
    assert strict.status is Status.FAIL


def test_stability_names_regressed_prompts_against_an_earlier_verdict():
    ex = make_examples(20)
    old_ev = evidence(examples=ex, samples=make_samples(ex, 2, 2, lambda i, r, j: True))
    old = Stability().run(old_ev, Stability.Params())
    fp = Fingerprint(task="t", sampling="s", version="0", digest="d")
    previous = Verdict(
        task="unit", status=Phase.GRADUATED, action="", checks=[old], fingerprint=fp, created_at="2020-01-01T00:00:00Z"
    )
    new_ev = evidence(examples=ex, samples=make_samples(ex, 2, 2, lambda i, r, j: i not in (2, 4)), previous=previous)
    res = Stability().run(new_ev, Stability.Params(min_accuracy=0.4))
    assert res.metrics["regressed"] == ["e2", "e4"]
    assert res.status is Status.WARN
    assert "2 regressed" in res.headline


# --- grpo_readiness and diversity ------------------------------------------------------------------


def test_grpo_readiness_warns_when_groups_would_teach_nothing():
    ex = make_examples(10)
    ev = evidence(examples=ex, samples=make_samples(ex, 2, 2, lambda i, r, j: i == 0))
    res = GrpoReadiness().run(ev, GrpoReadiness.Params())
    m = res.metrics
    assert m["group_size"] == 4
    assert m["never_solved"] == 9 and m["always_solved"] == 1 and m["sometimes_solved"] == 0
    assert m["zero_variance_share"] == pytest.approx(1.0)
    assert res.status is Status.WARN
    assert "warm start" in res.findings[0].message


def test_grpo_readiness_uses_the_task_group_size_and_passes_with_mixed_prompts():
    ex = make_examples(40)
    task = make_task(training={"grpo": {"group_size": 8}})
    ev = evidence(task, examples=ex, samples=make_samples(ex, 2, 4, lambda i, r, j: j % 2 == 0))  # 4 of 8 right
    res = GrpoReadiness().run(ev, GrpoReadiness.Params())
    m = res.metrics
    assert m["group_size"] == 8 and m["group_size_source"] == "training.grpo.group_size" and m["exact"]
    # 8 samples, 4 right: no group of 8 drawn from them is all equal (the plug-in would say 2 * 0.5**8).
    assert m["zero_variance_share"] == 0.0 and m["zero_variance_ci"][1] < 0.5
    assert res.status is Status.PASS and "0% (95% CI 0–" in res.headline


def test_grpo_readiness_uses_the_preset_group_size_and_says_when_samples_are_fewer_than_g():
    ex = make_examples(30)
    task = make_task(training={"grpo": {"preset": "none"}})
    ev = evidence(task, examples=ex, samples=make_samples(ex, 2, 2, lambda i, r, j: j == 0))
    res = GrpoReadiness().run(ev, GrpoReadiness.Params())
    m = res.metrics
    assert (m["group_size"], m["group_size_source"], m["estimated_at"], m["exact"]) == (
        8,
        "training.grpo.preset none",
        4,
        False,
    )
    assert res.headline.startswith("at most 0% (CI up to ")
    assert "4 samples a prompt < G, so estimated at G=4" in res.headline
    assert any("upper bound for 8" in f.message for f in res.findings)


def test_diversity_flags_collapse_onto_one_wrong_answer():
    ex = make_examples(5)
    ev = evidence(examples=ex, samples=make_samples(ex, 2, 2, lambda i, r, j: False))
    res = Diversity().run(ev, Diversity.Params())
    assert res.status is Status.WARN
    assert res.metrics["distinct_ratio"] == 0.0 and res.metrics["headroom"] == 0.0
    assert res.findings[1].example_ids == [e.id for e in ex]


def test_diversity_passes_when_samples_differ_and_pass_at_k_adds_headroom():
    ex = make_examples(5)
    ev = evidence(examples=ex, samples=make_samples(ex, 2, 2, lambda i, r, j: j == 0))
    res = Diversity().run(ev, Diversity.Params())
    assert res.status is Status.PASS
    assert res.metrics["headroom"] == pytest.approx(1.0 - 0.5)


# --- validated_set -----------------------------------------------------------------------------------


def _demos(k: int) -> list[Demonstration]:
    out = []
    for i in range(k):
        ok = i % 10 != 9
        out.append(
            Demonstration(
                id=f"d{i}",
                prompt=f"Compute item {i} twice.",
                reference=str(2 * i),
                scenario="even" if i % 2 == 0 else "odd",
                source="train.jsonl",
                row=i + 1,
                completion=f"Twice {i} makes it. The answer is {2 * i if ok else -1}.",
            )
        )
    return out


def test_validated_set_verifies_dedups_and_writes_provenance(tmp_path):
    demos = _demos(20)
    demos.append(Demonstration(**{**demos[0].to_dict(), "id": "dup-exact", "row": 21}))
    demos.append(
        Demonstration(
            **{**demos[2].to_dict(), "id": "dup-near", "row": 22, "completion": "twice 2 makes it... The answer is 4"}
        )
    )
    view = evidence(demonstrations=demos).view(reads_samples=False)
    params = ValidatedSet.Params(min_examples=10, min_pass_rate=0.8)
    measured = ValidatedSet().measure(view, params)
    res = ValidatedSet().judge(measured, params)
    m = res.metrics
    assert (m["candidates"], m["passed"], m["duplicates"], m["validated"]) == (22, 20, 2, 18)
    assert m["per_scenario"]["even"]["duplicates"] == 2
    assert m["per_scenario"]["odd"]["pass_rate"] == pytest.approx(8 / 10)
    assert res.status is Status.PASS and res.headline.startswith("18 examples confirmed")
    [out] = measured.outputs
    rows = out.rows
    assert (out.artifact, out.filename) == ("validated", "validated.jsonl")
    assert len(rows) == 18 and rows[0]["provenance"] == {"source": "train.jsonl", "row": 1}
    assert {"dup-exact", "dup-near", "d9", "d19"}.isdisjoint(r["id"] for r in rows)
    # The same measurement judged at a stricter threshold: conditions read metrics only.
    strict = ValidatedSet().judge(measured, ValidatedSet.Params(min_examples=10, min_pass_rate=0.95))
    assert strict.status is Status.FAIL and "need 95% passing" in strict.headline


def test_validated_set_after_grpo_takes_verified_model_outputs(tmp_path):
    ex = make_examples(6)
    samples = make_samples(ex, 1, 2, lambda i, r, j: j == 0)
    samples = [s if s.index == 0 else Sample(**{**s.to_dict(), "completion": "The answer is 999."}) for s in samples]
    ev = evidence(examples=ex, samples=samples, after_grpo={"model": "abc123", "step": 40, "path": "runs/x"})
    params = ValidatedSet.Params(min_examples=6)
    measured = ValidatedSet().measure(ev.view(reads_samples=False), params)
    res = ValidatedSet().judge(measured, params)
    assert res.status is Status.PASS and res.metrics["model_outputs"] == 6
    assert res.metrics["pass_rate"] is None and "6 of them the checkpoint's verified samples" in res.headline
    row = measured.outputs[0].rows[0]
    assert row["provenance"] == {"model": "abc123", "step": 40, "run": 0, "index": 0, "seed": 0}


def test_validated_set_crystallises_the_models_own_verified_samples_when_asked():
    """Rejection sampling: with no demonstrations, the samples that pass the verifier (one per distinct
    completion and prompt) are the set, with provenance, and the headline says where they came from."""
    ex = make_examples(8)
    samples = make_samples(ex, 2, 2, lambda i, r, j: i < 6)  # 6 prompts always right, 2 never
    params = ValidatedSet.Params(min_examples=6, from_samples=True)
    assert ValidatedSet.reads_samples(params) and not ValidatedSet.reads_samples(ValidatedSet.Params())
    measured = ValidatedSet().measure(evidence(examples=ex, samples=samples).view(), params)
    res = ValidatedSet().judge(measured, params)
    m = res.metrics
    # 24 correct samples, but a prompt's 4 identical completions are one example.
    assert (m["model_outputs"], m["validated"], m["duplicates"]) == (24, 6, 18)
    assert m["model_outputs_from"] == "rejection_sampling" and m["pass_rate"] is None
    assert res.status is Status.PASS and "6 of them the model's own verified samples" in res.headline
    row = measured.outputs[0].rows[0]
    assert row["provenance"] == {"model": "m", "source": "rejection_sampling", "run": 0, "index": 0, "seed": 0}
    # Off by default: the same evidence without it has nothing to validate.
    off = ValidatedSet().run(evidence(examples=ex, samples=samples), ValidatedSet.Params(min_examples=6))
    assert off.status is Status.FAIL and off.metrics["model_outputs"] == 0


def test_validated_set_from_samples_without_samples_says_so():
    res = ValidatedSet().run(
        evidence(demonstrations=_demos(12)), ValidatedSet.Params(min_examples=6, from_samples=True)
    )
    assert res.metrics["model_outputs"] == 0 and "model_outputs_from" not in res.metrics
    assert any("no samples" in f.message for f in res.findings)


def test_validated_set_fails_on_an_empty_dataset():
    res = ValidatedSet().run(evidence(demonstrations=[]), ValidatedSet.Params())
    assert res.status is Status.FAIL and isinstance(res, CheckResult)


def test_stability_fails_a_model_that_is_stably_wrong():
    ex = make_examples(10)
    res = Stability().run(
        evidence(examples=ex, samples=make_samples(ex, 2, 2, lambda i, r, j: False)), Stability.Params()
    )
    assert res.metrics["agreement"] == 1.0 and res.metrics["flip_rate"] == 0.0
    assert res.status is Status.FAIL
    assert "not on the correct pattern" in res.headline
