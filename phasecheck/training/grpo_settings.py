"""GRPO's settings: the presets and how a task's `training.grpo` resolves against them, field by field. Kept
apart from the loop so that what `train grpo` will use (G above all) can be read without loading it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..task import GRPOSpec, LoraSpec, TaskSpec

__all__ = ["GRPOSettings", "PRESETS", "resolve_grpo", "plan_steps", "group_size_for"]

PRESETS: dict[str, dict[str, Any]] = {
    # Refining, not relearning: small adapter, tiny steps, strong KL, a quarter epoch.
    "conservative": dict(
        group_size=4,
        learning_rate=5.0e-7,
        beta=0.2,
        epsilon=0.2,
        epochs=0.25,
        batch_prompts=8,
        advantage_scale="group",
        max_grad_norm=1.0,
        iterations=1,
        lora=LoraSpec(r=4, alpha=8),
        full_finetune=False,
    ),
    # No opinions: full fine-tuning, no KL, one epoch; every field still overridable.
    "none": dict(
        group_size=8,
        learning_rate=1.0e-6,
        beta=0.0,
        epsilon=0.2,
        epochs=1.0,
        batch_prompts=8,
        advantage_scale="group",
        max_grad_norm=1.0,
        iterations=1,
        lora=None,
        full_finetune=True,
    ),
}


@dataclass
class GRPOSettings:
    """Every GRPO knob, resolved: preset first, then each field the task sets."""

    preset: str
    group_size: int
    learning_rate: float
    beta: float
    epsilon: float
    epochs: float
    batch_prompts: int
    max_new_tokens: int
    temperature: float
    advantage_scale: str
    max_grad_norm: float
    iterations: int
    lora: LoraSpec | None
    seed: int
    prompts: str = "all"  # all | learnable (the newest verdict's per-prompt table)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora"] = self.lora.model_dump(mode="json") if self.lora else None
        return d


def resolve_grpo(task: TaskSpec, **overrides: Any) -> GRPOSettings:
    """Preset values, overridden field by field by task.training.grpo, then by `overrides`."""
    spec: GRPOSpec = task.training.grpo
    base = dict(PRESETS[spec.preset])
    base.update(max_new_tokens=task.sampling.max_new_tokens, temperature=task.sampling.temperature or 1.0)
    for name in (
        "group_size",
        "learning_rate",
        "beta",
        "epsilon",
        "epochs",
        "batch_prompts",
        "max_new_tokens",
        "temperature",
        "advantage_scale",
        "max_grad_norm",
        "iterations",
    ):
        value = getattr(spec, name)
        if value is not None:
            base[name] = value
    if spec.lora is not None:
        base["lora"] = spec.lora
    if spec.full_finetune:
        base["lora"] = None
    base.pop("full_finetune", None)
    base.update(overrides)
    base.setdefault("prompts", spec.prompts)
    return GRPOSettings(preset=spec.preset, seed=spec.seed, **base)


def group_size_for(task: TaskSpec) -> tuple[int, str]:
    """The G that `train grpo` will use for this task, and where it comes from (task field or preset)."""
    spec = task.training.grpo
    if spec.group_size is not None:
        return spec.group_size, "training.grpo.group_size"
    return int(PRESETS[spec.preset]["group_size"]), f"training.grpo.preset {spec.preset}"


def plan_steps(settings: GRPOSettings, n_examples: int) -> int:
    """Optimiser steps for `epochs` passes over n_examples prompts (at least one)."""
    return max(1, math.ceil(settings.epochs * n_examples / settings.batch_prompts))
