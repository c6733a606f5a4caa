"""A lean forward pass for Llama-family decoders, run over the model's own parameter tensors.

Why: for small models (a 135M model on CPU, the tiny test and benchmark models) one transformers
forward costs more in Python than in arithmetic: cache objects, mask builders, output dataclasses,
per-module calls and, with LoRA, peft's per-layer adapter dispatch. This module does the same
arithmetic as transformers' Llama implementation with a handful of torch calls per layer: a
preallocated KV cache for decoding, scaled_dot_product_attention with grouped-query heads, and LoRA
adapters applied as `x W^T + s (x A^T) B^T`, so gradients reach the very parameters peft owns and
the optimiser, checkpoints and `save_pretrained` see nothing different.

Covered: `LlamaForCausalLM` and `Qwen2ForCausalLM` without sliding-window layers (RMSNorm, RoPE with
a static inverse-frequency table, grouped-query attention, optional q/k/v or MLP biases, SwiGLU),
plain or under peft LoRA adapters (unmerged, no DoRA or other variants). `lean_model` returns None
for anything else (another architecture, dynamic RoPE, a sliding window, an active dropout), and
callers use transformers as before; so does everything when PHASECHECK_LEAN=0 is set (to rule this
module out when chasing a discrepancy). tests/test_lean.py holds the two to each other: logits,
gradients and sampled tokens."""

from __future__ import annotations

import os

from .lean_layers import Layer, read_linear

__all__ = ["lean_model", "Lean", "LeanCache"]

_ARCHS = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
_STATIC_ROPE = {"default", "linear", "llama3", "yarn"}

# Fusing copies the q|k|v and gate|up weights once per forward pass (per sampling batch when LoRA is
# folded in anyway). Below this size the copy is cheap and the saved per-call overhead is what
# dominates; above it the matmuls dominate and the copy would only cost memory.
FUSE_MAX_BYTES = 64 << 20


def lean_model(model) -> Lean | None:
    """The lean view of `model` (a transformers causal LM, optionally peft-wrapped), or None when this
    module does not cover it. Cheap: it reads attributes, copies nothing; build it per call."""
    if os.environ.get("PHASECHECK_LEAN", "1") == "0":
        return None
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    arch = _ARCHS.get(type(inner).__name__)
    if arch is None:
        return None
    cfg = inner.config
    training = model.training
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return None
    if training and float(getattr(cfg, "attention_dropout", 0.0) or 0.0) > 0:
        return None
    if arch == "qwen2" and (
        getattr(cfg, "use_sliding_window", False)
        or any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or []))
    ):
        return None
    rotary = inner.model.rotary_emb
    if getattr(rotary, "rope_type", "default") not in _STATIC_ROPE:
        return None
    layers = []
    for layer in inner.model.layers[: cfg.num_hidden_layers]:
        att, mlp = layer.self_attn, layer.mlp
        parts = [
            read_linear(m, training)
            for m in (att.q_proj, att.k_proj, att.v_proj, att.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj)
        ]
        if any(p is None for p in parts):
            return None
        layers.append(Layer(layer.input_layernorm.weight, layer.post_attention_layernorm.weight, *parts))
    head = read_linear(inner.lm_head, training)
    if head is None:
        return None
    fusable = [p for L in layers for p in (L.q, L.k, L.v, L.gate, L.up)]
    fuse = sum(p.weight.numel() * p.weight.element_size() for p in fusable) <= FUSE_MAX_BYTES and all(
        len(p.loras) <= 1 for p in fusable
    )  # stacked adapters: one per projection
    return Lean(
        cfg,
        inner.model.embed_tokens.weight,
        layers,
        inner.model.norm.weight,
        head,
        rotary.inv_freq,
        float(getattr(rotary, "attention_scaling", 1.0)),
        fuse=fuse,
    )


class LeanCache:
    """A preallocated KV cache for sampling: per layer (rows, kv_heads, capacity, head_dim) keys and
    values, every row on the same columns (prompts are left-padded). `attend` writes a step's keys
    and values and returns all of them so far."""

    def __init__(self, keys: list, values: list, length: int = 0):
        self.keys, self.values, self.length = keys, values, length

    def attend(self, i: int, k, v):
        end = self.length + k.shape[2]
        self.keys[i][:, :, self.length : end] = k
        self.values[i][:, :, self.length : end] = v
        return self.keys[i][:, :, :end], self.values[i][:, :, :end]

    def repeat_interleave(self, n: int) -> None:
        self.keys = [k.repeat_interleave(n, dim=0) for k in self.keys]
        self.values = [v.repeat_interleave(n, dim=0) for v in self.values]

    def select(self, rows) -> None:
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]


