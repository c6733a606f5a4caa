"""The vllm engine (GPU): LLM.generate with SamplingParams(n=..., seed=...). vLLM (V1) gives sample i of
a request the seed seed+i, so each (example, run) request asks for the first seed of its own block
(SamplingPlan.block_seed): the same seeds as the transformers engine. vllm is imported only here."""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError, EngineError
from ..records import Example, Sample
from .base import (EngineBase, Generation, SamplingPlan, Unit, plan_units, render_prompt, run_units,
                   units_to_samples)

__all__ = ["VLLMEngine", "sampling_kwargs", "start_llm", "to_generations"]


def sampling_kwargs(plan: SamplingPlan, seed: int) -> dict[str, Any]:
    """The keyword arguments of vllm.SamplingParams for one request's seed block starting at `seed`."""
    kw: dict[str, Any] = {"n": plan.n, "seed": seed, "temperature": plan.temperature, "top_p": plan.top_p,
                          "max_tokens": plan.max_new_tokens}
    if plan.stop:
        kw["stop"] = list(plan.stop)
    return kw


def to_generations(request_output: Any, n: int) -> list[Generation]:
    """A RequestOutput's CompletionOutputs (text, token_ids, finish_reason) as n Generations, by index."""
    outs = sorted(request_output.outputs, key=lambda o: getattr(o, "index", 0))
    if len(outs) != n:
        raise EngineError(f"vllm returned {len(outs)} completions for one prompt, expected n={n}")
    gens = []
    for o in outs:
        ids = [int(t) for t in (o.token_ids or [])]
        reason = "length" if o.finish_reason == "length" else ("stop" if o.finish_reason else "error")
        gens.append(Generation(text=o.text, token_ids=ids, finish_reason=reason, n_tokens=len(ids)))
    return gens


def start_llm(path: Any, params: Any, *, seed: int, **extra: Any) -> Any:
    """A vllm.LLM on the model directory `path` with the engine's Params (and `extra` LLM keyword
    arguments); a missing vllm or a failed start is one ConfigError / EngineError line."""
    try:
        from vllm import LLM
    except ImportError:
        raise ConfigError("sampling.engine vllm: vllm is not installed (pip install 'phasecheck[vllm]')") from None
    kw: dict[str, Any] = {"model": str(path), "tensor_parallel_size": params.tensor_parallel_size,
                          "dtype": params.dtype, "gpu_memory_utilization": params.gpu_memory_utilization,
                          "seed": seed}
    if params.data_parallel_size > 1:
        kw["data_parallel_size"] = params.data_parallel_size
    if params.max_model_len:
        kw["max_model_len"] = params.max_model_len
    kw.update(extra)
    try:
        return LLM(**kw)
    except Exception as exc:  # noqa: BLE001 - CUDA/config failures of many kinds become one line
        raise EngineError(f"vllm: cannot start on {path} ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


class VLLMEngine(EngineBase):
    """Samples with vLLM on local GPUs; whole runs go to LLM.generate at once (vLLM batches itself)."""

    id: ClassVar[str] = "vllm"
    needs_model: ClassVar[bool] = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model copy is split over.")
        data_parallel_size: int = Field(1, ge=1, description="Model copies serving requests in parallel.")
        dtype: str = Field("auto", description="vLLM dtype: auto, bfloat16, float16, float32.")
        gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
        max_model_len: int | None = Field(None, ge=16)
        batch_prompts: int = Field(4096, ge=1, description="Requests handed to LLM.generate per cache write.")

    def _llm(self) -> Any:
        if self.model is None or self.model.path is None:
            raise ConfigError("sampling.engine vllm needs a local or hub `model:` in the task")
        from .models import load_model
        if not (self.model.path / "config.json").is_file():
            load_model(self.model, device="cpu")          # builds the alias's converted copy once
        return start_llm(self.model.path, self.params, seed=self.plan.seed)

    def sample(self, examples: list[Example], *, store: Any = None, progress: Any = None) -> list[Sample]:
        llm = self._llm()
        from vllm import SamplingParams
        tokenizer = llm.get_tokenizer()
        plan = self.plan
        units = plan_units(examples, plan, lambda ex: render_prompt(tokenizer, ex.prompt, plan.system_prompt))
        size = self.params.batch_prompts

        def batches(todo: list[Unit]) -> list[list[Unit]]:
            return [todo[i:i + size] for i in range(0, len(todo), size)]

        def generate_batch(batch: list[Unit]) -> list[list[Generation]]:
            params = [SamplingParams(**sampling_kwargs(plan, u.seed)) for u in batch]
            outs = llm.generate([u.prompt for u in batch], params, use_tqdm=False)
            return [to_generations(o, plan.n) for o in outs]

        done, self.stats = run_units(units, generate_batch, batches, store=store, progress=progress, n=plan.n)
        return units_to_samples(examples, plan, done, model=self.model.identity, engine=self.id)
