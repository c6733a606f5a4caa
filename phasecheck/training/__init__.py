"""Training gated by the verdict: discover with GRPO until the domain graduates, then crystallise with SFT or
GFT; DPO polishes a GRPO checkpoint's residual failures.

Heavy imports (torch, transformers, peft, trl) happen inside the functions, so importing this package is cheap."""

from __future__ import annotations

from .checkpoint import load_checkpoint_model, newest_checkpoint, read_checkpoint_meta, save_checkpoint
from .dpo import DPOResult, train_dpo
from .gate import GateDecision, check_gate
from .gft import GFTResult, train_gft
from .grpo import GRPOResult, train_grpo
from .grpo_settings import GRPOSettings, resolve_grpo
from .harvest import HarvestResult, harvest
from .lifecycle import LifecycleSummary, run_lifecycle
from .run import Interrupted
from .sft import SFTResult, train_sft

__all__ = [
    "check_gate",
    "GateDecision",
    "train_grpo",
    "resolve_grpo",
    "GRPOSettings",
    "GRPOResult",
    "train_sft",
    "SFTResult",
    "train_gft",
    "GFTResult",
    "train_dpo",
    "DPOResult",
    "harvest",
    "HarvestResult",
    "run_lifecycle",
    "LifecycleSummary",
    "save_checkpoint",
    "load_checkpoint_model",
    "read_checkpoint_meta",
    "newest_checkpoint",
    "Interrupted",
]
