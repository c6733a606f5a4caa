"""The check contract: a check measures, its named conditions judge (deepchecks' split).

`measure(evidence, params)` reads a frozen view of the evidence and returns a Measurement: metrics, findings,
a headline of what was measured, and any files to write beside the verdict. It decides nothing.
`judge(measurement, params)` runs the check's conditions, in order, on the metrics alone: the status is
the most severe status among the conditions that do not hold (pass when all hold), and each condition
that does not hold may add a clause to the headline and a finding in front of the others. Because
conditions read only metrics and params, a saved result can be judged again at other thresholds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from ..results import CheckResult, Finding, Status
from ..strict import Strict

__all__ = ["Check", "Condition", "Measurement", "Output", "Unavailable", "StrictParams", "judge_conditions"]

StrictParams = Strict  # the base of every check's Params

Metrics = Mapping[str, Any]

_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


class Unavailable(Exception):
    """Raised while measuring when the evidence a check needs cannot be had in this run: the check is skipped
    with this message as its reason."""


@dataclass(frozen=True, slots=True)
class Output:
    """A JSON-lines file a check writes beside the verdict (named in the verdict's artifacts)."""

    artifact: str
    filename: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Measurement:
    """What a check measured. `judgeable` False means there was nothing to judge (no samples, no rows): the
    check fails without its conditions being asked, since a gate must not pass on no evidence."""

    metrics: dict[str, Any]
    headline: str
    findings: list[Finding] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    judgeable: bool = True


@dataclass(frozen=True, slots=True)
class Condition:
    """One named rule: `holds(metrics, params)`. When it does not hold the check gets `fails_as` (fail or
    warn), `says(metrics, params)` may add a clause to the headline, and `advice(metrics, params)` may put
    a finding first. `name` is what the rule asks, in words ('agreement ≥ min_agreement')."""

    name: str
    holds: Callable[[Metrics, Any], bool]
    fails_as: Status = Status.FAIL
    says: Callable[[Metrics, Any], str | None] | None = None
    advice: Callable[[Metrics, Any], Finding | None] | None = None

    def __post_init__(self) -> None:
        if self.fails_as not in (Status.FAIL, Status.WARN):
            raise ValueError(f"condition {self.name!r}: fails_as must be fail or warn, not {self.fails_as.value}")


def judge_conditions(conditions: Iterable[Condition], m: Measurement, params: Any) -> tuple[Status, str, list[Finding]]:
    """Status, headline and findings of a measurement under these conditions (see the module docstring)."""
    if not m.judgeable:
        return Status.FAIL, m.headline, list(m.findings)
    status, headline, advice = Status.PASS, m.headline, []
    for c in conditions:
        if c.holds(m.metrics, params):
            continue
        if _SEVERITY[c.fails_as] > _SEVERITY[status]:
            status = c.fails_as
        clause = c.says(m.metrics, params) if c.says else None
        headline += clause or ""
        first = c.advice(m.metrics, params) if c.advice else None
        if first is not None:
            advice.append(first)
    return status, headline, advice + list(m.findings)


class Check:
    """Base of every check. Subclasses set `id`, `question`, `Params` and `conditions`, and implement
    `measure`; `judge` and `run` come from here."""

    id: ClassVar[str]
    question: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = StrictParams
    conditions: ClassVar[tuple[Condition, ...]] = ()
    # The runner samples up front only when a planned check reads samples (data-only runs never load a model).
    uses_samples: ClassVar[bool] = True

    @classmethod
    def reads_samples(cls, params: BaseModel) -> bool:
        """Whether this run of the check, with these params, reads model samples."""
        return cls.uses_samples

    def measure(self, evidence: Any, params: BaseModel) -> Measurement:  # pragma: no cover - abstract
        raise NotImplementedError

    def judge(self, measurement: Measurement, params: BaseModel) -> CheckResult:
        status, headline, findings = judge_conditions(self.conditions, measurement, params)
        return CheckResult(
            id=self.id,
            question=self.question,
            status=status,
            headline=headline,
            metrics=dict(measurement.metrics),
            findings=findings,
        )

    def run(self, evidence: Any, params: BaseModel) -> CheckResult:
        """Measure and judge in one call (tests, embedding): `evidence` is an Evidence or an EvidenceView."""
        return self.judge(self.measure(evidence.view(self.reads_samples(params)), params), params)
