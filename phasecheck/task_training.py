"""The `training:` block of a task file: one spec per bundled trainer (GRPO, SFT, GFT, DPO) and the LoRA
adapter they share. Kept apart from task.py so the task file's schema reads in two pages."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeInt

from .strict import Strict

__all__ = ["LoraSpec", "GRPOSpec", "SFTSpec", "DPOSpec", "GFTSpec", "TrainingSpec"]


class LoraSpec(Strict):
    r: int = Field(4, ge=1)
    alpha: float = Field(8, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = Field("all-linear", description="peft target_modules.")


class GRPOSpec(Strict):
    preset: Literal["conservative", "none"] = Field(
        "conservative", description="Defaults for the fields you leave out."
    )
    group_size: int | None = Field(None, ge=2)
    learning_rate: float | None = Field(None, gt=0)
    beta: float | None = Field(None, ge=0, description="KL coefficient (k3 estimator) to the reference model.")
    epsilon: float | None = Field(None, gt=0, description="PPO clip range.")
    epochs: float | None = Field(None, gt=0, description="Passes over the eval prompts; fractions allowed (0.25).")
    batch_prompts: int | None = Field(None, ge=1, description="Prompts per optimiser step.")
    max_new_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, gt=0)
    advantage_scale: Literal["group", "batch", "none"] | None = None
    max_grad_norm: float | None = Field(None, gt=0)
    iterations: int | None = Field(
        None, ge=1, description="Optimiser steps per rollout batch (mu); the clip acts only when > 1."
    )
    lora: LoraSpec | None = Field(None, description="LoRA adapter; None with preset none means full fine-tuning.")
    full_finetune: bool = Field(False, description="Train every weight instead of a LoRA adapter.")
    prompts: Literal["all", "learnable"] = Field(
        "all",
        description="learnable: train only on the prompts the newest verdict's per-prompt table (prompts.jsonl) "
        "found sometimes solved; never- and always-solved prompts give GRPO groups with no reward variance.",
    )
    seed: int = 0


class SFTSpec(Strict):
    epochs: float = Field(3, gt=0)
    learning_rate: float = Field(2.0e-5, gt=0)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(512, ge=8)
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Held-out share of the validated set for eval loss.")
    lora: LoraSpec | None = None
    seed: int = 0


class DPOSpec(Strict):
    """Targeted DPO on the residual failures of the current checkpoint (`train dpo`)."""

    beta: float = Field(0.1, gt=0, description="DPO temperature: how far the policy may move from the reference.")
    learning_rate: float = Field(5.0e-6, gt=0, description="AdamW learning rate, constant.")
    epochs: float = Field(1, gt=0, description="Passes over the (weighted) pairs; fractions allowed.")
    batch_pairs: int = Field(8, ge=1, description="Preference pairs per optimiser step.")
    scenario_weights: dict[str, NonNegativeInt] = Field(
        default_factory=dict,
        description="Scenario -> copies of its pairs per epoch (unlisted: 1; 0 leaves it out), so a failing "
        "subclass is oversampled: {reverse: 3}.",
    )
    max_pairs_per_prompt: int = Field(2, ge=1, description="Pairs built from one prompt's graded samples at most.")
    lora: LoraSpec = Field(default_factory=LoraSpec, description="LoRA adapter trained on the start checkpoint.")
    full_finetune: bool = Field(False, description="Train every weight instead of the `lora` adapter.")
    seed: int = Field(0, description="Seeds the adapter's initial weights, the pair choice and the batch order.")


class GFTSpec(Strict):
    """`train gft`: each prompt's group of K mixes validated demonstrations with the policy's own samples."""

    group_size: int = Field(8, ge=2, description="K: responses per prompt in a group, demonstrations included.")
    demos_per_group: int = Field(2, ge=1, description="Validated demonstrations per group (below group_size).")
    tau: float = Field(0.7, gt=0, le=1, description="DCR threshold: a token with p <= tau gets coefficient p, not 1.")
    learning_rate: float = Field(2.0e-5, gt=0, description="AdamW's constant learning rate (no weight decay).")
    epochs: float = Field(1.0, gt=0, description="Passes over the validated set's prompts; fractions allowed.")
    batch_prompts: int = Field(8, ge=1, description="Prompts (groups) per optimiser step.")
    max_new_tokens: int | None = Field(None, ge=1, description="Per policy sample; unset: sampling.max_new_tokens.")
    temperature: float | None = Field(None, gt=0, description="Of the policy's samples; unset: sampling.temperature.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradients are clipped to this norm before each step.")
    lora: LoraSpec = Field(default_factory=LoraSpec, description="The adapter trained unless full_finetune.")
    full_finetune: bool = Field(False, description="Train every weight; `lora` is then ignored.")
    seed: int = Field(0, description="Orders the prompts, picks demonstrations and seeds the policy's samples.")


class TrainingSpec(Strict):
    grpo: GRPOSpec = Field(default_factory=GRPOSpec)
    sft: SFTSpec = Field(default_factory=SFTSpec)
    dpo: DPOSpec = Field(default_factory=DPOSpec)
    gft: GFTSpec = Field(default_factory=GFTSpec)
    output_dir: Path | None = Field(None, description="Where checkpoints go (default runs/<task-slug>/).")
