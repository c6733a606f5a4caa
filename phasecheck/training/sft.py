"""SFT on the validated set, gated by the verdict: completion-only loss through the chat template,
labels masked by the attention mask (pad may equal eos), and a held-out split for eval loss."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..jsonl import json_lines
from ..names import Artifact
from ..results import load_verdict
from ..state import newest_run, newest_verdict
from ..task import SFTSpec, TaskSpec
from .common import Policy, make_optimizer, optimizer_step, pad_right
from .gate import GateDecision, check_gate, current_fingerprint
from .run import TrainingRun, begin_run, step_batches, steps_to_run

__all__ = ["train_sft", "SFTResult", "validated_set_path", "read_validated", "encode_pairs", "sft_start_model"]


@dataclass
class SFTResult:
    checkpoint: Path
    steps: int
    metrics: Path
    eval_loss_before: float | None
    eval_loss_after: float | None
    train_loss_first: float
    train_loss_last: float
    gate: GateDecision


def validated_set_path(task: TaskSpec, given: str | Path | None = None) -> Path:
    """`given` when the caller names a validated set, else validated.jsonl of the newest verdict
    (Verdict.artifacts['validated'], relative to verdict.json)."""
    if given:
        return Path(given)
    entry = newest_verdict(task)
    if entry is None:
        raise ConfigError(f"task {task.name!r}: no verdict recorded; run `phasecheck check` to build the validated set")
    verdict_path = Path(entry["path"])
    rel = load_verdict(verdict_path).artifacts.get(Artifact.VALIDATED)
    if not rel:
        raise ConfigError(
            f"{verdict_path}: the verdict lists no validated set (artifacts.validated); "
            "is the validated_set check enabled?"
        )
    return (verdict_path.parent / rel).resolve()


def read_validated(path: Path) -> list[dict[str, Any]]:
    """Rows {id, prompt, completion, ...} of a validated.jsonl; a bad row names its line."""
    rows = []
    for n, row in json_lines(path, "validated set"):
        if not isinstance(row, dict) or "prompt" not in row or not isinstance(row.get("completion"), str):
            raise DataError(f"{path}:{n}: a validated row needs `prompt` and a string `completion`")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: the validated set is empty; nothing to SFT on")
    return rows


def encode_pairs(
    tokenizer, rows: list[dict], *, system_prompt: str | None, max_length: int
) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per row: chat-rendered prompt, then the completion and eos."""
    from ..sampling.base import render_prompt

    eos = tokenizer.eos_token or ""
    out = []
    for row in rows:
        p = tokenizer(render_prompt(tokenizer, row["prompt"], system_prompt), add_special_tokens=False)["input_ids"]
        c = tokenizer(row["completion"] + eos, add_special_tokens=False)["input_ids"]
        ids = (p + c)[:max_length]
        if len(ids) > len(p):  # a prompt that fills max_length leaves nothing to learn
            out.append((ids, len(p)))
    return out


def _batch(encoded: list[tuple[list[int], int]], pad_id: int, device):
    """Tensors for a batch: labels are -100 on the prompt and wherever the attention mask is 0."""
    ids, mask = pad_right([e[0] for e in encoded], pad_id)
    labels = ids.masked_fill(mask == 0, -100)
    for r, (_, plen) in enumerate(encoded):
        labels[r, :plen] = -100
    return ids.to(device), mask.to(device), labels.to(device)


