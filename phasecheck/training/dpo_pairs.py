"""Preference pairs for targeted DPO, from graded samples of the model being trained: per prompt a verified-correct
completion over a wrong one, the wrong ones a finding names first, then the fluent ones; each pair carries its
scenario's weight and where both completions came from, and is written to pairs.jsonl."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..jsonl import json_lines, write_jsonl
from ..names import Artifact
from ..records import Example, Outcome
from ..results import Verdict, load_verdict
from ..state import newest_run, newest_verdict
from ..task import DPOSpec, TaskSpec

__all__ = ["Flags", "PairSet", "build_pairs", "dpo_start_model", "graded_evidence", "read_pairs", "weighted_order"]

# How fluent a wrong completion is, most first: an answer that parsed but is wrong reads like a right one; a
# hedge or refusal less so; text with no answer in it least.
_FLUENCY = {Outcome.WRONG.value: 0, Outcome.HEDGED.value: 1, Outcome.REFUSED.value: 2, Outcome.UNPARSED.value: 3}
_PLAIN = {"wrong": "fluent: parsed but wrong", "hedged": "hedged", "refused": "refused", "unparsed": "no answer parsed"}
_SAMPLE_REF = re.compile(r"^(?P<id>.+) \(run (?P<run>\d+), #(?P<index>\d+)\)$")  # contamination's "id (run r, #i)"


@dataclass(frozen=True)
class Flags:
    """What a verdict's findings name: flagged tokens (an invented name, the wrong vocabulary) and samples."""

    tokens: tuple[str, ...] = ()
    samples: frozenset[tuple[str, int, int]] = frozenset()  # (example id, run, index)

    @classmethod
    def from_verdict(cls, verdict: Verdict | None) -> Flags:
        if verdict is None:
            return cls()
        tokens: list[str] = []
        samples = set()
        for finding in (f for check in verdict.checks for f in check.findings):
            token = finding.data.get("token")
            if isinstance(token, str) and token.strip() and token not in tokens:
                tokens.append(token)
            for ref in finding.data.get("samples") or ():
                m = _SAMPLE_REF.match(str(ref))
                if m:
                    samples.add((m["id"], int(m["run"]), int(m["index"])))
        return cls(tuple(tokens), frozenset(samples))

    def why(self, row: dict[str, Any]) -> tuple[int, str]:
        """(tier, reason) a wrong sample is preferred as rejected: 0 named by a finding, 1 holds a flagged
        token, 2 named by neither."""
        if (str(row["example_id"]), int(row["run"]), int(row["index"])) in self.samples:
            return 0, "named by a finding"
        hits = [t for t in self.tokens if t in str(row["completion"])]
        if hits:
            return 1, f"contains flagged token {hits[0]!r}"
        return 2, _PLAIN.get(str(row.get("outcome")), str(row.get("outcome")))


@dataclass
class PairSet:
    """The pairs, and what the samples held: prompts with pairs, and those with no correct or no wrong sample."""

    pairs: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    per_scenario: dict[str, int] = field(default_factory=dict)  # pairs per scenario, before weights

    def write(self, path: Path) -> Path:
        return write_jsonl(path, self.pairs)


def build_pairs(
    rows: Iterable[dict[str, Any]],
    examples: dict[str, Example],
    spec: DPOSpec,
    flags: Flags | None = None,
    *,
    samples_path: str | None = None,
) -> PairSet:
    """Pairs from graded sample rows (samples.jsonl): per prompt up to max_pairs_per_prompt of a correct completion
    over a distinct wrong one, ranked by `flags`, then fluency, then a completion that stopped over a cut one.

    A sample that could not be judged (correct is None) is neither chosen nor rejected."""
    flags = flags or Flags()
    by_prompt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if str(row["example_id"]) in examples:
            by_prompt[str(row["example_id"])].append(row)
    pairs: list[dict[str, Any]] = []
    counts = {"prompts": len(by_prompt), "with_pairs": 0, "no_correct": 0, "no_wrong": 0}
    for pid in sorted(by_prompt):
        group = by_prompt[pid]
        rng = random.Random(f"{spec.seed}:{pid}")  # a str seed is hashed stably across processes
        chosen = _distinct([r for r in group if r.get("correct") is True], rng, key=_stopped)
        rejected = _distinct(
            [r for r in group if r.get("correct") is False],
            rng,
            key=lambda r: (flags.why(r)[0], _FLUENCY.get(r.get("outcome"), 4), _stopped(r)),
        )
        counts["no_correct"] += not chosen
        counts["no_wrong"] += not rejected
        if not chosen or not rejected:
            continue
        counts["with_pairs"] += 1
        ex = examples[pid]
        for k, bad in enumerate(rejected[: spec.max_pairs_per_prompt]):
            pairs.append(_pair(ex, k, chosen[k % len(chosen)], bad, flags.why(bad)[1], spec, samples_path))
    per_scenario: dict[str, int] = defaultdict(int)
    for p in pairs:
        per_scenario[p["scenario"] or ""] += 1
    return PairSet(pairs, counts, dict(per_scenario))


