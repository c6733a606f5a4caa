"""The contamination check on real data nobody here wrote: clean sets pass, planted invented tokens fail."""

from __future__ import annotations

import json
import random

import pytest

from phasecheck.checks.contamination import Contamination
from phasecheck.evidence import Evidence
from phasecheck.records import Demonstration
from phasecheck.results import Status
from phasecheck.task import TaskSpec
from support import real_data_dir

REAL = real_data_dir()
pytestmark = pytest.mark.skipif(REAL is None, reason="../shared/data/real is not here")
GSM8K = {"kind": "numeric", "extract": {"after": "####"}}


def _load(name: str, limit: int | None = None) -> list[Demonstration]:
    with open(REAL / f"{name}.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(limit or 10**9), fh)]
    return [
        Demonstration(id=r["id"], prompt=r["question"], reference=r["answer"], completion=r["response"]) for r in rows
    ]


def _check(demos, verifier):
    task = TaskSpec.model_validate({"name": "real", "grader": {"verifier": verifier}})
    ev = Evidence(task, demonstrations=demos)
    try:
        return Contamination().run(ev, Contamination.Params(max_example_ids=10_000))
    finally:
        ev.close()


def _plant(demos, sentence: str, share: float, seed: int, marker: str = "####"):
    """`sentence` at a random line of a seeded share of rows, whose final answers are then made wrong."""
    rnd = random.Random(seed)
    pick = set(rnd.sample(range(len(demos)), round(share * len(demos))))
    out = []
    for i, d in enumerate(demos):
        if i in pick:
            lines = d.completion.split("\n")
            lines.insert(rnd.randrange(len(lines)), sentence)
            head, _ = "\n".join(lines).rsplit(marker, 1)
            d = Demonstration(**{**d.to_dict(), "completion": f"{head}{marker} {2 * int(d.reference) + 1}"})
        out.append(d)
    return out, {demos[i].id for i in pick}


def test_gsm8k_human_solutions_are_not_contaminated():
    res = _check(_load("gsm8k_train_human", 3000), GSM8K)
    assert res.status is Status.PASS, [f.message for f in res.findings]


def test_real_model_solutions_are_not_contaminated():
    res = _check(_load("gsm8k_test_model_solutions", 2000), {"kind": "numeric", "extract": {"after": "A:"}})
    assert res.status is not Status.FAIL, [f.message for f in res.findings]


@pytest.mark.parametrize(
    "sentence,token",
    [
        ("Using golden_hour_sun = 0.7 here.", "golden_hour_sun"),
        ("Using SunAngleFactor = 0.7 here.", "SunAngleFactor"),
        (r"Using $\varsigma_{g} = 0.7$ here.", r"\varsigma_g"),
        ("Using the golden hour coefficient of 0.7 here.", "golden hour coefficient"),
    ],
)
def test_planted_tokens_are_found_with_their_rows_and_nothing_else(sentence, token):
    demos, bad = _plant(_load("gsm8k_train_human", 2000), sentence, 0.05, seed=len(token))
    res = _check(demos, GSM8K)
    assert res.status is Status.FAIL
    assert [f.data["token"] for f in res.findings] == [token]
    f = res.findings[0]
    assert set(f.example_ids) == bad and f.data["verifier"] == "tied"
    assert "rows with it pass the verifier 0% vs" in f.message


@pytest.mark.slow
def test_olympiad_latex_solutions_are_not_contaminated():
    res = _check(_load("olympiadbench_human"), {"kind": "math", "extract": "last_line"})
    assert res.status is not Status.FAIL, [f.message for f in res.findings]