def _loss(model, ids, mask, labels):
    """Mean cross-entropy over completion tokens; returns (loss, token count)."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum"
    )
    n = (target != -100).sum()
    return loss / n.clamp(min=1), int(n)


def _eval_loss(model, encoded, pad_id, batch_size, device) -> float | None:
    import torch

    if not encoded:
        return None
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(encoded), batch_size):
            loss, n = _loss(model, *_batch(encoded[i : i + batch_size], pad_id, device))
            total += loss.item() * n
            count += n
    return total / max(count, 1)


def sft_start_model(task: TaskSpec) -> tuple[str, str | None]:
    """Which model SFT trains -> (name, identity): the one the newest verdict judged, if that is the
    task's model or the newest GRPO checkpoint; otherwise the task's model (the gate then says why)."""
    from ..sampling import model_identity_for

    names = [task.model] if task.model else []
    run = newest_run(task, "grpo")
    if run:
        names.append(run["path"])
    if not names:
        raise ConfigError(f"{task.source or task.name}: task has no `model:` to SFT")
    # The identity the check engine puts in fingerprints, so the gate compares like with like.
    idents = {n: model_identity_for(task.model_copy(update={"model": str(n)})) for n in names}
    entry = newest_verdict(task)
    if entry:
        judged = load_verdict(entry["path"]).fingerprint.model
        for n, ident in idents.items():
            if ident == judged:
                return n, ident
    return names[0], idents[names[0]]


@dataclass
class SFTStart:
    """What the gate allowed: the model to start from, its identity, the fingerprint and the decision."""

    model: str
    identity: str | None
    fingerprint: Any
    gate: GateDecision


def gate_sft(
    task: TaskSpec,
    *,
    model: str | None = None,
    force: bool = False,
    on_warning: Callable[[str], None] | None = None,
    kind: str = "sft",
) -> SFTStart:
    """Pick the start model (the one the newest verdict judged, or `model`) and pass the gate of `kind` (sft,
    or gft, gated alike). Every backend and both trainers start here, so they refuse and record overrides
    identically."""
    if model is not None:
        from ..sampling.models import resolve_model

        start, identity = model, resolve_model(str(model)).identity
    else:
        start, identity = sft_start_model(task)
    # One hash of the data files serves the gate's staleness test and the checkpoint's record.
    current = current_fingerprint(task, identity)
    gate = check_gate(task, kind, force=force, model_identity=identity, fingerprint=current)
    if gate.warning and on_warning:
        on_warning(gate.warning)
    return SFTStart(str(start), identity, current, gate)


def train_sft(
    task: TaskSpec,
    *,
    force: bool = False,
    out_dir: str | Path | None = None,
    model: str | None = None,
    validated: str | Path | None = None,
    resume: str | Path | None = None,
    max_steps: int | None = None,
    device: str | None = None,
    on_step: Callable[[dict], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    **overrides: Any,
) -> SFTResult:
    """Gate, then SFT the judged model on the validated set; returns the final checkpoint and losses."""
    spec = task.training.sft.model_copy(update=overrides)
    allowed = gate_sft(task, model=model, force=force, on_warning=on_warning)
    data_path = validated_set_path(task, validated)
    rows = read_validated(data_path)
    run, policy = begin_run(
        task,
        "sft",
        allowed.gate,
        out_dir=out_dir,
        config=spec.model_dump(mode="json"),
        model=allowed.model,
        lora=spec.lora,
        resume=resume,
        seed=spec.seed,
        device=device,
        fingerprint=allowed.fingerprint,
        validated_set=str(data_path),
        start_model=allowed.model,
    )
    rng = random.Random(spec.seed)
    held, train = _split(rows, rng, policy.tokenizer, spec, task.sampling.system_prompt)
    if not train:
        raise DataError(f"{data_path}: no trainable rows (every prompt fills max_length={spec.max_length})")
    return _train(run, policy, spec, held, train, rng, max_steps=max_steps, on_step=on_step)


def _train(
    run: TrainingRun,
    policy: Policy,
    spec: SFTSpec,
    held: list[tuple[list[int], int]],
    train: list[tuple[list[int], int]],
    rng: random.Random,
    *,
    max_steps: int | None,
    on_step: Callable[[dict], None] | None,
) -> SFTResult:
    """The loop: `epochs` passes over the encoded `train` pairs in the order `rng` draws (the seeded one the
    split shuffled with), the `held` loss before, after each epoch and at the end, then the last checkpoint."""
    net, tok = policy.model, policy.tokenizer
    net.eval()  # dropout off; the tiny-step regime gains nothing from it
    dev = next(net.parameters()).device
    params, opt = make_optimizer(net, spec.learning_rate)
    start_step = run.restore(opt)
    per_epoch = math.ceil(len(train) / spec.batch_size)
    total = steps_to_run(max(1, math.ceil(spec.epochs * per_epoch)), start_step, max_steps)
    batches = step_batches(rng, len(train), spec.batch_size, total, across_epochs=False)
    log = run.metrics(on_step)
    eval_loss = functools.partial(_eval_loss, net, held, tok.pad_token_id, spec.batch_size, dev)
    eval_before = eval_loss()
    log.write({"step": start_step, "eval_loss": eval_before, "total_steps": total})
    losses: list[float] = []
    step = start_step
    try:
        for step in range(start_step, total):
            loss, n = _loss(net, *_batch([train[i] for i in batches[step]], tok.pad_token_id, dev))
            grad_norm = optimizer_step(opt, loss, params, 1.0)
            losses.append(loss.item())
            line = {
                "step": step + 1,
                "total_steps": total,
                "loss": losses[-1],
                "tokens": n,
                "grad_norm": float(grad_norm),
                "lr": spec.learning_rate,
            }
            if (step + 1) % per_epoch == 0 and step + 1 < total:
                line["eval_loss"] = eval_loss()
            log.write(line)
    except KeyboardInterrupt:
        raise run.interrupted(policy, step, opt) from None
    eval_after = eval_loss()
    log.write({"step": total, "eval_loss": eval_after, "total_steps": total})
    path = run.save(policy, total, opt, interrupted=False)
    return SFTResult(
        path,
        total,
        log.path,
        eval_before,
        eval_after,
        losses[0] if losses else math.nan,
        losses[-1] if losses else math.nan,
        run.gate,
    )


def _split(rows: list[dict], rng: random.Random, tok, spec: SFTSpec, system_prompt: str | None):
    """(held-out, train) encoded pairs: a shuffled eval_fraction of the rows (at least one row left to train)."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    n_eval = min(len(rows) - 1, math.ceil(len(rows) * spec.eval_fraction)) if spec.eval_fraction > 0 else 0
    held = encode_pairs(tok, [rows[i] for i in order[:n_eval]], system_prompt=system_prompt, max_length=spec.max_length)
    train = encode_pairs(
        tok, [rows[i] for i in order[n_eval:]], system_prompt=system_prompt, max_length=spec.max_length
    )
    return held, train
