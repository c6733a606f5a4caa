"""Builtin GRPO on a tiny model: parameters move, metrics are written, reward bands reach the
advantages, presets resolve field by field, fractional epochs, resume and Ctrl-C."""

from __future__ import annotations

import json

import pytest

from phasecheck.state import newest_run
from phasecheck.training.checkpoint import load_trainer_state, read_checkpoint_meta
from phasecheck.training.grpo import group_advantages, plan_steps, resolve_grpo, train_grpo
from support import make_task

pytestmark = pytest.mark.usefixtures("isolated_cache")

METRIC_KEYS = {
    "reward_mean",
    "reward_std",
    "frac_zero_std",
    "kl",
    "entropy",
    "completion_length",
    "accuracy",
    "loss",
    "grad_norm",
    "step",
    "advantage_min",
    "advantage_max",
    "frac_zero_std_ci",
    "groups",
}


class ScriptedRollout:
    """A rollout that answers every prompt with the same G completions (a replayed policy)."""

    def __init__(self, texts, interrupt_on_call=None):
        self.texts, self.calls, self.interrupt_on_call = texts, 0, interrupt_on_call

    def __call__(self, model, tokenizer, prompts, *, n, seed, temperature, max_new_tokens):
        self.calls += 1
        if self.calls == self.interrupt_on_call:
            raise KeyboardInterrupt
        assert n == len(self.texts)
        return [
            [
                (t, tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id], True)
                for t in self.texts
            ]
            for _ in prompts
        ]


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_two_steps_change_every_trainable_parameter_and_write_metrics(tmp_path, tiny_model_dir, mode):
    import torch

    grpo = (
        "{preset: conservative, learning_rate: 0.001, epochs: 1, batch_prompts: 4, group_size: 4}"
        if mode == "lora"
        else "{preset: none, learning_rate: 0.001, epochs: 1, batch_prompts: 4, group_size: 4, beta: 0.1}"
    )
    task = make_task(tmp_path / "t", tiny_model_dir, grpo=grpo)
    captured = {}

    def snapshot(line):
        captured.setdefault("lines", []).append(line)

    rollout = ScriptedRollout(["7", "x", "42", "no"])  # half correct: every group has signal
    res = train_grpo(task, rollout=rollout, on_step=snapshot)
    assert res.steps == 2 and res.checkpoint.name == "checkpoint-2"
    lines = _lines(res.metrics)
    assert [x["step"] for x in lines] == [1, 2]
    assert METRIC_KEYS <= set(lines[0])
    assert lines[0]["accuracy"] == pytest.approx(0.5) and lines[0]["frac_zero_std"] == 0.0
    meta = read_checkpoint_meta(res.checkpoint)
    assert meta["kind"] == "grpo" and meta["step"] == 2 and meta["adapter"] is (mode == "lora")
    assert meta["fingerprint"]["digest"] and meta["config"]["group_size"] == 4
    assert newest_run(task, "grpo")["path"] == str(res.checkpoint.resolve())
    # `check --after-grpo` finds this checkpoint and can fingerprint it as a plain model directory.
    from phasecheck.runner import resolve_after_grpo
    from phasecheck.sampling import model_identity_for

    after_task, after = resolve_after_grpo(task, None)
    assert after == {"path": str(res.checkpoint.resolve()), "step": 2}
    assert model_identity_for(after_task) != model_identity_for(task)
    _report_draws_every_curve(res.checkpoint, tmp_path / "report")

    # Every trained tensor moved away from the start model.
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    if mode == "lora":
        from peft import PeftModel

        trained = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(tiny_model_dir), res.checkpoint / "adapter"
        )
        lora = {n: p for n, p in trained.named_parameters() if "lora_" in n}
        assert lora and all(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)
        merged = AutoModelForCausalLM.from_pretrained(res.checkpoint)
        changed = [n for n, p in merged.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])]
        assert any("q_proj" in n for n in changed)
    else:
        trained = AutoModelForCausalLM.from_pretrained(res.checkpoint)
        before = dict(base.named_parameters())
        same = [n for n, p in trained.named_parameters() if torch.equal(p, before[n])]
        assert not same, f"unchanged after 2 steps: {same}"


def test_reward_bands_reach_the_advantages(tmp_path, tiny_model_dir):
    out = {}
    for bands in ((1.0, 0.0), (2.0, -1.0)):
        task = make_task(
            tmp_path / f"b{bands[0]}",
            tiny_model_dir,
            correct=bands[0],
            wrong=bands[1],
            grpo="{epochs: 1, batch_prompts: 8, group_size: 4, advantage_scale: none}",
        )
        res = train_grpo(task, rollout=ScriptedRollout(["3", "a", "3", "a"]))
        out[bands] = _lines(res.metrics)[0]
    low, high = out[(1.0, 0.0)], out[(2.0, -1.0)]
    assert low["reward_mean"] == pytest.approx(0.5) and high["reward_mean"] == pytest.approx(0.5)
    # Unscaled advantages are reward - group mean: the band width shows through directly.
    assert (low["advantage_min"], low["advantage_max"]) == pytest.approx((-0.5, 0.5))
    assert (high["advantage_min"], high["advantage_max"]) == pytest.approx((-1.5, 1.5))


