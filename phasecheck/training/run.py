"""What every trainer (builtin GRPO and SFT, the TRL backend) shares around its loop: the prelude (seed, policy
fresh or resumed, what its checkpoints will say, the order of its steps) and the epilogue (save the checkpoint
and record it in the task's runs.jsonl), on success and on Ctrl-C alike, which raises `Interrupted`."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import default_out_dir, utc_now
from ..results import Fingerprint
from ..state import record_run
from ..task import LoraSpec, TaskSpec
from .checkpoint import load_trainable, resume_optimizer, save_checkpoint
from .common import MetricsLog, Policy, apply_lora, load_policy
from .gate import GATED, GateDecision, current_fingerprint

__all__ = ["Interrupted", "TrainingRun", "begin_run", "start_policy", "step_batches", "steps_to_run"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after the steps before it were saved; `checkpoint` says where. A
    KeyboardInterrupt, so whoever maps ^C (the CLI: exit 130) maps this too."""

    def __init__(self, checkpoint: Path):
        super().__init__(f"interrupted; checkpoint saved to {checkpoint}")
        self.checkpoint = checkpoint


@dataclass
class TrainingRun:
    """A training run under way: where its checkpoints go and what each one's phasecheck.json and
    runs.jsonl line carry."""

    task: TaskSpec
    kind: str  # grpo | sft
    gate: GateDecision
    out_dir: Path
    resume: Path | None  # the checkpoint this run continues, if any
    meta: dict[str, Any]  # what every checkpoint's phasecheck.json of this run says
    record: dict[str, Any]  # extra fields of its runs.jsonl lines

    def restore(self, optimizer) -> int:
        """The step to start from: 0, or the resumed checkpoint's, with its optimizer state loaded."""
        return resume_optimizer(self.resume, optimizer) if self.resume else 0

    def metrics(self, on_line: Callable[[dict], None] | None = None) -> MetricsLog:
        return MetricsLog(self.out_dir / "metrics.jsonl", on_line)

    def save(self, policy: Policy, step: int, optimizer=None, **meta: Any) -> Path:
        """The epilogue: write checkpoint-<step> (with `meta` added) and record it in the task's state,
        both with one timestamp."""
        created = utc_now()
        path = save_checkpoint(
            policy, self.out_dir, step=step, optimizer=optimizer, meta={**self.meta, **meta, "created_at": created}
        )
        record_run(self.task, kind=self.kind, path=path, step=step, created_at=created, **self.record)
        return path

    def train(
        self,
        policy: Policy,
        optimizer,
        step_fn: Callable[[int, list[int], int], dict],
        *,
        items: int,
        batch: int,
        seed: int,
        planned: int,
        max_steps: int | None,
        on_step: Callable[[dict], None] | None,
        save_every: int = 0,
        first: dict | None = None,
    ) -> tuple[Path, int, Path]:
        """A loop over `items` prompts in batches: restore the optimizer (resume), fix every step's batch by the
        seed from step 0 across epochs (so a resumed run sees the batches it would have seen), then
        step_fn(step, batch indices, total) through run_steps. Returns (last checkpoint, total steps, metrics)."""
        start = self.restore(optimizer)
        total = steps_to_run(planned, start, max_steps)
        batches = step_batches(random.Random(seed), items, batch, total, across_epochs=True)
        log = self.metrics(on_step)
        path = self.run_steps(
            policy,
            optimizer,
            range(start, total),
            lambda s: step_fn(s, batches[s], total),
            log,
            save_every=save_every,
            first=first,
        )
        return path, total, log.path

    def run_steps(
        self,
        policy: Policy,
        optimizer,
        steps: range,
        step_fn: Callable[[int], dict],
        log: MetricsLog,
        *,
        save_every: int = 0,
        first: dict | None = None,
    ) -> Path:
        """The loop's skeleton: step_fn(step) -> its metrics line for each step (the first line with `first`
        added), a checkpoint every `save_every` steps, the final one at the end. Ctrl-C saves the steps that
        finished (the one in flight is dropped) and raises Interrupted."""
        step = steps.start
        try:
            for step in steps:
                line = step_fn(step)
                if step == steps.start and first:
                    line.update(first)
                log.write(line)
                if save_every and (step + 1) % save_every == 0 and step + 1 < steps.stop:
                    self.save(policy, step + 1, optimizer, interrupted=False)
        except KeyboardInterrupt:
            raise self.interrupted(policy, step, optimizer) from None
        return self.save(policy, steps.stop, optimizer, interrupted=False)

    def interrupted(self, policy: Policy, step: int, optimizer=None) -> Interrupted:
        """Save the steps before `step` as an interrupted checkpoint; returns the Interrupted to raise."""
        return Interrupted(self.save(policy, step, optimizer, interrupted=True))


