"""The plan's settings for other RL frameworks, as files a user pastes: TRL GRPOConfig kwargs (JSON), verl DAPO
Hydra overrides, OpenRLHF arguments, a prime-rl TOML fragment. Every key was read in that project's source:

- TRL 1.16.0 (the installed wheel, trl/trainer/grpo_config.py): num_generations, per_device_train_batch_size
  (completions, not prompts; generation_batch_size must divide by num_generations), remove_unused_columns,
  scale_rewards ("group" | "batch" | "none"). TRL has no dynamic sampling: zero-variance groups give no gradient.
- verl: volcengine/verl b178a3cd (v0.7.0-125, 2026-01-29) verl/trainer/config/algorithm.py FilterGroupsConfig
  (enable, metric, max_num_gen_batches), verl/utils/dataset/rl_dataset.py (train files .parquet or .json);
  the DAPO loop is verl-project/verl-recipe 48ea0a79 dapo/dapo_ray_trainer.py: a prompt is kept when the std
  of its group's `metric` is > 0, gen batches of data.gen_batch_size prompts are drawn until
  data.train_batch_size prompts are kept, and "Generated too many" is raised at max_num_gen_batches.
- OpenRLHF v0.11.0 (3c3be623, 2026-08-13) openrlhf/cli/train_ppo_ray.py: --algo.dynamic_filtering_enable,
  --algo.dynamic_filtering_range LO HI (v0.8.1 to v0.10.1: --dynamic_filtering, --dynamic_filtering_reward_range),
  --data.prompt_dataset, --data.input_key, --data.label_key, --rollout.n_samples_per_prompt; samples_generator.py
  drops a group unless LO < mean score < HI and dispatches a replacement prompt.
- prime-rl 0.8.0 (559b4477, 2026-08-21) packages/prime-rl-configs/src/prime_rl/configs/orchestrator.py:
  orchestrator.group_size, orchestrator.batch_size (samples per step), train.source[].curriculum.sampler
  {type = "difficulty_pool", pools.NAME.threshold (inclusive max mean reward), pools.NAME.weight} and
  curriculum.gates.NAME {type = "advantage_range", reject_min, reject_max}; orchestrator/curriculum/gates/adv.py
  rejects a group whose advantages all lie in [reject_min, reject_max] and asks for replacement work."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["CHECKED", "export_files", "framework_notes", "max_gen_batches"]

CHECKED = {
    "trl": {"repo": "huggingface/trl", "version": "1.16.0", "files": ["trl/trainer/grpo_config.py"]},
    "verl": {
        "repo": "volcengine/verl + verl-project/verl-recipe",
        "version": "verl b178a3cd56f5 (v0.7.0-125-gb178a3cd5, 2026-01-29); verl-recipe 48ea0a797fa2",
        "files": [
            "verl/trainer/config/algorithm.py",
            "verl/utils/dataset/rl_dataset.py",
            "dapo/config/dapo_trainer.yaml",
            "dapo/dapo_ray_trainer.py",
        ],
    },
    "openrlhf": {
        "repo": "OpenRLHF/OpenRLHF",
        "version": "v0.11.0 (3c3be6234e0c, 2026-08-13)",
        "files": ["openrlhf/cli/train_ppo_ray.py", "openrlhf/trainer/ppo_utils/samples_generator.py"],
    },
    "prime-rl": {
        "repo": "PrimeIntellect-ai/prime-rl",
        "version": "0.8.0, v0.8.1.dev67 (559b44772e47, 2026-08-21)",
        "files": [
            "packages/prime-rl-configs/src/prime_rl/configs/orchestrator.py",
            "src/prime_rl/orchestrator/curriculum/samplers/pool.py",
            "src/prime_rl/orchestrator/curriculum/gates/adv.py",
        ],
    },
}
FILES = {"trl": "trl_grpo_config.json", "verl": "verl_overrides.txt", "openrlhf": "openrlhf_args.txt"}
FILES["prime-rl"] = "primerl.toml"
FAIL_PER_STEP = 1e-4  # max_num_gen_batches: a training step this unlucky once in 10,000 at the interval's end
_POOL_WEIGHT = 0.1


def _binom_below(n: int, q: float, b: int) -> float:
    """P(X < b) for X ~ Binomial(n, q)."""
    if q <= 0:
        return 1.0
    if q >= 1:
        return float(n < b)
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in range(min(b, n + 1))]
    return sum(math.exp(lg + k * math.log(q) + (n - k) * math.log1p(-q)) for k, lg in enumerate(logs))


def max_gen_batches(batch: int, zero_high: float, limit: int = 1000) -> int:
    """The fewest generation batches of `batch` prompts that fill one training batch of `batch` kept prompts
    with probability 1 - FAIL_PER_STEP when each prompt is kept with probability 1 - zero_high (independent
    prompts; unequal prompts only narrow the spread). 0, verl's "no limit", when zero_high is 1."""
    if zero_high >= 1:
        return 0
    for n in range(1, limit + 1):
        if _binom_below(n * batch, 1 - zero_high, batch) <= FAIL_PER_STEP:
            return n
    return 0


