"""Sampling a task's model: R runs x n samples per prompt through a pluggable engine, with a
resumable sample cache and progress reporting. `sample_task` is the one entry point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..records import Example, Sample
from .base import Generation, SamplingPlan, render_prompt
from .models import ResolvedModel, load_model, model_identity, resolve_model
from .store import SampleStore, cache_root

if TYPE_CHECKING:
    from ..task import TaskSpec

__all__ = [
    "SamplingResult",
    "sample_task",
    "model_identity_for",
    "can_sample",
    "engine_name_for",
    "SamplingPlan",
    "Generation",
    "render_prompt",
    "ResolvedModel",
    "resolve_model",
    "load_model",
    "model_identity",
    "SampleStore",
    "cache_root",
    "validate_engine",
]


@dataclass
class SamplingResult:
    samples: list[Sample]
    model: ResolvedModel | None
    engine: str
    stats: dict[str, int] | None = None  # cached / generated units and batches, when the engine says


def engine_name_for(task: TaskSpec) -> str:
    """replay when the task names a samples file (or asks for it), else task.sampling.engine."""
    # The one engine named here, and by the task's choice, not an engine's quirk: `data.samples` says
    # "these samples, not a model's", whatever `sampling.engine` is. What an engine needs is asked of
    # its class (EngineBase: needs_model, caches_samples, can_sample, identity_for).
    if task.sampling.engine == "replay" or task.data.samples is not None:
        return "replay"
    return task.sampling.engine


def validate_engine(task: TaskSpec) -> None:
    """Check the engine's own options (sampling.*) without loading a model."""
    _engine(task)


def _engine(task: TaskSpec) -> tuple[str, Any, Any]:
    from ..plugins import load, validate_params

    name = engine_name_for(task)
    cls = load("engines", name)
    # Options written for the configured engine do not apply when a samples file switches to replay.
    options = task.sampling.options if name == task.sampling.engine else {}
    where = f"{task.source}: sampling" if task.source else "sampling"
    return name, cls, validate_params(cls, options, where)


def sample_task(
    task: TaskSpec, examples: list[Example], *, use_cache: bool = True, progress: bool | None = None
) -> SamplingResult:
    """Sample every example runs x n times (or replay a samples file); cached blocks are reused."""
    from .progress import make_progress

    name, cls, params = _engine(task)
    plan = SamplingPlan.from_spec(task.sampling)
    model = None
    if cls.needs_model:
        if not task.model:
            raise ConfigError(
                f"{task.source or 'task'}: model: is required to sample with engine {name!r} "
                "(or set data.samples to replay samples made elsewhere)"
            )
        model = resolve_model(task.model)
    engine = cls(params, plan=plan, model=model, task=task)
    store = None
    identity = model.identity if model is not None else engine.identity
    if use_cache and cls.caches_samples and identity:
        store = SampleStore(model=identity, engine=name, params=plan.params_key(engine.output_options()))
    bar = make_progress(len(examples) * plan.runs * plan.n, progress, desc=f"sampling ({name})")
    try:
        samples = engine.sample(examples, store=store, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return SamplingResult(samples=samples, model=model, engine=name, stats=engine.stats)


def model_identity_for(task: TaskSpec) -> str | None:
    """The identity of what samples the task, without loading weights: None for replay or no model."""
    _, cls, params = _engine(task)
    return cls.identity_for(params, task)


def can_sample(task: TaskSpec) -> bool:
    """Whether sample_task could run: a samples file, a model, or an engine that needs none."""
    from ..plugins import load

    return load("engines", engine_name_for(task)).can_sample(task)
