"""The seed plan: one block of seeds per (task seed, example, run), never shared between prompts or runs,
stable under reordering and more runs, and the same for transformers, vLLM requests and the openai body."""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

import pytest

from phasecheck.records import Example
from phasecheck.sampling import sample_task
from phasecheck.sampling.base import SEED_SPACE, SamplingPlan, plan_seeds, plan_units
from phasecheck.task import TaskSpec


def _ids(k: int) -> list[str]:
    return [f"q{i}" for i in range(k)]


def test_no_two_samples_of_a_plan_share_a_seed_even_modulo_2_32():
    plan = SamplingPlan(runs=4, n=8, seed=3)
    seeds = plan_seeds(_ids(3000), plan)
    per_sample = [b + i for b in seeds.values() for i in range(plan.n)]
    # torch's CPU generator keeps a seed's low 32 bits: distinct seeds below 2**32 are distinct streams.
    assert all(0 <= s < SEED_SPACE for s in per_sample)
    assert len(set(per_sample)) == len(per_sample) == 3000 * 4 * 8


def test_a_clash_of_blocks_is_resolved_and_later_runs_never_move_earlier_seeds(monkeypatch):
    real = SamplingPlan.block_seed

    def clashing(self, example_id, run, attempt=0):
        # Every first attempt lands on block 0: the plan must still give every request its own block.
        return 0 if attempt == 0 else real(self, example_id, run, attempt)

    monkeypatch.setattr(SamplingPlan, "block_seed", clashing)
    two = plan_seeds(_ids(5), SamplingPlan(runs=2, n=4))
    four = plan_seeds(_ids(5), SamplingPlan(runs=4, n=4))
    assert len(set(four.values())) == 20
    assert all(four[k] == v for k, v in two.items())


def test_a_block_depends_on_task_seed_example_id_and_run_not_on_position_or_runs():
    plan = SamplingPlan(runs=2, n=4, seed=0)
    ids = _ids(6)
    fwd = plan_seeds(ids, plan)
    rev = plan_seeds(ids[::-1], plan)
    assert all(fwd[(i, r)] == rev[(5 - i, r)] for i in range(6) for r in range(2))
    assert plan_seeds(ids, SamplingPlan(runs=3, n=4, seed=0))[(2, 1)] == fwd[(2, 1)]
    assert plan_seeds(ids, SamplingPlan(runs=2, n=4, seed=1))[(2, 1)] != fwd[(2, 1)]
    units = plan_units([Example(id=i, prompt="same") for i in ids], plan, lambda ex: ex.prompt)
    assert [u.seed for u in units] == [fwd[(u.example_index, u.run)] for u in units]


def _task(model_dir, **sampling):
    return TaskSpec(
        name="t",
        model=str(model_dir),
        sampling={"runs": 2, "n": 4, "temperature": 1.0, "max_new_tokens": 12, "seed": 0, **sampling},
    )


def test_two_prompts_in_one_run_never_draw_the_same_random_stream(tiny_model_dir, tmp_path, monkeypatch):
    """Two examples with the same prompt text: a shared stream would give them identical samples."""
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    ex = [Example(id="x", prompt="What is 2 + 3 ?"), Example(id="y", prompt="What is 2 + 3 ?")]
    res = sample_task(_task(tiny_model_dir), ex, use_cache=False, progress=False)
    for r in range(2):
        x = [s for s in res.samples if s.example_id == "x" and s.run == r]
        y = [s for s in res.samples if s.example_id == "y" and s.run == r]
        assert not {s.seed for s in x} & {s.seed for s in y}
        assert [s.completion for s in x] != [s.completion for s in y]
    # Same prompt, same seed: the same text (the stream is the seed's, not the batch's).
    again = sample_task(_task(tiny_model_dir), ex[1:], use_cache=False, progress=False)
    assert [s.completion for s in again.samples] == [s.completion for s in res.samples if s.example_id == "y"]


def test_vllm_requests_carry_the_transformers_seed_blocks(tiny_model_dir, tmp_path, monkeypatch):
    """A stand-in for vllm (LLM.generate gives sample i the seed seed+i, as vLLM V1 does) run on the
    tiny model: the vllm engine's requests and samples equal the transformers engine's."""
    from phasecheck.sampling.hf import _eos_ids, _generate_batch
    from phasecheck.sampling.models import load_model, resolve_model

    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    fake = ModuleType("vllm")
    fake.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    requests = []

    class LLM:
        def generate(self, prompts, params, use_tqdm=False):
            model, tok = load_model(self.model)
            outs = []
            for p, sp in zip(prompts, params):  # token-id prompts; vLLM keeps the EOS it stopped on
                requests.append(sp.seed)
                ids = p["prompt_token_ids"]
                gens = _generate_batch(
                    model,
                    tok,
                    [tok.decode(ids)],
                    [sp.seed],
                    sp.n,
                    sp.temperature,
                    sp.top_p,
                    sp.max_tokens,
                    (),
                    _eos_ids(model, tok),
                    [ids],
                )[0]
                outs.append(
                    SimpleNamespace(
                        outputs=[
                            SimpleNamespace(
                                index=i,
                                text=g.text,
                                finish_reason=g.finish_reason,
                                stop_reason=None,
                                token_ids=g.token_ids + ([tok.eos_token_id] if g.finish_reason == "stop" else []),
                            )
                            for i, g in enumerate(gens)
                        ]
                    )
                )
            return outs

    def start(path, params, *, seed):
        llm = LLM()
        llm.model = resolve_model(str(path))
        return llm

    monkeypatch.setattr("phasecheck.sampling.vllm_engine.start_llm", start)
    monkeypatch.setattr("phasecheck.sampling.vllm_engine.stop_llm", lambda llm: None)
    ex = [Example(id="a", prompt="What is 2 + 3 ?"), Example(id="b", prompt="Compute 7 * 6 .")]
    hf = sample_task(_task(tiny_model_dir), ex, use_cache=False, progress=False)
    vl = sample_task(_task(tiny_model_dir, engine="vllm"), ex, use_cache=False, progress=False)
    plan = SamplingPlan.from_spec(_task(tiny_model_dir).sampling)
    assert sorted(requests) == sorted(plan.block_seed(e.id, r) for e in ex for r in range(2))
    assert [(s.example_id, s.run, s.index, s.seed, s.completion, s.n_tokens) for s in vl.samples] == [
        (s.example_id, s.run, s.index, s.seed, s.completion, s.n_tokens) for s in hf.samples
    ]


@pytest.mark.parametrize("n", [1, 3, 64])
def test_blocks_are_aligned_to_n_and_below_the_seed_space(n):
    plan = SamplingPlan(runs=3, n=n, seed=11)
    for b in plan_seeds(_ids(50), plan).values():
        assert b % n == 0 and b + n <= SEED_SPACE
