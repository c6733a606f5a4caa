"""sampling.lean holds to transformers: logits, gradients, the shared-prompt pass, decoding and sampled
tokens, fused and unfused, plain and under LoRA; and it steps aside for what it does not cover."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from phasecheck.sampling.base import render_prompt  # noqa: E402
from phasecheck.sampling.lean import lean_model  # noqa: E402
from phasecheck.task import LoraSpec  # noqa: E402

PROMPTS = ["What is 2 + 3 ?", "Compute 7 * 6 .", "H = p^2 / 2m gives", "tag ?"]
ATOL = 1e-5


def _model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _lora(model, *, targets="all-linear", seed=0):
    """`model` under a LoRA adapter whose B is random (a fresh adapter is the identity, which would
    hide a missing adapter term)."""
    from phasecheck.training.common import Policy, apply_lora

    policy = apply_lora(Policy(model, None, "", None, lora=False), LoraSpec(target_modules=targets))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return policy.model.eval()


@pytest.fixture(params=["fused", "unfused"])
def fuse_mode(request, monkeypatch):
    """Run a test with the fused (small-model) layout and with transformers' own layout."""
    if request.param == "unfused":
        monkeypatch.setattr("phasecheck.sampling.lean.FUSE_MAX_BYTES", 0)
    return request.param


def _batch():
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 0, 0], [17, 18, 19, 0, 0, 0, 0]])
    right = (ids != 0).long()
    left_ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [0, 0, 12, 13, 14, 15, 16], [0, 0, 0, 0, 17, 18, 19]])
    left = (left_ids != 0).long()
    return ids, right, left_ids, left


@pytest.mark.parametrize("lora", [False, True])
def test_logits_match_transformers_with_right_and_left_padding(tiny_model_dir, fuse_mode, lora):
    model = _model(tiny_model_dir)
    if lora:
        model = _lora(model)
    lean = lean_model(model)
    assert lean is not None and lean.fuse == (fuse_mode == "fused")
    ids, right, left_ids, left = _batch()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=right).logits
        ours = lean.logits(ids, right)
        assert torch.allclose(ours[right.bool()], ref[right.bool()], atol=ATOL)
        pos = (left.cumsum(-1) - 1).clamp(min=0)
        ref = model(input_ids=left_ids, attention_mask=left, position_ids=pos).logits
        ours = lean.logits(left_ids, left)
        assert torch.allclose(ours[left.bool()], ref[left.bool()], atol=ATOL)
        assert torch.allclose(lean.logits(ids, right, keep=3), lean.logits(ids, right)[:, -3:], atol=ATOL)


def test_lora_gradients_match_peft(tiny_model_dir, fuse_mode):
    model = _lora(_model(tiny_model_dir))
    ids, right, _, _ = _batch()
    params = [p for p in model.parameters() if p.requires_grad]
    target = torch.randn(3, 7, 1)

    def loss(logits):
        return ((logits * target)[right.bool()]).sum()

    ref = torch.autograd.grad(loss(model(input_ids=ids, attention_mask=right).logits), params)
    ours = torch.autograd.grad(loss(lean_model(model).logits(ids, right)), params)
    scale = max(g.abs().max().item() for g in ref)
    assert scale > 0
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, atol=1e-5 * max(1.0, scale))


def test_full_finetune_gradients_reach_every_weight(tiny_model_dir, fuse_mode):
    model = _model(tiny_model_dir)
    ids, right, _, _ = _batch()
    names = [n for n, p in model.named_parameters()]
    ref = torch.autograd.grad(
        model(input_ids=ids, attention_mask=right).logits[right.bool()].pow(2).mean(),
        list(model.parameters()),
        allow_unused=True,
    )
    ours = torch.autograd.grad(
        lean_model(model).logits(ids, right)[right.bool()].pow(2).mean(), list(model.parameters()), allow_unused=True
    )
    for name, a, b in zip(names, ours, ref):
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.allclose(a, b, atol=1e-6), name


def test_adapters_off_is_the_base_model(tiny_model_dir, fuse_mode):
    from phasecheck.training.common import base_view

    model = _lora(_model(tiny_model_dir))
    ids, right, _, _ = _batch()
    with torch.no_grad():
        base = base_view(model)(input_ids=ids, attention_mask=right).logits
        off = lean_model(model).logits(ids, right, adapters=False)
        on = lean_model(model).logits(ids, right)
    assert torch.allclose(off[right.bool()], base[right.bool()], atol=ATOL)
    assert not torch.allclose(on[right.bool()], base[right.bool()], atol=1e-3)


