"""Crystallisation: a checkpoint's verified, de-duplicated outputs join the validated set with provenance."""

from __future__ import annotations

import json

import pytest

from phasecheck.training.harvest import harvest
from support import make_task, write_validated_set

pytestmark = pytest.mark.usefixtures("isolated_cache")


def test_harvest_adds_verified_unique_outputs_with_provenance(tmp_path, tiny_model_dir):
    from phasecheck.grading import Grader
    from phasecheck.records import Example
    from phasecheck.training.checkpoint import save_checkpoint
    from phasecheck.training.common import load_policy

    task = make_task(tmp_path / "t", tiny_model_dir, n_prompts=4)
    write_validated_set(task)
    ckpt = save_checkpoint(load_policy(str(tiny_model_dir)), tmp_path / "runs", step=7, meta={"kind": "grpo"})
    path = task.base_dir / "reports" / "validated_set" / "validated.jsonl"
    before = path.read_text().splitlines()
    strict = harvest(task, ckpt, n=8, temperature=1.0, max_new_tokens=6)
    # The random model rarely stops inside 6 tokens: truncated completions are dropped by default.
    assert strict.truncated > 0 and strict.passed <= 32 - strict.truncated and strict.added <= strict.passed
    before = path.read_text().splitlines()
    res = harvest(task, ckpt, n=8, temperature=1.0, max_new_tokens=6, keep_truncated=True, seed=100)
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert [json.dumps(json.loads(x)) for x in before] == [json.dumps(r) for r in rows[: len(before)]]
    new = rows[len(before) :]
    assert res.sampled == 32 and len(new) == res.added <= res.passed
    assert new, "the regex verifier ([0-9] anywhere) should pass some random completions"
    with Grader(task) as grader:
        grades = grader.grade_many([(r["completion"], Example(id=r["id"], prompt=r["prompt"])) for r in new])
    assert all(g.correct for g in grades)
    assert len({(r["id"], r["completion"].strip()) for r in new}) == len(new)
    assert all(
        r["provenance"]["step"] == 7 and r["provenance"]["source"] == "model" and r["provenance"]["model"] for r in new
    )
    again = harvest(task, ckpt, n=8, temperature=1.0, max_new_tokens=6, keep_truncated=True, seed=100)  # same seed
    assert again.added == 0 and len(path.read_text().splitlines()) == len(rows)
