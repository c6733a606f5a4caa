"""Builtin GFT (Group Fine-Tuning): SFT read as a policy gradient, with groups and a bounded coefficient.

Each step, for each prompt of the batch, a group of K responses: `demos_per_group` (d) validated
demonstrations of that prompt and K - d samples of the current policy (temperature T). Every member is
graded by the task's grader with its reward bands, and

    A_i     = (r_i - mean_g r) / (std_g r + 1e-4)        std over the group, population; a group whose
                                                          std is below 1e-6 gets A_i = 0 for every member
    p_i,t   = pi_theta(y_i,t | x, y_i,<t)                 under the current policy, temperature 1
    c_i,t   = 1 if p_i,t > tau else sg(p_i,t)             Dynamic Coefficient Rectification (sg: no gradient)
    loss    = - sum_{i,t} A_i * c_i,t * log p_i,t  /  sum_i |y_i|     (a token mean over the whole batch)

so a token's gradient is -A_i * (c_i,t / p_i,t) * grad p_i,t: the inverse-probability weight c/p is
1/p < 1/tau above the threshold and 1 at or below it, never above 1/tau, where SFT's 1/p is unbounded
on a low-probability demonstration token. With K = d = 1, A = 1 and tau -> 0 this is SFT.

The formula for c is the authors' released code (ZJU-OmniAI/GFT, verl `compute_gft_loss`:
`-log_prob * where(prob > tao, 1, prob).detach() * advantages`, token mean); only the preprint's
abstract was readable here, not its text. How this departs from the paper, on purpose:
- A group holds two kinds of response, validated demonstrations and the policy's own samples; the paper's
  groups also hold a teacher model's distillations. Demonstrations are graded like samples (as the
  released code rewards its expert responses), so a demonstration earns its band, not a fixed 1.
- A prompt with fewer than d validated demonstrations repeats its own (cycling through them), so every
  group keeps the configured mix and one rollout call serves the batch; a repeated demonstration counts
  once per copy in its group's mean and std. With more than d, the d are drawn per step by the seed.
- The prompts are the validated set's distinct prompts (its rows grouped by prompt); each is graded as
  an Example built from its first row's id, reference and scenario (validated rows keep no other
  columns). Demonstrations are not cut to max_new_tokens.
- Advantages use the population std plus 1e-4 (verl: torch.std, unbiased, plus 1e-6), as our GRPO does.
- No KL term and no PPO ratio: one update per rollout batch, so the policy that sampled is the one
  updated (the released loss has no ratio either). Log-probs are at temperature 1 whatever T sampled
  (verl scales the logits by T). Dropout is off in rollouts and updates.
- LoRA rollouts sample the policy with its adapter folded in, as GRPO's do (see grpo.py).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..names import Metric as M
from ..records import Example
from ..sampling.lean import lean_model
from ..task import GFTSpec, TaskSpec
from .common import InferenceCopy, completion_logprobs, make_optimizer, optimizer_step, task_grader
from .gate import GateDecision
from .grpo import group_advantages
from .grpo_settings import plan_steps
from .rollout import HFRollout, Rollout, rollout_for
from .run import begin_run
from .sft import gate_sft, read_validated, validated_set_path

__all__ = ["train_gft", "GFTResult", "gft_advantages", "dcr_coefficient", "demo_groups"]


def gft_advantages(rewards):
    """(B, K) rewards -> (B, K) advantages normalised within each group; a zero-std group gets zeros."""
    flat = rewards.std(dim=1, keepdim=True, unbiased=False) < 1e-6
    return group_advantages(rewards, "group").masked_fill(flat, 0.0)


def dcr_coefficient(logp, tau: float):
    """DCR's per-token coefficient c of log p: 1 where p > tau, else p itself with no gradient through it."""
    import torch

    p = logp.detach().exp()
    return torch.where(p > tau, torch.ones_like(p), p)


def demo_groups(rows: list[dict]) -> list[tuple[Example, list[str]]]:
    """The validated rows grouped by prompt, in first-seen order: (Example to grade by, its completions)."""
    groups: dict[str, tuple[Example, list[str]]] = {}
    for n, row in enumerate(rows, 1):
        key = json.dumps(row["prompt"], sort_keys=True)
        if key not in groups:
            ex = Example(str(row.get("id", n)), row["prompt"], row.get("reference"), row.get("scenario"), row=n)
            groups[key] = (ex, [])
        groups[key][1].append(row["completion"])
    return list(groups.values())


