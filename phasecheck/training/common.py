"""Pieces the training loops share: the task's grader, the optimiser and its step, loading a trainable policy,
LoRA, token log-probs, rollouts and metrics lines. Checkpoint writing lives in checkpoint.py; a run's start and
save in run.py."""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..sampling.base import pad_left, pad_right
from ..task import LoraSpec, TaskSpec

__all__ = [
    "Policy",
    "reference_policy",
    "load_policy",
    "lora_config",
    "apply_lora",
    "token_logprobs",
    "completion_logprobs",
    "pad_right",
    "MetricsLog",
    "task_examples",
    "InferenceCopy",
    "folded_weight",
    "base_view",
    "task_grader",
    "make_optimizer",
    "optimizer_step",
]


def task_examples(task: TaskSpec) -> list:
    """The task's eval examples (the prompts GRPO trains on) as a list."""
    from ..data import load_examples

    loaded = load_examples(task)
    examples = list(getattr(loaded, "examples", loaded))
    if not examples:
        raise ConfigError(f"{task.source or task.name}: data.eval has no examples to train on")
    return examples


def task_grader(task: TaskSpec, grader=None):
    """A context giving `grader`, or else the task's own Grader, closed on leaving it (a grader passed in is
    the caller's to close)."""
    if grader is not None:
        return contextlib.nullcontext(grader)
    from ..grading import Grader

    return Grader(task)


def make_optimizer(model, learning_rate: float) -> tuple[list, Any]:
    """(trainable parameters, AdamW over them): constant learning rate, no weight decay."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    return params, torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0, foreach=True)


def optimizer_step(optimizer, loss, params: list, max_grad_norm: float):
    """Backpropagate `loss`, clip the gradients to max_grad_norm and step; returns the norm before clipping."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    return grad_norm


@dataclass
class Policy:
    """A trainable model, its tokenizer, and where it came from."""

    model: Any
    tokenizer: Any
    base_path: str  # the HF directory of the base weights
    identity: str | None  # model identity of the base (resolve_model), for fingerprints
    lora: bool


def load_policy(model_name: str | None, *, device: str | None = None) -> Policy:
    """Load `model_name` (alias, HF dir, hub id or a phasecheck checkpoint) in float32 for training."""
    import torch

    from ..sampling.models import load_model, resolve_model

    if not model_name:
        raise ConfigError("task has no `model:`; set it (alias, local HF directory or hub id) to train")
    resolved = resolve_model(str(model_name))
    # float32 master weights: the conservative preset's 5e-7 steps vanish in bf16 rounding.
    model, tok = load_model(resolved, device=device, dtype=torch.float32)
    return Policy(model, tok, str(resolved.path), resolved.identity, lora=False)


