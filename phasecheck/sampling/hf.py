"""The transformers engine (the default, CPU or GPU): batched, left-padded generation of n samples per
prompt with one torch.Generator per sample, so a sample depends on its seed, not on its batch.

Reproducibility guarantee: the same model, prompt, seed and parameters give the same token stream's
random draws whatever the batch; texts are identical for the same batch composition, and across
compositions up to floating-point rounding of padded matmuls (which on CPU fp32 we have not seen flip
a token, but do not promise)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from ..records import Example, Sample
from ..strict import Strict
from .base import EngineBase, Generation, Unit, pad_left, plan_units, render_prompt, run_units, units_to_samples
from .models import DtypeName

__all__ = ["Generation", "generate", "TransformersEngine", "default_batch_tokens"]


def default_batch_tokens(device: str) -> int:
    """Tokens (rows x (prompt + new tokens)) per forward batch: modest on CPU, large on GPU."""
    return 131072 if str(device).startswith("cuda") else 16384


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = set()
    for src in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(src, int):
            ids.add(src)
        elif isinstance(src, (list, tuple)):
            ids.update(int(i) for i in src)
    return ids


def _draw(logits: Any, u: Any, temperature: float, top_p: float) -> Any:
    """One token per row: greedy at temperature 0, else nucleus sampling by inverse CDF with `u`, one
    uniform per row from that row's own generator."""
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1).double()
    if top_p >= 1.0:
        # No nucleus: invert the CDF in vocabulary order, no sort needed.
        cum = probs.cumsum(dim=-1)
        pick = torch.searchsorted(cum, (u * cum[:, -1]).unsqueeze(1), right=True)
        return pick.clamp_(max=cum.shape[1] - 1).squeeze(1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep = (sorted_p.cumsum(dim=-1) - sorted_p) < top_p  # always keeps the most likely token
    cum = (sorted_p * keep).cumsum(dim=-1)
    pick = torch.searchsorted(cum, (u * cum[:, -1]).unsqueeze(1), right=True).clamp_(max=cum.shape[1] - 1)
    return order.gather(1, pick).squeeze(1)


class _HFSteps:
    """Decoding through transformers' own forward and a DynamicCache (any architecture)."""

    def __init__(self, model):
        from transformers import DynamicCache

        self.model, self.cache = model, DynamicCache()

    def prefill(self, ids, mask, pos, capacity):
        return self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]

    def repeat(self, n):
        self.cache.batch_repeat_interleave(n)

    def select(self, rows):
        self.cache.batch_select_indices(rows)

    def step(self, tok, mask, pos):
        return self.model(
            input_ids=tok.unsqueeze(1),
            attention_mask=mask,
            position_ids=pos,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]


class _LeanSteps:
    """Decoding through phasecheck.sampling.lean (Llama-family models): LoRA folded into the weights
    once per batch, a preallocated KV cache, a few torch calls per layer."""

    def __init__(self, lean):
        self.lean, self.cache, self.padded = lean.for_sampling(), None, True

    def prefill(self, ids, mask, pos, capacity):
        logits, self.cache = self.lean.prefill(ids, mask, capacity)
        self.padded = not bool(mask.all())  # no padding now, none later: steps need no mask
        return logits

    def repeat(self, n):
        self.cache.repeat_interleave(n)

    def select(self, rows):
        self.cache.select(rows)

    def step(self, tok, mask, pos):
        return self.lean.decode(tok, pos, mask if self.padded else None, self.cache)


def _steps(model):
    from .lean import lean_model

    lean = lean_model(model)
    return _LeanSteps(lean) if lean is not None and lean.pays_for_sampling() else _HFSteps(model)


