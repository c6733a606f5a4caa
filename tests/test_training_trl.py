"""--backend trl: GRPOTrainer and SFTTrainer built from the task config, 2 steps on the tiny model."""

from __future__ import annotations

import json

import pytest

from phasecheck.results import Phase
from phasecheck.state import newest_run
from phasecheck.training.checkpoint import read_checkpoint_meta
from support import make_task, write_validated_set, write_verdict

pytestmark = pytest.mark.usefixtures("isolated_cache")

pytest.importorskip("trl")


def test_grpo_config_writes_out_the_defaults_we_rely_on(tmp_path, tiny_model_dir):
    from phasecheck.training.trl_backend import trl_grpo_config

    task = make_task(tmp_path / "t", tiny_model_dir)
    config, dropped, cfg = trl_grpo_config(task, tmp_path / "out")
    assert config.beta == 0.2 == cfg.beta  # TRL's own default is 0.0 (was 0.04)
    assert config.loss_type == "dapo" and config.vllm_mode == "colocate" and config.use_vllm is False
    assert config.num_generations == 4 and config.per_device_train_batch_size == 32
    assert config.learning_rate == 5e-7 and config.num_train_epochs == 0.25
    assert config.gradient_checkpointing is False and config.scale_rewards == "group"
    assert isinstance(dropped, list)


def test_accepted_kwargs_drops_what_the_installed_version_lacks():
    from trl import GRPOConfig

    from phasecheck.training.trl_backend import accepted_kwargs

    ok, dropped = accepted_kwargs(GRPOConfig, {"beta": 0.1, "no_such_option_in_any_trl": 1})
    assert ok == {"beta": 0.1} and dropped == ["no_such_option_in_any_trl"]


def test_trl_grpo_two_steps_with_the_task_reward(tmp_path, tiny_model_dir):
    from phasecheck.training.trl_backend import train_grpo_trl

    task = make_task(
        tmp_path / "t", tiny_model_dir, grpo="{learning_rate: 0.01, batch_prompts: 4, group_size: 4, epochs: 1}"
    )
    res = train_grpo_trl(task, max_steps=2)
    assert res.steps == 2
    lines = [json.loads(x) for x in res.metrics.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert {"reward_mean", "reward_std", "frac_zero_std", "kl", "entropy", "completion_length"} <= set(lines[0])
    meta = read_checkpoint_meta(res.checkpoint)
    assert meta["backend"] == "trl" and meta["adapter"] is True and meta["step"] == 2
    assert newest_run(task, "grpo")["backend"] == "trl"


def test_trl_sft_is_gated_and_trains(tmp_path, tiny_model_dir):
    from phasecheck.errors import GateError
    from phasecheck.training.trl_backend import train_sft_trl

    task = make_task(tmp_path / "t", tiny_model_dir, sft="{epochs: 1, batch_size: 4, learning_rate: 0.001}")
    write_verdict(task, Phase.GRPO_PHASE)
    with pytest.raises(GateError):
        train_sft_trl(task)
    write_validated_set(task)  # a GRADUATED verdict listing the validated set
    path = train_sft_trl(task, max_steps=2)
    meta = read_checkpoint_meta(path)
    assert meta["kind"] == "sft" and meta["step"] == 2 and meta["forced"] is False
    assert any("loss" in json.loads(x) for x in (path.parent / "metrics.jsonl").read_text().splitlines())