def lora_config(spec: LoraSpec):
    """The peft LoraConfig of a task's `lora:` block, for our loops and TRL's trainers alike."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        task_type="CAUSAL_LM",
    )


def apply_lora(policy: Policy, spec: LoraSpec) -> Policy:
    """Wrap the policy's model in a fresh peft LoRA adapter (r, alpha, dropout, target modules)."""
    from peft import get_peft_model

    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing`; nothing a user can act on.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        policy.model = get_peft_model(policy.model, lora_config(spec))
    policy.lora = True
    return policy


def _gather_logprobs(logits, targets, with_entropy: bool):
    """log p(target) per position, and (without autograd) the entropy, from logits (B, T, V)."""
    import torch

    logp_all = torch.log_softmax(logits.float(), dim=-1)
    del logits  # log_softmax keeps only its output for backward; the logits can go now
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = None
    if with_entropy:
        # In chunks of rows (~16M values) so the vocabulary-wide temporaries stay small.
        rows = max(1, (1 << 24) // max(1, logp_all[0].numel()))
        with torch.no_grad():
            entropy = torch.cat([-(c.exp() * c).sum(-1) for c in logp_all.detach().split(rows)])
    return logp, entropy


def token_logprobs(model, ids, mask, *, with_entropy: bool = False, start: int = 0):
    """Log-prob of each token given the ones before it: shape (B, T-1), aligned with ids[:, 1:].

    Right padding keeps every real token at its natural position, so no position_ids are needed.
    Only positions >= `start` get logits (the model's logits_to_keep); earlier ones read 0, so a
    caller that needs only completion tokens skips the prompt's full-vocabulary rows. The entropy
    is a metric, computed without autograd, so backward keeps only log_softmax's output."""
    import torch

    from ..sampling.lean import lean_model

    width = ids.shape[1] - 1
    start = max(0, min(int(start), width - 1))
    lean = lean_model(model)
    if lean is not None:
        logits = lean.logits(ids, mask, keep=width + 1 - start if start else 0)
    else:
        kwargs = {"logits_to_keep": width + 1 - start} if start else {}
        logits = model(input_ids=ids, attention_mask=mask, **kwargs).logits
    logp, entropy = _gather_logprobs(logits[:, :-1], ids[:, start + 1 :], with_entropy)
    if start:
        logp = torch.nn.functional.pad(logp, (start, 0))
        entropy = torch.nn.functional.pad(entropy, (start, 0)) if entropy is not None else None
    return logp, entropy


def completion_logprobs(
    model,
    prompts: list[list[int]],
    completions: list[list[int]],
    group: int,
    pad_id: int,
    *,
    with_entropy: bool = False,
):
    """Log-probs (N, Tc) of each completion token given its prompt and the completion before it, the
    entropy of those positions, and the (N, Tc) float mask of real completion tokens.

    Completions come in groups: rows j*group ... j*group+group-1 follow prompts[j]. A Llama-family
    model runs each prompt once and shares it with its group (sampling.lean); any other model runs
    the N whole sequences through transformers."""
    import torch

    from ..sampling.lean import lean_model

    comp_ids, cmask = pad_right(completions, pad_id)
    device = next(model.parameters()).device
    comp_ids, cmask = comp_ids.to(device), cmask.to(device).float()
    lean = lean_model(model)
    if lean is not None:
        prompt_ids, prompt_mask = (t.to(device) for t in pad_left(prompts, pad_id))
        logits = lean.completion_logits(prompt_ids, prompt_mask, comp_ids, group)
        logp, entropy = _gather_logprobs(logits, comp_ids, with_entropy)
        return logp, entropy, cmask
    plens = [len(prompts[r // group]) for r in range(len(completions))]
    ids, mask = pad_right([prompts[r // group] + c for r, c in enumerate(completions)], pad_id)
    first = min(plens) - 1
    logp, entropy = token_logprobs(model, ids.to(device), mask.to(device), with_entropy=with_entropy, start=first)
    # Row r's completion token t sits at position plens[r] - 1 + t of the (B, T-1) log-probs.
    at = torch.tensor(plens, device=device).unsqueeze(1) - 1 + torch.arange(comp_ids.shape[1], device=device)
    at = at.clamp(max=logp.shape[1] - 1)
    logp = logp.gather(1, at)
    entropy = entropy.gather(1, at) if entropy is not None else None
    return logp, entropy, cmask


def base_view(peft_model):
    """The LoRA policy's start model as a plain transformers model that shares every weight tensor.

    It is the KL reference: the same modules with each LoRA layer swapped back for its frozen base
    layer, so it costs no weight memory and none of peft's disable_adapter (which deep-copies its
    config on each call) or per-layer adapter dispatch."""
    import copy

    from peft.tuners.lora import LoraLayer

    inner = peft_model.get_base_model()
    shared = {id(t): t for t in [*inner.parameters(), *inner.buffers()]}
    view = copy.deepcopy(inner, shared)
    for name, module in list(view.named_modules()):
        if isinstance(module, LoraLayer):
            view.set_submodule(name, module.base_layer)
    return view.eval()


class InferenceCopy:
    """A plain (adapter-free) copy of a LoRA policy for rollouts, re-synced as W + BA after each step.

    Sampling through peft's wrapped layers costs three matmuls and several Python calls per linear
    per token; the merged copy costs one. It is the same weight-sync a vLLM engine needs (this is
    what would be pushed into it). Memory: one extra copy of the model. Full fine-tuning needs none."""

    def __init__(self, peft_model):
        import copy

        self.model = copy.deepcopy(peft_model).merge_and_unload().eval().requires_grad_(False)
        self.peft_model = peft_model
        self.pairs = []
        from peft.tuners.lora import LoraLayer

        for name, module in peft_model.named_modules():
            if isinstance(module, LoraLayer):
                key = name.removeprefix("base_model.model.")
                self.pairs.append((module, self.model.get_submodule(key)))

    def sync(self) -> None:
        import torch

        with torch.no_grad():
            for lora, plain in self.pairs:
                plain.weight.copy_(folded_weight(lora))


def folded_weight(lora_layer):
    """A peft LoRA layer's weight with its active adapters folded in, W + sum(s B A), as a new tensor
    (no autograd); the layer itself is left as it is (no merge/unmerge round trip, whose rounding
    would drift the base weight step after step)."""
    import torch

    with torch.no_grad():
        weight = lora_layer.base_layer.weight.detach()
        deltas = [lora_layer.get_delta_weight(a) for a in lora_layer.active_adapters if a in lora_layer.lora_A]
        return weight + sum(deltas, torch.zeros_like(weight))


class MetricsLog:
    """Appends one JSON line per step to metrics.jsonl (append-only, one short line per write)."""

    def __init__(self, path: Path, on_line: Callable[[dict], None] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.on_line = on_line

    def write(self, line: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
        if self.on_line:
            self.on_line(line)


def reference_policy(policy: Policy, beta: float, *, resumed: bool):
    """The frozen KL reference, or None when beta is 0: with LoRA a plain view of the base that shares the
    policy's weights; in full fine-tuning a copy of the start weights (on resume, the recorded base
    again, so the KL anchor does not drift with each restart)."""
    if beta <= 0:
        return None
    if policy.lora:
        return base_view(policy.model)
    if resumed:
        import torch
        from transformers import AutoModelForCausalLM

        ref = AutoModelForCausalLM.from_pretrained(policy.base_path, dtype=torch.float32)
        ref.to(next(policy.model.parameters()).device)
    else:
        ref = copy.deepcopy(policy.model)
    return ref.eval().requires_grad_(False)
