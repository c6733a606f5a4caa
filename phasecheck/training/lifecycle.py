"""`phasecheck lifecycle`: check -> GRPO (if GRPO PHASE) -> check --after-grpo -> SFT or GFT (if GRADUATED)
-> optionally a DPO pass on the residual failures -> final check, stopping with a clear message where a step
fails, and writing lifecycle.json."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import ExitCode, PhasecheckError
from ..paths import default_out_dir, utc_now
from ..results import Phase
from ..task import TaskSpec

__all__ = ["run_lifecycle", "LifecycleSummary"]


@dataclass
class LifecycleSummary:
    task: str
    started_at: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = ""  # one line: where it ended and why
    exit_code: int = 0
    finished_at: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def run_lifecycle(
    task: TaskSpec,
    *,
    out_dir: str | Path | None = None,
    backend: str = "builtin",
    crystallise: str = "sft",
    dpo: bool = False,
    on_event: Callable[[dict], None] | None = None,
    check_kwargs: dict | None = None,
    train_kwargs: dict | None = None,
) -> LifecycleSummary:
    """Run the whole loop once; the summary (also in out_dir/lifecycle.json) says how far it got."""
    from ..runner import CheckOptions, apply_overrides, check_task

    out = Path(out_dir) if out_dir else default_out_dir(task, "lifecycle")
    summary = LifecycleSummary(task=task.name, started_at=utc_now())
    check_kwargs, train_kwargs = dict(check_kwargs or {}), dict(train_kwargs or {})

    step = functools.partial(_step, summary, on_event)

    def check(name: str, **opts: Any) -> dict:
        model = opts.pop("model", None)
        t = apply_overrides(task, model=model) if model else task
        verdict, path = check_task(t, CheckOptions(out_dir=out / name, **check_kwargs, **opts))
        return {"status": verdict.status.value, "verdict": str(path)}

    try:
        first = step("check", lambda: check("check"))
        if first and first["status"] == Phase.GRPO_PHASE.value:
            trained = step("grpo", lambda: _grpo(task, backend, out / "grpo", train_kwargs))
            first = trained and step("check_after_grpo", lambda: check("check_after_grpo", after_grpo=True))
            if first and first["status"] == Phase.GRPO_PHASE.value:
                summary.outcome = (
                    "still GRPO PHASE after GRPO: train more (`phasecheck train grpo`), then "
                    "`phasecheck check --after-grpo`; SFT was not run"
                )
                summary.exit_code = int(ExitCode.GRPO_PHASE)
        if first and first["status"] == Phase.INCONCLUSIVE.value:
            summary.outcome = (
                f"INCONCLUSIVE at {summary.steps[-1]['step']}: a blocking check errored; see {first['verdict']}"
            )
            summary.exit_code = int(ExitCode.RUNTIME)
        if first and first["status"] == Phase.GRADUATED.value:
            tuned = step(crystallise, lambda: _CRYSTALLISE[crystallise](task, backend, out / crystallise))
            if tuned and dpo:  # the residual failures of the crystallised model, before the final check
                tuned = step("dpo", lambda: _dpo(task, backend, out / "dpo", tuned["checkpoint"]))
            final = tuned and step("final_check", lambda: check("final_check", model=tuned["checkpoint"]))
            if final:
                what = "DPO" if dpo else crystallise.upper()
                summary.outcome = f"done: {what} checkpoint {tuned['checkpoint']}; final verdict {final['status']}"
    finally:
        summary.finished_at = utc_now()
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "lifecycle.json", json.dumps(summary.to_json(), indent=2, default=str) + "\n")
    return summary


def _step(
    summary: LifecycleSummary, on_event: Callable[[dict], None] | None, name: str, fn: Callable[[], dict]
) -> dict | None:
    """Run one lifecycle step and add its entry to `summary` -> the entry, or None when a PhasecheckError
    failed it (the summary then says where it stopped, with the error's exit code)."""
    if on_event:
        on_event({"step": name, "event": "start"})
    try:
        entry = {"step": name, "ok": True, **fn()}
    except PhasecheckError as exc:
        entry = {"step": name, "ok": False, "error": str(exc)}
        summary.exit_code = int(exc.exit_code)
        summary.outcome = f"stopped at {name}: {exc}"
    summary.steps.append(entry)
    if on_event:
        on_event({"event": "end", **entry})
    return entry if entry["ok"] else None


def _grpo(task: TaskSpec, backend: str, out_dir: Path, train_kwargs: dict) -> dict:
    """The lifecycle's GRPO step on the chosen backend -> what its summary line records."""
    if backend == "trl":
        from .trl_backend import train_grpo_trl

        res = train_grpo_trl(task, out_dir=out_dir, **train_kwargs)
    else:
        from .grpo import train_grpo

        res = train_grpo(task, out_dir=out_dir, **train_kwargs)
    return {"checkpoint": str(res.checkpoint), "steps": res.steps}


def _sft(task: TaskSpec, backend: str, out_dir: Path) -> dict:
    """The lifecycle's SFT step on the chosen backend -> what its summary line records."""
    if backend == "trl":
        from .trl_backend import train_sft_trl

        return {"checkpoint": str(train_sft_trl(task, out_dir=out_dir))}
    from .sft import train_sft

    res = train_sft(task, out_dir=out_dir)
    return {
        "checkpoint": str(res.checkpoint),
        "steps": res.steps,
        "eval_loss_before": res.eval_loss_before,
        "eval_loss_after": res.eval_loss_after,
    }


def _gft(task: TaskSpec, backend: str, out_dir: Path) -> dict:
    """The lifecycle's GFT step (builtin only: GFT has no TRL trainer) -> what its summary line records."""
    from .gft import train_gft

    res = train_gft(task, out_dir=out_dir)
    return {"checkpoint": str(res.checkpoint), "steps": res.steps}


def _dpo(task: TaskSpec, backend: str, out_dir: Path, start: str) -> dict:
    """The lifecycle's DPO pass on `start`'s residual failures -> what its summary line records. With no
    residual failures to pair it is skipped, and the final check judges `start`."""
    from .dpo import NoPairs, train_dpo
    from .trl_dpo import train_dpo_trl

    try:
        res = (train_dpo_trl if backend == "trl" else train_dpo)(task, out_dir=out_dir, model=start)
    except NoPairs as exc:
        return {"checkpoint": start, "skipped": str(exc)}
    return {"checkpoint": str(res.checkpoint), "steps": res.steps, "pairs": str(res.pairs)}


_CRYSTALLISE = {"sft": _sft, "gft": _gft}
