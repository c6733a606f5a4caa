"""Checkpoints: HF format safetensors (with LoRA: merged weights, plus the peft adapter in adapter/ and
its base recorded), written into a temp dir and renamed into place, with phasecheck.json and the
trainer state for resume beside the weights."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EngineError

__all__ = [
    "save_checkpoint",
    "load_checkpoint_model",
    "read_checkpoint_meta",
    "load_trainer_state",
    "load_trainable",
    "newest_checkpoint",
    "CHECKPOINT_META",
    "ADAPTER_DIR",
]

CHECKPOINT_META = "phasecheck.json"
ADAPTER_DIR = "adapter"
_TRAINER_STATE = "trainer_state.pt"


def save_checkpoint(
    policy, out_dir: Path, *, step: int, meta: dict[str, Any], optimizer=None, extra_state: dict[str, Any] | None = None
) -> Path:
    """Write out_dir/checkpoint-<step> atomically and return its path.

    meta lands in phasecheck.json with `step`, `adapter`, `base_model` and `base_identity` added."""
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"checkpoint-{step}"
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".checkpoint-{step}.", suffix=".tmp"))
    try:
        if policy.lora:
            # The adapter (for resume) goes in adapter/; the checkpoint dir itself holds the merged
            # weights, so every engine (transformers, vLLM) and resolve_model read it as a plain HF dir.
            policy.model.save_pretrained(tmp / ADAPTER_DIR, safe_serialization=True)
            merged = copy.deepcopy(policy.model).merge_and_unload()
            merged.save_pretrained(tmp, safe_serialization=True)
            del merged
        else:
            policy.model.save_pretrained(tmp, safe_serialization=True)
        policy.tokenizer.save_pretrained(tmp)
        doc = dict(
            meta, step=step, adapter=bool(policy.lora), base_model=policy.base_path, base_identity=policy.identity
        )
        (tmp / CHECKPOINT_META).write_text(
            json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
        )
        state = {"step": step, **(extra_state or {})}
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
        torch.save(state, tmp / _TRAINER_STATE)
        if final.exists():
            # Re-saving the same step (resume, then Ctrl-C at once): move the old one aside first.
            trash = Path(tempfile.mkdtemp(dir=out_dir, prefix=".trash."))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    meta = Path(path) / CHECKPOINT_META
    if not meta.is_file():
        raise ConfigError(f"{path}: not a phasecheck checkpoint (no {CHECKPOINT_META})")
    return json.loads(meta.read_text(encoding="utf-8"))


def load_checkpoint_model(path: str | Path, *, device: str | None = None, dtype=None):
    """Load a saved checkpoint for sampling -> (model, tokenizer, meta). The directory holds merged
    weights, so this is a plain transformers load; resolve_model(path) works on it too."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    meta = read_checkpoint_meta(path)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)
    except OSError as exc:
        raise EngineError(f"{path}: cannot load checkpoint ({exc})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    if device:
        model.to(device)
    model.eval()
    return model, tok, meta


def load_trainable(path: str | Path, *, device: str | None = None):
    """Rebuild the trainable model of a checkpoint for resume -> (model, tokenizer, meta, is_lora):
    the recorded base with the saved adapter attached, or the full weights."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(path)
    meta = read_checkpoint_meta(path)
    model, tok, _ = load_checkpoint_model(path, device=device)
    if not meta.get("adapter"):
        return model, tok, meta, False
    from peft import PeftModel

    try:
        base = AutoModelForCausalLM.from_pretrained(meta["base_model"], dtype=torch.float32)
    except OSError as exc:
        raise EngineError(f"{path}: cannot load its base model {meta['base_model']!r} ({exc})") from None
    if device:
        base.to(device)
    del model
    return PeftModel.from_pretrained(base, str(path / ADAPTER_DIR), is_trainable=True), tok, meta, True


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    """The step and optimizer state saved beside a checkpoint's weights."""
    import torch

    f = Path(path) / _TRAINER_STATE
    if not f.is_file():
        raise ConfigError(f"{path}: checkpoint has no {_TRAINER_STATE}; it cannot be resumed")
    return torch.load(f, map_location="cpu", weights_only=False)


def resume_optimizer(path: str | Path, optimizer) -> int:
    """Restore the optimizer state saved beside checkpoint `path`; returns the step to continue from."""
    state = load_trainer_state(path)
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def newest_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint-<step> directory with the highest step under out_dir, or None."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return None
    found = [
        (int(p.name.split("-", 1)[1]), p)
        for p in out_dir.glob("checkpoint-*")
        if p.is_dir() and p.name.split("-", 1)[1].isdigit() and (p / CHECKPOINT_META).is_file()
    ]
    return max(found)[1] if found else None
