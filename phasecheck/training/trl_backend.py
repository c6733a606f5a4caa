"""--backend trl: GRPOTrainer / SFTTrainer built from the same task config and reward function, the
scale-out path (accelerate gives multi-GPU and multi-node). Every default we rely on is written out,
and only the keywords the installed TRL's config accepts are passed."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..names import Metric
from ..task import SFTSpec, TaskSpec
from .common import Policy, load_policy, lora_config, task_examples
from .gate import check_gate
from .grpo import GRPOResult
from .grpo_settings import resolve_grpo
from .run import begin_run

__all__ = [
    "trl_grpo_config",
    "build_grpo_trainer",
    "train_grpo_trl",
    "train_sft_trl",
    "accepted_kwargs",
    "device_kwargs",
    "quiet",
]

# TRL renames metrics between versions; ours are stable. Keys missing in a version are skipped.
_METRIC_NAMES = {
    "reward": Metric.REWARD_MEAN,
    "reward_std": Metric.REWARD_STD,
    "frac_reward_zero_std": Metric.FRAC_ZERO_STD,
    "kl": Metric.KL,
    "entropy": Metric.ENTROPY,
    "completions/mean_length": Metric.COMPLETION_LENGTH,
    "loss": Metric.LOSS,
    "grad_norm": Metric.GRAD_NORM,
    "learning_rate": Metric.LR,
    "clip_ratio/region_mean": Metric.CLIP_FRAC,
}


def accepted_kwargs(config_cls: type, wanted: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split `wanted` into the keys config_cls.__init__ accepts and the names it does not."""
    params = inspect.signature(config_cls.__init__).parameters
    ok = {k: v for k, v in wanted.items() if k in params}
    return ok, sorted(set(wanted) - set(ok))


def trl_grpo_config(
    task: TaskSpec, out_dir: Path, *, max_steps: int | None = None, use_vllm: bool = False, **overrides: Any
):
    """A GRPOConfig mirroring the builtin loop's settings -> (config, dropped keys)."""
    from trl import GRPOConfig

    cfg = resolve_grpo(task, **overrides)
    wanted = {
        "output_dir": str(out_dir / "trl"),
        "num_generations": cfg.group_size,
        # TRL counts completions, not prompts, per device batch.
        "per_device_train_batch_size": cfg.batch_prompts * cfg.group_size,
        "gradient_accumulation_steps": 1,
        "steps_per_generation": 1,
        "num_iterations": cfg.iterations,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": "constant",  # TRL default: linear decay; builtin: constant
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": cfg.max_grad_norm,
        "num_train_epochs": cfg.epochs,
        "max_steps": max_steps if max_steps is not None else -1,
        "beta": cfg.beta,  # TRL default moved 0.04 -> 0.0
        "epsilon": cfg.epsilon,
        "epsilon_high": cfg.epsilon,
        "scale_rewards": cfg.advantage_scale,  # group | batch | none
        "loss_type": "dapo",  # token-level aggregation, as the builtin loop
        "importance_sampling_level": "token",
        "mask_truncated_completions": False,
        "max_completion_length": cfg.max_new_tokens,
        "temperature": cfg.temperature,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": None,
        "repetition_penalty": 1.0,
        "disable_dropout": True,
        "gradient_checkpointing": False,  # TRL 1.x turns it on by default
        "use_vllm": use_vllm,
        "vllm_mode": "colocate",  # one process holds policy and engine; weights synced each step
        "sync_ref_model": False,
        "shuffle_dataset": True,
        "seed": cfg.seed,
        "logging_steps": 1,
        "save_strategy": "no",  # phasecheck writes its own atomic checkpoints
        "report_to": "none",
        "remove_unused_columns": False,  # the reward function needs reference, scenario, id ...
        "log_completions": False,
        "disable_tqdm": True,
        **device_kwargs(),
    }
    kwargs, dropped = accepted_kwargs(GRPOConfig, wanted)
    return GRPOConfig(**kwargs), dropped, cfg