def begin_run(
    task: TaskSpec,
    kind: str,
    gate: GateDecision,
    *,
    out_dir: str | Path | None,
    config: dict[str, Any],
    model: str | None,
    lora: LoraSpec | None = None,
    resume: str | Path | None = None,
    seed: int | None = None,
    device: str | None = None,
    fingerprint: Fingerprint | None = None,
    backend: str | None = None,
    **meta: Any,
) -> tuple[TrainingRun, Policy]:
    """The prelude: seed torch, load the policy (`model` with a fresh `lora` adapter, or `resume`) and fix
    what its checkpoints will say. `fingerprint` is by default the one a verdict on the task and the
    policy's base model would carry now; `meta` adds to every checkpoint's phasecheck.json."""
    if seed is not None:
        import torch

        torch.manual_seed(seed)  # before the policy: a fresh LoRA adapter's weights come from it
    policy = start_policy(model, lora, resume=resume, device=device)
    fp = fingerprint or current_fingerprint(task, policy.identity)
    shared = {
        "kind": kind,
        "task": task.name,
        "task_file": str(task.source) if task.source else None,
        "fingerprint": fp.model_dump(mode="json"),
        "verdict": gate.record(),
        "config": config,
        **meta,
    }
    record: dict[str, Any] = {}
    if kind in GATED:  # only the SFT and GFT gate can be overridden
        shared["forced"] = record["forced"] = gate.forced
    if backend:
        shared["backend"] = record["backend"] = backend
    out = Path(out_dir) if out_dir else default_out_dir(task, kind)
    return TrainingRun(task, kind, gate, out, Path(resume) if resume else None, shared, record), policy


def start_policy(
    model: str | None, lora: LoraSpec | None, *, resume: str | Path | None = None, device: str | None = None
) -> Policy:
    """The policy to train: a resumed checkpoint's (its recorded base, its adapter), else `model` loaded
    fresh, wrapped in a new LoRA adapter when `lora` is set."""
    if resume:
        net, tok, meta, is_lora = load_trainable(resume, device=device)
        return Policy(net, tok, meta["base_model"], meta.get("base_identity"), lora=is_lora)
    policy = load_policy(model, device=device)
    return apply_lora(policy, lora) if lora is not None else policy


def steps_to_run(planned: int, start: int, max_steps: int | None) -> int:
    """The step to stop at: the planned total, or sooner when `max_steps` more from `start` end first."""
    return planned if max_steps is None else min(planned, start + max_steps)


def step_batches(rng: random.Random, n: int, size: int, steps: int, *, across_epochs: bool) -> list[list[int]]:
    """The indices into n items that each of `steps` steps trains on, from step 0.

    Each epoch is a fresh shuffle of range(n) by the seeded `rng`, so a resumed run sees the batches it
    would have seen. `across_epochs` lets a batch run on into the next epoch (every batch has `size`
    items; GRPO's prompts); otherwise each epoch is cut into batches and its last may be short (SFT)."""
    if n < 1:
        raise ValueError("no items to batch")
    epochs = _epochs(rng, n)
    if across_epochs:
        flat = itertools.chain.from_iterable(epochs)
        return [list(itertools.islice(flat, size)) for _ in range(steps)]
    batches: list[list[int]] = []
    while len(batches) < steps:
        epoch = next(epochs)
        batches += [epoch[i : i + size] for i in range(0, n, size)]
    return batches[:steps]


def _epochs(rng: random.Random, n: int) -> Iterator[list[int]]:
    while True:
        epoch = list(range(n))
        rng.shuffle(epoch)
        yield epoch
