"""Crystallisation: sample a checkpoint on the task's prompts, keep the completions the verifier
passes, drop duplicates, and add them to the validated set with provenance (model, step)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write_text
from ..jsonl import dumps_jsonl, json_lines
from ..task import TaskSpec
from .checkpoint import load_checkpoint_model
from .common import task_examples, task_grader

__all__ = ["harvest", "HarvestResult"]


@dataclass
class HarvestResult:
    path: Path  # the validated set written
    sampled: int
    passed: int
    added: int  # passed, minus duplicates of each other and of rows already in the set
    truncated: int = 0  # completions cut by max_new_tokens (dropped unless keep_truncated)


def _key(example_id: str, completion: str) -> tuple[str, str]:
    return str(example_id), re.sub(r"\s+", " ", completion).strip()


def harvest(
    task: TaskSpec,
    checkpoint: str | Path,
    *,
    validated: str | Path | None = None,
    n: int | None = None,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    seed: int = 0,
    examples: list | None = None,
    grader=None,
    keep_truncated: bool = False,
) -> HarvestResult:
    """Add the checkpoint's verified, de-duplicated outputs to `validated` (default: the newest
    verdict's validated set). Sampling uses the task's sampling settings unless overridden. A completion
    cut by max_new_tokens is dropped by default: SFT would teach it to stop where it never did."""
    from ..sampling.models import model_identity
    from .sft import validated_set_path

    path = validated_set_path(task, validated)
    examples = list(examples) if examples is not None else task_examples(task)
    model, tok, meta = load_checkpoint_model(checkpoint)
    provenance = {
        "source": "model",
        "model": model_identity(checkpoint),
        "checkpoint": str(Path(checkpoint).resolve()),
        "step": meta.get("step"),
        "kind": meta.get("kind"),
    }
    gens = _sample(task, model, tok, examples, n=n, seed=seed, temperature=temperature, max_new_tokens=max_new_tokens)
    pairs = [
        (g.text, ex) for ex, row in zip(examples, gens) for g in row if keep_truncated or g.finish_reason != "length"
    ]
    truncated = sum(g.finish_reason == "length" for row in gens for g in row)
    with task_grader(task, grader) as judge:
        grades = judge.grade_many(pairs)
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    seen = _keys_in(path) if existing else set()
    new, passed = _passing_rows(pairs, grades, seen, provenance)
    if existing and not existing.endswith("\n"):
        existing += "\n"
    atomic_write_text(path, existing + dumps_jsonl(new))
    return HarvestResult(path, sum(len(r) for r in gens), passed, len(new), truncated)


def _sample(task: TaskSpec, model, tok, examples: list, *, n, seed, temperature, max_new_tokens) -> list:
    """n generations per example from the checkpoint, with the task's sampling settings where none is given."""
    from ..sampling.base import render_prompt
    from ..sampling.hf import generate

    sp = task.sampling
    return generate(
        model,
        tok,
        [render_prompt(tok, ex.prompt, sp.system_prompt) for ex in examples],
        n=n or sp.n,
        seeds=seed,
        temperature=sp.temperature if temperature is None else temperature,
        top_p=sp.top_p,
        max_new_tokens=max_new_tokens or sp.max_new_tokens,
        stop=sp.stop,
    )


def _keys_in(path: Path) -> set[tuple[str, str]]:
    """The (id, completion) keys of the rows already in the validated set at `path`."""
    seen = set()
    for _, row in json_lines(path, "validated set"):
        if isinstance(row, dict):  # a non-object row is left for SFT's reader to name
            seen.add(_key(row.get("id", ""), row.get("completion", "")))
    return seen


def _passing_rows(pairs: list, grades: list, seen: set, provenance: dict) -> tuple[list[dict], int]:
    """The rows to add and how many completions passed: each one the verifier passed, once, unless `seen`
    already holds it (`seen` gains the keys added)."""
    new, passed = [], 0
    for (text, ex), grade in zip(pairs, grades):
        if grade.correct is not True:
            continue
        passed += 1
        key = _key(ex.id, text)
        if key in seen:
            continue
        seen.add(key)
        new.append(
            {
                "id": ex.id,
                "prompt": ex.prompt,
                "completion": text,
                "reference": ex.reference,
                "scenario": ex.scenario,
                "provenance": {**provenance, "reward": grade.reward},
            }
        )
    return new, passed
