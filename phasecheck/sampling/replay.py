"""The replay engine: samples made elsewhere, read from a JSONL file of Sample records and checked
to cover every example x run x index of the plan exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from ..errors import ConfigError, DataError
from ..jsonl import json_lines
from ..records import GRADED_SAMPLE_FIELDS, Example, Sample
from ..strict import Strict
from .base import EngineBase

__all__ = ["ReplayEngine", "read_samples"]

_REQUIRED = ("example_id", "run", "index", "completion")


def read_samples(path: Path) -> list[Sample]:
    """Every row of a samples JSONL file as a Sample; a bad row is a DataError naming file and row."""
    fields = set(Sample.__dataclass_fields__)
    out = []
    for row, d in json_lines(path, "samples file"):
        if not isinstance(d, dict):
            raise DataError(f"{path}:{row}: a sample must be a JSON object")
        missing = [f for f in _REQUIRED if f not in d]
        if missing:
            raise DataError(f"{path}:{row}: missing field {missing[0]!r}")
        unknown = sorted(set(d) - fields - set(GRADED_SAMPLE_FIELDS))
        if unknown:
            raise DataError(f"{path}:{row}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(fields))})")
        try:
            s = Sample(
                example_id=str(d["example_id"]),
                run=int(d["run"]),
                index=int(d["index"]),
                seed=int(d.get("seed", 0)),
                completion=d["completion"],
                finish_reason=str(d.get("finish_reason", "stop")),
                n_tokens=int(d.get("n_tokens", 0)),
                model=str(d.get("model", "")),
                engine=str(d.get("engine", "") or "replay"),
            )
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}:{row}: bad value ({exc})") from None
        if not isinstance(s.completion, str):
            raise DataError(f"{path}:{row}: completion must be a string")
        if s.run < 0 or s.index < 0:
            raise DataError(f"{path}:{row}: run and index must be >= 0")
        out.append(s)
    return out


class ReplayEngine(EngineBase):
    """Reads task.data.samples (or the `path` option) instead of sampling a model."""

    id: ClassVar[str] = "replay"
    needs_model: ClassVar[bool] = False
    caches_samples: ClassVar[bool] = False  # it reads samples; there is nothing to cache

    class Params(Strict):
        path: Path | None = Field(None, description="Samples JSONL; default task.data.samples.")

    @classmethod
    def can_sample(cls, task: Any) -> bool:
        return task.data.samples is not None or "path" in task.sampling.options

    @classmethod
    def identity_for(cls, params: Any, task: Any) -> str | None:
        return None  # samples made elsewhere: what made them is not known here

    def _path(self) -> Path:
        path = self.params.path or (self.task.data.samples if self.task is not None else None)
        if path is None:
            raise ConfigError("sampling.engine replay needs data.samples (a samples JSONL file)")
        path = Path(path)
        if not path.is_absolute() and self.task is not None:
            path = self.task.base_dir / path
        return path

    def sample(self, examples: list[Example], *, store: Any = None, progress: Any = None) -> list[Sample]:
        path = self._path()
        rows = read_samples(path)
        wanted = {ex.id for ex in examples}
        unknown = sorted({s.example_id for s in rows} - wanted)
        if unknown:
            raise DataError(
                f"{path}: {len(unknown)} sample example id(s) not in the eval data "
                f"(first: {', '.join(repr(u) for u in unknown[:3])})"
            )
        by_key: dict[tuple[str, int, int], Sample] = {}
        for s in rows:
            key = (s.example_id, s.run, s.index)
            if key in by_key:
                raise DataError(f"{path}: duplicate sample for example {s.example_id!r} run {s.run} index {s.index}")
            by_key[key] = s
        plan = self.plan
        out, missing = [], []
        for ex in examples:
            for r in range(plan.runs):
                for k in range(plan.n):
                    s = by_key.get((ex.id, r, k))
                    if s is None:
                        missing.append((ex.id, r, k))
                    else:
                        out.append(s)
        if missing:
            first = ", ".join(f"({e!r}, run {r}, index {k})" for e, r, k in missing[:3])
            raise DataError(
                f"{path}: {len(missing)} sample(s) missing for runs={plan.runs} x n={plan.n}; first: {first}"
            )
        if progress is not None:
            progress.update(len(out), sum(s.n_tokens for s in out), cached=True)
        self.stats = {"cached": len(out), "generated": 0, "batches": 0}
        return out