def _batch_prompts(task) -> tuple[int, str]:
    from .training.grpo_settings import resolve_grpo

    cfg = resolve_grpo(task)
    return cfg.batch_prompts, cfg.advantage_scale


def _trl(ctx: dict) -> str:
    g, (b, scale) = ctx["group_size"], _batch_prompts(ctx["task"])
    kwargs = {
        "num_generations": g,
        "per_device_train_batch_size": b * g,  # completions: b prompts x G
        "remove_unused_columns": False,  # the reward function reads the reference and id columns
        "scale_rewards": scale,
    }
    return json.dumps(kwargs, indent=2) + "\n"


def _header(lines: list[str], what: str, src: dict) -> list[str]:
    return [f"# {what}; keys checked in {src['repo']} {src['version']}"] + [f"# {line}" for line in lines]


def _verl(ctx: dict) -> str:
    g, (b, _) = ctx["group_size"], _batch_prompts(ctx["task"])
    path, fields = ctx["dataset"], ctx["task"].data.fields
    n = max_gen_batches(b, ctx["zero_after"]["interval"][1])
    notes = ["python3 -m recipe.dapo.main_dapo $(grep -v '^#' verl_overrides.txt)  (one override per line)"]
    if path.suffix not in (".parquet", ".json"):
        notes.append(f"verl reads only .parquet or .json train files (rl_dataset.py): convert {path.name} first")
    notes.append("verl applies the chat template to the prompt column: it must hold a list of messages")
    lines = [
        f"data.train_files={path}",
        f"data.prompt_key={fields.prompt}",
        f"data.train_batch_size={b}",
        f"data.gen_batch_size={b}",
        f"actor_rollout_ref.rollout.n={g}",
        "algorithm.filter_groups.enable=True",
        "algorithm.filter_groups.metric=seq_reward",  # the reward function's score, as phasecheck's bands
        f"algorithm.filter_groups.max_num_gen_batches={n}",
    ]
    return "\n".join(_header(notes, "verl DAPO Hydra overrides", CHECKED["verl"]) + lines) + "\n"


def _openrlhf(ctx: dict) -> str:
    lo, hi, _ = ctx["reward_range"]
    fields = ctx["task"].data.fields
    notes = [
        "python3 -m openrlhf.cli.train_ppo_ray $(grep -v '^#' openrlhf_args.txt) ...",
        "dynamic filtering needs --reward.remote_url or --train.agent_func_path returning the banded reward",
        f"a group is kept when {lo:g} < its mean reward < {hi:g}: all at either end is dropped",
    ]
    lines = [
        f"--data.prompt_dataset {ctx['dataset']}",
        f"--data.input_key {fields.prompt}",
        *([f"--data.label_key {fields.reference}"] if fields.reference else []),
        f"--rollout.n_samples_per_prompt {ctx['group_size']}",
        "--algo.dynamic_filtering_enable",
        f"--algo.dynamic_filtering_range {lo!r} {hi!r}",
    ]
    return "\n".join(_header(notes, "OpenRLHF train_ppo_ray arguments", CHECKED["openrlhf"]) + lines) + "\n"