def _generate_batch(model, tokenizer, prompts, seeds, n, temperature, top_p, max_new_tokens, stop, eos, encoded=None):
    """n generations for each prompt of one batch; `encoded` (the prompts' token ids) saves
    tokenising them again."""
    import torch

    device = next(model.parameters()).device
    if encoded is None:
        encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids, mask = (t.to(device) for t in pad_left(encoded, pad))
    rows = len(prompts) * n
    uniforms = _uniforms(seeds, n, max_new_tokens).to(device)
    out_tokens: list[list[int]] = [[] for _ in range(rows)]
    finish = [None] * rows
    tail = max((len(s) for s in stop), default=0) + 8
    with torch.inference_mode():
        steps = _steps(model)
        pos = (mask.cumsum(-1) - 1).clamp_(min=0)
        # Prefill each prompt once, then give each of its n samples a copy of the cache.
        logits = steps.prefill(ids, mask, pos, ids.shape[1] + max_new_tokens)
        if n > 1:
            steps.repeat(n)
            logits = logits.repeat_interleave(n, dim=0)
            mask = mask.repeat_interleave(n, dim=0)
            pos = pos.repeat_interleave(n, dim=0)
        next_pos = pos[:, -1:] + 1
        active = list(range(rows))  # batch position -> row, shrinking as rows finish
        u = uniforms
        vocab = len(tokenizer)
        for step in range(max_new_tokens):
            tok = _draw(logits[:, :vocab] if logits.shape[-1] > vocab else logits, u[:, step], temperature, top_p)
            for i, t in zip(active, tok.tolist()):
                if t in eos:
                    finish[i] = "stop"
                    continue
                out_tokens[i].append(t)
                if stop:
                    text = tokenizer.decode(out_tokens[i][-tail:], skip_special_tokens=True)
                    if any(s in text for s in stop):
                        finish[i] = "stop"
            keep = [p for p, i in enumerate(active) if finish[i] is None]
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(active):
                # Drop finished rows from the batch (and their KV cache): later steps cost only live rows.
                sel = torch.tensor(keep, device=device)
                steps.select(sel)
                mask, next_pos, tok, u = mask[sel], next_pos[sel], tok[sel], u[sel]
                active = [active[p] for p in keep]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            logits = steps.step(tok, mask, next_pos)
            next_pos = next_pos + 1
    results = _generations(tokenizer, out_tokens, finish, stop)
    return [results[j * n : (j + 1) * n] for j in range(len(prompts))]


def _uniforms(seeds, n: int, max_new_tokens: int):
    """(rows, max_new_tokens) float64 uniforms, row j*n+k from seed seeds[j] + k. All of a row's uniforms
    in one draw: torch.rand(k) on a CPU generator yields the same stream as k calls of torch.rand(1), so
    each token still uses the same draw as when drawn one by one."""
    import torch

    return torch.stack(
        [
            torch.rand(max(1, max_new_tokens), generator=torch.Generator().manual_seed(int(s) + k), dtype=torch.float64)
            for s in seeds
            for k in range(n)
        ]
    )


def _generations(tokenizer, out_tokens: list[list[int]], finish: list, stop) -> list[Generation]:
    """Each row's text, cut at its first stop string; a row that neither stopped nor hit EOS ran out of length."""
    results = []
    for i, text in enumerate(tokenizer.batch_decode(out_tokens, skip_special_tokens=True)):
        reason = finish[i] or "length"
        cut = min((text.find(s) for s in stop if s in text), default=-1)
        if cut >= 0:
            text, reason = text[:cut], "stop"
        results.append(
            Generation(text=text, token_ids=out_tokens[i], finish_reason=reason, n_tokens=len(out_tokens[i]))
        )
    return results


