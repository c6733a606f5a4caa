"""The runner: planning, evidence gathered once and frozen, error/skip handling, and a whole run from files."""

from __future__ import annotations

import json

import pytest

from phasecheck import plugins
from phasecheck.errors import ConfigError, DataError
from phasecheck.evidence import Evidence
from phasecheck.results import Phase, Status
from phasecheck.runner import CheckOptions, PlannedCheck, apply_overrides, check_task, plan_checks, run_check
from phasecheck.state import newest_verdict
from phasecheck.task import load_task
from support import Boom, write_project


def test_plan_rejects_unknown_ids_and_bad_params_before_running(tmp_path):
    task = load_task(write_project(tmp_path))
    with pytest.raises(ConfigError, match="did you mean 'contamination'"):
        plan_checks(task, only=["contamnation"])
    bad = task.model_copy(deep=True)
    bad.checks["contamination"] = {"max_rate": "lots"}
    with pytest.raises(
        ConfigError, match=r"phasecheck.yaml: checks.contamination.max_rate: Input should be a valid number"
    ):
        plan_checks(bad)
    planned = plan_checks(task, only=["diversity"])
    assert [p.id for p in planned] == ["diversity"] and not planned[0].blocking


def test_a_raising_check_becomes_error_and_the_run_goes_on(tmp_path, boom_plugin):
    task = load_task(write_project(tmp_path))
    planned = PlannedCheck("boom", plugins.load("checks", "boom"), Boom.Params(), True)
    with Evidence(task) as ev:
        res, outputs = run_check(planned, ev.view())
    assert outputs == []
    assert res.status is Status.ERROR and res.blocking
    assert "boom" in res.headline and res.metrics["error"] == "RuntimeError('kaboom')"


def test_evidence_is_computed_once_and_shared(tmp_path):
    task = load_task(write_project(tmp_path))
    ev = Evidence(task)
    try:
        first = ev.graded_samples
        assert ev.graded_samples is first and len(first) == 80
        assert ev.graded_demonstrations is ev.graded_demonstrations
    finally:
        ev.close()


def test_data_only_run_checks_the_dataset_and_skips_sample_checks(tmp_path):
    task = load_task(write_project(tmp_path, samples=False))
    verdict, path = check_task(task, CheckOptions(out_dir=tmp_path / "out"))
    by = {c.id: c for c in verdict.checks}
    assert by["validated_set"].status is Status.PASS and by["contamination"].status is Status.PASS
    for cid in ("base_model", "stability", "grpo_readiness", "diversity"):
        assert by[cid].status is Status.SKIP and "no model and no samples" in by[cid].headline
    assert verdict.status is Phase.GRPO_PHASE  # a skipped blocking check: graduation not shown
    assert "samples" not in verdict.artifacts and verdict.artifacts["validated"] == "validated.jsonl"


def test_whole_run_writes_verdict_samples_and_records_it(tmp_path):
    task = load_task(write_project(tmp_path))
    verdict, path = check_task(task, CheckOptions(out_dir=tmp_path / "out"))
    assert verdict.status is Phase.GRADUATED, [(c.id, c.status, c.headline) for c in verdict.checks]
    rows = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 80 and rows[0]["prompt"] == "Double the number 0." and rows[0]["correct"] is True
    assert {"outcome", "reward", "detail", "reference", "scenario", "seed"} <= set(rows[0])
    assert verdict.artifacts == {"samples": "samples.jsonl", "validated": "validated.jsonl", "prompts": "prompts.jsonl"}
    assert newest_verdict(task)["digest"] == verdict.fingerprint.digest
    again, _ = check_task(task, CheckOptions(out_dir=tmp_path / "out2"))
    a, b = verdict.dump(), again.dump()
    a.pop("created_at"), b.pop("created_at")
    assert a == b


def test_bad_input_fails_the_run_not_a_check(tmp_path):
    root = write_project(tmp_path).parent
    (root / "train.jsonl").write_text('{"id": "t0", "prompt": "p"}\n{not json\n')
    with pytest.raises(DataError, match="train.jsonl"):
        check_task(load_task(root / "phasecheck.yaml"), CheckOptions(out_dir=tmp_path / "out"))


def test_overrides_apply_to_a_copy(tmp_path):
    task = load_task(write_project(tmp_path))
    other = apply_overrides(task, runs=7, n=3, seed=11, model="some/model")
    assert (other.sampling.runs, other.sampling.n, other.sampling.seed, other.model) == (7, 3, 11, "some/model")
    assert task.sampling.runs == 2 and task.model is None
    with pytest.raises(ConfigError, match="did you mean"):
        apply_overrides(task, engine="transformer")
    with pytest.raises(ConfigError, match="not found"):
        apply_overrides(task, samples=tmp_path / "missing.jsonl")


def test_after_grpo_needs_a_recorded_checkpoint(tmp_path):
    task = load_task(write_project(tmp_path))
    with pytest.raises(ConfigError, match="no GRPO checkpoint recorded"):
        check_task(task, CheckOptions(after_grpo=True, out_dir=tmp_path / "out"))
