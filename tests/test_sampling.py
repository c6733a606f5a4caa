"""The sampling plan, prompt rendering, the transformers engine and sample_task on tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

from phasecheck.errors import ConfigError, EngineError
from phasecheck.records import Example
from phasecheck.sampling import SamplingPlan, can_sample, model_identity_for, render_prompt, sample_task
from phasecheck.task import SamplingSpec, TaskSpec

PROMPTS = [
    "What is 2 + 3 ?",
    "Compute 7 * 6 .",
    "The hamiltonian H = p^2 / 2m gives",
    "unknown tag ?",
    [{"role": "user", "content": "golden_hour_sun omega"}],
]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "cache"))


def _examples(k: int | None = None):
    k = len(PROMPTS) if k is None else k
    return [Example(id=f"e{i}", prompt=PROMPTS[i % len(PROMPTS)]) for i in range(k)]


def _task(model_dir, **sampling):
    base = {"runs": 2, "n": 3, "temperature": 1.0, "max_new_tokens": 10, "seed": 7}
    return TaskSpec(name="t", model=str(model_dir), sampling={**base, **sampling})


def test_plan_seed_blocks_and_params_key():
    plan = SamplingPlan.from_spec(SamplingSpec(runs=3, n=4, seed=10, stop=["\n"]))
    blocks = [plan.block_seed("e0", r) for r in range(3)]
    assert len(set(blocks)) == 3 and all(b % 4 == 0 and 0 <= b < 2**32 for b in blocks)
    assert plan.stop == ("\n",)
    same = SamplingPlan.from_spec(SamplingSpec(runs=8, n=4, seed=99, stop=["\n"]))
    assert plan.params_key() == same.params_key()  # runs and seed pick blocks, not their content
    assert plan.params_key() != SamplingPlan.from_spec(SamplingSpec(runs=3, n=4, seed=10, temperature=0.2)).params_key()


def test_render_prompt_chat_and_raw(tiny_model_dir, tiny_base_model_dir):
    from transformers import AutoTokenizer

    chat = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = render_prompt(chat, "hi", "be brief")
    assert text == "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    raw = AutoTokenizer.from_pretrained(tiny_base_model_dir)
    assert render_prompt(raw, "hi", None) == "hi"
    assert render_prompt(raw, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "s") == "s\na\nb"


def test_greedy_matches_transformers_generate(tiny_model_dir):
    """The hand-written KV-cache loop decodes exactly what model.generate decodes (greedy)."""
    from phasecheck.sampling import load_model, resolve_model
    from phasecheck.sampling.hf import generate

    model, tok = load_model(resolve_model(str(tiny_model_dir)))
    prompts = [render_prompt(tok, p, None) for p in PROMPTS]
    ours = generate(model, tok, prompts, n=2, seeds=0, temperature=0.0, top_p=1.0, max_new_tokens=8)
    for p, gens in zip(prompts, ours):
        enc = tok(p, return_tensors="pt", add_special_tokens=False)
        ref = model.generate(**enc, do_sample=False, max_new_tokens=8, pad_token_id=tok.pad_token_id)
        ids = ref[0, enc["input_ids"].shape[1] :].tolist()
        ids = ids[: ids.index(tok.eos_token_id)] if tok.eos_token_id in ids else ids
        assert gens[0].token_ids == ids and gens[1].token_ids == ids


def test_generate_seeds_independent_of_batching(tiny_model_dir):
    from phasecheck.sampling import load_model, resolve_model
    from phasecheck.sampling.hf import generate

    model, tok = load_model(resolve_model(str(tiny_model_dir)))
    prompts = [render_prompt(tok, p, None) for p in PROMPTS]
    kw = dict(n=3, temperature=1.0, top_p=0.9, max_new_tokens=10)
    whole = generate(model, tok, prompts, seeds=[0, 3, 6, 9, 12], **kw)
    small = generate(model, tok, prompts, seeds=[0, 3, 6, 9, 12], batch_tokens=64, **kw)
    alone = generate(model, tok, prompts[2:3], seeds=[6], **kw)
    assert [[g.text for g in gs] for gs in whole] == [[g.text for g in gs] for gs in small]
    assert [g.text for g in whole[2]] == [g.text for g in alone[0]]
    assert len({g.text for g in whole[0]}) > 1  # the n samples differ
    other = generate(model, tok, prompts, seeds=[100, 103, 106, 109, 112], **kw)
    assert [[g.text for g in gs] for gs in other] != [[g.text for g in gs] for gs in whole]


def test_generate_stop_strings_and_finish_reasons(tiny_model_dir):
    from phasecheck.sampling import load_model, resolve_model
    from phasecheck.sampling.hf import generate

    model, tok = load_model(resolve_model(str(tiny_model_dir)))
    prompts = [render_prompt(tok, p, None) for p in PROMPTS]
    free = generate(model, tok, prompts, n=4, seeds=0, temperature=1.0, top_p=1.0, max_new_tokens=16)
    # Pick a character the free run produced, and stop on it: the same draws, cut before it.
    text = next(g.text for gs in free for g in gs if len(g.text) > 3)
    stop = text[2]
    cut = generate(model, tok, prompts, n=4, seeds=0, temperature=1.0, top_p=1.0, max_new_tokens=16, stop=[stop])
    for gs_free, gs_cut in zip(free, cut):
        for f, c in zip(gs_free, gs_cut):
            assert stop not in c.text
            if stop in f.text:
                assert c.finish_reason == "stop" and f.text.startswith(c.text)
            else:
                assert c.text == f.text and c.finish_reason == f.finish_reason
            assert c.finish_reason in {"stop", "length"} and c.n_tokens == len(c.token_ids) <= 16
    assert any(g.finish_reason == "length" for gs in free for g in gs)


def test_sample_task_same_seed_same_samples_runs_differ(tiny_model_dir):
    task = _task(tiny_model_dir)
    ex = _examples()
    a = sample_task(task, ex, use_cache=False, progress=False)
    b = sample_task(task, ex, use_cache=False, progress=False)
    assert a.engine == "transformers" and a.model.identity == model_identity_for(task)
    assert len(a.samples) == len(ex) * 2 * 3
    assert [s.to_dict() for s in a.samples] == [s.to_dict() for s in b.samples]
    first = a.samples[:6]
    plan = SamplingPlan.from_spec(task.sampling)
    assert [(s.example_id, s.run, s.index, s.seed) for s in first] == [
        ("e0", r, i, plan.block_seed("e0", r) + i) for r in range(2) for i in range(3)
    ]
    run0 = [s.completion for s in a.samples if s.run == 0]
    run1 = [s.completion for s in a.samples if s.run == 1]
    assert run0 != run1
    assert all(s.model == a.model.identity and s.engine == "transformers" for s in a.samples)


def test_sample_task_cache_reuses_blocks(tiny_model_dir, tmp_path, monkeypatch):
    from phasecheck.sampling import models

    ex = _examples()
    first = sample_task(_task(tiny_model_dir), ex, progress=False)
    assert first.stats["generated"] == 10 and first.stats["cached"] == 0
    assert list((tmp_path / "cache" / "samples").iterdir())
    with monkeypatch.context() as m:  # a finished run re-renders without loading the weights
        m.setattr(models, "load_model", lambda *a, **k: pytest.fail("weights loaded for a cached run"))
        again = sample_task(_task(tiny_model_dir), ex, progress=False)
    assert again.stats == {"cached": 10, "generated": 0, "batches": 0}
    assert again.samples == first.samples
    more = sample_task(_task(tiny_model_dir, runs=3), ex, progress=False)  # runs 0-1 reused
    assert more.stats["cached"] == 10 and more.stats["generated"] == 5
    assert more.samples[:6] == first.samples[:6]
    bypass = sample_task(_task(tiny_model_dir), ex, use_cache=False, progress=False)
    assert bypass.stats["cached"] == 0 and bypass.samples == first.samples


def test_sample_cache_is_keyed_by_the_dtype_the_weights_load_in(tiny_model_dir, tmp_path):
    ex = _examples(2)
    fp32 = sample_task(_task(tiny_model_dir, device="cpu", dtype="fp32"), ex, progress=False)
    assert fp32.stats["generated"] == 4  # (example, run) blocks
    # Unset on the CPU is fp32: the same outputs, so the same cache.
    assert sample_task(_task(tiny_model_dir, device="cpu"), ex, progress=False).stats["cached"] == 4
    # bf16 changes the logits, so its samples are drawn, never served from the fp32 ones.
    bf16 = sample_task(_task(tiny_model_dir, device="cpu", dtype="bf16"), ex, progress=False)
    assert bf16.stats == {"cached": 0, "generated": 4, "batches": bf16.stats["batches"]}
    assert len(list((tmp_path / "cache" / "samples").iterdir())) == 2


def test_resolved_dtype_names_what_loads_and_refuses_the_rest():
    from phasecheck.errors import ConfigError
    from phasecheck.sampling.models import resolved_dtype

    assert resolved_dtype("cpu", None) == resolved_dtype("cpu", "fp32") == resolved_dtype("cpu", "float32") == "float32"
    assert resolved_dtype("cuda:1", None) == resolved_dtype("cpu", "bf16") == "bfloat16"
    assert resolved_dtype("cpu", "auto") == "auto"
    with pytest.raises(ConfigError, match="dtype 'half'"):
        resolved_dtype("cpu", "half")


def test_progress_log_lines_in_ci(tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PHASECHECK_LOG_INTERVAL", "0")
    sample_task(_task(tiny_model_dir, runs=1), _examples(2), progress=None)
    err = capsys.readouterr().err
    assert "sampling (transformers): 6/6 samples (100%)" in err and "tok/s" in err


def test_errors_are_one_line(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="not found") as e:
        sample_task(TaskSpec(name="t", model=str(tmp_path / "nope/")), _examples(1), progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="model: is required"):
        sample_task(TaskSpec(name="t"), _examples(1), progress=False)
    assert not can_sample(TaskSpec(name="t")) and can_sample(TaskSpec(name="t", model="x"))
    with pytest.raises(ConfigError, match="batch_tokenz: unknown field"):
        sample_task(_task(tiny_model_dir, batch_tokenz=5), _examples(1), progress=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in Path(tiny_model_dir).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    with pytest.raises(EngineError) as e:
        sample_task(_task(broken), _examples(1), progress=False)
    assert "\n" not in str(e.value) and "broken" in str(e.value)


def test_progress_bar_on_a_tty_and_nothing_when_disabled(monkeypatch):
    import io

    from phasecheck.sampling.progress import make_progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("CI", raising=False)
    out = Tty()
    bar = make_progress(8, None, stream=out)
    bar.update(4, 40)
    bar.update(4, 40, cached=True)
    bar.close()
    assert "8/8" in out.getvalue() and "tok/s" in out.getvalue()
    monkeypatch.setenv("CI", "true")
    out = Tty()
    logs = make_progress(8, None, stream=out)
    logs.update(8, 10)
    assert out.getvalue().startswith("sampling: 8/8 samples (100%)")
    assert make_progress(8, False) is None


# --- the engine contract: sampling asks the engine's class, never its name -----------------------------


@pytest.fixture()
def register_engine():
    """Registers support's engines under any name, as a third-party distribution would."""
    from importlib.metadata import EntryPoint

    from phasecheck import plugins

    def register(name, cls):
        plugins.register("engines", [EntryPoint(name=name, value=f"support:{cls}", group="phasecheck.engines")])

    yield register
    plugins.unregister_all()


