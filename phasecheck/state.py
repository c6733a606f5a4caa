"""Per-task state beside the task file: the history of verdicts and the registry of training runs.

Layout (under the task file's directory):
  .phasecheck/<slug>/verdicts.jsonl   one line per saved verdict: {path, created_at, status, digest}
  .phasecheck/<slug>/runs.jsonl       one line per checkpoint: {kind: grpo|sft, path, step, created_at}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .task import TaskSpec

__all__ = ["state_dir", "record_verdict", "newest_verdict", "record_run", "newest_run"]


def state_dir(task: TaskSpec) -> Path:
    return task.base_dir / ".phasecheck" / task.slug


def _append(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One short line per append with O_APPEND: concurrent writers cannot interleave within it.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line from a killed process is ignored
    return out


def record_verdict(task: TaskSpec, verdict_path: Path, *, created_at: str, status: str, digest: str) -> None:
    _append(
        state_dir(task) / "verdicts.jsonl",
        {"path": str(Path(verdict_path).resolve()), "created_at": created_at, "status": status, "digest": digest},
    )


def newest_verdict(task: TaskSpec) -> dict[str, Any] | None:
    """The newest recorded verdict whose file still exists, or None."""
    for entry in reversed(_read(state_dir(task) / "verdicts.jsonl")):
        if Path(entry["path"]).is_file():
            return entry
    return None


def record_run(task: TaskSpec, *, kind: str, path: Path, step: int, created_at: str, **extra: Any) -> None:
    _append(
        state_dir(task) / "runs.jsonl",
        {"kind": kind, "path": str(Path(path).resolve()), "step": step, "created_at": created_at, **extra},
    )


def newest_run(task: TaskSpec, kind: str) -> dict[str, Any] | None:
    """The newest recorded checkpoint of `kind` (grpo or sft) that still exists, or None."""
    for entry in reversed(_read(state_dir(task) / "runs.jsonl")):
        if entry["kind"] == kind and Path(entry["path"]).exists():
            return entry
    return None
