"""Targeted DPO: pairs are correct-over-wrong on one prompt, finding-named wrong ones first, scenarios weighted;
the loss is the paper's; 2 builtin steps (LoRA and full) and 2 TRL steps move the weights; the CLI builds its
pairs from a check of the model and writes them with provenance."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from click.testing import CliRunner

from phasecheck.records import Example
from phasecheck.results import CheckResult, Finding, Phase, Status, Verdict
from phasecheck.state import newest_run
from phasecheck.task import DPOSpec
from phasecheck.training.checkpoint import read_checkpoint_meta
from phasecheck.training.dpo import dpo_loss, train_dpo
from phasecheck.training.dpo_pairs import Flags, PairSet, build_pairs, weighted_order
from support import make_task, write_verdict

pytestmark = pytest.mark.usefixtures("isolated_cache")


def _row(pid, index, completion, outcome, *, run=0, finish="stop"):
    correct = {"correct": True, "wrong": False, "unparsed": False, "hedged": False, "timeout": None}[outcome]
    return {
        "example_id": pid,
        "run": run,
        "index": index,
        "seed": 100 + index,
        "completion": completion,
        "finish_reason": finish,
        "correct": correct,
        "outcome": outcome,
        "reward": 1.0 if correct else 0.0,
        "model": "ident-abc",
    }


EXAMPLES = {
    "p1": Example("p1", "Tag for zone 2 supply pressure?", "SPS", scenario="forward"),
    "p2": Example("p2", "Which point is DAT?", "discharge air temperature", scenario="reverse"),
    "p3": Example("p3", "Tag for return air?", "RAT", scenario="forward"),
}


def _rows():
    return [
        _row("p1", 0, "SPS", "correct"),
        _row("p1", 1, "I am not sure", "unparsed"),
        _row("p1", 2, "SAT", "wrong"),
        _row("p1", 3, "golden_hour_sun", "wrong"),
        _row("p1", 4, "ZN-2_SPX", "wrong"),
        _row("p1", 5, "maybe", "timeout"),  # not judged: neither side
        _row("p2", 0, "discharge air temperature", "correct"),
        _row("p2", 1, "supply air temperature", "wrong"),
        _row("p2", 2, "supply air temperature", "wrong"),  # the same text twice makes one pair, not two
        _row("p3", 0, "RAT", "correct"),  # never wrong: no pair
    ]


def test_pairs_are_correct_over_wrong_on_the_same_prompt():
    spec = DPOSpec(max_pairs_per_prompt=5)
    built = build_pairs(_rows(), EXAMPLES, spec)
    by_key = {(r["example_id"], r["index"]): r for r in _rows()}
    assert built.pairs and {p["prompt_id"] for p in built.pairs} == {"p1", "p2"}
    for p in built.pairs:
        good = by_key[(p["prompt_id"], p["chosen_from"]["index"])]
        bad = by_key[(p["prompt_id"], p["rejected_from"]["index"])]
        assert good["correct"] is True and bad["correct"] is False
        assert (p["chosen"], p["rejected"]) == (good["completion"], bad["completion"])
    assert Counter(p["prompt_id"] for p in built.pairs) == {"p1": 4, "p2": 1}
    assert built.counts == {"prompts": 3, "with_pairs": 2, "no_correct": 0, "no_wrong": 1}
    # Without findings a fluent wrong answer (parsed, wrong) comes before one with no answer in it.
    p1 = [p for p in built.pairs if p["prompt_id"] == "p1"]
    assert p1[-1]["rejected"] == "I am not sure" and p1[0]["why_rejected"] == "fluent: parsed but wrong"
    assert len(build_pairs(_rows(), EXAMPLES, DPOSpec(max_pairs_per_prompt=1)).pairs) == 2


def test_wrong_ones_a_finding_names_are_rejected_first():
    finding = Finding(
        message="ZN-2_SPX in 40% of samples, tied to wrong answers",
        example_ids=["p1"],
        data={"token": "golden_hour_sun", "samples": ["p1 (run 0, #4)"]},
    )
    check = CheckResult(id="contamination", question="?", status=Status.FAIL, headline="h", findings=[finding])
    flags = Flags.from_verdict(Verdict.model_construct(checks=[check]))
    assert flags.tokens == ("golden_hour_sun",) and flags.samples == {("p1", 0, 4)}
    pairs = [p for p in build_pairs(_rows(), EXAMPLES, DPOSpec(max_pairs_per_prompt=4), flags).pairs]
    p1 = [(p["rejected"], p["why_rejected"]) for p in pairs if p["prompt_id"] == "p1"]
    assert p1 == [
        ("ZN-2_SPX", "named by a finding"),
        ("golden_hour_sun", "contains flagged token 'golden_hour_sun'"),
        ("SAT", "fluent: parsed but wrong"),
        ("I am not sure", "no answer parsed"),
    ]
    top = build_pairs(_rows(), EXAMPLES, DPOSpec(max_pairs_per_prompt=1), flags).pairs
    assert [p["rejected"] for p in top if p["prompt_id"] == "p1"] == ["ZN-2_SPX"]


def test_scenario_weights_oversample_the_failing_subclass():
    spec = DPOSpec(max_pairs_per_prompt=5, scenario_weights={"reverse": 3, "forward": 1})
    pairs = build_pairs(_rows(), EXAMPLES, spec).pairs
    assert {p["scenario"]: p["weight"] for p in pairs} == {"forward": 1, "reverse": 3}
    epoch = Counter(pairs[i]["scenario"] for i in weighted_order(pairs))
    assert epoch == {"forward": 4, "reverse": 3}  # 4 forward pairs once, 1 reverse pair three times
    dropped = build_pairs(_rows(), EXAMPLES, DPOSpec(scenario_weights={"reverse": 0})).pairs
    assert all(dropped[i]["scenario"] == "forward" for i in weighted_order(dropped))
    with pytest.raises(ValueError):
        DPOSpec(scenario_weights={"reverse": -1})


def test_loss_is_the_sigmoid_dpo_loss_by_hand():
    import torch

    pw, pl = torch.tensor([-3.0, -10.0]), torch.tensor([-5.0, -4.0])
    rw, rl = torch.tensor([-4.0, -9.0]), torch.tensor([-4.5, -6.0])
    loss, chosen, rejected = dpo_loss(pw, pl, rw, rl, beta=0.5)
    # pair 1: 0.5 * ((-3 + 4) - (-5 + 4.5)) = 0.75; pair 2: 0.5 * ((-10 + 9) - (-4 + 6)) = -1.5
    by_hand = (-math.log(1 / (1 + math.exp(-0.75))) - math.log(1 / (1 + math.exp(1.5)))) / 2
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    assert chosen.tolist() == pytest.approx([0.5, -0.5]) and rejected.tolist() == pytest.approx([-0.25, 1.0])


def _toy_pairs(task, spec):
    """Pairs on the digit task's prompts: a digit answer over a wordy one."""
    rows = []
    examples = {}
    for i in range(4):
        pid = f"q{i}"
        examples[pid] = Example(pid, f"What is {i} + {i} ?", str(2 * i), scenario="reverse" if i == 0 else "forward")
        rows += [_row(pid, 0, f"The answer is {2 * i}", "correct"), _row(pid, 1, "I do not know", "wrong")]
    return build_pairs(rows, examples, spec)


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_two_builtin_steps_change_the_trainable_parameters_and_write_metrics(tmp_path, tiny_model_dir, mode):
    import torch
    from transformers import AutoModelForCausalLM

    task = make_task(tmp_path / "t", tiny_model_dir)
    overrides = {"learning_rate": 0.01, "batch_pairs": 2, "full_finetune": mode == "full"}
    pairs = _toy_pairs(task, task.training.dpo.model_copy(update=overrides))
    res = train_dpo(task, pairs=pairs, max_steps=2, **overrides)
    lines = [json.loads(x) for x in res.metrics.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2] and lines[0]["total_steps"] == 2
    keys = {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "pairs"}
    assert keys <= set(lines[0])
    # Step 1: the policy is its reference, so every reward is 0 and the loss log 2.
    assert lines[0]["loss"] == pytest.approx(math.log(2), abs=1e-5) and lines[0]["rewards/margins"] == 0
    assert lines[1]["rewards/margins"] != 0
    meta = read_checkpoint_meta(res.checkpoint)
    assert meta["kind"] == "dpo" and meta["step"] == 2 and meta["adapter"] is (mode == "lora")
    assert newest_run(task, "dpo")["path"] == str(res.checkpoint.resolve())
    base = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    trained = AutoModelForCausalLM.from_pretrained(res.checkpoint)  # LoRA: saved merged
    changed = [n for n, p in trained.named_parameters() if not torch.equal(p, base[n])]
    if mode == "lora":
        assert any("q_proj" in n for n in changed) and not any("embed" in n for n in changed)
    else:
        assert len(changed) == len(base), "every weight moves in full fine-tuning"


