"""The replay engine: samples made elsewhere, checked to cover the plan exactly."""

from __future__ import annotations

import json

import pytest

from phasecheck.errors import DataError
from phasecheck.records import Example
from phasecheck.sampling import can_sample, model_identity_for, sample_task
from phasecheck.task import TaskSpec

EX = [Example(id="a", prompt="p"), Example(id="b", prompt="q")]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(runs=2, n=2, ids=("a", "b")):
    return [
        {"example_id": e, "run": r, "index": i, "seed": r * n + i, "completion": f"{e}{r}{i}", "n_tokens": 3}
        for e in ids
        for r in range(runs)
        for i in range(n)
    ]


def _task(path, **sampling):
    return TaskSpec(name="t", data={"samples": str(path)}, sampling={"runs": 2, "n": 2, **sampling})


def test_replay_returns_plan_order(tmp_path):
    rows = _rows(runs=3)
    path = _write(tmp_path / "s.jsonl", list(reversed(rows)))
    task = _task(path, batch_tokens=99)  # options of another engine are ignored by replay
    assert can_sample(task) and model_identity_for(task) is None
    res = sample_task(task, EX, progress=False)
    assert res.engine == "replay" and res.model is None
    assert [(s.example_id, s.run, s.index) for s in res.samples] == [
        (e, r, i) for e in "ab" for r in range(2) for i in range(2)
    ]  # run 2 is extra, unused
    assert res.samples[0].completion == "a00" and res.samples[0].engine == "replay"


def test_missing_samples_are_named(tmp_path):
    rows = [r for r in _rows() if not (r["example_id"] == "b" and r["run"] == 1)]
    path = _write(tmp_path / "s.jsonl", rows)
    with pytest.raises(DataError) as e:
        sample_task(_task(path), EX, progress=False)
    msg = str(e.value)
    assert str(path) in msg and "2 sample(s) missing" in msg and "('b', run 1, index 0)" in msg and "\n" not in msg


def test_unknown_examples_duplicates_and_bad_rows(tmp_path):
    path = _write(tmp_path / "s.jsonl", _rows() + _rows(ids=("zzz",)))
    with pytest.raises(DataError, match="1 sample example id.*'zzz'"):
        sample_task(_task(path), EX, progress=False)
    path = _write(tmp_path / "d.jsonl", _rows() + _rows()[:1])
    with pytest.raises(DataError, match="duplicate sample for example 'a' run 0 index 0"):
        sample_task(_task(path), EX, progress=False)
    path = _write(tmp_path / "bad.jsonl", _rows()[:1])
    path.write_text(path.read_text() + '{"example_id": "a", "run": 0}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing field 'index'"):
        sample_task(_task(path), EX, progress=False)
    path.write_text('{"example_id": "a", "run": 0, "index": 0, "completion": "x", "colour": 1}\n')
    with pytest.raises(DataError, match=r":1: unknown field 'colour'"):
        sample_task(_task(path), EX, progress=False)
    path.write_text("not json\n")
    with pytest.raises(DataError, match=r":1: invalid JSON"):
        sample_task(_task(path), EX, progress=False)
    with pytest.raises(DataError, match="samples file not found"):
        sample_task(_task(tmp_path / "none.jsonl"), EX, progress=False)
