"""Judging the check results: the phase, its action line, the fingerprint, and saving verdict.json.

Rules: INCONCLUSIVE when a blocking check errored; GRADUATED only when every blocking check ran and
passed (warn counts as pass unless fail_on_warn); otherwise GRPO_PHASE. A blocking check that was
skipped or not run (`--only`) leaves graduation unshown, so the verdict is GRPO_PHASE, the safe reading."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import data_hashes
from .paths import utc_now
from .results import ACTIONS, CheckResult, Fingerprint, Phase, Status, Verdict, load_verdict
from .task import TaskSpec

__all__ = ["decide", "fingerprint", "build_verdict", "save_verdict", "load_verdict", "hash_json"]


def decide(results: Sequence[CheckResult], blocking: Sequence[str], *, fail_on_warn: bool = False) -> Phase:
    """The phase for a set of results; `fail_on_warn` makes a warn from any check (advisory too) a failure."""
    by_id = {r.id: r for r in results}
    if any(by_id[b].status is Status.ERROR for b in blocking if b in by_id):
        return Phase.INCONCLUSIVE
    ok = {Status.PASS} if fail_on_warn else {Status.PASS, Status.WARN}
    if fail_on_warn and any(r.status is Status.WARN for r in results):
        return Phase.GRPO_PHASE
    if blocking and all(b in by_id and by_id[b].status in ok for b in blocking):
        return Phase.GRADUATED
    return Phase.GRPO_PHASE


def hash_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _task_for_hash(task: TaskSpec) -> dict:
    """The normalised task with paths relative to the task file, so a moved checkout hashes the same.
    Data paths and the model are hashed by content/identity separately."""
    doc = task.normalised()
    base = task.base_dir
    for role in ("eval", "train", "samples"):
        doc["data"][role] = None if doc["data"].get(role) is None else _rel(doc["data"][role], base)
    if isinstance(doc["grader"].get("vocabulary"), str):
        doc["grader"]["vocabulary"] = _rel(doc["grader"]["vocabulary"], base)
    # Training settings do not change what a check measures; editing an SFT learning rate after a
    # GRADUATED check must not make that verdict stale.
    doc.pop("training", None)
    doc.pop("model", None)
    doc.pop("sampling", None)
    return doc


def _rel(p: str, base: Path) -> str:
    """`p` relative to `base`, with `..` when it lies outside (tasks/x.yaml reading ../data/ is common)."""
    try:
        return Path(os.path.relpath(Path(p).resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return Path(p).as_posix()


def fingerprint(task: TaskSpec, *, model_identity: str | None, version: str | None = None) -> Fingerprint:
    """Hashes of the normalised task, data files, model identity, sampling params and version."""
    from . import __version__

    version = version or __version__
    parts = {
        "task": hash_json(_task_for_hash(task)),
        "data": data_hashes(task),
        "model": model_identity,
        "sampling": hash_json(task.sampling.model_dump(mode="json")),
        "version": version,
    }
    return Fingerprint(**parts, digest=hash_json(parts))


def build_verdict(
    task: TaskSpec,
    results: Sequence[CheckResult],
    fp: Fingerprint,
    *,
    fail_on_warn: bool = False,
    command: Sequence[str] = (),
    artifacts: dict[str, str] | None = None,
    model: str | None = None,
    created_at: str | None = None,
    grading: dict[str, dict[str, int]] | None = None,
) -> Verdict:
    phase = decide(results, task.gate.blocking, fail_on_warn=fail_on_warn)
    created = created_at or utc_now()
    return Verdict(
        task=task.name,
        task_file=str(task.source) if task.source else None,
        status=phase,
        action=ACTIONS[phase],
        checks=list(results),
        fingerprint=fp,
        created_at=created,
        command=list(command),
        model=model,
        artifacts=dict(sorted((artifacts or {}).items())),
        grading=dict(grading or {}),
    )


def save_verdict(verdict: Verdict, path: Path) -> Path:
    """verdict.json, atomically, with sorted keys so identical runs give identical bytes."""
    from .atomic import atomic_write_text

    return atomic_write_text(path, verdict.to_json())
