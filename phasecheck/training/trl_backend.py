"""--backend trl: GRPOTrainer / SFTTrainer built from the same task config and reward function, the
scale-out path (accelerate gives multi-GPU and multi-node). Every default we rely on is written out,
and only the keywords the installed TRL's config accepts are passed."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..names import Metric
from ..state import record_run
from ..task import TaskSpec
from .checkpoint import save_checkpoint
from .common import MetricsLog, Policy, default_out_dir, now, task_examples
from .gate import check_gate
from .grpo import GRPOResult, _fingerprint, resolve_grpo

__all__ = ["trl_grpo_config", "build_grpo_trainer", "train_grpo_trl", "train_sft_trl", "accepted_kwargs"]

# TRL renames metrics between versions; ours are stable. Keys missing in a version are skipped.
_METRIC_NAMES = {"reward": Metric.REWARD_MEAN, "reward_std": Metric.REWARD_STD,
                 "frac_reward_zero_std": Metric.FRAC_ZERO_STD, "kl": Metric.KL, "entropy": Metric.ENTROPY,
                 "completions/mean_length": Metric.COMPLETION_LENGTH, "loss": Metric.LOSS,
                 "grad_norm": Metric.GRAD_NORM, "learning_rate": Metric.LR, "clip_ratio/region_mean": Metric.CLIP_FRAC}


def accepted_kwargs(config_cls: type, wanted: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split `wanted` into the keys config_cls.__init__ accepts and the names it does not."""
    params = inspect.signature(config_cls.__init__).parameters
    ok = {k: v for k, v in wanted.items() if k in params}
    return ok, sorted(set(wanted) - set(ok))


def trl_grpo_config(task: TaskSpec, out_dir: Path, *, max_steps: int | None = None, use_vllm: bool = False,
                    **overrides: Any):
    """A GRPOConfig mirroring the builtin loop's settings -> (config, dropped keys)."""
    import torch
    from trl import GRPOConfig
    cfg = resolve_grpo(task, **overrides)
    cpu = not torch.cuda.is_available()
    wanted = {
        "output_dir": str(out_dir / "trl"),
        "num_generations": cfg.group_size,
        # TRL counts completions, not prompts, per device batch.
        "per_device_train_batch_size": cfg.batch_prompts * cfg.group_size,
        "gradient_accumulation_steps": 1,
        "steps_per_generation": 1,
        "num_iterations": cfg.iterations,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": "constant",        # TRL default: linear decay; builtin: constant
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": cfg.max_grad_norm,
        "num_train_epochs": cfg.epochs,
        "max_steps": max_steps if max_steps is not None else -1,
        "beta": cfg.beta,                       # TRL default moved 0.04 -> 0.0
        "epsilon": cfg.epsilon,
        "epsilon_high": cfg.epsilon,
        "scale_rewards": cfg.advantage_scale,    # group | batch | none
        "loss_type": "dapo",                    # token-level aggregation, as the builtin loop
        "importance_sampling_level": "token",
        "mask_truncated_completions": False,
        "max_completion_length": cfg.max_new_tokens,
        "temperature": cfg.temperature,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": None,
        "repetition_penalty": 1.0,
        "disable_dropout": True,
        "gradient_checkpointing": False,       # TRL 1.x turns it on by default
        "use_vllm": use_vllm,
        "vllm_mode": "colocate",               # one process holds policy and engine; weights synced each step
        "sync_ref_model": False,
        "shuffle_dataset": True,
        "seed": cfg.seed,
        "logging_steps": 1,
        "save_strategy": "no",                 # phasecheck writes its own atomic checkpoints
        "report_to": "none",
        "remove_unused_columns": False,        # the reward function needs reference, scenario, id ...
        "use_cpu": cpu,
        "bf16": False if cpu else torch.cuda.is_bf16_supported(),
        "dataloader_pin_memory": not cpu,
        "log_completions": False,
        "disable_tqdm": True,
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


def build_grpo_trainer(task: TaskSpec, *, out_dir: Path, model: str | None = None, max_steps: int | None = None,
                       reward_func: Callable | None = None, examples: list | None = None, use_vllm: bool = False,
                       **overrides: Any):
    """A ready GRPOTrainer for the task -> (trainer, settings, dropped config keys)."""
    import torch
    from peft import LoraConfig
    from trl import GRPOTrainer

    from ..sampling.models import load_model, resolve_model
    resolved = resolve_model(str(model or task.model))
    net, tok = load_model(resolved, dtype=torch.float32)
    config, dropped, cfg = trl_grpo_config(task, out_dir, max_steps=max_steps, use_vllm=use_vllm, **overrides)
    if reward_func is None:
        from ..grading import as_reward_func
        reward_func = as_reward_func(task)
    examples = list(examples) if examples is not None else task_examples(task)
    peft_config = None
    if cfg.lora is not None:
        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                                 target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    tok.padding_side = "left"
    trainer = GRPOTrainer(model=net, reward_funcs=[reward_func], args=config,
                          train_dataset=_dataset(task, tok, examples), processing_class=tok,
                          peft_config=peft_config)
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)       # our metrics.jsonl and progress bar report instead
    trainer._phasecheck = (resolved, cfg)
    return trainer, cfg, dropped


