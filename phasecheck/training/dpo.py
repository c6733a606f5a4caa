"""Builtin targeted DPO on the residual failures of a GRPO checkpoint: one loop, top to bottom.

How this departs from the paper (Rafailov et al. 2023, DPO) — on purpose:
- The pairs are on-policy and verified, not human preferences: both completions are the start checkpoint's own
  graded samples of an eval prompt, a correct one over a wrong one (dpo_pairs.py), the wrong ones a finding names
  (a flagged token, a named sample) first, then the fluent ones (an answer that parsed but is wrong).
- A scenario's weight repeats its pairs within each epoch (oversampling a failing subclass, `reverse: 3`); it
  does not scale the loss.
- The reference is the start checkpoint: with LoRA the same weights with the adapter off (GRPO's base view, no
  second copy), in full fine-tuning a frozen copy. Its log-probs are computed once per pair and kept.
- Sequence log-probs are sums over the completion's tokens, eos included (as TRL); the sigmoid loss with no label
  smoothing, averaged over the pairs of a step.
- Dropout off, a constant learning rate, the gradient norm clipped at 1.0.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..names import Metric as M
from ..paths import default_out_dir
from ..task import DPOSpec, TaskSpec
from .common import Policy, completion_logprobs, make_optimizer, optimizer_step, reference_policy, task_examples
from .dpo_pairs import Flags, PairSet, build_pairs, dpo_start_model, graded_evidence, read_pairs, weighted_order
from .gate import check_gate
from .run import TrainingRun, begin_run, step_batches, steps_to_run

__all__ = ["train_dpo", "begin_dpo", "DPOResult", "dpo_loss", "prepare_pairs"]

PAIRS_FILE = "pairs.jsonl"


@dataclass
class DPOResult:
    checkpoint: Path
    steps: int
    metrics: Path
    pairs: Path
    counts: dict[str, Any] = field(default_factory=dict)  # prompts with pairs, without a correct or a wrong sample


class NoPairs(DataError):
    """No prompt has both a correct and a wrong graded sample: there are no residual failures DPO can pair."""


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float):
    """-log sigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l))) averaged over pairs, from (P,) sequence log-probs;
    returns (loss, chosen rewards, rejected rewards), the rewards being beta * (log pi - log pi_ref), detached."""
    import torch

    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()


def prepare_pairs(
    task: TaskSpec, spec: DPOSpec, start: str, out: Path, *, resume: str | Path | None = None
) -> tuple[PairSet, str]:
    """The pairs to train on and the samples file they came from: a resumed run's own pairs.jsonl, else built from
    graded samples of `start` (the newest verdict's on it, or a fresh check's in out/check)."""
    if resume:
        path = Path(resume).parent / PAIRS_FILE
        return PairSet(read_pairs(path)), str(path)
    rows, verdict, samples = graded_evidence(task, start, check_dir=out / "check")
    examples = {ex.id: ex for ex in task_examples(task)}
    pairs = build_pairs(rows, examples, spec, Flags.from_verdict(verdict), samples_path=str(samples.resolve()))
    if not pairs.pairs:
        raise NoPairs(
            f"{samples}: no prompt has both a correct and a wrong graded sample ({pairs.counts}); "
            "DPO needs residual failures the model sometimes solves (raise sampling.runs or sampling.n)"
        )
    return pairs, str(samples.resolve())


def begin_dpo(
    task: TaskSpec,
    *,
    out_dir: str | Path | None,
    model: str | None,
    resume: str | Path | None = None,
    pairs: PairSet | None = None,
    device: str | None = None,
    backend: str | None = None,
    **overrides: Any,
) -> tuple[DPOSpec, TrainingRun, Policy, PairSet, Path]:
    """Both backends' prelude: the gate, the start checkpoint, the pairs (built unless given), the run and its
    policy (a fresh LoRA adapter for the builtin loop; TRL adds its own), and pairs.jsonl written in the run."""
    spec = task.training.dpo.model_copy(update=overrides)
    gate = check_gate(task, "dpo")
    start = dpo_start_model(task, model)
    out = Path(out_dir) if out_dir else default_out_dir(task, "dpo")
    source = "given"
    if pairs is None:
        pairs, source = prepare_pairs(task, spec, start, out, resume=resume)
    run, policy = begin_run(
        task,
        "dpo",
        gate,
        out_dir=out,
        config=spec.model_dump(mode="json"),
        model=start,
        lora=None if spec.full_finetune or backend else spec.lora,
        resume=resume,
        seed=spec.seed,
        device=device,
        backend=backend,
        start_model=start,
        pairs_from=source,
        pair_counts=pairs.counts,
    )
    return spec, run, policy, pairs, pairs.write(run.out_dir / PAIRS_FILE)


def train_dpo(
    task: TaskSpec,
    *,
    out_dir: str | Path | None = None,
    model: str | None = None,
    resume: str | Path | None = None,
    max_steps: int | None = None,
    pairs: PairSet | None = None,
    device: str | None = None,
    on_step: Callable[[dict], None] | None = None,
    **overrides: Any,
) -> DPOResult:
    """DPO the current checkpoint (`model`, else the newest GRPO one, else the task's) on pairs from its own graded
    samples; returns the final checkpoint. `pairs` skips building them; `resume` continues a DPO checkpoint."""
    spec, run, policy, pairs, pairs_path = begin_dpo(
        task, out_dir=out_dir, model=model, resume=resume, pairs=pairs, device=device, **overrides
    )
    return _train(run, policy, spec, pairs, pairs_path, resumed=bool(resume), max_steps=max_steps, on_step=on_step)


def _train(
    run: TrainingRun,
    policy: Policy,
    spec: DPOSpec,
    pairs: PairSet,
    pairs_path: Path,
    *,
    resumed: bool,
    max_steps: int | None,
    on_step: Callable[[dict], None] | None,
) -> DPOResult:
    """The loop: `epochs` passes over the weighted pairs in a seeded order, batch_pairs per step, then the checkpoint."""
    net, tok = policy.model, policy.tokenizer
    net.eval()  # dropout off, so the policy's and the reference's log-probs of the same weights agree
    ref = reference_policy(policy, spec.beta, resumed=resumed)
    params, opt = make_optimizer(net, spec.learning_rate)
    start_step = run.restore(opt)
    encoded = _encode(tok, pairs.pairs, run.task.sampling.system_prompt)
    order = weighted_order(pairs.pairs)
    if not order:
        raise DataError(f"{pairs_path}: every pair has weight 0 (training.dpo.scenario_weights); nothing to train on")
    per_epoch = math.ceil(len(order) / spec.batch_pairs)
    total = steps_to_run(max(1, math.ceil(spec.epochs * per_epoch)), start_step, max_steps)
    # Fixed by the seed, so a resumed run sees the batches it would have seen.
    batches = step_batches(random.Random(spec.seed), len(order), spec.batch_pairs, total, across_epochs=False)
    ref_logps: dict[int, tuple[float, float]] = {}  # the reference never moves: once per pair
    log = run.metrics(on_step)
    step = start_step
    try:
        for step in range(start_step, total):
            t0 = time.perf_counter()
            batch = [order[i] for i in batches[step]]
            line = _step(net, ref, opt, params, encoded, batch, ref_logps, spec, tok.pad_token_id)
            line.update({M.STEP: step + 1, M.TOTAL_STEPS: total, "step_s": round(time.perf_counter() - t0, 4)})
            log.write(line)
    except KeyboardInterrupt:
        raise run.interrupted(policy, step, opt) from None
    path = run.save(policy, total, opt, interrupted=False, pairs=str(pairs_path))
    return DPOResult(path, total, log.path, pairs_path, pairs.counts)


def _step(net, ref, opt, params, encoded, batch: list[int], ref_logps: dict, spec: DPOSpec, pad: int) -> dict:
    """One optimiser step on the pairs in `batch` (indices into `encoded`); returns its metrics line."""
    import torch

    # --- reference log-probs of the pairs not seen before ------------------------------------
    new = sorted({i for i in batch if i not in ref_logps})
    if new:
        with torch.no_grad():
            ref_w, ref_l = _sequence_logps(ref, [encoded[i] for i in new], pad)
        ref_logps.update({i: (a, b) for i, a, b in zip(new, ref_w.tolist(), ref_l.tolist())})
    # --- policy log-probs, the loss, the step -------------------------------------------------
    policy_w, policy_l = _sequence_logps(net, [encoded[i] for i in batch], pad)
    ref_w, ref_l = (policy_w.new_tensor([ref_logps[i][k] for i in batch]) for k in (0, 1))
    loss, chosen, rejected = dpo_loss(policy_w, policy_l, ref_w, ref_l, spec.beta)
    grad_norm = optimizer_step(opt, loss, params, 1.0)
    return {
        M.PAIRS: len(batch),
        M.LOSS: loss.item(),
        M.REWARDS_CHOSEN: chosen.mean().item(),
        M.REWARDS_REJECTED: rejected.mean().item(),
        M.REWARD_MARGIN: (chosen - rejected).mean().item(),
        M.PREFERENCE_ACCURACY: (chosen > rejected).float().mean().item(),
        M.LOGPS_CHOSEN: policy_w.detach().mean().item(),
        M.LOGPS_REJECTED: policy_l.detach().mean().item(),
        M.GRAD_NORM: float(grad_norm),
        M.LR: spec.learning_rate,
    }


def _encode(tok, pairs: list[dict], system_prompt: str | None) -> list[tuple[list[int], list[int], list[int]]]:
    """(prompt ids, chosen ids, rejected ids) per pair: the chat-rendered prompt, each completion ending in eos."""
    from ..sampling.base import render_prompt

    eos = tok.eos_token or ""
    out = []
    for p in pairs:
        prompt = tok(render_prompt(tok, p["prompt"], system_prompt), add_special_tokens=False)["input_ids"]
        chosen, rejected = (tok(p[k] + eos, add_special_tokens=False)["input_ids"] for k in ("chosen", "rejected"))
        out.append((prompt, chosen, rejected))
    return out


def _sequence_logps(model, encoded: list[tuple[list[int], list[int], list[int]]], pad_id: int):
    """(chosen, rejected) sequence log-probs, (P,) each: each prompt runs once for its two completions where the
    model allows (sampling.lean), and a completion's token log-probs are summed."""
    logp, _, cmask = completion_logprobs(
        model, [e[0] for e in encoded], [c for e in encoded for c in (e[1], e[2])], 2, pad_id
    )
    seq = (logp * cmask).sum(dim=1).view(-1, 2)
    return seq[:, 0], seq[:, 1]
