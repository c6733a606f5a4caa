"""The prelude and epilogue every trainer shares: step order fixed by the seed (the orders the loops used
before they shared it), a resumed policy and step, and a save that is recorded with one timestamp."""

from __future__ import annotations

import random

import pytest

from phasecheck.paths import default_out_dir, utc_now
from phasecheck.state import newest_run
from phasecheck.task import LoraSpec
from phasecheck.training import Interrupted
from phasecheck.training.checkpoint import read_checkpoint_meta
from phasecheck.training.gate import GateDecision
from phasecheck.training.run import begin_run, step_batches, steps_to_run
from support import make_task

pytestmark = pytest.mark.usefixtures("isolated_cache")


def _grpo_order_before(seed, n, size, steps):
    """GRPO's prompt order as train_grpo built it inline: epochs run on into each other."""
    order, rng = [], random.Random(seed)
    while len(order) < steps * size:
        epoch = list(range(n))
        rng.shuffle(epoch)
        order += epoch
    return [order[s * size : (s + 1) * size] for s in range(steps)]


def _sft_order_before(rng, n, size, steps):
    """SFT's batches as train_sft built them inline: each epoch cut into batches, its last maybe short."""
    batches = []
    while len(batches) < steps:
        epoch = list(range(n))
        rng.shuffle(epoch)
        batches += [epoch[i : i + size] for i in range(0, len(epoch), size)]
    return batches[:steps]


@pytest.mark.parametrize("seed,n,size,steps", [(0, 8, 3, 7), (3, 5, 5, 4), (11, 7, 2, 12), (1, 1, 4, 2)])
def test_step_batches_are_the_orders_the_loops_used(seed, n, size, steps):
    assert step_batches(random.Random(seed), n, size, steps, across_epochs=True) == _grpo_order_before(
        seed, n, size, steps
    )
    # SFT draws its held-out split from the same rng first.
    ours, theirs = random.Random(seed), random.Random(seed)
    ours.shuffle(list(range(9)))
    theirs.shuffle(list(range(9)))
    assert step_batches(ours, n, size, steps, across_epochs=False) == _sft_order_before(theirs, n, size, steps)


def test_step_batches_cover_each_epoch_once():
    within = step_batches(random.Random(5), 7, 3, 6, across_epochs=False)
    assert [len(b) for b in within] == [3, 3, 1, 3, 3, 1]
    assert sorted(sum(within[:3], [])) == list(range(7)) == sorted(sum(within[3:], []))
    across = step_batches(random.Random(5), 7, 3, 6, across_epochs=True)
    assert all(len(b) == 3 for b in across) and sorted(sum(across, [])[:7]) == list(range(7))
    with pytest.raises(ValueError):
        step_batches(random.Random(5), 0, 3, 1, across_epochs=True)


def test_steps_to_run_stops_at_the_plan_or_max_steps():
    assert steps_to_run(10, 0, None) == 10
    assert steps_to_run(10, 4, 3) == 7
    assert steps_to_run(10, 8, 5) == 10


def test_default_out_dirs_and_the_one_timestamp(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    assert default_out_dir(task, "check").as_posix() == f"reports/{task.slug}"
    assert default_out_dir(task, "grpo") == task.base_dir / "runs" / task.slug / "grpo"
    assert default_out_dir(task, "lifecycle") == task.base_dir / "runs" / task.slug / "lifecycle"
    stamp = utc_now()
    assert len(stamp) == 20 and stamp.endswith("Z") and stamp[10] == "T"


def test_a_forced_sft_run_is_saved_and_recorded_with_one_timestamp(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    gate = GateDecision("sft", True, forced=True, refusals=["no verdict"])
    run, policy = begin_run(
        task, "sft", gate, out_dir=None, config={"lr": 1}, model=str(tiny_model_dir), backend="trl", start_model="m"
    )
    assert run.out_dir == default_out_dir(task, "sft") and not policy.lora
    path = run.save(policy, 3, trl_dropped_keys=["x"])
    meta, entry = read_checkpoint_meta(path), newest_run(task, "sft")
    assert entry["path"] == str(path.resolve()) and entry["step"] == 3
    assert entry["created_at"] == meta["created_at"] and meta["created_at"].endswith("Z")
    assert entry["forced"] is True and entry["backend"] == "trl"
    assert meta["forced"] is True and meta["verdict"]["refusals"] == ["no verdict"]
    assert (meta["kind"], meta["config"], meta["start_model"], meta["trl_dropped_keys"]) == (
        "sft",
        {"lr": 1},
        "m",
        ["x"],
    )
    assert meta["fingerprint"]["model"] == policy.identity


def test_an_interrupted_run_saves_and_a_resumed_one_continues(tmp_path, tiny_model_dir):
    import torch

    task = make_task(tmp_path / "t", tiny_model_dir)
    gate = GateDecision("grpo", True)
    lora = LoraSpec(r=2, alpha=4)
    run, policy = begin_run(
        task, "grpo", gate, out_dir=tmp_path / "out", config={}, model=str(tiny_model_dir), lora=lora, seed=7
    )
    again = begin_run(
        task, "grpo", gate, out_dir=tmp_path / "out", config={}, model=str(tiny_model_dir), lora=lora, seed=7
    )[1]
    a = dict(policy.model.named_parameters())
    assert all(torch.equal(p, a[name]) for name, p in again.model.named_parameters())  # the seed fixes LoRA's start
    opt = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=0.1)
    assert run.restore(opt) == 0
    exc = run.interrupted(policy, 2, opt)
    assert isinstance(exc, KeyboardInterrupt) and exc.checkpoint.name == "checkpoint-2"
    assert read_checkpoint_meta(exc.checkpoint)["interrupted"] is True
    assert "forced" not in read_checkpoint_meta(exc.checkpoint) and newest_run(task, "grpo")["step"] == 2
    resumed, back = begin_run(
        task, "grpo", gate, out_dir=tmp_path / "out", config={}, model=None, resume=exc.checkpoint
    )
    assert back.lora and back.base_path == policy.base_path and back.identity == policy.identity
    opt2 = torch.optim.AdamW([p for p in back.model.parameters() if p.requires_grad], lr=0.1)
    assert resumed.restore(opt2) == 2
    with pytest.raises(Interrupted, match="checkpoint saved to"):
        raise exc
