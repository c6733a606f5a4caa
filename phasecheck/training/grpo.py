"""Builtin GRPO: one loop, top to bottom, rewarded by the task's grader and its reward bands.

How this departs from the paper (Shao et al. 2024, DeepSeekMath) — on purpose:
- Token-level loss aggregation: the surrogate is summed over every completion token in the batch
  and divided by the batch's total completion tokens (DAPO / TRL "dapo"), not averaged per sequence
  first, so long completions are not down-weighted per token.
- Advantages are (r - mean_group) / std, with std taken over the group (paper), the whole batch
  (`advantage_scale: batch`, Dr. GRPO-like robustness) or not at all (`none`); 1e-4 guards std = 0.
- The KL term uses the k3 estimator exp(ref - logp) - (ref - logp) - 1 per token, added to the
  loss with weight beta (as the paper), against the frozen start model or, with LoRA, a plain view
  of the base model that shares the policy's frozen weights (no second copy in memory).
- `iterations` (mu) optimiser steps per rollout batch, default 1: then the ratio is exactly 1 and
  the clip is inactive (on-policy, as nanochat and TRL's default); old log-probs come from the
  policy before the first of the mu steps.
- Dropout is off (model.eval()) in rollouts and updates, so log-probs of the same weights agree.
- With LoRA, rollouts sample the policy with its adapter folded into the weights (W + sBA, each
  step), not the peft-wrapped model: same distribution, a third of the matmuls. Llama-family
  models fold it inside sampling.lean; others sample a merged InferenceCopy re-synced each step;
  with `sampling.engine: vllm` the folded weights are loaded into a colocated vLLM engine.
- Log-probs (policy, reference, old policy) run each prompt once for its G completions where the
  model allows (sampling.lean), the same numbers as G whole sequences.
- No reward model and no process supervision: the reward is the verifier's outcome reward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..names import Metric as M
from ..sampling.lean import lean_model
from ..stats import wilson
from ..task import TaskSpec
from .common import (
    InferenceCopy,
    Policy,
    completion_logprobs,
    make_optimizer,
    optimizer_step,
    reference_policy,
    task_examples,
    task_grader,
)
from .gate import check_gate
from .grpo_settings import PRESETS, GRPOSettings, group_size_for, plan_steps, resolve_grpo
from .prompt_selection import select_prompts, zero_std_met
from .rollout import HFRollout, Rollout, rollout_for
from .run import begin_run

__all__ = [
    "GRPOSettings",
    "PRESETS",
    "resolve_grpo",
    "train_grpo",
    "GRPOResult",
    "group_advantages",
    "plan_steps",
    "group_size_for",
]


def group_advantages(rewards, scale: str):
    """(B, G) rewards -> (B, G) advantages: centred per group, scaled by group/batch std or not."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if scale == "group":
        return centred / (rewards.std(dim=1, keepdim=True, unbiased=False) + 1e-4)
    if scale == "batch":
        return centred / (rewards.std(unbiased=False) + 1e-4)
    return centred


@dataclass
class GRPOResult:
    checkpoint: Path
    steps: int
    metrics: Path
    interrupted: bool = False
    zero_std: dict[str, Any] = field(default_factory=dict)  # the share of zero-variance groups met, and predicted


