"""The verdict gate: SFT and GFT only after the newest verdict says GRADUATED for the same task, data and
model. GRPO, and DPO on its residual failures, are always allowed. `force` lets a refused run through, loudly,
and the override is recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, GateError
from ..results import Fingerprint, Phase, Verdict, load_verdict
from ..stages import stage
from ..state import newest_verdict
from ..task import TaskSpec

__all__ = ["GateDecision", "GATED", "check_gate", "current_fingerprint", "fingerprint_changes"]

# The kinds that crystallise what the policy does, so they wait for GRADUATED; GRPO discovers and never waits.
GATED = ("sft", "gft")


@dataclass
class GateDecision:
    """Why training may go ahead; `forced` with `refusals` when --force overrode the gate."""

    kind: str
    allowed: bool
    forced: bool = False
    verdict: Verdict | None = None
    verdict_path: str | None = None
    refusals: list[str] = field(default_factory=list)

    @property
    def warning(self) -> str | None:
        if not self.forced:
            return None
        return (
            f"WARNING: --force overrides the verdict gate; {self.kind.upper()} may copy mistakes the checks exist to "
            "catch. Refused because: " + "; ".join(self.refusals) + ". The override is recorded "
            "in the checkpoint's phasecheck.json."
        )

    def record(self) -> dict[str, Any]:
        """What a checkpoint's phasecheck.json stores about the gate."""
        return {
            "kind": self.kind,
            "forced": self.forced,
            "refusals": self.refusals,
            "verdict_path": self.verdict_path,
            "verdict_status": self.verdict.status.value if self.verdict else None,
            "verdict_digest": self.verdict.fingerprint.digest if self.verdict else None,
            "verdict_created_at": self.verdict.created_at if self.verdict else None,
        }


def current_fingerprint(task: TaskSpec, model_identity: str | None) -> Fingerprint:
    """The fingerprint a verdict for this task and model would carry now."""
    from ..verdict import fingerprint

    return fingerprint(task, model_identity=model_identity)


def fingerprint_changes(old: Fingerprint, new: Fingerprint) -> list[str]:
    """What differs between a verdict's fingerprint and the current one, as phrases for a person.

    Sampling parameters and the phasecheck version are left out on purpose: the gate asks whether
    the task, the data and the model are still the ones the verdict judged."""
    changes = []
    if old.task != new.task:
        changes.append("the task file changed")
    for role in sorted(set(old.data) | set(new.data)):
        a, b = old.data.get(role), new.data.get(role)
        if a != b:
            what = "was added" if a is None else "was removed" if b is None else "changed"
            changes.append(f"data.{role} {what}")
    if old.model != new.model:
        changes.append(f"the model changed ({_short(old.model)} -> {_short(new.model)})")
    return changes


def _short(h: str | None) -> str:
    return "none" if h is None else h[:12]


def _load_verdict(path: Path) -> Verdict:
    try:
        return load_verdict(path)
    except DataError as exc:
        raise GateError(f"{exc}; run `phasecheck check` again") from None


def check_gate(
    task: TaskSpec,
    kind: str,
    *,
    force: bool = False,
    model_identity: str | None = None,
    fingerprint: Fingerprint | None = None,
) -> GateDecision:
    """Decide whether `kind` (grpo, dpo, or one of GATED) training may run; raise GateError when it may not.

    `fingerprint` is the current one (computed from task and model_identity when None)."""
    with stage("gate"):
        return _decide(task, kind, force=force, model_identity=model_identity, fingerprint=fingerprint)


def _decide(
    task: TaskSpec, kind: str, *, force: bool, model_identity: str | None, fingerprint: Fingerprint | None
) -> GateDecision:
    if kind in ("grpo", "dpo"):  # DPO polishes a GRPO checkpoint: allowed on any verdict, as GRPO
        entry = newest_verdict(task)
        verdict = _load_verdict(Path(entry["path"])) if entry else None
        return GateDecision(kind, True, verdict=verdict, verdict_path=entry["path"] if entry else None)
    if kind not in GATED:
        raise ValueError(f"unknown training kind {kind!r}")
    refusals: list[str] = []
    entry = newest_verdict(task)
    verdict = None
    if entry is None:
        refusals.append(f"no verdict recorded for task {task.name!r}; run `phasecheck check` first")
    else:
        verdict = _load_verdict(Path(entry["path"]))
        if verdict.status is not Phase.GRADUATED:
            refusals.append(
                f"the newest verdict ({entry['path']}, {verdict.created_at}) is {verdict.status.value}, not GRADUATED"
            )
        current = fingerprint or current_fingerprint(task, model_identity)
        changes = fingerprint_changes(verdict.fingerprint, current)
        if changes:
            refusals.append(
                "the verdict is stale: " + ", ".join(changes) + " since it was made; run `phasecheck check` again"
            )
    decision = GateDecision(
        kind, not refusals, verdict=verdict, verdict_path=entry["path"] if entry else None, refusals=refusals
    )
    if refusals and not force:
        raise GateError(
            f"{kind.upper()} refused: " + "; ".join(refusals) + ". Discover with GRPO until the domain "
            "graduates (or pass --force to override, which is recorded)."
        )
    if refusals:
        decision.allowed, decision.forced = True, True
    return decision
