"""Builtin GFT on a tiny model: advantages normalised within each group, DCR's bounded coefficient, the loss
as the module states it, parameters that move, every metric written, the SFT-like gate and resume."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from phasecheck.errors import GateError
from phasecheck.names import Metric as M
from phasecheck.results import Phase
from phasecheck.state import newest_run
from phasecheck.task import load_task
from phasecheck.training.checkpoint import load_trainer_state, read_checkpoint_meta
from phasecheck.training.gft import dcr_coefficient, demo_groups, gft_advantages, train_gft
from support import MAPPING, make_task, write_validated_set, write_verdict

pytestmark = pytest.mark.usefixtures("isolated_cache")

METRIC_KEYS = {
    M.STEP,
    M.TOTAL_STEPS,
    M.GROUPS,
    M.LOSS,
    M.ENTROPY,
    M.REWARD_MEAN,
    M.REWARD_STD,
    M.FRAC_ZERO_STD,
    M.ADVANTAGE_STD,
    M.DEMO_ADVANTAGE,
    M.CLIPPED_COEF_FRAC,
    M.ACCURACY,
    M.COMPLETION_LENGTH,
    M.TRUNCATED_FRAC,
    M.GRAD_NORM,
    M.LR,
}
# Two demonstrations and two samples per group; the demonstrations (words of MAPPING) hold no digit.
GFT = "{{group_size: 4, demos_per_group: 2, batch_prompts: 2, epochs: 1, learning_rate: 0.001{extra}}}"


class ScriptedRollout:
    """A rollout that answers every prompt with the same completions, remembering what it was asked for."""

    def __init__(self, texts):
        self.texts, self.calls, self.ns = texts, 0, []

    def __call__(self, model, tokenizer, prompts, *, n, seed, temperature, max_new_tokens):
        self.calls += 1
        self.ns.append(n)
        eos = [tokenizer.eos_token_id]
        return [
            [(t, tokenizer(t, add_special_tokens=False)["input_ids"] + eos, True) for t in self.texts] for _ in prompts
        ]


def _task(root, model_dir, extra=""):
    make_task(root, model_dir)
    with open(root / "task.yaml", "a", encoding="utf-8") as fh:
        fh.write(f"  gft: {GFT.format(extra=extra)}\n")  # under the template's `training:`
    task = load_task(root / "task.yaml")
    write_validated_set(task)  # 4 prompts, 2 demonstrations each; a GRADUATED verdict for the task
    return task


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_advantages_are_normalised_within_each_group():
    import torch

    rewards = torch.tensor([[1.0, 1.0, 0.0, 0.0], [5.0, 1.0, 1.0, 1.0], [0.3, 0.3, 0.3, 0.3]])
    adv = gft_advantages(rewards)
    assert adv[:2].mean(dim=1).tolist() == pytest.approx([0.0, 0.0], abs=1e-5)
    assert adv[:2].std(dim=1, unbiased=False).tolist() == pytest.approx([1.0, 1.0], abs=1e-3)
    assert adv[0].tolist() == pytest.approx([1.0, 1.0, -1.0, -1.0], abs=1e-3)
    assert adv[1, 0].item() == pytest.approx(3**0.5, abs=1e-3)  # scale of the other groups does not leak in
    assert torch.equal(adv[2], torch.zeros(4))  # no spread, no signal: exactly zero
    # Each group is normalised on its own: scaling one group's rewards leaves every advantage as it was.
    scaled = rewards.clone()
    scaled[1] *= 100
    assert torch.allclose(gft_advantages(scaled), adv, atol=1e-3)


@pytest.mark.parametrize("p", [1e-8, 1e-4, 0.05, 0.5, 0.7, 0.71, 0.9, 1.0])
def test_dcr_bounds_the_inverse_probability_weight(p):
    """d loss / d p = -c / p: SFT's is -1/p (1e4 on a 1e-4 token); DCR's never exceeds 1/tau."""
    import torch

    tau = 0.7
    prob = torch.tensor([p], dtype=torch.float64, requires_grad=True)
    logp = prob.log()
    coef = dcr_coefficient(logp, tau)
    (-(coef * logp).sum()).backward()
    weight = -prob.grad.item()  # the inverse-probability weight the token's gradient carries
    assert 0 < weight <= 1 / tau + 1e-9
    if p <= tau:  # rectified: the coefficient is p itself, so the weight is exactly 1
        assert coef.item() == pytest.approx(p) and weight == pytest.approx(1.0)
    else:  # above tau: plain SFT's coefficient 1, weight 1/p
        assert coef.item() == 1.0 and weight == pytest.approx(1 / p)
    sft = torch.tensor([p], dtype=torch.float64, requires_grad=True)
    (-sft.log().sum()).backward()
    assert -sft.grad.item() == pytest.approx(1 / p)  # what DCR bounds: 1e8 at p = 1e-8


def test_dcr_on_a_constructed_low_probability_token_through_the_logits():
    """A token of probability ~1e-6 in a softmax: its coefficient is its probability, and the gradient it
    sends to the logits is p times SFT's."""
    import torch

    logits = torch.tensor([[8.0, 0.0, 0.0, -6.0]], requires_grad=True)
    logp = torch.log_softmax(logits, dim=-1)[0, 3]
    assert logp.exp().item() < 1e-5
    coef = dcr_coefficient(logp, 0.7)
    assert coef.item() == pytest.approx(logp.exp().item()) and not coef.requires_grad
    (g_dcr,) = torch.autograd.grad(-(coef * logp), logits)
    (g_sft,) = torch.autograd.grad(-torch.log_softmax(logits, dim=-1)[0, 3], logits)
    assert torch.allclose(g_dcr, coef * g_sft)


