"""What the checks look at. `Evidence` gathers it (load -> sample -> grade, each once, each a named stage)
and owns the grader; `view()` hands the checks a frozen EvidenceView of what was gathered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .checks.base import Unavailable
from .records import UNJUDGED, Demonstration, Example, Grade, Sample
from .results import Verdict
from .stages import stage
from .task import TaskSpec

__all__ = ["Unavailable", "GradedSample", "GradedDemo", "EvidenceView", "Evidence"]

_NO_SAMPLES = "the task has no model and no samples file (set `model:` or `data.samples:`, or pass --model / --samples)"
_NO_PROMPTS = "the task has no eval prompts (`data.eval:`) to sample the model on"


@dataclass(frozen=True, slots=True)
class GradedSample:
    sample: Sample
    example: Example
    grade: Grade


@dataclass(frozen=True, slots=True)
class GradedDemo:
    demo: Demonstration
    grade: Grade


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """The evidence every check of one run reads, frozen. `graded_samples` raises Unavailable, with the
    reason, when this run has no samples; everything else is always there (maybe empty)."""

    task: TaskSpec
    examples: tuple[Example, ...]
    demonstrations: tuple[Demonstration, ...]
    graded_demonstrations: tuple[GradedDemo, ...]
    vocabulary: tuple[str, ...]
    after_grpo: Mapping[str, Any] | None = None  # {"model": identity, "step": int, "path": str} after GRPO
    previous: Verdict | None = None  # an earlier verdict (--compare)
    samples_or_why: tuple[GradedSample, ...] | str = _NO_SAMPLES

    @property
    def graded_samples(self) -> tuple[GradedSample, ...]:
        if isinstance(self.samples_or_why, str):
            raise Unavailable(self.samples_or_why)
        return self.samples_or_why

    @property
    def has_graded_samples(self) -> bool:
        return not isinstance(self.samples_or_why, str)

    def view(self, reads_samples: bool = True) -> EvidenceView:
        return self

    def grading_counts(self) -> dict[str, dict[str, int]]:
        """Per graded set: grades made and how many could not be judged (timeout, too_long, error)."""
        out = {}
        sets = (
            ("samples", self.samples_or_why if self.has_graded_samples else ()),
            ("demonstrations", self.graded_demonstrations),
        )
        for name, graded in sets:
            if graded:
                seen = Counter(g.grade.outcome for g in graded)
                out[name] = {"graded": len(graded), **{k.value: seen[k] for k in UNJUDGED}}
        return out


class Evidence:
    """Gathers the evidence once. Pass records directly (tests, embedding) or let it load from the task;
    a grader passed in is the caller's to close, one made here is closed by `close()` (or `with`)."""

    def __init__(
        self,
        task: TaskSpec,
        *,
        examples: Sequence[Example] | None = None,
        demonstrations: Sequence[Demonstration] | None = None,
        samples: Sequence[Sample] | None = None,
        grader: Any = None,
        after_grpo: dict[str, Any] | None = None,
        previous: Verdict | None = None,
        use_cache: bool = True,
        progress: Callable[..., Any] | None = None,
    ) -> None:
        self.task = task
        self.after_grpo = after_grpo
        self.previous = previous
        self.use_cache = use_cache
        self.progress = progress
        self.model: str | None = None  # what sampling resolved the model to
        self.engine: str | None = None
        self._examples = list(examples) if examples is not None else None
        self._demos = list(demonstrations) if demonstrations is not None else None
        self._samples = list(samples) if samples is not None else None
        self._grader = grader
        self._own_grader = grader is None
        self._graded_demos: list[GradedDemo] | None = None
        self._graded_samples: list[GradedSample] | None = None

    def __enter__(self) -> Evidence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- load -----------------------------------------------------------------------------------
    @property
    def examples(self) -> list[Example]:
        if self._examples is None:
            self._examples = self._load("eval", "load eval data")
        return self._examples

    @property
    def demonstrations(self) -> list[Demonstration]:
        if self._demos is None:
            self._demos = self._load("train", "load train data")
        return self._demos

    def _load(self, role: str, name: str) -> list:
        if getattr(self.task.data, role) is None:
            return []
        from .data import load_demonstrations, load_examples

        with stage(name):
            return list((load_examples if role == "eval" else load_demonstrations)(self.task).records)

    # --- sample ---------------------------------------------------------------------------------
    @property
    def has_samples(self) -> bool:
        if self._samples is not None:
            return True
        from .sampling import can_sample  # a samples file counts: it switches the engine to replay

        return can_sample(self.task)

    @property
    def samples(self) -> list[Sample]:
        if self._samples is None:
            if not self.has_samples:
                raise Unavailable(_NO_SAMPLES)
            if not self.examples:
                raise Unavailable(_NO_PROMPTS)
            from .sampling import sample_task

            with stage("sample"):
                result = sample_task(self.task, self.examples, use_cache=self.use_cache, progress=self.progress)
            self._samples = list(result.samples)
            model = result.model
            self.model = getattr(model, "name", None) or (str(model) if model is not None else None)
            self.engine = result.engine
        return self._samples

    # --- grade ----------------------------------------------------------------------------------
    @property
    def grader(self) -> Any:
        if self._grader is None:
            from .grading import Grader

            with stage("set up the grader"):
                self._grader = Grader(self.task)
        return self._grader

    @property
    def graded_demonstrations(self) -> list[GradedDemo]:
        if self._graded_demos is None:
            demos = self.demonstrations
            with stage("grade demonstrations"):
                grades = self.grader.grade_many([(d.completion, d) for d in demos]) if demos else []
            self._graded_demos = [GradedDemo(d, g) for d, g in zip(demos, grades)]
        return self._graded_demos

    @property
    def graded_samples(self) -> list[GradedSample]:
        if self._graded_samples is None:
            samples = self.samples
            by_id = {e.id: e for e in self.examples}
            missing = sorted({s.example_id for s in samples} - set(by_id))
            if missing:
                from .errors import DataError

                raise DataError(
                    f"{len(missing)} samples name example ids absent from the eval data "
                    f"(first: {missing[0]!r}); were they made for another data file?"
                )
            pairs = [(s.completion, by_id[s.example_id]) for s in samples]
            with stage("grade samples"):
                grades = self.grader.grade_many(pairs) if pairs else []
            self._graded_samples = [GradedSample(s, by_id[s.example_id], g) for s, g in zip(samples, grades)]
        return self._graded_samples

    # --- the view -------------------------------------------------------------------------------
    def view(self, reads_samples: bool = True) -> EvidenceView:
        """Load, sample (when a check reads samples, or after GRPO) and grade, then freeze. Bad input raises
        here, with its own exit code, before any check runs; only a run without samples is not an error."""
        examples, demos, _ = self.examples, self.demonstrations, self.grader  # the grader set up before sampling
        graded: tuple[GradedSample, ...] | str = _NO_SAMPLES
        if reads_samples or self.after_grpo is not None:
            try:
                graded = tuple(self.graded_samples)
            except Unavailable as exc:
                graded = str(exc)
        return EvidenceView(
            task=self.task,
            examples=tuple(examples),
            demonstrations=tuple(demos),
            graded_demonstrations=tuple(self.graded_demonstrations),
            vocabulary=tuple(self.vocabulary),
            after_grpo=MappingProxyType(dict(self.after_grpo)) if self.after_grpo is not None else None,
            previous=self.previous,
            samples_or_why=graded,
        )

    @property
    def vocabulary(self) -> list[str]:
        return list(getattr(self.grader, "vocabulary", []) or [])

    def close(self) -> None:
        if self._own_grader and self._grader is not None:
            self._grader.close()