def test_trl_backend_runs_two_steps_on_the_same_pairs(tmp_path, tiny_model_dir):
    pytest.importorskip("trl")
    from phasecheck.training.trl_dpo import train_dpo_trl, trl_dpo_config

    task = make_task(tmp_path / "t", tiny_model_dir)
    spec = task.training.dpo.model_copy(update={"learning_rate": 0.01, "batch_pairs": 2, "beta": 0.2})
    config, dropped = trl_dpo_config(spec, tmp_path / "cfg")
    assert config.beta == 0.2 and config.lr_scheduler_type == "constant" and config.gradient_checkpointing is False
    assert isinstance(dropped, list)
    res = train_dpo_trl(task, pairs=_toy_pairs(task, spec), max_steps=2, learning_rate=0.01, batch_pairs=2)
    assert res.steps == 2
    lines = [json.loads(x) for x in res.metrics.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert {"loss", "rewards/chosen", "rewards/margins", "rewards/accuracies"} <= set(lines[0])
    meta = read_checkpoint_meta(res.checkpoint)
    assert meta["backend"] == "trl" and meta["kind"] == "dpo" and meta["adapter"] is True
    assert (res.checkpoint.parent / "pairs.jsonl").is_file()


def test_train_dpo_builds_pairs_from_a_check_of_the_model_and_writes_provenance(tmp_path, tiny_model_dir):
    from phasecheck.cli import cli
    from phasecheck.training.gate import check_gate

    task = make_task(tmp_path / "t", tiny_model_dir)
    text = (task.source.read_text()).replace("runs: 1, n: 2", "runs: 2, n: 4")
    task.source.write_text(text + "  dpo: {batch_pairs: 2}\n")
    write_verdict(task, Phase.GRPO_PHASE)
    assert check_gate(task, "dpo").allowed  # on any verdict, as GRPO
    runner = CliRunner()
    refused = runner.invoke(cli, ["train", "dpo", str(task.source), "--force"])
    assert refused.exit_code == 2 and "always allowed" in refused.output
    result = runner.invoke(cli, ["train", "dpo", str(task.source), "--max-steps", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "dpo: 2 steps" in result.output and "Next: phasecheck check --after-grpo --model" in result.output
    run_dir = task.base_dir / "runs" / task.slug / "dpo"
    pairs = [json.loads(x) for x in (run_dir / "pairs.jsonl").read_text().splitlines()]
    assert pairs
    samples = {
        (r["example_id"], r["run"], r["index"]): r
        for r in map(json.loads, (run_dir / "check" / "samples.jsonl").read_text().splitlines())
    }
    for p in pairs:
        good = samples[(p["prompt_id"], p["chosen_from"]["run"], p["chosen_from"]["index"])]
        bad = samples[(p["prompt_id"], p["rejected_from"]["run"], p["rejected_from"]["index"])]
        assert good["correct"] is True and bad["correct"] is False and good["completion"] == p["chosen"]
        assert p["chosen_from"]["seed"] == good["seed"] and p["model"] == good["model"] and p["model"]
        assert p["why_rejected"] and p["weight"] == 1 and p["samples"].endswith("samples.jsonl")
    meta = read_checkpoint_meta(run_dir / "checkpoint-2")
    assert meta["start_model"] == str(tiny_model_dir) and meta["pair_counts"]["with_pairs"] >= 1


def test_pairs_set_round_trips(tmp_path):
    from phasecheck.training.dpo_pairs import read_pairs

    built = build_pairs(_rows(), EXAMPLES, DPOSpec())
    assert read_pairs(PairSet(built.pairs).write(tmp_path / "pairs.jsonl")) == built.pairs


def test_resume_continues_on_the_same_pairs(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    overrides = {"learning_rate": 0.01, "batch_pairs": 2}
    first = train_dpo(task, pairs=_toy_pairs(task, task.training.dpo), max_steps=1, **overrides)
    written = first.pairs.read_text()
    # No pairs given and no check to build them from: the resumed run reads its own pairs.jsonl.
    res = train_dpo(task, resume=first.checkpoint, max_steps=1, **overrides)
    assert res.steps == 2 and res.pairs.read_text() == written
    lines = [json.loads(x) for x in res.metrics.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2] and lines[1]["rewards/margins"] != 0