def train_grpo(
    task: TaskSpec,
    *,
    out_dir: str | Path | None = None,
    model: str | None = None,
    resume: str | Path | None = None,
    max_steps: int | None = None,
    rollout: Rollout | None = None,
    grader=None,
    examples: list | None = None,
    save_every: int = 0,
    device: str | None = None,
    on_step: Callable[[dict], None] | None = None,
    **overrides: Any,
) -> GRPOResult:
    """Train the task's model with GRPO on its eval prompts; returns the final checkpoint.

    `resume` is a checkpoint dir; the run continues from its step with its optimizer state."""
    cfg = resolve_grpo(task, **overrides)
    gate = check_gate(task, "grpo")
    examples = list(examples) if examples is not None else task_examples(task)
    examples, predicted = select_prompts(task, gate, examples, cfg.prompts, cfg.group_size)
    with task_grader(task, grader) as grader:
        run, policy = begin_run(
            task,
            "grpo",
            gate,
            out_dir=out_dir,
            config=cfg.to_json(),
            model=model or task.model,
            lora=cfg.lora,
            resume=resume,
            seed=cfg.seed,
            device=device,
        )
        loop = _Loop.start(task, cfg, policy, rollout, grader, examples, resumed=bool(resume))
        # Ctrl-C drops the step in flight (its update may be half done only if the interrupt hit inside
        # opt.step, which the next rollout would not notice).
        path, total, metrics = run.train(
            policy,
            loop.opt,
            loop.step,
            items=len(examples),
            batch=cfg.batch_prompts,
            seed=cfg.seed,
            planned=plan_steps(cfg, len(examples)),
            max_steps=max_steps,
            on_step=on_step,
            save_every=save_every,
            first=predicted,
        )
    return GRPOResult(path, total, metrics, zero_std=zero_std_met(metrics, predicted))