def test_demonstrations_group_by_prompt():
    rows = [{"id": "a", "prompt": "p", "completion": "x"}, {"id": "b", "prompt": "q", "completion": "y"}]
    rows.append({"id": "c", "prompt": "p", "completion": "z", "reference": "r"})
    groups = demo_groups(rows)
    assert [(ex.id, cs) for ex, cs in groups] == [("a", ["x", "z"]), ("b", ["y"])]


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_two_steps_change_the_parameters_and_write_every_metric(tmp_path, tiny_model_dir, mode):
    import torch
    from transformers import AutoModelForCausalLM

    task = _task(tmp_path / "t", tiny_model_dir, extra=", full_finetune: true" if mode == "full" else "")
    rollout = ScriptedRollout(["7", "x"])  # demonstrations 0, samples 1 and 0: every group has spread
    res = train_gft(task, rollout=rollout)
    assert res.steps == 2 and res.checkpoint.name == "checkpoint-2" and rollout.ns == [2, 2]
    lines = _lines(res.metrics)
    assert [x[M.STEP] for x in lines] == [1, 2] and all(x[M.TOTAL_STEPS] == 2 for x in lines)
    assert METRIC_KEYS <= set(lines[0]), METRIC_KEYS - set(lines[0])
    first = lines[0]
    assert first[M.GROUPS] == 2 and first[M.ACCURACY] == 0.5 and first[M.FRAC_ZERO_STD] == 0.0
    assert first[M.REWARD_MEAN] == pytest.approx(0.25)  # rewards [0, 0, 1, 0] in each group
    assert first[M.DEMO_ADVANTAGE] == pytest.approx(-1 / 3**0.5, abs=1e-3)  # the wrong demos are pushed down
    assert first[M.ADVANTAGE_STD] == pytest.approx(1.0, abs=1e-3) and 0 < first[M.CLIPPED_COEF_FRAC] <= 1
    meta = read_checkpoint_meta(res.checkpoint)
    assert meta["kind"] == "gft" and meta["forced"] is False and meta["adapter"] is (mode == "lora")
    assert meta["verdict"]["kind"] == "gft" and meta["verdict"]["verdict_status"] == "GRADUATED"
    assert meta["config"]["tau"] == 0.7 and meta["config"]["max_new_tokens"] == 6  # sampling's, filled in
    assert newest_run(task, "gft")["path"] == str(res.checkpoint.resolve())
    base = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    trained = AutoModelForCausalLM.from_pretrained(res.checkpoint)  # LoRA checkpoints hold merged weights too
    changed = {n for n, p in trained.named_parameters() if not torch.equal(p, base[n])}
    if mode == "full":
        assert changed == set(base), f"unchanged after 2 steps: {set(base) - changed}"
    else:
        assert any("q_proj" in n for n in changed) and any("down_proj" in n for n in changed)