# Named like the built-ins whose quirks were once tested by name, too: an injected plugin shadows them.
@pytest.mark.parametrize("name", ["canned", "replay", "openai"])
@pytest.mark.parametrize("cls, cached", [("CannedCachingEngine", True), ("CannedUncachedEngine", False)])
def test_an_engine_plugin_is_asked_what_it_needs_not_named(register_engine, name, cls, cached):
    from support import CannedEngine

    register_engine(name, cls)
    task = TaskSpec(name="t", sampling={"engine": name, "runs": 1, "n": 2, "tag": "x"})  # no model
    assert can_sample(task) and model_identity_for(task) == "canned-x"
    CannedEngine.seen_stores.clear()
    res = sample_task(task, _examples(2), progress=False)
    assert res.model is None and res.engine == name
    assert [(s.example_id, s.completion) for s in res.samples] == [("e0", "e0")] * 2 + [("e1", "e1")] * 2
    [store] = CannedEngine.seen_stores
    assert (store is not None) is cached


def test_an_engine_plugin_must_subclass_engine_base(register_engine):
    from phasecheck import plugins
    from phasecheck.errors import PluginError

    register_engine("not_an_engine", "ScoreOnly")
    with pytest.raises(
        PluginError,
        match=r"local\[not_an_engine\]: breaks the engine contract: missing method "
        r"`sample`; not a subclass of phasecheck.sampling.base.EngineBase",
    ):
        plugins.load("engines", "not_an_engine")
