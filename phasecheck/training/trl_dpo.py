"""--backend trl for `train dpo`: TRL's DPOTrainer on the same pairs as the builtin loop (the same start model,
reference and pairs.jsonl), passing only the DPOConfig keywords the installed TRL accepts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..names import Metric
from ..task import DPOSpec, TaskSpec
from .common import lora_config
from .dpo import DPOResult, begin_dpo
from .dpo_pairs import PairSet, weighted_order
from .trl_backend import accepted_kwargs, device_kwargs, quiet

__all__ = ["trl_dpo_config", "train_dpo_trl"]

# DPOTrainer logs under the names the builtin loop writes (names.Metric); these are the ones we keep.
_KEYS = (
    Metric.LOSS,
    Metric.REWARDS_CHOSEN,
    Metric.REWARDS_REJECTED,
    Metric.REWARD_MARGIN,
    Metric.PREFERENCE_ACCURACY,
    Metric.LOGPS_CHOSEN,
    Metric.LOGPS_REJECTED,
    Metric.GRAD_NORM,
)


def trl_dpo_config(spec: DPOSpec, out_dir: Path, *, max_steps: int | None = None):
    """A DPOConfig mirroring the builtin loop's settings -> (config, dropped keys)."""
    from trl import DPOConfig

    wanted = {
        "output_dir": str(out_dir / "trl"),
        "beta": spec.beta,
        "loss_type": ["sigmoid"],
        "label_smoothing": 0.0,
        "learning_rate": spec.learning_rate,  # TRL default 1e-6
        "lr_scheduler_type": "constant",  # TRL default: linear decay; builtin: constant
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "per_device_train_batch_size": spec.batch_pairs,
        "gradient_accumulation_steps": 1,
        "num_train_epochs": spec.epochs,
        "max_steps": max_steps if max_steps is not None else -1,
        "max_length": None,  # the completions are the model's own samples, already bounded by max_new_tokens
        "precompute_ref_log_probs": False,
        "sync_ref_model": False,
        "disable_dropout": True,
        "gradient_checkpointing": False,  # TRL's default is on
        "seed": spec.seed,
        "logging_steps": 1,
        "save_strategy": "no",  # phasecheck writes its own atomic checkpoints
        "report_to": "none",
        "disable_tqdm": True,
        **device_kwargs(),
    }
    kwargs, dropped = accepted_kwargs(DPOConfig, wanted)
    return DPOConfig(**kwargs), dropped


def _dataset(task: TaskSpec, tokenizer, pairs: list[dict]):
    """prompt/chosen/rejected rows, each pair repeated by its weight; the prompt chat-rendered as the builtin loop
    renders it (TRL appends eos to each completion, as the builtin loop does)."""
    from datasets import Dataset

    from ..sampling.base import render_prompt

    rows = [
        {
            "prompt": render_prompt(tokenizer, pairs[i]["prompt"], task.sampling.system_prompt),
            "chosen": pairs[i]["chosen"],
            "rejected": pairs[i]["rejected"],
        }
        for i in weighted_order(pairs)
    ]
    return Dataset.from_list(rows)


def train_dpo_trl(
    task: TaskSpec,
    *,
    out_dir: str | Path | None = None,
    model: str | None = None,
    max_steps: int | None = None,
    pairs: PairSet | None = None,
    on_step: Callable[[dict], None] | None = None,
    **overrides: Any,
) -> DPOResult:
    """DPO through TRL's DPOTrainer; writes pairs.jsonl, metrics.jsonl and a phasecheck checkpoint like the builtin
    loop."""
    from trl import DPOTrainer

    spec, run, policy, pairs, pairs_path = begin_dpo(
        task, out_dir=out_dir, model=model, pairs=pairs, backend="trl", **overrides
    )
    config, dropped = trl_dpo_config(spec, run.out_dir, max_steps=max_steps)
    tok = policy.tokenizer
    trainer = DPOTrainer(
        model=policy.model,
        # Full fine-tuning: a frozen copy of the start weights; with LoRA, TRL turns the adapter off instead.
        ref_model=copy.deepcopy(policy.model).eval() if spec.full_finetune else None,
        args=config,
        train_dataset=_dataset(task, tok, pairs.pairs),
        processing_class=tok,
        peft_config=None if spec.full_finetune else lora_config(spec.lora),
    )
    quiet(trainer)
    trainer.train()
    log = run.metrics(on_step)
    for entry in trainer.state.log_history:
        if "step" in entry and Metric.LOSS in entry:
            line = {Metric.STEP: entry["step"], Metric.TOTAL_STEPS: trainer.state.max_steps, "backend": "trl"}
            log.write({**line, **{k: entry[k] for k in _KEYS if k in entry}})
    steps = int(trainer.state.global_step)
    trained = replace(policy, model=trainer.model, lora=not spec.full_finetune)
    path = run.save(trained, steps, trainer.optimizer, trl_dropped_keys=dropped, pairs=str(pairs_path))
    return DPOResult(path, steps, log.path, pairs_path, pairs.counts)
