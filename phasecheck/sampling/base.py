"""The engine contract: the sampling plan (R runs x n samples, seed blocks), prompt rendering, and
the helpers every engine shares (work units, cache lookups, ordered Sample assembly)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..records import Example, Sample

if TYPE_CHECKING:
    from ..task import SamplingSpec
    from .store import SampleStore

# Every seed is below this: torch.Generator.manual_seed on CPU keeps only a seed's low 32 bits.
SEED_SPACE = 2**32

__all__ = [
    "EngineBase",
    "SamplingPlan",
    "SEED_SPACE",
    "plan_seeds",
    "Generation",
    "Unit",
    "render_prompt",
    "plan_units",
    "run_units",
    "units_to_samples",
    "pad_left",
    "pad_right",
]


@dataclass(frozen=True)
class SamplingPlan:
    """R runs x n samples per prompt. Each (example, run) request draws its own seed block
    [b, b + n), b from `block_seed`; sample i uses b + i (vLLM gives sample i of a request the seed
    `seed + i`; the other engines match), so no two prompts and no two runs share a random stream."""

    runs: int = 4
    n: int = 4
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()
    seed: int = 0
    system_prompt: str | None = None

    @classmethod
    def from_spec(cls, spec: SamplingSpec) -> SamplingPlan:
        return cls(
            runs=spec.runs,
            n=spec.n,
            temperature=spec.temperature,
            top_p=spec.top_p,
            max_new_tokens=spec.max_new_tokens,
            stop=tuple(spec.stop),
            seed=spec.seed,
            system_prompt=spec.system_prompt,
        )

    def block_seed(self, example_id: str, run: int, attempt: int = 0) -> int:
        """The first seed of (example, run)'s block: n * h, h a hash of (task seed, example id, run)
        below 2**32 / n. Blocks are aligned, so two overlap only when their h are equal; `plan_units`
        resolves that (attempt 1, 2, ...). Seeds stay below 2**32 because torch's CPU generator keeps
        only the low 32 bits of a seed."""
        doc = json.dumps(["phasecheck.seed/1", int(self.seed), str(example_id), int(run), int(attempt)])
        h = int.from_bytes(hashlib.sha256(doc.encode()).digest()[:8], "big")
        return (h % (SEED_SPACE // self.n)) * self.n

    def params_key(self, engine_options: dict[str, Any] | None = None) -> str:
        """A stable hash of what changes a block of outputs: n, temperature, top_p, max_new_tokens,
        stop and system prompt, and the engine's `output_options` (its dtype) when it has any. `runs`
        and `seed` are left out (they pick blocks, not their content), so raising `runs` reuses the
        cached blocks of the earlier runs."""
        doc: dict[str, Any] = {
            "n": self.n,
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "system_prompt": self.system_prompt,
        }
        if engine_options:
            doc["engine"] = engine_options
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Generation:
    """One completion as an engine returns it."""

    text: str
    token_ids: list[int]
    finish_reason: str  # stop | length | error
    n_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "token_ids": list(self.token_ids),
            "finish_reason": self.finish_reason,
            "n_tokens": self.n_tokens,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Generation:
        return cls(
            text=d["text"],
            token_ids=list(d.get("token_ids", [])),
            finish_reason=d["finish_reason"],
            n_tokens=int(d["n_tokens"]),
        )


def messages_for(prompt: str | list, system_prompt: str | None) -> list[dict]:
    """The chat messages for a prompt; the system prompt goes first unless the prompt already has one."""
    msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if system_prompt and not any(m.get("role") == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


def render_prompt(tokenizer: Any, prompt: str | list[dict], system_prompt: str | None) -> str:
    """The text the model sees: the tokenizer's chat template (with a generation prompt) when it has
    one, otherwise the raw prompt text (message contents joined by newlines, system prompt first)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages_for(prompt, system_prompt), tokenize=False, add_generation_prompt=True
        )
    from ..records import prompt_text

    text = prompt_text(prompt)
    return f"{system_prompt}\n{text}" if system_prompt else text


