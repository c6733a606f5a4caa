"""Which eval prompts GRPO trains on (`training.grpo.prompts`), and the share of zero-variance groups the
newest verdict predicts for them, set beside the share the first step meets.

`all`: every prompt; the prediction is grpo_readiness's, when it was made for this G. `learnable`: the
prompts the verdict's per-prompt table found sometimes solved. A never-solved or always-solved prompt gives
groups whose rewards are all equal (under 0/1 rewards), so GRPO spends its rollouts on them for nothing; the
prediction is then the table's, over the prompts kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..names import CheckId, CheckMetric
from ..prompt_table import CLASSES, LEARNABLE, read_prompt_table, zero_variance_interval
from ..task import TaskSpec

__all__ = ["select_prompts", "predicted_zero_std", "zero_std_met"]


def select_prompts(task: TaskSpec, gate: Any, examples: list, mode: str, group_size: int) -> tuple[list, dict]:
    """(the examples to train on, in their order; what the verdict predicts for them, for the metrics)."""
    if mode == "all":
        return examples, predicted_zero_std(gate.verdict, group_size)
    where = f"{task.source or task.name}: training.grpo.prompts: learnable"
    if gate.verdict is None:
        raise ConfigError(f"{where} needs the per-prompt table of a verdict; run `phasecheck check` first")
    _refuse_stale(task, gate, where)
    rows = {r["id"]: r for r in read_prompt_table(gate.verdict, gate.verdict_path)}
    kept = [e for e in examples if rows.get(e.id, {}).get("class") == LEARNABLE]
    if not kept:
        counts = {c: sum(r["class"] == c for r in rows.values()) for c in CLASSES}
        raise ConfigError(
            f"{where}: no prompt is learnable in {gate.verdict_path} ({counts}): every GRPO group would have "
            "zero reward variance; the model needs a warm start, or the task other prompts"
        )
    picked = [rows[e.id] for e in kept]
    out: dict[str, Any] = {"prompts": LEARNABLE, "prompts_trained": len(kept), "prompts_total": len(examples)}
    if all(r["group_size"] == group_size for r in picked):
        ci = zero_variance_interval(picked)
        out.update(
            predicted_zero_std=ci.estimate,
            predicted_zero_std_ci=ci.bounds(),
            predicted_exact=all(r["zero_variance_exact"] for r in picked),
        )
    return kept, out


def _refuse_stale(task: TaskSpec, gate: Any, where: str) -> None:
    """The table describes the task and data the verdict judged; refuse it when either changed since."""
    from ..verdict import fingerprint
    from .gate import fingerprint_changes

    old = gate.verdict.fingerprint
    now = fingerprint(task, model_identity=old.model)  # the model is the one GRPO starts from: not compared
    changes = fingerprint_changes(old, now)
    if changes:
        raise ConfigError(f"{where}: the newest verdict is stale ({'; '.join(changes)}); run `phasecheck check` again")


def predicted_zero_std(verdict: Any, group_size: int) -> dict[str, Any]:
    """The newest verdict's grpo_readiness prediction of frac_zero_std, when it was made for this G,
    to set beside the first step's measured share (each with its interval)."""
    check = next((c for c in verdict.checks if c.id == CheckId.GRPO_READINESS), None) if verdict else None
    m = check.metrics if check else {}
    if m.get(CheckMetric.GROUP_SIZE) != group_size or CheckMetric.ZERO_VARIANCE_CI not in m:
        return {}
    return {
        "predicted_zero_std": m[CheckMetric.ZERO_VARIANCE_SHARE],
        "predicted_zero_std_ci": m[CheckMetric.ZERO_VARIANCE_CI],
        "predicted_exact": m.get(CheckMetric.EXACT, True),
    }


def zero_std_met(metrics: Path, predicted: dict[str, Any]) -> dict[str, Any]:
    """The share of zero-variance groups the run met over all its steps, with a binomial interval over its
    groups (a step's groups are different prompts, each sampled afresh), beside the share predicted for the
    prompts it trained on."""
    from ..jsonl import step_rows
    from ..names import Metric
    from ..stats import modified_wilson

    rows = [r for r in step_rows(metrics) if Metric.FRAC_ZERO_STD in r and Metric.GROUPS in r]
    groups = sum(int(r[Metric.GROUPS]) for r in rows)
    if not groups:
        return {}
    zero = sum(round(float(r[Metric.FRAC_ZERO_STD]) * int(r[Metric.GROUPS])) for r in rows)
    keys = ("predicted_zero_std", "predicted_zero_std_ci", "prompts", "prompts_trained", "prompts_total")
    return {
        "met": zero / groups,
        "met_ci": list(modified_wilson(zero, groups)),
        "groups": groups,
        "steps": len(rows),
        **{k: predicted[k] for k in keys if k in predicted},
    }