def _stopped(row: dict[str, Any]) -> int:
    return 0 if row.get("finish_reason", "stop") == "stop" else 1


def _distinct(rows: list[dict[str, Any]], rng: random.Random, key) -> list[dict[str, Any]]:
    """`rows` with repeated texts dropped, sorted by `key`, ties in the seeded `rng`'s order."""
    rng.shuffle(rows)
    rows.sort(key=key)  # stable: the shuffle breaks ties
    seen: set[str] = set()
    out = []
    for r in rows:
        if r["completion"] not in seen:
            seen.add(r["completion"])
            out.append(r)
    return out


def _pair(
    ex: Example, k: int, good: dict, bad: dict, why: str, spec: DPOSpec, samples_path: str | None
) -> dict[str, Any]:
    def origin(r: dict) -> dict[str, Any]:
        keys = ("run", "index", "seed", "outcome", "reward", "finish_reason")
        return {key: r.get(key) for key in keys}

    return {
        "id": f"{ex.id}#{k}",
        "prompt_id": ex.id,
        "scenario": ex.scenario,
        "weight": spec.scenario_weights.get(ex.scenario or "", 1),
        "prompt": ex.prompt,
        "chosen": good["completion"],
        "rejected": bad["completion"],
        "chosen_from": origin(good),
        "rejected_from": origin(bad),
        "why_rejected": why,
        "model": bad.get("model") or good.get("model"),
        "samples": samples_path,
    }


def weighted_order(pairs: list[dict[str, Any]]) -> list[int]:
    """Indices into `pairs`, each repeated `weight` times: what one epoch trains on."""
    return [i for i, p in enumerate(pairs) for _ in range(int(p.get("weight", 1)))]


def read_pairs(path: Path) -> list[dict[str, Any]]:
    """The rows of a pairs.jsonl (a resumed run trains on the pairs it started with)."""
    pairs = [row for _, row in json_lines(path, "pairs file")]
    for n, p in enumerate(pairs, 1):
        if not isinstance(p, dict) or not all(isinstance(p.get(k), str) for k in ("chosen", "rejected")):
            raise DataError(f"{path}:{n}: a pair needs string `chosen` and `rejected`")
    return pairs


def dpo_start_model(task: TaskSpec, model: str | None = None) -> str:
    """The checkpoint DPO trains: `model`, else the newest GRPO checkpoint, else the task's model."""
    from ..errors import ConfigError

    run = newest_run(task, "grpo")
    start = model or (run["path"] if run else task.model)
    if not start:
        raise ConfigError(f"{task.source or task.name}: no GRPO checkpoint and no `model:` to train with DPO")
    return str(start)


def graded_evidence(task: TaskSpec, model: str, *, check_dir: Path) -> tuple[list[dict], Verdict, Path]:
    """(graded sample rows, their verdict, samples.jsonl) for `model`: the newest verdict's when it judged this
    model on the current task and data, else those of a fresh `check --after-grpo --model MODEL` into check_dir."""
    from ..runner import CheckOptions, check_task
    from ..sampling import model_identity_for
    from .gate import current_fingerprint, fingerprint_changes

    identity = model_identity_for(task.model_copy(update={"model": model}))
    entry = newest_verdict(task)
    verdict, where = (load_verdict(entry["path"]), Path(entry["path"])) if entry else (None, None)
    current = current_fingerprint(task, identity)
    if verdict is None or fingerprint_changes(verdict.fingerprint, current) or not _samples_of(verdict, where):
        verdict, where = check_task(task, CheckOptions(after_grpo=True, out_dir=check_dir), model_override=model)
    path = _samples_of(verdict, where)
    if path is None:
        raise DataError(f"{where}: the check saved no graded samples (samples.jsonl) to build DPO pairs from")
    return [row for _, row in json_lines(path, "samples file")], verdict, path


def _samples_of(verdict: Verdict, where: Path) -> Path | None:
    rel = verdict.artifacts.get(Artifact.SAMPLES)
    path = (where.parent / rel) if rel else None
    return path if path is not None and path.is_file() else None