def test_shared_prompt_pass_equals_whole_sequences(tiny_model_dir, fuse_mode):
    """completion_logits (each prompt once for its group) gives what the whole sequences give."""
    from phasecheck.training.common import completion_logprobs, pad_right

    model = _lora(_model(tiny_model_dir))
    prompts = [[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16]]
    comps = [[20, 21, 22], [23], [24, 25, 26, 27], [28, 29], [30, 31, 32], [33]]
    group = 2
    assert lean_model(model) is not None
    logp, ent, cmask = completion_logprobs(model, prompts, comps, group, 0, with_entropy=True)
    assert cmask.tolist() == pad_right(comps, 0)[1].float().tolist()
    seqs = [prompts[r // group] + c for r, c in enumerate(comps)]
    ids, mask = pad_right(seqs, 0)
    full = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, -1)
    for r, c in enumerate(comps):
        start = len(prompts[r // group])
        for t, token in enumerate(c):
            row = full[r, start - 1 + t]
            assert abs(logp[r, t].item() - row[token].item()) < ATOL
            assert abs(ent[r, t].item() + (row.exp() * row).sum().item()) < ATOL
    # The transformers fallback (PHASECHECK_LEAN=0) gives the same numbers through token_logprobs.
    import os

    os.environ["PHASECHECK_LEAN"] = "0"
    try:
        slow, slow_ent, slow_mask = completion_logprobs(model, prompts, comps, group, 0, with_entropy=True)
    finally:
        del os.environ["PHASECHECK_LEAN"]
    assert torch.allclose(slow * slow_mask, logp * cmask, atol=ATOL)
    assert torch.allclose(slow_ent * slow_mask, ent * cmask, atol=ATOL)


def test_prefill_and_decode_follow_the_full_forward(tiny_model_dir, fuse_mode):
    model = _lora(_model(tiny_model_dir))
    _, _, ids, mask = _batch()
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        sampler = lean_model(model).for_sampling()
        # Prefill the first 5 columns (every row has a real token by then), decode the rest.
        logits, cache = sampler.prefill(ids[:, :5], mask[:, :5], ids.shape[1])
        assert torch.allclose(logits, full[:, 4], atol=ATOL)
        for t in range(5, ids.shape[1]):
            logits = sampler.decode(ids[:, t], pos[:, t : t + 1], mask[:, : t + 1], cache)
            assert torch.allclose(logits, full[:, t], atol=ATOL)
    # The folded copy leaves the live adapter alone (training goes on with W and BA apart).
    assert any(p.requires_grad and "lora_B" in n for n, p in model.named_parameters())


@pytest.mark.parametrize("temperature,top_p", [(0.0, 1.0), (1.0, 1.0), (0.8, 0.9)])
def test_generate_samples_the_same_tokens_as_the_transformers_path(
    tiny_model_dir, monkeypatch, fuse_mode, temperature, top_p
):
    from phasecheck.sampling import load_model, resolve_model
    from phasecheck.sampling.hf import generate

    model, tok = load_model(resolve_model(str(tiny_model_dir)))
    model = _lora(model)
    assert lean_model(model) is not None
    prompts = [render_prompt(tok, p, None) for p in PROMPTS]
    kw = dict(n=3, seeds=7, temperature=temperature, top_p=top_p, max_new_tokens=12)
    lean = generate(model, tok, prompts, **kw)
    monkeypatch.setenv("PHASECHECK_LEAN", "0")
    slow = generate(model, tok, prompts, **kw)
    assert [[g.token_ids for g in gs] for gs in lean] == [[g.token_ids for g in gs] for gs in slow]
    assert [[g.finish_reason for g in gs] for gs in lean] == [[g.finish_reason for g in gs] for gs in slow]


def test_adapters_on_some_projections_only(tiny_model_dir, fuse_mode):
    """q_proj/v_proj adapters (a common choice): the fused q|k|v projection carries an empty block for k."""
    model = _lora(_model(tiny_model_dir), targets=["q_proj", "v_proj"])
    ids, right, _, _ = _batch()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=right).logits
        assert torch.allclose(lean_model(model).logits(ids, right)[right.bool()], ref[right.bool()], atol=ATOL)


def test_qwen2_with_attention_biases(tmp_path, fuse_mode):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_()
    ids, right, left_ids, left = _batch()
    lean = lean_model(model)
    assert lean is not None
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=right).logits
        assert torch.allclose(lean.logits(ids, right)[right.bool()], ref[right.bool()], atol=ATOL)


def test_steps_aside_for_what_it_does_not_cover(tiny_model_dir, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    assert lean_model(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32))) is None
    model = _model(tiny_model_dir)
    assert lean_model(model) is not None
    monkeypatch.setenv("PHASECHECK_LEAN", "0")
    assert lean_model(model) is None
    monkeypatch.delenv("PHASECHECK_LEAN")
    # Dropout that would be active in training mode is transformers' job.
    from peft import LoraConfig, get_peft_model

    dropped = get_peft_model(
        _model(tiny_model_dir), LoraConfig(r=2, lora_alpha=4, lora_dropout=0.1, target_modules="all-linear")
    )
    assert lean_model(dropped.eval()) is not None
    assert lean_model(dropped.train()) is None
    # An adapter merged into the weights counts once, through the weights.
    merged = _lora(_model(tiny_model_dir))
    ids, right, _, _ = _batch()
    with torch.no_grad():
        before = merged(input_ids=ids, attention_mask=right).logits
        merged.merge_adapter()
        after = lean_model(merged).logits(ids, right)
    assert torch.allclose(after[right.bool()], before[right.bool()], atol=1e-4)
