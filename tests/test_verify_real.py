"""The math and numeric verifiers on real labelled data (GSM8K model solutions, GSM8K human solutions)."""

from __future__ import annotations

import json

import pytest

from phasecheck.grading import Grader
from phasecheck.records import Example
from phasecheck.task import TaskSpec
from support import real_data_dir

REAL = real_data_dir("gsm8k_test_model_solutions.jsonl")
pytestmark = pytest.mark.skipif(REAL is None, reason="../shared/data/real is not present")


def rows(name: str) -> list[dict]:
    with (REAL / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def grades(kind: str, data: list[dict]):
    task = TaskSpec.model_validate({"name": "real", "grader": {"verifier": {"kind": kind}, "workers": 2}})
    with Grader(task) as g:
        return g.grade_many([(r["response"], Example(id=r["id"], prompt="", reference=r["answer"])) for r in data])


@pytest.mark.parametrize("kind", ["numeric", "math"])
def test_model_solutions_agree_with_their_labels(kind):
    data = rows("gsm8k_test_model_solutions.jsonl")
    got = grades(kind, data)
    agree = sum((g.correct is True) == bool(r["is_correct"]) for g, r in zip(got, data))
    assert agree / len(data) >= 0.995, f"{kind}: {agree}/{len(data)} rows agree with is_correct"


@pytest.mark.parametrize("kind", ["numeric", "math"])
def test_human_solutions_pass_against_their_own_answers(kind):
    data = rows("gsm8k_train_human.jsonl")
    got = grades(kind, data)
    failed = [(r["id"], g.answer, g.detail) for g, r in zip(got, data) if g.correct is not True]
    assert len(failed) <= 0.005 * len(data), failed[:5]
