"""`phasecheck plan`: the learnable prompts in the eval file's format, the zero-variance figures, and one test
per framework export (TRL by its real GRPOConfig, the others by schemas written from their source)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
from collections import Counter
from pathlib import Path
from typing import Literal

import pytest
import tomllib
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict, Field, model_validator

from phasecheck.cli import cli
from phasecheck.results import Phase, band
from phasecheck.runner import CheckOptions, check_task
from phasecheck.stats import clustered_mean
from phasecheck.task import load_task
from support import TASK_YAML, write_project, write_verdict

# Per prompt i (2 runs x 2 samples): i % 4 == 0 always right, 1 never, 2 once in 4, 3 twice in 4.
PASS = {0: 1.0, 1: 0.0, 2: 0.25, 3: 0.5}
YAML = TASK_YAML + "training:\n  grpo: {group_size: 2}\n"


def _accuracy(i, r, j):
    return {0: True, 1: False, 2: r == 0 and j == 0, 3: j == 0}[i % 4]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _checked(root: Path, fmt: str = "jsonl") -> Path:
    """A project whose eval file is in `fmt`, checked (verdict recorded); returns the task file."""
    task_file = write_project(root, accuracy_fn=_accuracy, task_yaml=YAML)
    rows = [json.loads(line) for line in (root / "eval.jsonl").read_text().splitlines()]
    if fmt == "csv":
        with open(root / "eval.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), root / "eval.parquet")
    task_file.write_text(YAML.replace("eval: eval.jsonl", f"eval: eval.{fmt}"))
    check_task(load_task(task_file), CheckOptions(out_dir=root / "out"))
    return task_file


def invoke(*args):
    return CliRunner().invoke(cli, ["plan", *map(str, args)], catch_exceptions=False)


def _read(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_keeps_exactly_the_learnable_prompts_in_the_input_format(project, fmt):
    res = invoke("--task", _checked(project, fmt))
    assert res.exit_code == 0, res.output
    rows = _read(project / "out" / "plan" / f"grpo_prompts.{fmt}")
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(20) if i % 4 in (2, 3)]
    assert list(rows[0]) == ["id", "prompt", "reference", "scenario", "pass_rate"]
    assert [float(r["pass_rate"]) for r in rows[:2]] == [0.25, 0.5]
    assert rows[0]["prompt"] == "Double the number 2." and rows[0]["scenario"] == "even"
    assert "kept 10 (0 < p < 1" in res.output and "5 never solved, 10 learnable, 5 always solved" in res.output


def test_zero_variance_and_generation_batches_match_a_hand_computation(project):
    res = invoke("--task", _checked(project))
    assert res.exit_code == 0
    plan = json.loads((project / "out" / "plan" / "plan.json").read_text())
    # G = 2 from 4 samples: all equal -> 1; one right of 4 -> (C(1,2) + C(3,2)) / C(4,2) = 1/2; two -> 2/6.
    zero = {0: 1.0, 1: 1.0, 2: 0.5, 3: 1 / 3}
    before = [zero[i % 4] for i in range(20)]
    after = [zero[i % 4] for i in range(20) if i % 4 in (2, 3)]
    assert plan["classes"] == {"never_solved": 5, "learnable": 10, "always_solved": 5}
    figure = plan["zero_variance"]
    assert figure["before_filtering"]["share"] == pytest.approx(sum(before) / 20)
    assert figure["after_filtering"]["share"] == pytest.approx(5 / 12)
    # The spread's effective size (about 315) capped at the samples there are: 10 prompts x 4.
    ci = clustered_mean(after, cap=40)
    assert figure["after_filtering"]["interval"] == pytest.approx([ci.low, ci.high])
    assert figure["before_filtering"]["disjoint_groups"] == 40 and not plan["upper_bounds"]
    dyn = plan["dynamic_sampling"]["trained_on"]
    assert dyn["expected"] == pytest.approx(1 / (1 - 5 / 12))
    assert dyn["interval"] == pytest.approx([1 / (1 - ci.low), 1 / (1 - ci.high)])
    # Printed as a check's headline prints a share: rounded down, the interval rounded outward.
    assert f"41% (95% CI {band(ci.low, ci.high)}) after" in res.output
    low, high = (f"{f(100 / (1 - b)) / 100:.2f}" for f, b in ((math.floor, ci.low), (math.ceil, ci.high)))
    assert f"1.71 ({low}–{high}) on the plan's data" in res.output


def test_oversampling_copies_follow_p_times_1_minus_p(project):
    assert invoke("--task", _checked(project), "--oversample", 4).exit_code == 0
    plan = json.loads((project / "out" / "plan" / "plan.json").read_text())
    copies = Counter(r["id"] for r in _read(project / "out" / "plan" / "grpo_prompts.jsonl"))
    # extra copies = round(4 * 4p(1-p)): p = 0.25 -> 3, p = 0.5 -> 4, proportional to p(1-p) = 3/16, 4/16
    assert copies["q2"] == 4 and copies["q3"] == 5 and len(copies) == 10
    assert plan["oversampling"]["rows"] == sum(copies.values()) == 45
    assert plan["zero_variance"]["as_written"]["share"] == pytest.approx((5 * 4 * 0.5 + 5 * 5 / 3) / 45)


def test_min_and_max_pass_keep_a_band(project):
    res = invoke("--task", _checked(project), "--min-pass", 0.5, "--max-pass", 1)
    assert res.exit_code == 0, res.output
    rows = _read(project / "out" / "plan" / "grpo_prompts.jsonl")
    assert {r["pass_rate"] for r in rows} == {0.5, 1.0}


# --- the exports --------------------------------------------------------------------------------------


@pytest.fixture
def plan_dir(project):
    assert invoke("--task", _checked(project)).exit_code == 0
    return project / "out" / "plan"


def test_trl_kwargs_build_a_real_grpo_config(plan_dir, tmp_path):
    trl = pytest.importorskip("trl")
    kwargs = json.loads((plan_dir / "trl_grpo_config.json").read_text())
    # use_cpu only because this machine has no GPU (TRL's bf16 default refuses a CPU); not part of the export.
    config = trl.GRPOConfig(output_dir=str(tmp_path / "trl"), use_cpu=True, **kwargs)
    assert config.num_generations == 2 and config.generation_batch_size % config.num_generations == 0


# verl: FilterGroupsConfig (verl/trainer/config/algorithm.py), the data config and rollout.n, the DAPO
# recipe's data.gen_batch_size (dapo/config/dapo_trainer.yaml); metrics the DAPO loop computes or reads.
VERL = {
    "data.train_files": str,
    "data.prompt_key": str,
    "data.train_batch_size": int,
    "data.gen_batch_size": int,
    "actor_rollout_ref.rollout.n": int,
    "algorithm.filter_groups.enable": bool,
    "algorithm.filter_groups.metric": ("acc", "score", "seq_reward", "seq_final_reward"),
    "algorithm.filter_groups.max_num_gen_batches": int,
}


def test_verl_overrides_use_real_keys_and_types(plan_dir):
    lines = [x for x in (plan_dir / "verl_overrides.txt").read_text().splitlines() if not x.startswith("#")]
    seen = dict(line.split("=", 1) for line in lines)
    assert set(seen) == set(VERL)
    for key, value in seen.items():
        kind = VERL[key]
        if kind is bool:
            assert value in ("True", "False")
        elif kind is int:
            assert int(value) >= 0
        elif isinstance(kind, tuple):
            assert value in kind
    assert seen["actor_rollout_ref.rollout.n"] == "2" and int(seen["algorithm.filter_groups.max_num_gen_batches"]) >= 1


def _openrlhf_parser() -> argparse.ArgumentParser:
    """The arguments as openrlhf/cli/train_ppo_ray.py (v0.11.0) declares them."""
    p = argparse.ArgumentParser(exit_on_error=False)
    p.add_argument("--data.prompt_dataset", type=str)
    p.add_argument("--data.input_key", type=str, default="input")
    p.add_argument("--data.label_key", type=str)
    p.add_argument("--rollout.n_samples_per_prompt", type=int, default=1)
    p.add_argument("--algo.dynamic_filtering_enable", action="store_true")
    p.add_argument("--algo.dynamic_filtering_range", nargs=2, default=(0, 1), type=float)
    return p


def test_openrlhf_args_parse_as_declared(plan_dir):
    text = (plan_dir / "openrlhf_args.txt").read_text()
    tokens = [t for line in text.splitlines() if not line.startswith("#") for t in shlex.split(line)]
    args = vars(_openrlhf_parser().parse_args(tokens))
    assert args["algo.dynamic_filtering_enable"] and args["rollout.n_samples_per_prompt"] == 2
    low, high = args["algo.dynamic_filtering_range"]
    assert low < high and (low, high) == (0.0, 1.0)  # train_ppo_ray asserts range[0] < range[1]
    assert args["data.input_key"] == "prompt" and Path(args["data.prompt_dataset"]).is_file()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Pool(_Strict):  # DifficultyPoolConfig
    threshold: float
    weight: float = Field(ge=0)


class _Sampler(_Strict):  # DifficultyPoolSamplerConfig
    type: Literal["difficulty_pool"]
    pools: dict[str, _Pool]
    seed: int = 42

    @model_validator(mode="after")
    def _unique(self):
        assert len({p.threshold for p in self.pools.values()}) == len(self.pools)
        assert any(p.weight > 0 for p in self.pools.values())
        return self


class _Gate(_Strict):  # AdvRangeGateConfig
    type: Literal["advantage_range"]
    reject_min: float = 0.0
    reject_max: float = 0.0


class _Curriculum(_Strict):
    sampler: _Sampler
    gates: dict[str, _Gate] = {}


class _Source(_Strict):  # TrainSourceConfig, the part the plan writes
    name: str
    curriculum: _Curriculum


class _Orchestrator(_Strict):
    group_size: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    train: dict[Literal["source"], list[_Source]]


def test_primerl_toml_validates_against_its_config_shape(plan_dir):
    doc = tomllib.loads((plan_dir / "primerl.toml").read_text())
    orch = _Orchestrator.model_validate(doc["orchestrator"])
    assert set(doc) == {"orchestrator"} and orch.group_size == 2
    pools = orch.train["source"][0].curriculum.sampler.pools
    assert [p.threshold for p in pools.values()] == sorted(p.threshold for p in pools.values())


# --- bad input: exit 2, one line naming the file or option, nothing written -----------------------------


def test_no_verdict_exits_2_naming_the_file(project):
    write_project(project, accuracy_fn=_accuracy, task_yaml=YAML)
    res = invoke("--task", project / "phasecheck.yaml")
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "verdicts.jsonl" in res.stderr and "run `phasecheck check` first" in res.stderr


def test_verdict_without_prompts_exits_2_naming_prompts_jsonl(project):
    task = load_task(write_project(project, accuracy_fn=_accuracy, task_yaml=YAML))
    write_verdict(task, Phase.GRPO_PHASE, model_identity="m", out=project / "old")
    res = invoke("--task", task.source)
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "prompts.jsonl" in res.stderr and "phasecheck check" in res.stderr
    assert not (project / "old" / "plan").exists()


def test_min_pass_above_max_pass_exits_2_naming_both(project):
    res = invoke("--task", _checked(project), "--min-pass", 0.9, "--max-pass", 0.1)
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "--min-pass 0.9" in res.stderr and "--max-pass 0.1" in res.stderr
    assert not (project / "out" / "plan").exists()


def test_eval_changed_since_the_verdict_exits_2_and_writes_nothing(project):
    task_file = _checked(project)
    with open(project / "eval.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "new", "prompt": "Double 99.", "reference": "198"}) + "\n")
    res = invoke("--task", task_file)
    assert res.exit_code == 2 and "eval.jsonl" in res.stderr and "changed since" in res.stderr
    assert not (project / "out" / "plan").exists()