def test_group_advantages_scales():
    import torch

    r = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    g = group_advantages(r, "group")
    assert g[0].tolist() == pytest.approx([1.0, -1.0, 1.0, -1.0], abs=1e-3)
    assert g[1].abs().sum() == 0  # a zero-variance group carries no signal
    assert group_advantages(r, "none")[0].tolist() == pytest.approx([0.5, -0.5, 0.5, -0.5])
    b = group_advantages(r, "batch")
    assert b[0, 0].item() == pytest.approx(0.5 / (r.std(unbiased=False).item() + 1e-4))


def test_conservative_preset_is_overridable_field_by_field(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "p", tiny_model_dir, grpo="{beta: 0.05, lora: {r: 8, alpha: 16}}")
    cfg = resolve_grpo(task)
    assert (cfg.group_size, cfg.learning_rate, cfg.epochs) == (4, 5e-7, 0.25)
    assert cfg.beta == 0.05 and (cfg.lora.r, cfg.lora.alpha) == (8, 16)
    plain = resolve_grpo(make_task(tmp_path / "q", tiny_model_dir))
    assert (plain.lora.r, plain.lora.alpha, plain.beta) == (4, 8, 0.2)
    assert resolve_grpo(make_task(tmp_path / "r", tiny_model_dir, grpo="{full_finetune: true}")).lora is None


def test_quarter_epoch_trains(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "e", tiny_model_dir, n_prompts=8, grpo="{epochs: 0.25, batch_prompts: 1}")
    assert plan_steps(resolve_grpo(task), 8) == 2
    res = train_grpo(task, rollout=ScriptedRollout(["1", "z", "1", "z"]))
    assert res.steps == 2 and len(_lines(res.metrics)) == 2