def _dataset(task: TaskSpec, tokenizer, examples: list):
    """Rows for TRL: the chat-rendered prompt (same text the builtin loop samples) plus the columns
    the reward function reads."""
    from datasets import Dataset

    from ..sampling.base import render_prompt

    rows = []
    for ex in examples:
        row = {k: v for k, v in (ex.columns or {}).items()}
        row["prompt"] = render_prompt(tokenizer, ex.prompt, task.sampling.system_prompt)
        # Under the task's own column names, which are what the reward function reads. Arrow needs one
        # type per column: references and scenarios travel as strings or None.
        fields = task.data.fields
        ref = None if ex.reference is None else ex.reference if isinstance(ex.reference, str) else str(ex.reference)
        for col, value in ((fields.id, str(ex.id)), (fields.reference, ref), (fields.scenario, ex.scenario)):
            if col is not None and col != "prompt":
                row[col] = value
        rows.append(row)
    return Dataset.from_list(rows)


def build_grpo_trainer(
    task: TaskSpec,
    *,
    out_dir: Path,
    model: str | None = None,
    max_steps: int | None = None,
    reward_func: Callable | None = None,
    examples: list | None = None,
    use_vllm: bool = False,
    policy: Policy | None = None,
    **overrides: Any,
):
    """A ready GRPOTrainer for the task -> (trainer, settings, dropped config keys). It trains `policy`'s
    model (LoRA added by TRL), by default `model` or the task's, loaded here."""
    from trl import GRPOTrainer

    policy = policy or load_policy(model or task.model)
    config, dropped, cfg = trl_grpo_config(task, out_dir, max_steps=max_steps, use_vllm=use_vllm, **overrides)
    if reward_func is None:
        from ..grading import as_reward_func

        reward_func = as_reward_func(task)
    examples = list(examples) if examples is not None else task_examples(task)
    tok = policy.tokenizer
    tok.padding_side = "left"
    trainer = GRPOTrainer(
        model=policy.model,
        reward_funcs=[reward_func],
        args=config,
        train_dataset=_dataset(task, tok, examples),
        processing_class=tok,
        peft_config=lora_config(cfg.lora) if cfg.lora is not None else None,
    )
    quiet(trainer)
    return trainer, cfg, dropped


def train_grpo_trl(
    task: TaskSpec,
    *,
    out_dir: str | Path | None = None,
    model: str | None = None,
    max_steps: int | None = None,
    reward_func: Callable | None = None,
    examples: list | None = None,
    use_vllm: bool = False,
    on_step: Callable[[dict], None] | None = None,
    **overrides: Any,
) -> GRPOResult:
    """GRPO through TRL; writes metrics.jsonl and a phasecheck checkpoint like the builtin loop."""
    gate = check_gate(task, "grpo")
    run, policy = begin_run(
        task,
        "grpo",
        gate,
        out_dir=out_dir,
        config=resolve_grpo(task, **overrides).to_json(),
        model=model or task.model,
        backend="trl",
    )
    trainer, cfg, dropped = build_grpo_trainer(
        task,
        out_dir=run.out_dir,
        max_steps=max_steps,
        reward_func=reward_func,
        examples=examples,
        use_vllm=use_vllm,
        policy=policy,
        **overrides,
    )
    trainer.train()
    log = run.metrics(on_step)
    for entry in trainer.state.log_history:
        if "step" in entry and any(k in entry for k in _METRIC_NAMES):
            line = {"step": entry["step"], "backend": "trl"}
            line.update({ours: entry[theirs] for theirs, ours in _METRIC_NAMES.items() if theirs in entry})
            acc = [v for k, v in entry.items() if k.startswith("rewards/") and k.endswith("/mean")]
            if acc:
                line["reward_func_mean"] = acc[0]
            log.write(line)
    steps = int(trainer.state.global_step)
    extra: dict[str, Any] = {"trl_dropped_keys": dropped}
    stats = getattr(trainer.reward_funcs[0], "stats", None)
    if stats is not None:  # None rewards (could not judge) are counted in the checkpoint, not lost
        extra["rewards"] = stats.as_dict()
    trained = replace(policy, model=trainer.model, tokenizer=trainer.processing_class, lora=cfg.lora is not None)
    return GRPOResult(run.save(trained, steps, trainer.optimizer, **extra), steps, log.path)