def test_the_loss_is_the_advantage_and_dcr_weighted_token_mean(tmp_path, tiny_model_dir):
    """Step 1's loss, recomputed by hand from the start model: -sum A_i c_i,t log p_i,t / tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phasecheck.sampling.base import render_prompt

    task = _task(tmp_path / "t", tiny_model_dir, extra=", full_finetune: true, batch_prompts: 1")
    res = train_gft(task, rollout=ScriptedRollout(["7", "no"]), max_steps=1)
    line = _lines(res.metrics)[0]
    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    # Every prompt of the set has the same two demonstrations' rewards (0) and the same samples, so every
    # group's advantages are those of rewards [0, 0, 1, 0]; the batch's prompt only sets the tokens.
    adv = gft_advantages(torch.tensor([[0.0, 0.0, 1.0, 0.0]]))[0]
    candidates = []
    for key, word in MAPPING.items():
        prompt = tok(render_prompt(tok, f"Say the word for {key}", None), add_special_tokens=False)["input_ids"]
        total, count = 0.0, 0
        for a, text in zip(adv.tolist(), [word, word, "7", "no"]):
            comp = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            ids = torch.tensor([prompt + comp])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0, len(prompt) - 1 : -1], -1)
            logp = logp.gather(1, torch.tensor(comp).unsqueeze(1)).squeeze(1)
            total += -(a * dcr_coefficient(logp, 0.7) * logp).sum().item()
            count += len(comp)
        candidates.append(total / count)
    assert any(c == pytest.approx(line[M.LOSS], rel=1e-4, abs=1e-6) for c in candidates), (candidates, line)


def test_gft_is_refused_in_grpo_phase_and_force_is_recorded(tmp_path, tiny_model_dir):
    task = _task(tmp_path / "t", tiny_model_dir)
    write_verdict(task, Phase.GRPO_PHASE, artifacts={"validated": "validated_set/validated.jsonl"})
    with pytest.raises(GateError, match="GFT refused: .*GRPO_PHASE, not GRADUATED"):
        train_gft(task, rollout=ScriptedRollout(["7", "x"]))
    assert newest_run(task, "gft") is None
    warnings = []
    res = train_gft(task, force=True, rollout=ScriptedRollout(["7", "x"]), max_steps=1, on_warning=warnings.append)
    assert len(warnings) == 1 and "WARNING: --force" in warnings[0] and "GFT may copy" in warnings[0]
    meta = read_checkpoint_meta(res.checkpoint)
    assert meta["forced"] is True and meta["verdict"]["forced"] is True and meta["verdict"]["kind"] == "gft"
    assert any("GRPO_PHASE" in r for r in meta["verdict"]["refusals"])


def test_cli_train_gft_is_gated_and_force_trains(tmp_path, tiny_model_dir, monkeypatch):
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    task = _task(tmp_path, tmp_path / "model", extra=", max_new_tokens: 3")
    write_verdict(task, Phase.GRPO_PHASE, artifacts={"validated": "validated_set/validated.jsonl"})
    monkeypatch.chdir(tmp_path)
    from phasecheck.cli import cli

    res = CliRunner().invoke(cli, ["train", "gft", "task.yaml"])
    assert res.exit_code == 1 and "GFT refused" in res.output, res.output
    res = CliRunner().invoke(cli, ["train", "gft", "task.yaml", "--force", "--max-steps", "1", "--out", "ck"])
    assert res.exit_code == 0, res.output
    assert "gft: 1 steps" in res.output and (tmp_path / "ck" / "checkpoint-1" / "phasecheck.json").is_file()
    res = CliRunner().invoke(cli, ["train", "gft", "task.yaml", "--backend", "trl"])
    assert res.exit_code == 2 and "no TRL backend" in res.output


def test_resume_continues_from_the_saved_step(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    task = _task(tmp_path / "t", tiny_model_dir)
    first = train_gft(task, rollout=ScriptedRollout(["7", "x"]), max_steps=1)
    assert first.checkpoint.name == "checkpoint-1" and first.steps == 1
    second = train_gft(task, rollout=ScriptedRollout(["7", "x"]), resume=first.checkpoint)
    assert second.checkpoint.name == "checkpoint-2" and second.steps == 2
    assert [x[M.STEP] for x in _lines(second.metrics)] == [1, 2]
    state = load_trainer_state(second.checkpoint)
    assert state["step"] == 2 and state["optimizer"]["state"]  # Adam moments came along
    a = load_file(first.checkpoint / "adapter" / "adapter_model.safetensors")
    b = load_file(second.checkpoint / "adapter" / "adapter_model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_demos_per_group_must_leave_room_for_samples(tmp_path, tiny_model_dir):
    from phasecheck.errors import ConfigError

    task = _task(tmp_path / "t", tiny_model_dir, extra=", demos_per_group: 4")
    with pytest.raises(ConfigError, match="demos_per_group .4. must be below group_size .4."):
        train_gft(task, rollout=ScriptedRollout(["7", "x"]))