def test_resume_continues_from_the_saved_step(tmp_path, tiny_model_dir):
    import torch

    task = make_task(
        tmp_path / "r", tiny_model_dir, grpo="{learning_rate: 0.001, epochs: 1, batch_prompts: 2, group_size: 4}"
    )
    first = train_grpo(task, rollout=ScriptedRollout(["5", "q", "5", "q"]), max_steps=1)
    assert first.checkpoint.name == "checkpoint-1"
    second = train_grpo(task, rollout=ScriptedRollout(["5", "q", "5", "q"]), resume=first.checkpoint, max_steps=1)
    assert second.checkpoint.name == "checkpoint-2"
    assert [x["step"] for x in _lines(second.metrics)] == [1, 2]
    state = load_trainer_state(second.checkpoint)
    assert state["step"] == 2 and state["optimizer"]["state"]  # Adam moments came along
    from safetensors.torch import load_file

    a = load_file(first.checkpoint / "adapter" / "adapter_model.safetensors")
    b = load_file(second.checkpoint / "adapter" / "adapter_model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_saves_a_checkpoint_before_exiting(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "c", tiny_model_dir, grpo="{epochs: 1, batch_prompts: 2, group_size: 2}")
    with pytest.raises(KeyboardInterrupt) as info:
        train_grpo(task, rollout=ScriptedRollout(["1", "b"], interrupt_on_call=2))
    ckpt = info.value.checkpoint
    assert ckpt.name == "checkpoint-1"
    assert read_checkpoint_meta(ckpt)["interrupted"] is True
    assert newest_run(task, "grpo")["step"] == 1


def test_default_rollout_samples_the_live_policy(tmp_path, tiny_model_dir):
    """The hf sampling engine generates the rollouts; the grader (regex verifier) scores them."""
    task = make_task(tmp_path / "h", tiny_model_dir, grpo="{epochs: 1, batch_prompts: 4, group_size: 2}")
    res = train_grpo(task, max_steps=1)
    line = _lines(res.metrics)[0]
    assert 0 < line["completion_length"] <= 7 and 0.0 <= line["accuracy"] <= 1.0


def _report_draws_every_curve(checkpoint, out_dir):
    """Every curve the HTML report draws is a metric this loop writes, and `check --after-grpo` carries the
    run's metrics beside its verdict, so the report finds them in the out dir alone."""
    from phasecheck.jsonl import write_jsonl
    from phasecheck.names import CURVES, Artifact
    from phasecheck.reports.html import HtmlReporter
    from phasecheck.results import Fingerprint, Phase, Verdict
    from phasecheck.runner import training_metrics

    rows = training_metrics(checkpoint, 2)
    assert [r["step"] for r in rows] == [1, 2]
    assert {key for key, _, _ in CURVES} <= set(rows[0])
    write_jsonl(out_dir / "training_metrics.jsonl", rows)
    verdict = Verdict(
        task="t",
        status=Phase.GRPO_PHASE,
        action="",
        checks=[],
        fingerprint=Fingerprint(task="t", sampling="s", version="0", digest="d"),
        created_at="2020-01-01T00:00:00Z",
        artifacts={Artifact.TRAINING_METRICS: "training_metrics.jsonl"},
    )
    charts = HtmlReporter._curves(verdict, out_dir)
    assert len(charts) == len(CURVES)
    assert all(title.split(" (")[0] in str(chart) for chart, (_, title, _) in zip(charts, CURVES))


class PromptSpy(ScriptedRollout):
    """ScriptedRollout that remembers which prompts it was asked for."""

    def __init__(self, texts):
        super().__init__(texts)
        self.prompts: list[str] = []

    def __call__(self, model, tokenizer, prompts, **kw):
        self.prompts += list(prompts)
        return super().__call__(model, tokenizer, prompts, **kw)


def _table_verdict(task, classes: dict[str, str], group_size: int = 4):
    """A recorded verdict for the task's current fingerprint whose per-prompt table gives these classes."""
    from phasecheck.results import Phase
    from support import write_verdict

    rows = [
        {
            "id": i,
            "scenario": None,
            "samples": 8,
            "correct": 4,
            "pass_rate": 0.5,
            "pass_rate_ci": [0.2, 0.8],
            "reward_mean": 0.5,
            "reward_std": 0.5,
            "group_size": group_size,
            "zero_variance": {"learnable": 0.1, "never_solved": 1.0, "always_solved": 1.0}[c],
            "zero_variance_exact": True,
            "class": c,
        }
        for i, c in classes.items()
    ]
    out = task.base_dir / "reports"
    out.mkdir(parents=True, exist_ok=True)
    (out / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return write_verdict(task, Phase.GRPO_PHASE, model_identity="m", artifacts={"prompts": "prompts.jsonl"}, out=out)


def test_learnable_prompts_only_with_the_tables_prediction(tmp_path, tiny_model_dir):
    grpo = (
        "{preset: conservative, learning_rate: 0.001, epochs: 1, batch_prompts: 2, group_size: 4, prompts: learnable}"
    )
    task = make_task(tmp_path / "t", tiny_model_dir, n_prompts=8, grpo=grpo)
    classes = {
        f"q{i}": "learnable" if i in (1, 4, 6) else "never_solved" if i % 2 else "always_solved" for i in range(8)
    }
    _table_verdict(task, classes)
    lines = []
    rollout = PromptSpy(["7", "x", "42", "no"])
    res = train_grpo(task, rollout=rollout, on_step=lines.append)
    asked = {q for q in (f"What is {i} + {i} ?" for i in range(8)) if any(q in p for p in rollout.prompts)}
    assert asked == {"What is 1 + 1 ?", "What is 4 + 4 ?", "What is 6 + 6 ?"}
    assert res.steps == 2  # one epoch over 3 prompts in batches of 2
    first = lines[0]
    assert (first["prompts"], first["prompts_trained"], first["prompts_total"]) == ("learnable", 3, 8)
    assert first["predicted_zero_std"] == pytest.approx(0.1) and first["predicted_exact"] is True
    lo, hi = first["predicted_zero_std_ci"]
    assert lo <= 0.1 <= hi
    # The run says what it met (half-right groups: no zero-variance group) beside what was predicted.
    assert res.zero_std["met"] == 0.0 and res.zero_std["prompts_trained"] == 3
    assert res.zero_std["predicted_zero_std"] == pytest.approx(0.1)


def test_learnable_prompts_refuse_without_a_table_or_when_stale_or_empty(tmp_path, tiny_model_dir):
    from phasecheck.errors import ConfigError

    grpo = "{preset: conservative, batch_prompts: 2, group_size: 4, prompts: learnable}"
    task = make_task(tmp_path / "t", tiny_model_dir, n_prompts=4, grpo=grpo)
    with pytest.raises(ConfigError, match="run `phasecheck check` first"):
        train_grpo(task, rollout=ScriptedRollout(["7", "x", "42", "no"]))
    _table_verdict(task, {f"q{i}": "always_solved" for i in range(4)})
    with pytest.raises(ConfigError, match="no prompt is learnable"):
        train_grpo(task, rollout=ScriptedRollout(["7", "x", "42", "no"]))
    _table_verdict(task, {f"q{i}": "learnable" for i in range(4)})
    (task.base_dir / "eval.jsonl").write_text('{"id": "q0", "prompt": "What is 9 + 9 ?"}\n')  # data changed since
    with pytest.raises(ConfigError, match=r"stale \(data.eval changed\)"):
        train_grpo(task, rollout=ScriptedRollout(["7", "x", "42", "no"]))