def train_sft_trl(
    task: TaskSpec,
    *,
    force: bool = False,
    out_dir: str | Path | None = None,
    model: str | None = None,
    validated: str | Path | None = None,
    max_steps: int | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Path:
    """SFT through TRL's SFTTrainer on the validated set (prompt/completion rows: completion-only loss)."""
    from trl import SFTTrainer

    from .sft import gate_sft, read_validated, validated_set_path

    spec = task.training.sft
    allowed = gate_sft(task, model=model, force=force, on_warning=on_warning)
    run, policy = begin_run(
        task,
        "sft",
        allowed.gate,
        out_dir=out_dir,
        config=spec.model_dump(mode="json"),
        model=allowed.model,
        fingerprint=allowed.fingerprint,
        backend="trl",
        start_model=allowed.model,
    )
    tok = policy.tokenizer
    tok.padding_side = "right"
    data = _sft_dataset(task, tok, read_validated(validated_set_path(task, validated)))
    split = (
        data.train_test_split(test_size=spec.eval_fraction, seed=spec.seed)
        if spec.eval_fraction and len(data) > 1
        else None
    )
    config, dropped = _sft_config(spec, run.out_dir, max_steps=max_steps, evaluate=split is not None)
    trainer = SFTTrainer(
        model=policy.model,
        args=config,
        train_dataset=split["train"] if split else data,
        eval_dataset=split["test"] if split else None,
        processing_class=tok,
        peft_config=lora_config(spec.lora) if spec.lora is not None else None,
    )
    quiet(trainer)
    trainer.train()
    log = run.metrics()
    for entry in trainer.state.log_history:
        log.write({"backend": "trl", **{k: v for k, v in entry.items() if isinstance(v, (int, float))}})
    trained = replace(policy, model=trainer.model, lora=spec.lora is not None)
    return run.save(trained, int(trainer.state.global_step), trainer.optimizer, trl_dropped_keys=dropped)


def _sft_dataset(task: TaskSpec, tokenizer, rows: list[dict]):
    """Prompt/completion rows for SFTTrainer: the chat-rendered prompt, the completion ending in eos."""
    from datasets import Dataset

    from ..sampling.base import render_prompt

    eos = tokenizer.eos_token or ""
    return Dataset.from_list(
        [
            {
                "prompt": render_prompt(tokenizer, r["prompt"], task.sampling.system_prompt),
                "completion": r["completion"] + eos,
            }
            for r in rows
        ]
    )


def _sft_config(spec: SFTSpec, out_dir: Path, *, max_steps: int | None, evaluate: bool):
    """An SFTConfig mirroring the builtin SFT loop's settings -> (config, dropped keys)."""
    from trl import SFTConfig

    wanted = {
        "output_dir": str(out_dir / "trl"),
        "num_train_epochs": spec.epochs,
        "learning_rate": spec.learning_rate,
        "per_device_train_batch_size": spec.batch_size,
        "max_length": spec.max_length,
        "completion_only_loss": True,
        "packing": False,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "max_steps": max_steps if max_steps is not None else -1,
        "seed": spec.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "eval_strategy": "epoch" if evaluate else "no",
        "gradient_checkpointing": False,
        "disable_tqdm": True,
        **device_kwargs(),
    }
    kwargs, dropped = accepted_kwargs(SFTConfig, wanted)
    return SFTConfig(**kwargs), dropped


def device_kwargs() -> dict[str, Any]:
    """The config keys that follow the hardware: CPU when there is no GPU, bf16 where the GPU has it."""
    import torch

    cpu = not torch.cuda.is_available()
    return {
        "use_cpu": cpu,
        "bf16": False if cpu else torch.cuda.is_bf16_supported(),
        "dataloader_pin_memory": not cpu,
    }


def quiet(trainer) -> None:
    """Drop the trainer's printed logs: our metrics.jsonl and progress bar report instead."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
