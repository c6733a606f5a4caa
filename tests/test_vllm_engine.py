"""The vllm engine: plan -> SamplingParams and RequestOutput -> Generation mappings here; the real
engine only with vLLM on a GPU (require_vllm)."""
from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

from phasecheck.errors import ConfigError, EngineError
from phasecheck.records import Example
from phasecheck.sampling import sample_task
from phasecheck.sampling.base import SamplingPlan
from phasecheck.sampling.vllm_engine import sampling_kwargs, to_generations
from phasecheck.task import TaskSpec

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def test_sampling_kwargs_use_the_request_seed_block():
    plan = SamplingPlan(runs=3, n=4, temperature=0.7, top_p=0.9, max_new_tokens=64, stop=("</s>",), seed=10)
    kw = sampling_kwargs(plan, plan.block_seed("a", 2))
    assert kw == {"n": 4, "seed": plan.block_seed("a", 2), "temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "stop": ["</s>"]}
    assert "stop" not in sampling_kwargs(SamplingPlan(n=1), 0)


def _completion(index, text, ids, reason):
    return SimpleNamespace(index=index, text=text, token_ids=ids, finish_reason=reason)


def test_to_generations_orders_by_index_and_maps_reasons():
    out = SimpleNamespace(outputs=[_completion(1, "b", (7, 8), "length"), _completion(0, "a", [5], "stop"),
                                   _completion(2, "c", [], None)])
    gens = to_generations(out, 3)
    assert [(g.text, g.token_ids, g.finish_reason, g.n_tokens) for g in gens] == \
        [("a", [5], "stop", 1), ("b", [7, 8], "length", 2), ("c", [], "error", 0)]
    with pytest.raises(EngineError, match="2 completions for one prompt, expected n=3"):
        to_generations(SimpleNamespace(outputs=out.outputs[:2]), 3)


def test_options_are_validated(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    task = TaskSpec(name="t", model=str(tiny_model_dir), sampling={"engine": "vllm", "tensor_parallel_sise": 2})
    with pytest.raises(ConfigError, match="tensor_parallel_sise: unknown field"):
        sample_task(task, [Example(id="a", prompt="p")], progress=False)


@pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed")
def test_missing_vllm_is_a_config_error(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    task = TaskSpec(name="t", model=str(tiny_model_dir), sampling={"engine": "vllm"})
    with pytest.raises(ConfigError, match="vllm is not installed"):
        sample_task(task, [Example(id="a", prompt="p")], progress=False)


@pytest.mark.require_vllm
@pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM and a GPU")
def test_vllm_engine_samples_reproducibly(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    task = TaskSpec(name="t", model=str(tiny_model_dir),
                    sampling={"engine": "vllm", "runs": 2, "n": 3, "max_new_tokens": 8, "gpu_memory_utilization": 0.3})
    ex = [Example(id="a", prompt="What is 2 + 3 ?"), Example(id="b", prompt="Compute 7 * 6 .")]
    a = sample_task(task, ex, use_cache=False, progress=False)
    b = sample_task(task, ex, use_cache=False, progress=False)
    assert len(a.samples) == 12 and a.samples == b.samples
    plan = SamplingPlan.from_spec(task.sampling)
    assert [s.seed for s in a.samples[:6]] == [plan.block_seed("a", r) + i for r in range(2) for i in range(3)]