@dataclass(frozen=True)
class Unit:
    """One request: n samples of one example in one run, seeds seed..seed+n-1 (its block)."""

    example_index: int
    run: int
    seed: int
    prompt: str  # the rendered prompt (or a JSON request body for API engines): the cache key


def plan_seeds(example_ids: Sequence[str], plan: SamplingPlan) -> dict[tuple[int, int], int]:
    """(example index, run) -> first seed of its block, no two blocks sharing a seed. A block's seed
    depends on the task seed, the example's id and the run, not on the example's position or on
    `runs`, so cached blocks stay valid when the eval file is reordered or runs are added. On the
    rare clash of two blocks, the later one in (run, example order) takes the next attempt: raising
    `runs` never moves an earlier run's seeds."""
    taken: set[int] = set()
    out: dict[tuple[int, int], int] = {}
    for r in range(plan.runs):
        for i, ex_id in enumerate(example_ids):
            attempt = 0
            seed = plan.block_seed(ex_id, r)
            while seed in taken:
                attempt += 1
                seed = plan.block_seed(ex_id, r, attempt)
            taken.add(seed)
            out[(i, r)] = seed
    return out


def plan_units(examples: Sequence[Example], plan: SamplingPlan, render: Callable[[Example], str]) -> list[Unit]:
    """Every (example, run) request, run-major so an interrupted check has whole runs done first."""
    rendered = [render(ex) for ex in examples]
    seeds = plan_seeds([ex.id for ex in examples], plan)
    return [Unit(i, r, seeds[(i, r)], rendered[i]) for r in range(plan.runs) for i in range(len(examples))]


def run_units(
    units: list[Unit],
    generate_batch: Callable[[list[Unit]], list[list[Generation]]],
    batches: Callable[[list[Unit]], list[list[Unit]]],
    *,
    store: SampleStore | None,
    progress: Any,
    n: int,
) -> tuple[dict[Unit, list[Generation]], dict[str, int]]:
    """Serve units from the store, generate the rest batch by batch, and write each batch to the
    store as soon as it is done (so a killed run loses at most the batch in flight)."""
    done: dict[Unit, list[Generation]] = {}
    todo = []
    for u in units:
        hit = store.get(u.prompt, u.seed) if store is not None else None
        if hit is not None and len(hit) == n:
            done[u] = hit
        else:
            todo.append(u)
    stats = {"cached": len(done), "generated": 0, "batches": 0}
    if progress is not None and done:
        progress.update(len(done) * n, sum(g.n_tokens for gs in done.values() for g in gs), cached=True)
    for batch in batches(todo):
        out = generate_batch(batch)
        for u, gens in zip(batch, out):
            if len(gens) != n:
                from ..errors import EngineError

                raise EngineError(f"engine returned {len(gens)} samples for one prompt, expected n={n}")
            done[u] = gens
        if store is not None:
            store.put_many([(u.prompt, u.seed, gens) for u, gens in zip(batch, out)])
        stats["generated"] += len(batch)
        stats["batches"] += 1
        if progress is not None:
            progress.update(len(batch) * n, sum(g.n_tokens for gs in out for g in gs))
    return done, stats


def units_to_samples(
    examples: Sequence[Example], plan: SamplingPlan, done: dict[Unit, list[Generation]], *, model: str, engine: str
) -> list[Sample]:
    """Samples ordered by example, then run, then index: the order every engine returns."""
    by_key = {(u.example_index, u.run): (u.seed, gens) for u, gens in done.items()}
    out = []
    for i, ex in enumerate(examples):
        for r in range(plan.runs):
            seed, gens = by_key[(i, r)]
            for k, g in enumerate(gens):
                out.append(
                    Sample(
                        example_id=ex.id,
                        run=r,
                        index=k,
                        seed=seed + k,
                        completion=g.text,
                        finish_reason=g.finish_reason,
                        n_tokens=g.n_tokens,
                        model=model,
                        engine=engine,
                    )
                )
    return out