class _Record:
    """Training, the prompt pass: keeps each layer's keys and values (autograd intact)."""

    def __init__(self):
        self.kv: list = []

    def attend(self, i: int, k, v):
        self.kv.append((k, v))
        return k, v


class _Shared:
    """Training, the completion pass: each prompt's recorded keys and values, repeated for its
    `group` completions, come before the completion's own."""

    def __init__(self, kv: list, group: int):
        self.kv, self.group = kv, group

    def attend(self, i: int, k, v):
        import torch

        pk, pv = self.kv[i]
        return (
            torch.cat((pk.repeat_interleave(self.group, dim=0), k), dim=2),
            torch.cat((pv.repeat_interleave(self.group, dim=0), v), dim=2),
        )


class Lean:
    """The forward pass. `logits` and `completion_logits` serve training (autograd flows to the
    model's parameters); `prefill` and `decode` serve sampling, after `for_sampling` has folded LoRA
    into the weights.

    Small models run fused: q|k|v and gate|up as one projection each, with the q and k rows of every
    head reordered from transformers' (first half, second half) RoPE layout into (x0, x_h/2, x1, ...)
    pairs, so the rotation is one complex multiply for q and k together. Attention scores are dot
    products over a head's features, so applying one reordering to both q and k leaves them as
    they were; v and the output projection are untouched."""

    def __init__(self, cfg, embed, layers, norm, head, inv_freq, rope_scale, fuse: bool):
        self.embed, self.layers, self.norm, self.head = embed, layers, norm, head
        self.inv_freq, self.rope_scale = inv_freq, rope_scale
        self.eps = float(cfg.rms_norm_eps)
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scale = self.head_dim**-0.5
        self.fuse = fuse

    # --- pieces -------------------------------------------------------------------------------
    def _run_layers(self) -> list:
        """The layers as this pass runs them: fused (rebuilt from the live parameters, so autograd
        and optimiser steps see through it) or as they are."""
        if not self.fuse or self.layers[0].qkv is not None:
            return self.layers
        rows = self._pair_rows()
        return [L.fused(rows) for L in self.layers]

    def _pair_rows(self):
        """Row order of the fused q|k|v weight: each q and k head's features as RoPE pairs."""
        import torch

        hd, half = self.head_dim, self.head_dim // 2
        device = self.embed.device
        pairs = torch.stack((torch.arange(half, device=device), torch.arange(half, device=device) + half), -1).flatten()
        qk = (torch.arange(self.heads + self.kv_heads, device=device).unsqueeze(1) * hd + pairs).flatten()
        v = torch.arange(self.kv_heads * hd, device=device) + (self.heads + self.kv_heads) * hd
        return torch.cat((qk, v))

    def _norm(self, x, weight):
        import torch
        import torch.nn.functional as F

        if x.dtype == weight.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), weight, self.eps)
        # transformers normalises in float32 and casts back before the weight.
        return weight * F.rms_norm(x.float(), (x.shape[-1],), None, self.eps).to(x.dtype)

    def _rope(self, pos, dtype):
        """The rotation for integer positions (B or 1, T): a complex (B|1, T, 1, head_dim/2) tensor when
        fused, else transformers' cos and sin, (B|1, 1, T, head_dim), computed as it does."""
        import torch

        freqs = pos.unsqueeze(-1).float() * self.inv_freq.float()
        if self.fuse:
            # complex64 whatever `dtype`: _qkv rotates in float32 and casts back, as transformers does.
            return torch.polar(torch.full_like(freqs, self.rope_scale), freqs).unsqueeze(2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return (
            (emb.cos() * self.rope_scale).to(dtype).unsqueeze(1),
            (emb.sin() * self.rope_scale).to(dtype).unsqueeze(1),
        )

    def _qkv(self, L, h, rope, adapters):
        """Queries, keys, values (B, heads, T, head_dim) for the normed hidden states h (B, T, D)."""
        import torch

        B, T, _ = h.shape
        H, KV, hd = self.heads, self.kv_heads, self.head_dim
        if L.qkv is not None:
            y = L.qkv(h, adapters)
            qk = y[..., : (H + KV) * hd].unflatten(-1, (H + KV, hd // 2, 2))
            qk = torch.view_as_real(torch.view_as_complex(qk.float()) * rope).to(y.dtype).flatten(-2).transpose(1, 2)
            v = y[..., (H + KV) * hd :].unflatten(-1, (KV, hd)).transpose(1, 2)
            return qk[:, :H], qk[:, H:], v
        cos, sin = rope
        q = L.q(h, adapters).view(B, T, H, hd).transpose(1, 2)
        k = L.k(h, adapters).view(B, T, KV, hd).transpose(1, 2)
        v = L.v(h, adapters).view(B, T, KV, hd).transpose(1, 2)
        return self._rotate(q, cos, sin), self._rotate(k, cos, sin), v

    @staticmethod
    def _rotate(x, cos, sin):
        import torch

        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    def _stack(self, x, rope, *, layers, adapters=True, attn_mask=None, causal=False, kv=None):
        """The decoder layers and the final norm over hidden states x (B, T, D); `kv` (a LeanCache,
        _Record or _Shared) supplies the keys and values to attend to."""
        import torch.nn.functional as F

        B, T, _ = x.shape
        gqa = self.heads != self.kv_heads
        for i, L in enumerate(layers):
            q, k, v = self._qkv(L, self._norm(x, L.ln1), rope, adapters)
            if kv is not None:
                k, v = kv.attend(i, k, v)
            a = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, is_causal=causal, scale=self.scale, enable_gqa=gqa
            )
            x = L.o(a.transpose(1, 2).reshape(B, T, self.heads * self.head_dim), adapters, residual=x)
            h = self._norm(x, L.ln2)
            if L.gu is not None:
                gate, up = L.gu(h, adapters).chunk(2, dim=-1)
            else:
                gate, up = L.gate(h, adapters), L.up(h, adapters)
            x = L.down(F.silu(gate) * up, adapters, residual=x)
        return self._norm(x, self.norm)

    @staticmethod
    def _bias(allowed, dtype):
        """An additive attention mask (0 where allowed, -inf elsewhere) from a boolean one: built once
        per pass, not converted again inside every layer's attention call."""
        import torch

        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed, float("-inf"))

    def _prompts(self, ids, mask, *, layers, adapters=True, kv=None):
        """Left-padded prompts (B, P) through the stack: hidden states (B, P, D), positions counting
        real tokens. A padding query sees itself at least, so no attention row is empty (no NaN)."""
        import torch
        import torch.nn.functional as F

        P = ids.shape[1]
        x = F.embedding(ids, self.embed)
        rope = self._rope((mask.long().cumsum(-1) - 1).clamp_(min=0), x.dtype)
        if bool(mask.all()):
            return self._stack(x, rope, layers=layers, adapters=adapters, causal=True, kv=kv)
        cols = torch.arange(P, device=ids.device)
        allowed = (cols <= cols.unsqueeze(1)) & mask.bool().unsqueeze(1)
        allowed = (allowed | torch.eye(P, dtype=torch.bool, device=ids.device)).unsqueeze(1)
        return self._stack(x, rope, layers=layers, adapters=adapters, attn_mask=self._bias(allowed, x.dtype), kv=kv)

    # --- training -----------------------------------------------------------------------------
    def logits(self, ids, mask=None, *, keep: int = 0, adapters: bool = True):
        """Logits (B, T, V), or of the last `keep` positions. Right-padded (or unpadded) batches take
        the plain causal kernel, whose padding queries see padding keys too (their logits are junk
        nobody reads); left-padded ones count positions from the first real token."""
        import torch
        import torch.nn.functional as F

        T = ids.shape[1]
        layers = self._run_layers()
        if mask is None or bool((mask[:, 1:] <= mask[:, :-1]).all()):
            x = F.embedding(ids, self.embed)
            rope = self._rope(torch.arange(T, device=ids.device).unsqueeze(0), x.dtype)
            h = self._stack(x, rope, layers=layers, adapters=adapters, causal=True)
        else:
            h = self._prompts(ids, mask, layers=layers, adapters=adapters)
        return self.head(h[:, -keep:] if keep else h, adapters)

    def completion_logits(self, prompt_ids, prompt_mask, comp_ids, group: int, *, adapters: bool = True):
        """Logits that predict each completion token, (N, Tc, V), for N = P x group completions.

        The P prompts (left-padded, (P, Tp)) run once; each one's keys and values serve the `group`
        completions (right-padded, (N, Tc), prompt j's at rows j*group ... j*group+group-1) that
        follow it. Against running N whole sequences this saves the prompt's (group-1) repeats in
        every projection and most of the attention, and gives the same numbers."""
        import torch
        import torch.nn.functional as F

        layers = self._run_layers()
        rec = _Record()
        hp = self._prompts(prompt_ids, prompt_mask, layers=layers, adapters=adapters, kv=rec)
        N, Tc = comp_ids.shape
        Tp = prompt_ids.shape[1]
        x = F.embedding(comp_ids, self.embed)
        start = prompt_mask.long().sum(-1).repeat_interleave(group).unsqueeze(1)  # (N, 1)
        rope = self._rope(start + torch.arange(Tc, device=comp_ids.device), x.dtype)
        causal = torch.ones(Tc, Tc, dtype=torch.bool, device=comp_ids.device).tril()
        seen = torch.cat(
            (
                prompt_mask.bool().repeat_interleave(group, dim=0).unsqueeze(1).expand(N, Tc, Tp),
                causal.expand(N, Tc, Tc),
            ),
            dim=2,
        ).unsqueeze(1)
        hc = self._stack(
            x, rope, layers=layers, adapters=adapters, attn_mask=self._bias(seen, x.dtype), kv=_Shared(rec.kv, group)
        )
        last = hp[:, -1:].repeat_interleave(group, dim=0)  # predicts token 0
        return self.head(torch.cat((last, hc[:, :-1]), dim=1), adapters)

    # --- sampling -----------------------------------------------------------------------------
    @property
    def adapters(self) -> bool:
        """Whether any projection carries an unmerged LoRA adapter."""
        return bool(self.head.loras) or any(
            getattr(L, f).loras for L in self.layers for f in ("q", "k", "v", "o", "gate", "up", "down")
        )

    def pays_for_sampling(self) -> bool:
        """Decoding through this module pays when per-call overhead dominates (fused, small models)
        or when LoRA must be folded into the weights anyway; a large plain model decodes as fast
        through transformers, whose growing cache holds less memory than a preallocated one."""
        return self.fuse or self.adapters

    def for_sampling(self) -> Lean:
        """A copy with LoRA adapters folded into the weights (W + sBA) and, when fused, the fused
        weights built once, for the many small decode passes."""
        copy = Lean.__new__(Lean)
        copy.__dict__.update(self.__dict__)
        copy.layers = [L.merged() for L in self.layers]
        copy.head = self.head.merged()
        copy.layers = copy._run_layers()
        return copy

    def prefill(self, ids, mask, capacity: int):
        """Run left-padded prompts (B, P); return (last-position logits (B, V), a LeanCache of
        `capacity` columns holding them)."""
        B, P = ids.shape
        shape = (B, self.kv_heads, capacity, self.head_dim)
        dtype = self.embed.dtype
        cache = LeanCache(
            [ids.new_empty(shape, dtype=dtype) for _ in self.layers],
            [ids.new_empty(shape, dtype=dtype) for _ in self.layers],
        )
        h = self._prompts(ids, mask, layers=self.layers, kv=cache)
        cache.length = P
        return self.head(h[:, -1]), cache

    def decode(self, tok, pos, key_mask, cache: LeanCache):
        """One new token per row: tok (B,), pos (B, 1), key_mask (B, cache.length + 1) over the cache
        columns including the new one, or None when every column is a real token. Returns logits
        (B, V) and advances the cache."""
        import torch.nn.functional as F

        x = F.embedding(tok.unsqueeze(1), self.embed)
        bias = None if key_mask is None else self._bias(key_mask.bool(), x.dtype)[:, None, None, :]
        h = self._stack(x, self._rope(pos, x.dtype), layers=self.layers, attn_mask=bias, kv=cache)
        cache.length += 1
        return self.head(h[:, -1])
