"""The per-prompt table: pass rate and interval, the banded reward's spread, the zero-variance chance at G."""

from __future__ import annotations

import json
import math

import pytest

from phasecheck.evidence import GradedSample
from phasecheck.prompt_table import ALWAYS, LEARNABLE, NEVER, prompt_table
from phasecheck.records import Example, Grade, Outcome, Sample
from phasecheck.runner import CheckOptions, check_task
from phasecheck.task import load_task
from support import write_project


def _graded(example_id: str, rewards: list[float], correct: list[bool]) -> list[GradedSample]:
    ex = Example(id=example_id, prompt="p", reference="r", scenario="s")
    return [
        GradedSample(
            Sample(example_id, 0, i, i, "c"),
            ex,
            Grade(correct=ok, reward=r, outcome=Outcome.CORRECT if ok else Outcome.WRONG),
        )
        for i, (r, ok) in enumerate(zip(rewards, correct))
    ]


def test_rows_say_rate_interval_spread_zero_variance_and_class():
    graded = (
        _graded("half", [1, 1, 0, 0], [True, True, False, False])
        + _graded("none", [0, 0, 0, 0], [False] * 4)
        + _graded("all", [1, 1, 1, 1], [True] * 4)
        + _graded("partial", [0.5, 0, 0, 0], [False] * 4)  # wrong every time, yet its rewards differ
    )
    rows = {r["id"]: r for r in prompt_table(graded, group_size=2)}
    half = rows["half"]
    assert half["pass_rate"] == 0.5 and half["class"] == LEARNABLE
    assert half["pass_rate_ci"][0] < 0.5 < half["pass_rate_ci"][1]
    assert half["reward_mean"] == 0.5 and half["reward_std"] == pytest.approx(0.5)
    assert half["zero_variance"] == pytest.approx(2 / math.comb(4, 2))  # C(2,2) + C(2,2) over C(4,2)
    assert rows["none"]["class"] == NEVER and rows["none"]["zero_variance"] == 1.0
    assert rows["all"]["class"] == ALWAYS and rows["all"]["pass_rate_ci"][0] > 0.3
    # GRPO's signal is the banded reward's, not correctness: a never-solved prompt with partial credit
    # still has groups with reward variance.
    assert rows["partial"]["class"] == NEVER and rows["partial"]["zero_variance"] == pytest.approx(3 / 6)
    assert all(r["zero_variance_exact"] for r in rows.values())


def test_fewer_samples_than_the_group_is_an_upper_bound_said_so():
    rows = prompt_table(_graded("q", [1, 0], [True, False]), group_size=8)
    assert rows[0]["zero_variance_exact"] is False and rows[0]["group_size"] == 8


def test_check_writes_the_table_beside_the_verdict(tmp_path):
    task = load_task(write_project(tmp_path, accuracy_fn=lambda i, r, j: i % 2 == 0 or j == 0))
    verdict, path = check_task(task, CheckOptions(out_dir=tmp_path / "out"))
    rows = [json.loads(line) for line in (path.parent / verdict.artifacts["prompts"]).read_text().splitlines()]
    assert len(rows) == 20 and [r["id"] for r in rows[:2]] == ["q0", "q1"]
    assert rows[0]["class"] == ALWAYS and rows[1]["class"] == LEARNABLE and rows[1]["pass_rate"] == 0.5
    assert rows[0]["group_size"] == 4  # the conservative preset's G, as `train grpo` would use
