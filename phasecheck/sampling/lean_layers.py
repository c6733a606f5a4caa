"""The projections a lean forward pass reads (sampling/lean.py): a linear layer's weight and bias plus its
active LoRA adapters as (A, B, scale), read from a plain nn.Linear or a peft LoRA layer; a decoder layer's
projections; and several projections fused into one (q|k|v, gate|up) with their adapters stacked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Linear", "read_linear", "Layer", "fuse"]


@dataclass
class Linear:
    """One projection: the base weight and bias, plus each active LoRA adapter as (A, B, scale)."""

    weight: Any
    bias: Any
    loras: tuple

    def __call__(self, x, adapters: bool = True, residual=None):
        """x W^T + b (+ residual), then + s (x A^T) B^T per adapter: one addmm each, on 2-D views."""
        import torch
        import torch.nn.functional as F

        flat = x.reshape(-1, x.shape[-1])
        if residual is None:
            y = F.linear(flat, self.weight, self.bias)
        else:
            y = torch.addmm(residual.reshape(-1, residual.shape[-1]), flat, self.weight.t())
            if self.bias is not None:
                y = y + self.bias
        if adapters:
            for a, b, scale in self.loras:
                y = torch.addmm(y, F.linear(flat, a), b.t(), alpha=scale)
        return y.view(*x.shape[:-1], y.shape[-1])

    def merged(self) -> Linear:
        """The same projection with its adapters folded into one weight (no autograd)."""
        if not self.loras:
            return self
        weight = self.weight.detach().clone()
        for a, b, scale in self.loras:
            weight.addmm_(b.detach(), a.detach(), alpha=scale)
        return Linear(weight, None if self.bias is None else self.bias.detach(), ())


def read_linear(module, training: bool) -> Linear | None:
    """A plain nn.Linear, or a peft LoRA layer read as base + adapters; None for anything else."""
    import torch

    if isinstance(module, torch.nn.Linear):
        return Linear(module.weight, module.bias, ())
    base = getattr(module, "base_layer", None)
    if not isinstance(base, torch.nn.Linear) or not hasattr(module, "lora_A"):
        return None
    merged, disabled = bool(getattr(module, "merged", False)), bool(getattr(module, "disable_adapters", False))
    if merged and disabled:
        return None  # the base weight holds an adapter that should not count
    if merged or disabled:
        return Linear(base.weight, base.bias, ())  # the adapter is in the weight, or off
    loras = []
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        if getattr(module, "use_dora", {}).get(name) or getattr(module, "lora_variant", {}).get(name) is not None:
            return None
        if getattr(module, "lora_bias", {}).get(name):
            return None
        drop = module.lora_dropout[name]
        if training and isinstance(drop, torch.nn.Dropout) and drop.p > 0:
            return None
        a, b = module.lora_A[name].weight, module.lora_B[name].weight
        if a.dtype != base.weight.dtype:
            return None  # peft casts between an fp32 adapter and a bf16 base; leave that to it
        loras.append((a, b, float(module.scaling[name])))
    return Linear(base.weight, base.bias, tuple(loras))


@dataclass
class Layer:
    ln1: Any
    ln2: Any
    q: Linear
    k: Linear
    v: Linear
    o: Linear
    gate: Linear
    up: Linear
    down: Linear
    qkv: Linear | None = None  # q|k|v in one projection, q and k rows in RoPE-pair order
    gu: Linear | None = None  # gate|up in one projection

    def merged(self) -> Layer:
        return Layer(
            self.ln1, self.ln2, *(getattr(self, f).merged() for f in ("q", "k", "v", "o", "gate", "up", "down"))
        )

    def fused(self, rows) -> Layer:
        """This layer with qkv and gu set (each projection carries one adapter at most)."""
        return Layer(
            self.ln1,
            self.ln2,
            self.q,
            self.k,
            self.v,
            self.o,
            self.gate,
            self.up,
            self.down,
            fuse((self.q, self.k, self.v), rows),
            fuse((self.gate, self.up)),
        )


def fuse(parts, rows=None) -> Linear:
    """One projection whose output is the parts' outputs side by side (then reordered by `rows`).
    Each part's LoRA adapter (one at most) becomes a block of one adapter: A stacked, B
    block-diagonal. Autograd flows back to every part."""
    import torch

    weight = torch.cat([p.weight for p in parts])
    bias = None
    if any(p.bias is not None for p in parts):
        bias = torch.cat([p.bias if p.bias is not None else p.weight.new_zeros(p.weight.shape[0]) for p in parts])
    loras = ()
    if any(p.loras for p in parts):
        scales = {p.loras[0][2] for p in parts if p.loras}
        common = scales.pop() if len(scales) == 1 else None
        a_parts, b_parts = [], []
        for p in parts:
            if p.loras:
                a, b, scale = p.loras[0]
                a_parts.append(a)
                b_parts.append(b if common is not None else b * scale)
            else:
                a_parts.append(p.weight.new_zeros(0, p.weight.shape[1]))
                b_parts.append(p.weight.new_zeros(p.weight.shape[0], 0))
        b = torch.block_diag(*b_parts)
        loras = ((torch.cat(a_parts), b if rows is None else b[rows], 1.0 if common is None else common),)
    if rows is not None:
        weight, bias = weight[rows], None if bias is None else bias[rows]
    return Linear(weight, bias, loras)