@dataclass
class GFTResult:
    checkpoint: Path
    steps: int
    metrics: Path
    gate: GateDecision


def train_gft(
    task: TaskSpec,
    *,
    force: bool = False,
    out_dir: str | Path | None = None,
    model: str | None = None,
    validated: str | Path | None = None,
    resume: str | Path | None = None,
    max_steps: int | None = None,
    rollout: Rollout | None = None,
    grader=None,
    save_every: int = 0,
    device: str | None = None,
    on_step: Callable[[dict], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    **overrides: Any,
) -> GFTResult:
    """Gate like SFT, then GFT the judged model (or `model`) on the validated set; returns the last checkpoint.

    `resume` is a checkpoint dir; the run continues from its step with its optimizer state."""
    spec = _settings(task, overrides)
    allowed = gate_sft(task, model=model, force=force, on_warning=on_warning, kind="gft")
    data_path = validated_set_path(task, validated)
    groups = demo_groups(read_validated(data_path))
    with task_grader(task, grader) as grader:
        run, policy = begin_run(
            task,
            "gft",
            allowed.gate,
            out_dir=out_dir,
            config=spec.model_dump(mode="json"),
            model=allowed.model,
            lora=None if spec.full_finetune else spec.lora,
            resume=resume,
            seed=spec.seed,
            device=device,
            fingerprint=allowed.fingerprint,
            validated_set=str(data_path),
            start_model=allowed.model,
        )
        loop = _Loop.start(task, spec, policy, rollout, grader, groups)
        path, total, metrics = run.train(
            policy,
            loop.opt,
            loop.step,
            items=len(groups),
            batch=spec.batch_prompts,
            seed=spec.seed,
            planned=plan_steps(spec, len(groups)),
            max_steps=max_steps,
            on_step=on_step,
            save_every=save_every,
        )
    return GFTResult(path, total, metrics, allowed.gate)


def _settings(task: TaskSpec, overrides: dict[str, Any]) -> GFTSpec:
    """training.gft with `overrides`, sampling's max_new_tokens and temperature filled in where unset."""
    spec = task.training.gft.model_copy(update=overrides)
    if spec.demos_per_group >= spec.group_size:
        raise ConfigError(
            f"{task.source or task.name}: training.gft.demos_per_group ({spec.demos_per_group}) must be below "
            f"group_size ({spec.group_size}): a group needs samples of the policy to set the demonstrations against"
        )
    return spec.model_copy(
        update={
            "max_new_tokens": spec.max_new_tokens or task.sampling.max_new_tokens,
            "temperature": spec.temperature or task.sampling.temperature or 1.0,
        }
    )


@dataclass
class _Loop:
    """What each GFT step reads: settings, policy, optimiser, rollouts, grader, prompts and demonstrations."""

    spec: GFTSpec
    net: Any
    tok: Any
    infer: InferenceCopy | None  # the merged copy rollouts sample, when one is needed
    opt: Any
    params: list
    rollout: Rollout
    grader: Any
    examples: list[Example]
    texts: list[str]  # chat-rendered prompts
    prompt_ids: list[list[int]]
    demos: list[list[tuple[str, list[int], bool]]]  # per prompt: (text, token ids + eos, finished)

    @classmethod
    def start(cls, task: TaskSpec, spec: GFTSpec, policy, rollout: Rollout | None, grader, groups) -> _Loop:
        """The loop over `policy` (dropout off): its rollout and the merged copy it may sample, the optimiser,
        and the chat-rendered prompts and demonstrations as token ids."""
        from ..sampling.base import render_prompt

        net, tok = policy.model, policy.tokenizer
        rollout = rollout or rollout_for(task, policy.base_path)
        net.eval()
        # As in GRPO: transformers rollouts of a LoRA policy sample a merged copy unless sampling.lean folds it.
        lora_hf = policy.lora and isinstance(rollout, HFRollout) and lean_model(net) is None
        params, opt = make_optimizer(net, spec.learning_rate)
        texts = [render_prompt(tok, ex.prompt, task.sampling.system_prompt) for ex, _ in groups]
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        demos = [[(c, tok(c, add_special_tokens=False)["input_ids"] + eos, True) for c in cs] for _, cs in groups]
        infer = InferenceCopy(net) if lora_hf else None
        return cls(spec, net, tok, infer, opt, params, rollout, grader, [ex for ex, _ in groups], texts, ids, demos)

    def step(self, step: int, batch: list[int], total: int) -> dict[str, Any]:
        """Step `step` of `total` on the prompts in `batch`; returns its metrics line."""
        import torch

        spec, d = self.spec, self.spec.demos_per_group
        t0 = time.perf_counter()
        samples = self.sample(step, batch)
        t_gen = time.perf_counter() - t0
        groups = [self.pick_demos(step, i) + own for i, own in zip(batch, samples)]
        # --- rewards: the grader's bands for demonstrations and samples alike, normalised per group ---
        grades = self.grader.grade_many([(text, self.examples[i]) for i, g in zip(batch, groups) for text, _, _ in g])
        rewards = torch.tensor([g.reward for g in grades], dtype=torch.float32).view(len(batch), spec.group_size)
        adv = gft_advantages(rewards)
        update = self.update(batch, groups, adv.view(-1))
        own = [m for g in groups for m in g[d:]]
        own_correct = [g.correct is True for k, g in enumerate(grades) if k % spec.group_size >= d]
        return {
            M.STEP: step + 1,
            M.TOTAL_STEPS: total,
            M.GROUPS: len(batch),
            **update,
            M.REWARD_MEAN: rewards.mean().item(),
            M.REWARD_STD: rewards.std(unbiased=False).item(),
            M.FRAC_ZERO_STD: (rewards.std(dim=1, unbiased=False) < 1e-6).float().mean().item(),
            M.ADVANTAGE_STD: adv.std(unbiased=False).item(),
            M.DEMO_ADVANTAGE: adv[:, :d].mean().item(),
            M.ACCURACY: sum(own_correct) / len(own_correct),  # of the policy's own samples
            M.COMPLETION_LENGTH: sum(len(ids) for _, ids, _ in own) / len(own),  # of the policy's own samples
            M.TRUNCATED_FRAC: sum(not f for _, _, f in own) / len(own),
            M.LR: spec.learning_rate,
            "gen_s": round(t_gen, 4),
            "step_s": round(time.perf_counter() - t0, 4),
        }

    def pick_demos(self, step: int, i: int) -> list[tuple[str, list[int], bool]]:
        """Prompt i's d demonstrations for this step: drawn by the seed when it has more, cycled when fewer."""
        have, d = self.demos[i], self.spec.demos_per_group
        if len(have) > d:
            return random.Random(f"{self.spec.seed}:{step}:{i}").sample(have, d)
        return [have[k % len(have)] for k in range(d)]

    def sample(self, step: int, batch: list[int]) -> list:
        """K - d completions per prompt in `batch` from the current policy, seeded by the step."""
        import torch

        spec, n = self.spec, self.spec.group_size - self.spec.demos_per_group
        with torch.no_grad():
            if self.infer is not None:
                self.infer.sync()
            return self.rollout(
                self.infer.model if self.infer is not None else self.net,
                self.tok,
                [self.texts[i] for i in batch],
                n=n,
                seed=spec.seed * 1_000_003 + step * spec.batch_prompts * n,
                temperature=spec.temperature,
                max_new_tokens=spec.max_new_tokens,
            )

    def update(self, batch: list[int], groups: list, adv) -> dict[str, float]:
        """One optimiser step on the DCR-weighted, advantage-weighted token mean of -log p (module docstring)."""
        import torch

        spec = self.spec
        seqs = ([self.prompt_ids[i] for i in batch], [ids for g in groups for _, ids, _ in g], spec.group_size)
        logp, entropy, cmask = completion_logprobs(self.net, *seqs, self.tok.pad_token_id, with_entropy=True)
        coef = dcr_coefficient(logp, spec.tau)
        n_tok = cmask.sum().clamp(min=1.0)
        loss = -(adv.to(logp.device).unsqueeze(1) * coef * logp * cmask).sum() / n_tok
        grad_norm = optimizer_step(self.opt, loss, self.params, spec.max_grad_norm)
        with torch.no_grad():
            return {
                M.LOSS: loss.item(),
                M.ENTROPY: ((entropy * cmask).sum() / n_tok).item(),
                M.CLIPPED_COEF_FRAC: (((coef < 1).float() * cmask).sum() / n_tok).item(),
                M.GRAD_NORM: float(grad_norm),
            }
