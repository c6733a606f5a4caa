"""`phasecheck train` and `phasecheck lifecycle` through click, on the tiny model and the real check engine."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from phasecheck.cli import cli

TASK = """\
name: lc
model: model
data: {{eval: eval.jsonl, train: train.jsonl}}
grader:
  verifier: {{kind: regex, pattern: "[0-9]", mode: search}}
sampling: {{max_new_tokens: 4, runs: 2, n: 2, temperature: 1.0}}
checks:
  validated_set: {{min_examples: 2, min_pass_rate: 0.5}}
  contamination: {{max_rate: {max_rate}}}
  base_model: {{min_accuracy: {min_accuracy}}}
  stability: {{min_agreement: 0.0, min_accuracy: 0.0}}
training:
  grpo: {{epochs: 1, batch_prompts: 4, group_size: 2, learning_rate: 0.001}}
  sft: {{epochs: 2, batch_size: 4}}
"""


@pytest.fixture
def workdir(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    rows = [{"id": c, "prompt": f"What is {i} + {i} ?", "reference": str(2 * i)} for i, c in enumerate("abcd", 1)]
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(dict(r, completion=r["reference"])) + "\n" for r in rows))

    def write(min_accuracy: float, max_rate: float = 0.05):
        (tmp_path / "task.yaml").write_text(TASK.format(min_accuracy=min_accuracy, max_rate=max_rate))

    write(0.99)
    return tmp_path, write


def test_train_sft_without_a_verdict_exits_1(workdir):
    res = CliRunner().invoke(cli, ["train", "sft", "task.yaml"])
    assert res.exit_code == 1, res.output
    assert "SFT refused: no verdict recorded" in res.output


def test_train_grpo_writes_a_checkpoint(workdir):
    root, _ = workdir
    res = CliRunner().invoke(cli, ["train", "grpo", "--task", "task.yaml", "--out", "ck", "--max-steps", "1"])
    assert res.exit_code == 0, res.output
    assert "checkpoint" in res.output and (root / "ck" / "checkpoint-1" / "phasecheck.json").is_file()
    assert len((root / "ck" / "metrics.jsonl").read_text().splitlines()) == 1


def test_force_is_rejected_for_grpo(workdir):
    res = CliRunner().invoke(cli, ["train", "grpo", "task.yaml", "--force"])
    assert res.exit_code == 2 and "GRPO is always allowed" in res.output


def test_lifecycle_stops_when_grpo_has_not_graduated_the_domain(workdir):
    root, _ = workdir
    res = CliRunner().invoke(cli, ["lifecycle", "task.yaml", "--out", "lc"])
    assert res.exit_code == 1, res.output
    assert "still GRPO PHASE after GRPO" in res.output and "SFT was not run" in res.output
    summary = json.loads((root / "lc" / "lifecycle.json").read_text())
    assert [s["step"] for s in summary["steps"]] == ["check", "grpo", "check_after_grpo"]
    assert summary["steps"][0]["status"] == "GRPO_PHASE"
    # The check after GRPO keeps the run's metrics beside its verdict, for the report's curves.
    after = next(root.glob("lc/**/training_metrics.jsonl"))
    verdict = json.loads((after.parent / "verdict.json").read_text())
    assert verdict["artifacts"]["training_metrics"] == "training_metrics.jsonl"
    assert [json.loads(x)["step"] for x in after.read_text().splitlines()] == list(
        range(1, len(after.read_text().splitlines()) + 1)
    )


def test_lifecycle_graduated_runs_sft_and_a_final_check(workdir):
    root, write = workdir
    write(0.0, max_rate=1.0)  # random-model samples carry random tokens: let every check pass
    res = CliRunner().invoke(cli, ["lifecycle", "task.yaml", "--out", "lc"])
    assert res.exit_code == 0, res.output
    summary = json.loads((root / "lc" / "lifecycle.json").read_text())
    assert [s["step"] for s in summary["steps"]] == ["check", "sft", "final_check"]
    assert summary["outcome"].startswith("done: SFT checkpoint")
    # After the lifecycle the gate still lets SFT run: the newest verdict is GRADUATED for the SFT model.
    assert json.loads((root / "lc" / "sft" / "checkpoint-2" / "phasecheck.json").read_text())["forced"] is False


def test_lifecycle_can_crystallise_with_gft_and_end_with_a_dpo_pass(workdir):
    """--crystallise gft runs GFT where SFT would run; --dpo then pairs the GFT model's residual failures
    (or, with none to pair, says so and judges the GFT model), before the final check."""
    root, write = workdir
    write(0.0, max_rate=1.0)
    with open(root / "task.yaml", "a") as fh:
        fh.write("  gft: {group_size: 2, demos_per_group: 1, epochs: 1, batch_prompts: 4}\n")
        fh.write("  dpo: {epochs: 1, batch_pairs: 2}\n")
    res = CliRunner().invoke(cli, ["lifecycle", "task.yaml", "--out", "lc", "--crystallise", "gft", "--dpo"])
    assert res.exit_code == 0, res.output
    summary = json.loads((root / "lc" / "lifecycle.json").read_text())
    assert [s["step"] for s in summary["steps"]] == ["check", "gft", "dpo", "final_check"]
    gft, dpo = summary["steps"][1], summary["steps"][2]
    meta = json.loads((root / gft["checkpoint"] / "phasecheck.json").read_text())
    assert "gft" in gft["checkpoint"] and meta["forced"] is False
    if "skipped" in dpo:  # the tiny model may solve every prompt, or none, in every sample
        assert dpo["checkpoint"] == gft["checkpoint"] and "no prompt has both" in dpo["skipped"]
    else:
        assert "dpo" in dpo["checkpoint"] and (root / "lc" / "dpo" / "pairs.jsonl").is_file()
    assert summary["outcome"].startswith("done: DPO checkpoint")


def test_lifecycle_refuses_gft_on_the_trl_backend(workdir):
    res = CliRunner().invoke(cli, ["lifecycle", "task.yaml", "--crystallise", "gft", "--backend", "trl"])
    assert res.exit_code == 2 and "no TRL backend" in res.output


def test_lifecycle_dpo_pass_with_nothing_to_pair_keeps_the_crystallised_model(tmp_path, monkeypatch):
    from phasecheck.training import dpo, lifecycle

    def no_pairs(task, **kw):
        raise dpo.NoPairs("samples.jsonl: no prompt has both a correct and a wrong graded sample")

    monkeypatch.setattr(dpo, "train_dpo", no_pairs)
    entry = lifecycle._dpo(None, "builtin", tmp_path / "dpo", "runs/sft/checkpoint-3")
    assert entry["checkpoint"] == "runs/sft/checkpoint-3" and "no prompt has both" in entry["skipped"]