def train_grpo_trl(task: TaskSpec, *, out_dir: str | Path | None = None, model: str | None = None,
                   max_steps: int | None = None, reward_func: Callable | None = None, examples: list | None = None,
                   use_vllm: bool = False, on_step: Callable[[dict], None] | None = None,
                   **overrides: Any) -> GRPOResult:
    """GRPO through TRL; writes metrics.jsonl and a phasecheck checkpoint like the builtin loop."""
    gate = check_gate(task, "grpo")
    out_dir = Path(out_dir) if out_dir else default_out_dir(task, "grpo")
    trainer, cfg, dropped = build_grpo_trainer(task, out_dir=out_dir, model=model, max_steps=max_steps,
                                               reward_func=reward_func, examples=examples, use_vllm=use_vllm,
                                               **overrides)
    resolved, _ = trainer._phasecheck
    trainer.train()
    log = MetricsLog(out_dir / "metrics.jsonl", on_step)
    for entry in trainer.state.log_history:
        if "step" in entry and any(k in entry for k in _METRIC_NAMES):
            line = {"step": entry["step"], "backend": "trl"}
            line.update({ours: entry[theirs] for theirs, ours in _METRIC_NAMES.items() if theirs in entry})
            acc = [v for k, v in entry.items() if k.startswith("rewards/") and k.endswith("/mean")]
            if acc:
                line["reward_func_mean"] = acc[0]
            log.write(line)
    steps = int(trainer.state.global_step)
    policy = Policy(trainer.model, trainer.processing_class, str(resolved.path), resolved.identity,
                    lora=cfg.lora is not None)
    meta = {"kind": "grpo", "backend": "trl", "task": task.name, "fingerprint": _fingerprint(task, resolved.identity),
            "verdict": gate.record(), "config": cfg.to_json(), "trl_dropped_keys": dropped, "created_at": now()}
    stats = getattr(trainer.reward_funcs[0], "stats", None)
    if stats is not None:              # None rewards (could not judge) are counted in the checkpoint, not lost
        meta["rewards"] = stats.as_dict()
    path = save_checkpoint(policy, out_dir, step=steps, meta=meta, optimizer=trainer.optimizer)
    record_run(task, kind="grpo", path=path, step=steps, created_at=meta["created_at"], backend="trl")
    return GRPOResult(path, steps, log.path)


def train_sft_trl(task: TaskSpec, *, force: bool = False, out_dir: str | Path | None = None,
                  model: str | None = None, validated: str | Path | None = None, max_steps: int | None = None,
                  on_warning: Callable[[str], None] | None = None) -> Path:
    """SFT through TRL's SFTTrainer on the validated set (prompt/completion rows: completion-only loss)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from ..sampling.base import render_prompt
    from ..sampling.models import load_model, resolve_model
    from .sft import gate_sft, read_validated, validated_set_path
    spec = task.training.sft
    allowed = gate_sft(task, model=model, force=force, on_warning=on_warning)
    start, current, gate = allowed.model, allowed.fingerprint, allowed.gate
    out_dir = Path(out_dir) if out_dir else default_out_dir(task, "sft")
    resolved = resolve_model(str(start))
    net, tok = load_model(resolved, dtype=torch.float32)
    tok.padding_side = "right"
    rows = read_validated(Path(validated) if validated else validated_set_path(task))
    data = Dataset.from_list([{"prompt": render_prompt(tok, r["prompt"], task.sampling.system_prompt),
                               "completion": r["completion"] + (tok.eos_token or "")} for r in rows])
    split = data.train_test_split(test_size=spec.eval_fraction, seed=spec.seed) if spec.eval_fraction and len(data) > 1 else None
    cpu = not torch.cuda.is_available()
    wanted = {"output_dir": str(out_dir / "trl"), "num_train_epochs": spec.epochs, "learning_rate": spec.learning_rate,
              "per_device_train_batch_size": spec.batch_size, "max_length": spec.max_length,
              "completion_only_loss": True, "packing": False, "lr_scheduler_type": "constant", "warmup_steps": 0,
              "weight_decay": 0.0, "max_grad_norm": 1.0, "max_steps": max_steps if max_steps is not None else -1,
              "seed": spec.seed, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
              "use_cpu": cpu, "bf16": False if cpu else torch.cuda.is_bf16_supported(),
              "eval_strategy": "epoch" if split else "no", "gradient_checkpointing": False, "disable_tqdm": True,
              "dataloader_pin_memory": not cpu}
    kwargs, dropped = accepted_kwargs(SFTConfig, wanted)
    peft_config = None
    if spec.lora is not None:
        peft_config = LoraConfig(r=spec.lora.r, lora_alpha=spec.lora.alpha, lora_dropout=spec.lora.dropout,
                                 target_modules=spec.lora.target_modules, task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=net, args=SFTConfig(**kwargs), train_dataset=split["train"] if split else data,
                         eval_dataset=split["test"] if split else None, processing_class=tok, peft_config=peft_config)
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    log = MetricsLog(out_dir / "metrics.jsonl")
    for entry in trainer.state.log_history:
        log.write({"backend": "trl", **{k: v for k, v in entry.items() if isinstance(v, (int, float))}})
    steps = int(trainer.state.global_step)
    policy = Policy(trainer.model, tok, str(resolved.path), resolved.identity, lora=spec.lora is not None)
    meta = {"kind": "sft", "backend": "trl", "task": task.name, "fingerprint": current.model_dump(mode="json"),
            "verdict": gate.record(), "forced": gate.forced, "config": spec.model_dump(mode="json"),
            "trl_dropped_keys": dropped, "created_at": now(), "start_model": str(start)}
    path = save_checkpoint(policy, out_dir, step=steps, meta=meta, optimizer=trainer.optimizer)
    record_run(task, kind="sft", path=path, step=steps, created_at=meta["created_at"], forced=gate.forced)
    return path

