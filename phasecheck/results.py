"""Status, CheckResult and Verdict: the JSON contract (`phasecheck.verdict/1`). No presentation here."""

from __future__ import annotations

import enum
import json
import math
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from .errors import DataError
from .strict import Strict

__all__ = [
    "Status",
    "Phase",
    "Finding",
    "CheckResult",
    "Fingerprint",
    "Verdict",
    "VERDICT_SCHEMA",
    "ACTIONS",
    "load_verdict",
    "pct",
    "band",
]

VERDICT_SCHEMA = "phasecheck.verdict/1"


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class Phase(str, enum.Enum):
    GRADUATED = "GRADUATED"
    GRPO_PHASE = "GRPO_PHASE"
    INCONCLUSIVE = "INCONCLUSIVE"


ACTIONS = {
    Phase.GRPO_PHASE: "Run GRPO training. Discover the correct pattern first. "
    "Do not run SFT until this status resolves.",
    Phase.GRADUATED: "SFT is now correct. Crystallize for deployment.",
    Phase.INCONCLUSIVE: "A blocking check could not run. Fix the error and check again before training.",
}


class Finding(Strict):
    """One piece of evidence behind a check's status, traced to example ids."""

    message: str = Field(description="One sentence a person can act on.")
    example_ids: list[str] = Field(default_factory=list, description="Rows this finding is about.")
    data: dict[str, Any] = Field(default_factory=dict, description="Machine-readable details.")


class CheckResult(Strict):
    """What one graduation check measured and how it judged it."""

    id: str
    question: str
    status: Status
    headline: str = Field(description="Short figure shown beside the question, e.g. '847 examples confirmed'.")
    metrics: dict[str, Any] = Field(default_factory=dict)
    findings: list[Finding] = Field(default_factory=list)
    blocking: bool = Field(False, description="Whether this check gates the verdict.")
    duration_s: float = 0.0


class Fingerprint(Strict):
    """Hashes of everything a verdict depends on; `digest` hashes all of them together."""

    task: str
    data: dict[str, str] = Field(default_factory=dict, description="Role (eval, train, samples) -> content hash.")
    model: str | None = None
    sampling: str
    version: str
    digest: str


class Verdict(Strict):
    """A saved verdict: `verdict.json`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(VERDICT_SCHEMA, alias="schema")
    task: str
    task_file: str | None = None
    status: Phase
    action: str
    checks: list[CheckResult]
    fingerprint: Fingerprint
    created_at: str = Field(description="UTC ISO-8601; the only field allowed to differ between identical runs.")
    command: list[str] = Field(default_factory=list, description="argv that reproduces this run.")
    model: str | None = Field(None, description="What the task's model resolved to (alias, path or hub id).")
    artifacts: dict[str, str] = Field(
        default_factory=dict, description="Name -> path relative to verdict.json (samples, validated set)."
    )
    compare: dict[str, Any] | None = Field(None, description="Differences from an earlier verdict (--compare).")
    grading: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per graded set (samples, demonstrations): grades made, and how many "
        "timed out, were too long to judge or errored. Timeouts and too_long earn the wrong band.",
    )

    def dump(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        """verdict.json's bytes, the one serialisation: sorted keys, so identical runs give identical files."""
        return json.dumps(self.dump(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def load_verdict(path: str | Path) -> Verdict:
    """A saved verdict.json; DataError (one line naming the file) when missing, invalid or another schema."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such verdict file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read verdict ({exc})") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: not a verdict (expected a JSON object)")
    schema = doc.get("schema")
    if schema != VERDICT_SCHEMA:
        raise DataError(
            f"{path}: schema {schema!r} is not {VERDICT_SCHEMA!r}; "
            f"re-run `phasecheck check` with this version to write a new verdict"
        )
    try:
        return Verdict.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise DataError(f"{path}: invalid verdict at {where}: {err['msg']}") from None


def pct(x: float | None) -> str:
    """A share as a whole percentage, rounded down: 79.7% against an 80% bar must not read as 80%.
    The one formatter for headlines and reports."""
    if not isinstance(x, (int, float)):
        return "n/a"
    return f"{math.floor(100 * x + 1e-9):.0f}%"


def band(low: float, high: float) -> str:
    """'48–74%', rounded outward so the printed interval never claims more than the computed one.
    The one formatter of an interval, for headlines and reports alike."""
    return f"{math.floor(100 * low + 1e-9)}–{math.ceil(100 * high - 1e-9)}%"
