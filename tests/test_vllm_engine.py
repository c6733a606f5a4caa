"""The vllm engine: plan -> SamplingParams, RequestOutput -> Generation and Params -> vllm.LLM mappings
here; the real engine, and a real vLLM server behind the openai engine, where vLLM is installed (CPU or
GPU; require_vllm, run by make test-vllm)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace

import pytest

from phasecheck.errors import ConfigError, EngineError
from phasecheck.records import Example
from phasecheck.sampling import sample_task
from phasecheck.sampling.base import SamplingPlan
from phasecheck.sampling.vllm_engine import VLLMEngine, llm_kwargs, sampling_kwargs, to_generations
from phasecheck.task import TaskSpec
from support import HAVE_VLLM, needs_vllm


def test_sampling_kwargs_use_the_request_seed_block():
    plan = SamplingPlan(runs=3, n=4, temperature=0.7, top_p=0.9, max_new_tokens=64, stop=("</s>",), seed=10)
    kw = sampling_kwargs(plan, plan.block_seed("a", 2))
    assert kw == {
        "n": 4,
        "seed": plan.block_seed("a", 2),
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["</s>"],
    }
    assert "stop" not in sampling_kwargs(SamplingPlan(n=1), 0)


def _completion(index, text, ids, reason, stop_reason=None):
    return SimpleNamespace(index=index, text=text, token_ids=ids, finish_reason=reason, stop_reason=stop_reason)


def test_to_generations_orders_by_index_maps_reasons_and_drops_the_eos():
    out = SimpleNamespace(
        outputs=[
            _completion(1, "b", (7, 8), "length"),
            _completion(0, "a", [5, 2], "stop"),
            _completion(3, "d", [6, 9], "stop", stop_reason="9"),
            _completion(2, "c", [], None),
        ]
    )
    gens = to_generations(out, 4)
    assert [(g.text, g.token_ids, g.finish_reason, g.n_tokens) for g in gens] == [
        ("a", [5], "stop", 1),
        ("b", [7, 8], "length", 2),
        ("c", [], "error", 0),
        ("d", [6, 9], "stop", 2),
    ]
    with pytest.raises(EngineError, match="2 completions for one prompt, expected n=4"):
        to_generations(SimpleNamespace(outputs=out.outputs[:2]), 4)


def test_options_arewrite_validated_set(tiny_model_dir, tmp_path, monkeypatch):
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


def test_cpu_defaults_and_pass_through_options(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    cpu, env = llm_kwargs("/m", VLLMEngine.Params(), seed=3, on_cpu=True)
    assert cpu == {
        "model": "/m",
        "seed": 3,
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.9,
        "dtype": "float32",
        "enforce_eager": True,
        "enable_chunked_prefill": False,
        "kv_cache_memory_bytes": 1 << 30,
    }
    assert env == {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, sorted(os.sched_getaffinity(0))))}
    gpu, env = llm_kwargs("/m", VLLMEngine.Params(), seed=3, on_cpu=False)
    assert (
        gpu
        == {
            "model": "/m",
            "seed": 3,
            "tensor_parallel_size": 1,
            "gpu_memory_utilization": 0.9,
            "dtype": "auto",
            "enforce_eager": False,
        }
        and env == {}
    )
    set_all = VLLMEngine.Params(
        tensor_parallel_size=2,
        dtype="bfloat16",
        enforce_eager=False,
        enable_chunked_prefill=True,
        gpu_memory_utilization=0.5,
        kv_cache_memory_gib=2,
        max_model_len=4096,
        max_num_seqs=64,
        max_num_batched_tokens=8192,
        enable_prefix_caching=False,
        cpu_threads_bind="0-3|4-7",
    )
    kw, env = llm_kwargs("/m", set_all, seed=0, on_cpu=True)
    assert kw == {
        "model": "/m",
        "seed": 0,
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.5,
        "dtype": "bfloat16",
        "enforce_eager": False,
        "enable_chunked_prefill": True,
        "kv_cache_memory_bytes": 2 << 30,
        "max_model_len": 4096,
        "max_num_seqs": 64,
        "max_num_batched_tokens": 8192,
        "enable_prefix_caching": False,
    }
    assert env == {"VLLM_CPU_OMP_THREADS_BIND": "0-3|4-7"}
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0")  # the user's environment wins
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")
    kw, env = llm_kwargs("/m", set_all.model_copy(update={"kv_cache_memory_gib": None}), seed=0, on_cpu=True)
    assert env == {} and "kv_cache_memory_bytes" not in kw


def test_data_parallel_points_to_a_server(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    task = TaskSpec(name="t", model=str(tiny_model_dir), sampling={"engine": "vllm", "data_parallel_size": 2})
    with pytest.raises(
        ConfigError, match="data_parallel_size: .*--data-parallel-size N and set sampling.engine: openai"
    ):
        sample_task(task, [Example(id="a", prompt="p")], progress=False)


EXAMPLES = [
    Example(id="a", prompt="What is 2 + 3 ?"),
    Example(id="b", prompt="Compute 7 * 6 ."),
    Example(id="c", prompt="golden_hour_sun omega theta"),
]


def _task(model_dir, **sampling):
    return TaskSpec(
        name="t",
        model=str(model_dir),
        sampling={"engine": "vllm", "runs": 2, "n": 3, "max_new_tokens": 8, "temperature": 1.0, "seed": 7, **sampling},
    )


@needs_vllm
def test_vllm_engine_follows_the_seed_plan_and_resumes_from_the_cache(tiny_vllm_model_dir, tmp_path, monkeypatch):
    """Runs 1 then 2 of the same task: the second call samples only run 2. Seeds are the plan's blocks,
    and sample i of a block is what vLLM gives that seed alone (n=1, one request by itself). A third,
    fully cached call starts no engine."""
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    from phasecheck.sampling import render_prompt
    from phasecheck.sampling.vllm_engine import generate, start_llm, stop_llm

    first = sample_task(_task(tiny_vllm_model_dir, runs=1), EXAMPLES, progress=False)
    assert first.stats == {"cached": 0, "generated": 3, "batches": 1}
    task = _task(tiny_vllm_model_dir)
    full = sample_task(task, EXAMPLES, progress=False)
    assert full.stats == {"cached": 3, "generated": 3, "batches": 1}
    assert len(full.samples) == 18 and {s.engine for s in full.samples} == {"vllm"}
    plan = SamplingPlan.from_spec(task.sampling)
    assert [s.seed for s in full.samples] == [
        plan.block_seed(ex.id, r) + i for ex in EXAMPLES for r in range(2) for i in range(3)
    ]
    assert [s for s in full.samples if s.run == 0] == first.samples
    # Runs never share samples: each example's two runs differ (random weights, temperature 1).
    for ex in EXAMPLES:
        runs = [[s.completion for s in full.samples if s.example_id == ex.id and s.run == r] for r in range(2)]
        assert runs[0] != runs[1]

    def no_engine(*a, **k):
        raise AssertionError("a fully cached run started vLLM")

    with monkeypatch.context() as patch:
        patch.setattr("phasecheck.sampling.vllm_engine.start_llm", no_engine)
        again = sample_task(task, EXAMPLES, progress=False)
    assert again.samples == full.samples and again.stats["generated"] == 0

    from phasecheck.sampling.models import load_tokenizer, resolve_model

    tok = load_tokenizer(resolve_model(str(tiny_vllm_model_dir)))
    llm = start_llm(tiny_vllm_model_dir, VLLMEngine.Params(), seed=0)
    try:
        for s in full.samples[::4]:
            prompt = render_prompt(tok, next(ex for ex in EXAMPLES if ex.id == s.example_id).prompt, None)
            alone = generate(llm, tok, [prompt], [{"n": 1, "seed": s.seed, "temperature": 1.0, "max_tokens": 8}], 1)
            assert alone[0][0].text == s.completion, (s.example_id, s.run, s.index)
    finally:
        stop_llm(llm)


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _project(root, model_dir, sampling: str, prompt: str):
    root.mkdir(parents=True, exist_ok=True)
    (root / "eval.jsonl").write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": f"{prompt} {i}", "reference": "5"}) + "\n" for i in range(3))
    )
    (root / "task.yaml").write_text(
        f"name: v\nmodel: {model_dir}\ndata: {{eval: eval.jsonl}}\n"
        f"grader: {{verifier: {{kind: exact}}}}\nsampling: {sampling}\n"
        "checks: {base_model: {}}\n"
    )
    return root / "task.yaml"


@needs_vllm
def test_a_failure_inside_vllm_exits_3_with_one_line(tiny_vllm_model_dir, tmp_path, monkeypatch):
    """On the CPU, chunked prefill with seeded requests kills vLLM's engine process (the reason it is off
    by default there): the CLI says so in one line and exits 3, never 1 (GRPO PHASE); the same prompts
    pass with the defaults. A start-up failure (a KV cache larger than memory) is one line too."""
    from click.testing import CliRunner

    from phasecheck.cli import cli

    monkeypatch.setenv("PHASECHECK_LOG_DIR", str(tmp_path / "logs"))
    long = "What is 2 + 3 ? " * 30
    runs = {
        "chunked": "{engine: vllm, runs: 1, n: 2, max_new_tokens: 4, enable_chunked_prefill: true, max_num_batched_tokens: 64}",
        "default": "{engine: vllm, runs: 1, n: 2, max_new_tokens: 4}",
        "kv": "{engine: vllm, runs: 1, n: 2, max_new_tokens: 4, kv_cache_memory_gib: 100000}",
    }
    out = {}
    for name, sampling in runs.items():
        task = _project(tmp_path / name, tiny_vllm_model_dir, sampling, long)
        # A cache each: engine options are not part of the cache key, so a shared one would answer them all.
        out[name] = CliRunner().invoke(
            cli,
            ["check", str(task), "--out", str(tmp_path / name / "out")],
            env={"PHASECHECK_CACHE_DIR": str(tmp_path / name / "cache")},
        )
    assert out["default"].exit_code in (0, 1), out["default"].output
    for name in ("kv", "chunked") if _on_cpu() else ("kv",):
        res = out[name]
        assert res.exit_code == 3, res.output
        assert "Traceback" not in res.output and not (tmp_path / name / "out" / "verdict.json").exists()
    assert "vllm: cannot start on" in out["kv"].output
    if _on_cpu():
        # In-process (after a colocated engine set VLLM_ENABLE_V1_MULTIPROCESSING=0) the cause itself is
        # caught; with an engine-core process, the client's EngineDeadError.
        line = out["chunked"].output.strip().splitlines()[-1]
        assert line.startswith("error: vllm: generation failed (")
        assert "CPU Generator does not use offset" in line or "EngineDeadError" in line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flags(kw: dict) -> list[str]:
    """vllm.LLM keyword arguments as the OpenAI server's command-line flags."""
    out = []
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, str(value)]
    return out


