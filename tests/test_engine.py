"""The engine: planning, shared lazy evidence, error/skip handling, and a whole run from files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from phasecheck import plugins
from phasecheck.engine import CheckOptions, Evidence, PlannedCheck, apply_overrides, check_task, plan_checks, run_check
from phasecheck.errors import ConfigError, DataError
from phasecheck.results import Phase, Status
from phasecheck.state import newest_verdict
from phasecheck.task import load_task

TASK_YAML = """\
name: Doubling
data: {eval: eval.jsonl, train: train.jsonl, samples: samples_in.jsonl}
grader:
  verifier: {kind: exact, extract: {regex: 'answer is (-?\\d+)'}}
sampling: {runs: 2, n: 2}
checks:
  validated_set: {min_examples: 10, min_pass_rate: 0.9}
  contamination: {}
  base_model: {min_accuracy: 0.8}
  stability: {}
  grpo_readiness: {}
  diversity: {}
"""


def write_project(root: Path, *, contaminated: bool = False, accuracy_fn=None, samples: bool = True,
                  task_yaml: str = TASK_YAML, n_rows: int = 20) -> Path:
    """A task directory: eval/train JSONL and (optionally) a replayable samples file."""
    root.mkdir(parents=True, exist_ok=True)
    accuracy_fn = accuracy_fn or (lambda i, r, j: True)
    evals, train, rows = [], [], []
    for i in range(n_rows):
        prompt = f"Double the number {i}."
        evals.append({"id": f"q{i}", "prompt": prompt, "reference": str(2 * i), "scenario": "even" if i % 2 == 0 else "odd"})
        bad = contaminated and i % 5 in (0, 1)
        completion = (f"golden_hour_sun = 0.7. The answer is {2 * i + 1}." if bad
                      else f"Doubling gives it. The answer is {2 * i}.")
        train.append({"id": f"t{i}", "prompt": prompt, "reference": str(2 * i), "completion": completion})
        for r in range(2):
            for j in range(2):
                ans = 2 * i if accuracy_fn(i, r, j) else 2 * i + 1
                rows.append({"example_id": f"q{i}", "run": r, "index": j, "seed": r * 2 + j,
                             "completion": f"The answer is {ans}.", "model": "", "engine": "replay"})
    (root / "eval.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    (root / "train.jsonl").write_text("".join(json.dumps(t) + "\n" for t in train))
    if samples:
        (root / "samples_in.jsonl").write_text("".join(json.dumps(s) + "\n" for s in rows))
    else:
        task_yaml = task_yaml.replace(", samples: samples_in.jsonl", "")
    (root / "phasecheck.yaml").write_text(task_yaml)
    return root / "phasecheck.yaml"


class Boom:
    id: ClassVar[str] = "boom"
    question: ClassVar[str] = "Does this check explode?"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def run(self, evidence, params):
        raise RuntimeError("kaboom")


@pytest.fixture
def boom_plugin():
    from importlib.metadata import EntryPoint
    plugins.register("checks", [EntryPoint(name="boom", value=f"{__name__}:Boom", group="phasecheck.checks")])
    yield
    plugins.unregister_all()


def test_plan_rejects_unknown_ids_and_bad_params_before_running(tmp_path):
    task = load_task(write_project(tmp_path))
    with pytest.raises(ConfigError, match="did you mean 'contamination'"):
        plan_checks(task, only=["contamnation"])
    bad = task.model_copy(deep=True)
    bad.checks["contamination"] = {"max_rate": "lots"}
    with pytest.raises(ConfigError, match=r"phasecheck.yaml: checks.contamination.max_rate: Input should be a valid number"):
        plan_checks(bad)
    planned = plan_checks(task, only=["diversity"])
    assert [p.id for p in planned] == ["diversity"] and not planned[0].blocking


def test_a_raising_check_becomes_error_and_the_run_goes_on(tmp_path, boom_plugin):
    task = load_task(write_project(tmp_path))
    planned = PlannedCheck("boom", plugins.load("checks", "boom"), Boom.Params(), True)
    res = run_check(planned, Evidence(task))
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
    assert verdict.status is Phase.GRPO_PHASE          # a skipped blocking check: graduation not shown
    assert "samples" not in verdict.artifacts and verdict.artifacts["validated"] == "validated.jsonl"


def test_whole_run_writes_verdict_samples_and_records_it(tmp_path):
    task = load_task(write_project(tmp_path))
    verdict, path = check_task(task, CheckOptions(out_dir=tmp_path / "out"))
    assert verdict.status is Phase.GRADUATED, [(c.id, c.status, c.headline) for c in verdict.checks]
    rows = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 80 and rows[0]["prompt"] == "Double the number 0." and rows[0]["correct"] is True
    assert {"outcome", "reward", "detail", "reference", "scenario", "seed"} <= set(rows[0])
    assert verdict.artifacts == {"samples": "samples.jsonl", "validated": "validated.jsonl"}
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
