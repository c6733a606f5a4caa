"""Where runs write by default, and the one UTC timestamp format: a leaf module (stdlib only)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .task import TaskSpec

__all__ = ["default_out_dir", "utc_now"]


def default_out_dir(task: TaskSpec, kind: str) -> Path:
    """`check` -> reports/<slug> (under the working directory); `lifecycle` -> <task dir>/runs/<slug>/lifecycle;
    a training kind (grpo, sft) -> <training.output_dir or task dir/runs/<slug>>/<kind>."""
    if kind == "check":
        return Path("reports") / task.slug
    if kind == "lifecycle":
        # Not under training.output_dir: it holds the lifecycle's checks and verdicts as well.
        return task.base_dir / "runs" / task.slug / "lifecycle"
    root = task.training.output_dir or (task.base_dir / "runs" / task.slug)
    return Path(root) / kind


def utc_now() -> str:
    """Now in UTC, ISO 8601 to the second with a `Z`: 2026-01-02T03:04:05Z (verdict.json's created_at)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