@pytest.fixture(scope="module")
def vllm_server(tiny_vllm_model_dir, tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` (vllm-cpu has no `vllm serve`) on a free loopback
    port, with the settings the local engine uses; stopped by its pid."""
    from vllm.platforms import current_platform

    kw, env = llm_kwargs(tiny_vllm_model_dir, VLLMEngine.Params(), seed=0, on_cpu=current_platform.is_cpu())
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        "tiny",
        *_flags(kw),
    ]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, f"server exited {proc.returncode}: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"server not ready in 300 s: {log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(1)
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@needs_vllm
def test_a_vllm_server_behind_the_openai_engine_samples_what_the_local_engine_does(
    vllm_server, tiny_vllm_model_dir, tmp_path, monkeypatch
):
    """The same task on the local vllm engine and on the openai engine (chat endpoint) against a vLLM
    server of the same model: the same seeds, the same texts, sample for sample."""
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    local = sample_task(_task(tiny_vllm_model_dir), EXAMPLES, progress=False)
    served = sample_task(
        _task(
            tiny_vllm_model_dir,
            engine="openai",
            base_url=vllm_server,
            model="tiny",
            concurrency=4,
            timeout=60.0,
            retries=0,
        ),
        EXAMPLES,
        progress=False,
    )
    assert served.engine == "openai" and len(served.samples) == len(local.samples) == 18
    assert [(s.example_id, s.run, s.index, s.seed) for s in served.samples] == [
        (s.example_id, s.run, s.index, s.seed) for s in local.samples
    ]
    assert [s.completion for s in served.samples] == [s.completion for s in local.samples]