def _primerl(ctx: dict) -> str:
    g, (b, _) = ctx["group_size"], _batch_prompts(ctx["task"])
    lo, hi, _ = ctx["reward_range"]
    eps = 1e-6 * max(hi - lo, 1e-9)  # a group all at one end lands there despite float rounding of its mean
    pools = [
        ("never_solved", lo + eps, _POOL_WEIGHT),
        ("learnable", hi - eps, 1.0),
        ("always_solved", hi, _POOL_WEIGHT),
    ]
    notes = [
        "merge into rl.toml; the source still needs its env: [orchestrator.train.source.env.taskset] id = ...,",
        f"a taskset serving {ctx['dataset'].name} and rewarding with the task's bands",
        f"pools: a task whose latest group mean sits at the lowest ({lo:g}) or highest ({hi:g}) reward is drawn",
        f"with weight {_POOL_WEIGHT:g}, not 0: a learnable prompt's one group lands there by chance, and weight 0",
        "would never draw it again; the gate rejects zero-advantage groups and asks for replacement work",
    ]
    out = _header(notes, "prime-rl orchestrator settings", CHECKED["prime-rl"])
    out += ["[orchestrator]", f"group_size = {g}", f"batch_size = {b * g}", ""]
    out += ["[[orchestrator.train.source]]", f"name = {json.dumps(ctx['task'].slug)}", ""]
    out += ["[orchestrator.train.source.curriculum.sampler]", 'type = "difficulty_pool"', ""]
    for name, threshold, weight in pools:
        out += [f"[orchestrator.train.source.curriculum.sampler.pools.{name}]"]
        out += [f"threshold = {threshold!r}", f"weight = {weight!r}", ""]
    out += ["[orchestrator.train.source.curriculum.gates.zero_variance]", 'type = "advantage_range"']
    return "\n".join(out + ["reject_min = 0.0", "reject_max = 0.0"]) + "\n"


def export_files(ctx: dict[str, Any]) -> dict[str, str]:
    """File name -> text, one per framework."""
    makers = {"trl": _trl, "verl": _verl, "openrlhf": _openrlhf, "prime-rl": _primerl}
    return {FILES[k]: make(ctx) for k, make in makers.items()}


def framework_notes(ctx: dict[str, Any], exports: dict[str, str]) -> dict[str, Any]:
    """plan.json's `frameworks`: per framework, its file, what was checked where, and how the plan maps."""
    b, _ = _batch_prompts(ctx["task"])
    z_high = ctx["zero_after"]["interval"][1]
    maps = {
        "trl": "GRPOConfig(output_dir=..., **kwargs) with the plan's dataset as train_dataset; no dynamic "
        "sampling, so the after-filtering share is the predicted frac_reward_zero_std",
        "verl": f"max_num_gen_batches: the fewest gen batches of {b} prompts that fill a training batch of {b} "
        f"with probability {1 - FAIL_PER_STEP:g} when a prompt is kept with probability 1 - {z_high:.3g} "
        "(the after-filtering interval's upper end); 0 means no limit",
        "openrlhf": "dynamic_filtering_range: the lowest and highest reward seen, " + ctx["reward_range"][2],
        "prime-rl": "difficulty pools by latest group mean at the reward's ends; advantage_range gate [0, 0]",
    }
    return {k: {"file": FILES[k], "checked": CHECKED[k], "how": maps[k]} for k in FILES}