class EngineBase:
    """The engine contract: what a `phasecheck.engines` plugin implements, and what it gets.

    A plugin subclasses EngineBase and writes `Params` (a pydantic model of its own `sampling.*` options)
    and `sample(examples, *, store, progress) -> list[Sample]`: every example x `plan.runs` x `plan.n`,
    ordered by example, run, index (`plan_units`, `run_units` and `units_to_samples` do the bookkeeping).
    It is built as `cls(params, plan=SamplingPlan, model=ResolvedModel | None, task=TaskSpec)`; `store` is
    a SampleStore to read and fill (None when caching is off), `progress` a bar to update (or None).
    It may set `self.stats` (cached / generated units and batches) for the run's summary.

    What sampling asks of an engine, it asks of these, never of the engine's name:
    - `needs_model`: the task's `model:` is required and resolved (downloaded) before the engine is built;
      when False, `model` is None.
    - `caches_samples`: samples go through the sample cache, keyed by the model's identity (or the
      engine's own `identity` when it needs no model) and the plan. False for an engine that samples
      nothing (replay).
    - `identity`: set it on the instance when `needs_model` is False and something else identifies what
      samples (a server and the model it serves); None leaves the samples uncached.
    - `can_sample(task)`: whether the task gives the engine what it needs, without loading anything
      (checks that need samples are skipped when it is False).
    - `identity_for(params, task)`: the identity of what samples the task, without loading weights; it
      goes into the verdict's fingerprint. None when nothing identifies it (replay, no model).
    - `output_options()`: the engine options that change what the same model samples from the same
      seeds (a dtype), resolved where that is cheap; they join the sample cache's key, so samples drawn
      in fp32 are never served for a bf16 run. Options that only change speed stay out.
    """

    id: ClassVar[str] = ""
    needs_model: ClassVar[bool] = True
    caches_samples: ClassVar[bool] = True
    identity: str | None = None

    def __init__(self, params: Any, *, plan: SamplingPlan, model: Any, task: Any) -> None:
        self.params = params
        self.plan = plan
        self.model = model
        self.task = task
        self.stats: dict[str, int] = {}

    @classmethod
    def can_sample(cls, task: Any) -> bool:
        """By default: a model when the engine needs one."""
        return bool(task.model) or not cls.needs_model

    def output_options(self) -> dict[str, Any]:
        """None by default: what the plan keys is all that changes the outputs."""
        return {}

    @classmethod
    def identity_for(cls, params: Any, task: Any) -> str | None:
        """By default the resolved model's identity (no weights loaded), None without a model."""
        if not task.model:
            return None
        from .models import resolve_model

        return resolve_model(task.model).identity


def _pad(seqs: list[list[int]], pad_id: int, left: bool):
    import torch

    width = max(len(s) for s in seqs)
    fill = [width - len(s) for s in seqs]
    if left:
        ids = [[pad_id] * f + s for s, f in zip(seqs, fill)]
        mask = [[0] * f + [1] * len(s) for s, f in zip(seqs, fill)]
    else:
        ids = [s + [pad_id] * f for s, f in zip(seqs, fill)]
        mask = [[1] * len(s) + [0] * f for s, f in zip(seqs, fill)]
    return torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)


def pad_right(seqs: list[list[int]], pad_id: int):
    """Right-pad token lists into (ids, attention_mask) long tensors (training batches)."""
    return _pad(seqs, pad_id, left=False)


def pad_left(seqs: list[list[int]], pad_id: int):
    """Left-pad token lists into (ids, attention_mask) long tensors (prompts that generation or a
    shared prompt pass continues, so every prompt ends in the last column)."""
    return _pad(seqs, pad_id, left=True)
