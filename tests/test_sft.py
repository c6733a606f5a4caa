"""SFT on the validated set: completion-only labels masked by the attention mask, loss goes down and a
small mapping is learned; the gate runs first and --force is recorded in the checkpoint."""

from __future__ import annotations

import json

import pytest

from phasecheck.errors import GateError
from phasecheck.results import Phase
from phasecheck.state import newest_run
from phasecheck.training.checkpoint import load_checkpoint_model, read_checkpoint_meta
from phasecheck.training.sft import _batch, encode_pairs, train_sft
from support import MAPPING, make_task, write_validated_set, write_verdict

pytestmark = pytest.mark.usefixtures("isolated_cache")


def test_labels_mask_padding_even_when_pad_is_eos(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.pad_token = tok.eos_token  # the case that breaks `labels[ids == pad] = -100`
    enc = encode_pairs(
        tok,
        [
            {"prompt": "Say sky", "completion": "omega"},
            {"prompt": "Say the word for sea please", "completion": "golden"},
        ],
        system_prompt=None,
        max_length=64,
    )
    ids, mask, labels = _batch(enc, tok.pad_token_id, "cpu")
    for r, (seq, plen) in enumerate(enc):
        assert (labels[r, :plen] == -100).all()  # prompt: no loss
        assert labels[r, len(seq) - 1].item() == tok.eos_token_id  # the real eos is learned
        assert (labels[r, len(seq) :] == -100).all()  # padding (also eos) is not
    assert (ids[0, len(enc[0][0]) :] == tok.eos_token_id).all()


def test_sft_lowers_loss_and_learns_a_small_mapping(tmp_path, tiny_model_dir):
    import torch

    task = make_task(
        tmp_path / "t", tiny_model_dir, sft="{epochs: 30, learning_rate: 0.01, batch_size: 9, eval_fraction: 0.25}"
    )
    write_validated_set(task, copies=3)
    res = train_sft(task)
    assert res.train_loss_last < res.train_loss_first / 4
    assert res.eval_loss_after < res.eval_loss_before / 4
    meta = read_checkpoint_meta(res.checkpoint)
    assert meta["kind"] == "sft" and meta["forced"] is False and meta["verdict"]["verdict_status"] == "GRADUATED"
    assert newest_run(task, "sft")["path"] == str(res.checkpoint.resolve())
    model, tok, _ = load_checkpoint_model(res.checkpoint)
    from phasecheck.sampling.base import render_prompt

    for k, v in MAPPING.items():
        ids = tok(render_prompt(tok, f"Say the word for {k}", None), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
        assert tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip() == v


def test_sft_is_refused_in_grpo_phase_and_force_is_recorded(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir, sft="{epochs: 1, batch_size: 8, lora: {r: 2, alpha: 4}}")
    write_validated_set(task)
    write_verdict(task, Phase.GRPO_PHASE, artifacts={"validated": "validated_set/validated.jsonl"})
    with pytest.raises(GateError, match="GRPO_PHASE, not GRADUATED"):
        train_sft(task)
    warnings = []
    res = train_sft(task, force=True, on_warning=warnings.append)
    assert warnings and "WARNING: --force" in warnings[0]
    meta = read_checkpoint_meta(res.checkpoint)
    assert meta["forced"] is True and meta["verdict"]["forced"] is True
    assert any("GRPO_PHASE" in r for r in meta["verdict"]["refusals"])
    assert meta["adapter"] is True and newest_run(task, "sft")["forced"] is True


def test_sft_resume_continues_from_the_saved_step(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir, sft="{epochs: 3, batch_size: 4, eval_fraction: 0}")
    write_validated_set(task)
    first = train_sft(task, max_steps=2)
    assert first.checkpoint.name == "checkpoint-2"
    second = train_sft(task, resume=first.checkpoint)
    assert second.checkpoint.name == "checkpoint-6" and second.steps == 6
    lines = [json.loads(x) for x in second.metrics.read_text().splitlines()]
    steps = [x["step"] for x in lines if "tokens" in x]  # training lines, not eval lines
    assert steps == [1, 2, 3, 4, 5, 6]
