"""Verdict rules, fingerprints and saving."""

from __future__ import annotations

import json

import pytest

from phasecheck.errors import DataError
from phasecheck.results import ACTIONS, CheckResult, Phase, Status
from phasecheck.task import TaskSpec
from phasecheck.verdict import build_verdict, decide, fingerprint, load_verdict, save_verdict

BLOCKING = ["a", "b"]


def r(cid: str, status: Status, blocking: bool = True) -> CheckResult:
    return CheckResult(id=cid, question=f"{cid}?", status=status, headline="h", blocking=blocking)


@pytest.mark.parametrize(
    "statuses,advisory,fail_on_warn,phase",
    [
        ((Status.PASS, Status.PASS), Status.PASS, False, Phase.GRADUATED),
        ((Status.PASS, Status.WARN), Status.PASS, False, Phase.GRADUATED),
        ((Status.PASS, Status.WARN), Status.PASS, True, Phase.GRPO_PHASE),
        ((Status.PASS, Status.PASS), Status.WARN, True, Phase.GRPO_PHASE),  # advisory warns count too
        ((Status.PASS, Status.PASS), Status.WARN, False, Phase.GRADUATED),
        ((Status.PASS, Status.FAIL), Status.PASS, False, Phase.GRPO_PHASE),
        ((Status.PASS, Status.SKIP), Status.PASS, False, Phase.GRPO_PHASE),  # graduation not shown
        ((Status.FAIL, Status.ERROR), Status.PASS, False, Phase.INCONCLUSIVE),
        ((Status.PASS, Status.PASS), Status.ERROR, False, Phase.GRADUATED),  # an advisory error does not gate
    ],
)
def test_decide(statuses, advisory, fail_on_warn, phase):
    results = [r("a", statuses[0]), r("b", statuses[1]), r("adv", advisory, blocking=False)]
    assert decide(results, BLOCKING, fail_on_warn=fail_on_warn) is phase


def test_a_blocking_check_that_did_not_run_blocks_graduation():
    assert decide([r("a", Status.PASS)], BLOCKING) is Phase.GRPO_PHASE


def _task(tmp_path, **extra) -> TaskSpec:
    if not (tmp_path / "eval.jsonl").exists():
        (tmp_path / "eval.jsonl").write_text('{"id": "1", "prompt": "p", "reference": "r"}\n')
    spec = TaskSpec.model_validate({"name": "fp", "data": {"eval": str(tmp_path / "eval.jsonl")}, **extra})
    spec.source = tmp_path / "task.yaml"
    return spec


def test_fingerprint_is_stable_and_moves_with_each_input(tmp_path):
    a = fingerprint(_task(tmp_path), model_identity="m1")
    assert a == fingerprint(_task(tmp_path), model_identity="m1")
    assert fingerprint(_task(tmp_path), model_identity="m2").digest != a.digest
    assert fingerprint(_task(tmp_path, sampling={"seed": 5}), model_identity="m1").sampling != a.sampling
    assert (
        fingerprint(_task(tmp_path, checks={"base_model": {"min_accuracy": 0.9}}), model_identity="m1").task != a.task
    )
    (tmp_path / "eval.jsonl").write_text('{"id": "1", "prompt": "p", "reference": "changed"}\n')
    b = fingerprint(_task(tmp_path), model_identity="m1")
    assert b.data["eval"] != a.data["eval"] and b.digest != a.digest


def test_fingerprint_does_not_depend_on_where_the_checkout_lives(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    assert fingerprint(_task(one), model_identity="m").digest == fingerprint(_task(two), model_identity="m").digest


def test_fingerprint_does_not_depend_on_the_checkout_when_data_sits_beside_the_task_dir(tmp_path):
    """The examples' layout: tasks/name.yaml reads ../data/eval.jsonl, outside the task file's directory."""
    digests = []
    for root in (tmp_path / "one", tmp_path / "two"):
        (root / "data").mkdir(parents=True)
        (root / "tasks").mkdir()
        (root / "data" / "eval.jsonl").write_text('{"id": "1", "prompt": "p", "reference": "r"}\n')
        spec = TaskSpec.model_validate(
            {"name": "fp", "data": {"eval": str(root / "tasks" / ".." / "data" / "eval.jsonl")}}
        )
        spec.source = root / "tasks" / "task.yaml"
        digests.append(fingerprint(spec, model_identity="m").digest)
    assert digests[0] == digests[1]


def test_saved_verdict_round_trips_with_sorted_keys(tmp_path):
    task = _task(tmp_path)
    v = build_verdict(
        task,
        [r("validated_set", Status.FAIL)],
        fingerprint(task, model_identity=None),
        created_at="2026-01-01T00:00:00Z",
        artifacts={"samples": "samples.jsonl"},
    )
    assert v.status is Phase.GRPO_PHASE and v.action == ACTIONS[Phase.GRPO_PHASE]
    path = save_verdict(v, tmp_path / "out" / "verdict.json")
    text = path.read_text()
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert json.loads(text)["schema"] == "phasecheck.verdict/1"
    assert load_verdict(path) == v
    # The json reporter writes the same file: one serialisation, the same bytes.
    from phasecheck.reports import render

    assert render(v, "json") == text


def test_load_verdict_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.json: no such verdict file"):
        load_verdict(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"task": 1}')
    with pytest.raises(DataError, match="bad.json: schema None is not 'phasecheck.verdict/1'"):
        load_verdict(bad)
