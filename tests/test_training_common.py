"""Shared pieces of the training backend: token log-probs, padding and checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("isolated_cache")


def test_pad_right_and_token_logprobs_align(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from phasecheck.training.common import pad_right, token_logprobs

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids, mask = pad_right([[5, 6, 7, 8], [5, 6]], pad_id=0)
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    logp, ent = token_logprobs(model, ids, mask, with_entropy=True)
    assert logp.shape == (2, 3) and ent.shape == (2, 3)
    # Right padding leaves the real tokens of the short row as they would be alone.
    alone, _ = token_logprobs(model, ids[1:, :2], mask[1:, :2])
    assert torch.allclose(logp[1, :1], alone[0], atol=1e-5)
    full = torch.log_softmax(model(ids[:1]).logits[0, :-1], -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
    assert torch.allclose(logp[0], full, atol=1e-5)


def test_checkpoint_is_atomic_and_loadable(tmp_path, tiny_model_dir):
    import torch

    from phasecheck.sampling.models import resolve_model
    from phasecheck.task import LoraSpec
    from phasecheck.training.checkpoint import (
        load_checkpoint_model,
        newest_checkpoint,
        read_checkpoint_meta,
        save_checkpoint,
    )
    from phasecheck.training.common import apply_lora, load_policy

    policy = apply_lora(load_policy(str(tiny_model_dir)), LoraSpec(r=2, alpha=4))
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)  # a non-trivial adapter, so merging changes the weights
    path = save_checkpoint(policy, tmp_path / "out", step=3, meta={"kind": "grpo"})
    assert path.name == "checkpoint-3" and newest_checkpoint(tmp_path / "out") == path
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp dirs left
    meta = read_checkpoint_meta(path)
    assert meta["adapter"] is True and meta["step"] == 3 and meta["base_model"] == str(Path(tiny_model_dir).resolve())
    model, tok, _ = load_checkpoint_model(path)
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        expect = policy.model(input_ids=ids).logits
        got = model(input_ids=ids).logits
    assert torch.allclose(expect, got, atol=1e-4)
    # The checkpoint is a plain HF dir: sampling resolves it, and its identity differs from the base.
    assert resolve_model(str(path)).identity != resolve_model(str(tiny_model_dir)).identity


def test_inference_copy_tracks_the_lora_policy(tiny_model_dir):
    import torch

    from phasecheck.task import LoraSpec
    from phasecheck.training.common import InferenceCopy, apply_lora, load_policy

    policy = apply_lora(load_policy(str(tiny_model_dir)), LoraSpec(r=2, alpha=4))
    infer = InferenceCopy(policy.model)
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 0.1)  # an optimiser step, as far as the copy knows
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        stale = infer.model(input_ids=ids).logits
        infer.sync()
        fresh, want = infer.model(input_ids=ids).logits, policy.model(input_ids=ids).logits
    assert not torch.allclose(stale, want, atol=1e-4)
    assert torch.allclose(fresh, want, atol=1e-5)
    assert not any(p.requires_grad for p in infer.model.parameters())


def test_token_logprobs_from_a_start_position_match_the_full_call(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from phasecheck.training.common import pad_right, token_logprobs

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids, mask = pad_right([[5, 6, 7, 8, 9, 10], [5, 6, 7, 8]], pad_id=0)
    with torch.no_grad():
        full, full_ent = token_logprobs(model, ids, mask, with_entropy=True)
        part, part_ent = token_logprobs(model, ids, mask, with_entropy=True, start=2)
    assert part.shape == full.shape and part_ent.shape == full_ent.shape
    assert torch.allclose(part[:, 2:], full[:, 2:], atol=1e-5)
    assert torch.allclose(part_ent[:, 2:], full_ent[:, 2:], atol=1e-5)
    assert not part[:, :2].any() and not part_ent[:, :2].any()  # skipped positions read 0


def test_base_view_is_the_policy_without_its_adapter_and_shares_weights(tiny_model_dir):
    import torch

    from phasecheck.task import LoraSpec
    from phasecheck.training.common import apply_lora, base_view, load_policy

    policy = apply_lora(load_policy(str(tiny_model_dir)), LoraSpec(r=2, alpha=4))
    ref = base_view(policy.model)
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 0.1)  # the adapter moves; the reference must not
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        with policy.model.disable_adapter():
            want = policy.model(input_ids=ids).logits
        got = ref(input_ids=ids).logits
        moved = policy.model(input_ids=ids).logits
    assert torch.equal(got, want) and not torch.allclose(moved, want, atol=1e-4)
    base_ptrs = {p.data_ptr() for n, p in policy.model.named_parameters() if "lora_" not in n}
    assert {p.data_ptr() for p in ref.parameters()} <= base_ptrs  # no copy of any weight