def _batches(lengths: Sequence[int], n: int, max_new_tokens: int, budget: int) -> list[list[int]]:
    """Group prompt indices (in the given order) so rows x (longest prompt + new tokens) <= budget."""
    out, cur, longest = [], [], 0
    for i, length in enumerate(lengths):
        new_longest = max(longest, length)
        if cur and (len(cur) + 1) * n * (new_longest + max_new_tokens) > budget:
            out.append(cur)
            cur, new_longest = [], length
        cur.append(i)
        longest = new_longest
    if cur:
        out.append(cur)
    return out


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    n: int,
    seeds: list[int] | int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    stop: Sequence[str] = (),
    batch_tokens: int | None = None,
) -> list[list[Generation]]:
    """n samples for each already-rendered prompt. Sample k of prompt j uses seed seeds[j] + k; an
    int `seeds` means seeds[j] = seeds + j*n. Prompts are batched longest-first under `batch_tokens`."""
    if isinstance(seeds, int):
        seeds = [seeds + j * n for j in range(len(prompts))]
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    if not prompts:
        return []
    device = next(model.parameters()).device
    budget = batch_tokens or default_batch_tokens(str(device))
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    lengths = [len(x) for x in encoded]
    order = sorted(range(len(prompts)), key=lambda j: -lengths[j])
    eos = _eos_ids(model, tokenizer)
    out: list[list[Generation] | None] = [None] * len(prompts)
    for group in _batches([lengths[j] for j in order], n, max_new_tokens, budget):
        idx = [order[g] for g in group]
        res = _generate_batch(
            model,
            tokenizer,
            [prompts[j] for j in idx],
            [seeds[j] for j in idx],
            n,
            temperature,
            top_p,
            max_new_tokens,
            tuple(stop),
            eos,
            [encoded[j] for j in idx],
        )
        for j, gens in zip(idx, res):
            out[j] = gens
    return out  # type: ignore[return-value]


class TransformersEngine(EngineBase):
    """Samples a local model with transformers, batch by batch, through the sample cache."""

    id: ClassVar[str] = "transformers"
    needs_model: ClassVar[bool] = True

    class Params(Strict):
        device: str | None = Field(None, description="cpu, cuda, cuda:1 ...; default cuda when available.")
        dtype: DtypeName | None = Field(
            None,
            description="bf16, fp16 or fp32 (or bfloat16, float16, float32, auto); default bf16 on GPU, fp32 on CPU.",
        )
        batch_tokens: int | None = Field(None, ge=64, description="Token budget per forward batch (rows x length).")

    def output_options(self) -> dict[str, Any]:
        """The dtype the weights load in, resolved (fp32 and its default on the CPU are one key)."""
        from .models import resolved_dtype

        return {"dtype": resolved_dtype(self.params.device, self.params.dtype)}

    def sample(self, examples: list[Example], *, store: Any = None, progress: Any = None) -> list[Sample]:
        from ..errors import ConfigError
        from .models import default_device, load_model, load_tokenizer

        if self.model is None:
            raise ConfigError("sampling.engine transformers needs `model:` in the task")
        # The tokenizer renders prompts and keys the cache; the weights load only if something is missing.
        tokenizer = load_tokenizer(self.model)
        loaded: list = []
        plan = self.plan
        units = plan_units(examples, plan, lambda ex: render_prompt(tokenizer, ex.prompt, plan.system_prompt))
        budget = self.params.batch_tokens or default_batch_tokens(self.params.device or default_device())
        lengths: dict[str, int] = {}

        def batches(todo: list[Unit]) -> list[list[Unit]]:
            for u in todo:
                if u.prompt not in lengths:
                    lengths[u.prompt] = len(tokenizer(u.prompt, add_special_tokens=False)["input_ids"])
            out = []
            for r in sorted({u.run for u in todo}):  # finish run r before starting run r+1
                run = sorted((u for u in todo if u.run == r), key=lambda u: -lengths[u.prompt])
                for group in _batches([lengths[u.prompt] for u in run], plan.n, plan.max_new_tokens, budget):
                    out.append([run[g] for g in group])
            return out

        def generate_batch(batch: list[Unit]) -> list[list[Generation]]:
            if not loaded:
                loaded.extend(load_model(self.model, device=self.params.device, dtype=self.params.dtype))
            model, tok = loaded
            return _generate_batch(
                model,
                tok,
                [u.prompt for u in batch],
                [u.seed for u in batch],
                plan.n,
                plan.temperature,
                plan.top_p,
                plan.max_new_tokens,
                plan.stop,
                _eos_ids(model, tok),
            )

        done, self.stats = run_units(units, generate_batch, batches, store=store, progress=progress, n=plan.n)
        return units_to_samples(examples, plan, done, model=self.model.identity, engine=self.id)