@dataclass
class _Loop:
    """What each GRPO step reads: settings, policy, reference, optimiser, rollouts, grader and prompts."""

    cfg: GRPOSettings
    net: Any
    tok: Any
    ref: Any  # the KL reference, None when beta is 0
    infer: InferenceCopy | None  # the merged copy rollouts sample, when one is needed
    opt: Any
    params: list
    rollout: Rollout
    grader: Any
    examples: list
    texts: list[str]  # chat-rendered prompts
    prompt_ids: list[list[int]]
    device: Any

    @classmethod
    def start(
        cls,
        task: TaskSpec,
        cfg: GRPOSettings,
        policy: Policy,
        rollout: Rollout | None,
        grader,
        examples: list,
        *,
        resumed: bool,
    ) -> _Loop:
        """The loop over `policy` (dropout off): its KL reference, the rollout (by default the task's engine) and
        the merged copy it may sample, the optimiser, and the chat-rendered prompts with their token ids."""
        from ..sampling.base import render_prompt

        net, tok = policy.model, policy.tokenizer
        rollout = rollout or rollout_for(task, policy.base_path)
        net.eval()
        ref = reference_policy(policy, cfg.beta, resumed=resumed)
        # transformers rollouts of a LoRA policy sample a merged copy, except Llama-family models, which
        # sampling.lean folds itself; a vLLM rollout folds the adapter into what it pushes to the engine.
        infer = (
            InferenceCopy(net) if policy.lora and isinstance(rollout, HFRollout) and lean_model(net) is None else None
        )
        params, opt = make_optimizer(net, cfg.learning_rate)
        texts = [render_prompt(tok, ex.prompt, task.sampling.system_prompt) for ex in examples]
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        device = next(net.parameters()).device
        return cls(cfg, net, tok, ref, infer, opt, params, rollout, grader, examples, texts, ids, device)

    def step(self, step: int, batch: list[int], total: int) -> dict[str, Any]:
        """Step `step` of `total` (mu updates) on the prompts in `batch`; returns its metrics line."""
        import torch

        cfg = self.cfg
        t0 = time.perf_counter()
        groups = self.sample(step, batch)
        t_gen = time.perf_counter() - t0
        # --- rewards: the grader's reward bands, then group-normalised advantages -------------
        pairs = [(text, self.examples[i]) for i, group in zip(batch, groups) for text, _, _ in group]
        grades = self.grader.grade_many(pairs)
        rewards = torch.tensor([g.reward for g in grades], dtype=torch.float32).view(len(batch), cfg.group_size)
        adv = group_advantages(rewards, cfg.advantage_scale).view(-1)
        update = self.update(batch, groups, adv)
        # --- one metrics line per step -------------------------------------------------------
        line = _metrics_line(rewards, adv, groups, [g.correct is True for g in grades])
        line.update(
            {
                M.STEP: step + 1,
                M.TOTAL_STEPS: total,
                M.GROUPS: len(batch),
                **update,
                M.LR: cfg.learning_rate,
                "gen_s": round(t_gen, 4),
                "step_s": round(time.perf_counter() - t0, 4),
            }
        )
        return line

    def sample(self, step: int, batch: list[int]) -> list:
        """The rollouts: G completions per prompt in `batch` from the current policy, seeded by the step."""
        import torch

        cfg = self.cfg
        with torch.no_grad():
            if self.infer is not None:
                self.infer.sync()
            return self.rollout(
                self.infer.model if self.infer is not None else self.net,
                self.tok,
                [self.texts[i] for i in batch],
                n=cfg.group_size,
                seed=cfg.seed * 1_000_003 + step * cfg.batch_prompts * cfg.group_size,
                temperature=cfg.temperature,
                max_new_tokens=cfg.max_new_tokens,
            )

    def update(self, batch: list[int], groups: list, adv) -> dict[str, float]:
        """The mu optimiser steps on the clipped surrogate + beta * k3 KL, token-level aggregation; returns
        the last one's loss, KL, entropy, clip fraction and gradient norm."""
        import torch

        cfg, net = self.cfg, self.net
        # --- log-probs of the completion tokens: reference, old policy (for mu > 1) -----------
        # Each prompt runs once for its whole group where the model allows (sampling.lean).
        seqs = (
            [self.prompt_ids[i] for i in batch],
            [comp for group in groups for _, comp, _ in group],
            cfg.group_size,
            self.tok.pad_token_id,
        )
        adv_t = adv.to(self.device).unsqueeze(1)
        with torch.no_grad():
            ref_logp = completion_logprobs(self.ref, *seqs)[0] if self.ref is not None else None
            old_logp = completion_logprobs(net, *seqs)[0] if cfg.iterations > 1 else None
        for _ in range(cfg.iterations):
            logp, entropy, cmask = completion_logprobs(net, *seqs, with_entropy=True)
            n_tok = cmask.sum().clamp(min=1.0)
            ratio = torch.exp(logp - (old_logp if old_logp is not None else logp.detach()))
            clipped = torch.clamp(ratio, 1 - cfg.epsilon, 1 + cfg.epsilon)
            per_token = -torch.min(ratio * adv_t, clipped * adv_t)
            kl = torch.zeros_like(logp)
            if ref_logp is not None:
                delta = ref_logp - logp
                kl = torch.exp(delta) - delta - 1
                per_token = per_token + cfg.beta * kl
            loss = (per_token * cmask).sum() / n_tok
            grad_norm = optimizer_step(self.opt, loss, self.params, cfg.max_grad_norm)
        return {
            M.LOSS: loss.item(),
            M.KL: _token_mean(kl, cmask, n_tok),
            M.ENTROPY: _token_mean(entropy, cmask, n_tok),
            M.CLIP_FRAC: _token_mean(((ratio - 1).abs() > cfg.epsilon).float(), cmask, n_tok),
            M.GRAD_NORM: float(grad_norm),
        }


def _token_mean(values, cmask, n_tok) -> float:
    """The mean of a (N, Tc) per-token quantity over the real completion tokens."""
    return ((values.detach() * cmask).sum() / n_tok).item()


def _metrics_line(rewards, adv, groups, correct: list[bool]) -> dict[str, Any]:
    """A step's metrics that come from its rewards and completions (the rest come from the update)."""
    group_std = rewards.std(dim=1, unbiased=False)
    lengths = [len(c) for g in groups for _, c, _ in g]
    return {
        M.REWARD_MEAN: rewards.mean().item(),
        M.REWARD_STD: rewards.std(unbiased=False).item(),
        M.FRAC_ZERO_STD: (group_std < 1e-6).float().mean().item(),
        M.FRAC_ZERO_STD_CI: list(wilson(int((group_std < 1e-6).sum()), len(group_std))),
        M.COMPLETION_LENGTH: sum(lengths) / len(lengths),
        M.TRUNCATED_FRAC: sum(not f for g in groups for _, _, f in g) / len(lengths),
        M.ACCURACY: sum(correct) / len(correct),
        "advantage_min": adv.min().item(),
        "advantage_max": adv.max().item(),
    }
