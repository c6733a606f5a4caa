"""The verifier contract: `Verifier`, whose `judge` (what the Grader calls) also says why it could not judge,
built from whichever of `judge`, `judge_one` or TRL-style `score` a plugin writes; and `Judgement`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from ..errors import VerifierError
from ..strict import Strict

__all__ = [
    "Judgement",
    "Verifier",
    "StrictParams",
    "reference_list",
    "as_text",
    "as_verifier",
    "judgements_from_scores",
]

# Why a verifier returned None: the Grader turns these into Grade outcomes.
UNPARSED, TIMEOUT, ERROR, TOO_LONG = "unparsed", "timeout", "error", "too_long"


StrictParams = Strict  # the base of every verifier's Params


@dataclass(frozen=True, slots=True)
class Judgement:
    """score in [0, 1] (None = cannot judge); `why` is unparsed|timeout|too_long|error when score is None."""

    score: float | None
    detail: str = ""
    why: str | None = None

    @classmethod
    def unparsed(cls, detail: str) -> Judgement:
        return cls(None, detail, UNPARSED)

    @classmethod
    def error(cls, detail: str) -> Judgement:
        return cls(None, detail, ERROR)

    @classmethod
    def timeout(cls, detail: str) -> Judgement:
        return cls(None, detail, TIMEOUT)

    @classmethod
    def too_long(cls, detail: str) -> Judgement:
        return cls(None, detail, TOO_LONG)


def as_text(value: Any) -> str | None:
    """A reference or answer cell as text; lists become their first element's text."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return as_text(value[0]) if value else None
    return str(value)


def reference_list(columns: dict[str, Any], n: int, name: str = "reference") -> list[Any]:
    """The `reference` column, checked to be aligned with the answers (None everywhere when absent)."""
    refs = columns.get(name)
    if refs is None:
        return [None] * n
    if not isinstance(refs, (list, tuple)) or len(refs) != n:
        got = len(refs) if isinstance(refs, (list, tuple)) else type(refs).__name__
        raise VerifierError(f"column {name!r} has {got} values for {n} answers; pass one per answer")
    return list(refs)


class Verifier:
    """The verifier contract: what a `phasecheck.verifiers` plugin implements, and what it gets.

    The Grader calls one method, `judge(answers, **columns) -> list[Judgement]`, one Judgement per answer.
    A plugin writes whichever of three is natural, and `judge` comes from it:

    - `score(answers, **columns) -> list[float | None]`: TRL's reward shape; 1.0 correct, 0.0 wrong, in
      between partial credit, None cannot judge (unparsed when the answer is None, else an error).
    - `judge(answers, **columns) -> list[Judgement]`: the same, with a detail and why a None was given.
    - `judge_one(answer, reference, row) -> Judgement`: one answer at a time. The base skips a missing
      answer (unparsed) and, when `needs_reference`, a missing reference (error).

    Precedence, when a class writes more than one: judge, then judge_one, then score. It is decided once,
    when the class is defined, so nothing asks which one at grading time.

    `answers` are what extraction pulled out of each completion (None: nothing found); `columns` holds one
    list per column, aligned with the answers: `reference`, `scenario`, `id`, `prompt`, then every other
    data column. Built with `cls(params, vocabulary=[...], **context)`: `params` is the plugin's own
    validated `Params` (the task's `grader.verifier` keys other than kind, extract and timeout), `vocabulary`
    the task's known terms, and `context` carries `kind` (the task's name for the plugin), `timeout`,
    `pool` (the shared worker pool for slow judging), `workers` and `base_dir` (the task file's directory).
    Class attributes: `Params`, `needs_reference` (the TRL reward function refuses a dataset without the
    reference column), and optionally `default_extract` (the extraction used when the task sets none).

    A plugin that does not subclass Verifier but has `Params` and `judge` or `score` is wrapped once when
    it is loaded (`as_verifier`); it is built as `cls(params, vocabulary=[...])`.
    """

    Params: ClassVar[type[BaseModel]] = StrictParams
    needs_reference: ClassVar[bool] = True

    def __init__(self, params: BaseModel | None = None, vocabulary: list[str] | None = None, **context: Any):
        self.params = params if params is not None else self.Params()
        self.vocabulary = list(vocabulary or [])
        self.context = context
        self.kind: str = context.get("kind") or type(self).__name__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A class that writes only `score` (TRL's way) is judged through it. Decided here, once per class,
        # so the Grader calls judge() and never asks which method a plugin wrote.
        if cls.judge in (Verifier.judge, Verifier._judge_scores):  # judge not written by the plugin
            rows = cls.judge_one is not Verifier.judge_one
            scores = cls.score is not Verifier.score
            derived = Verifier._judge_scores if scores and not rows else Verifier.judge
            cls.judge = derived  # type: ignore[method-assign]

    def judge(self, answers: Sequence[str | None], **columns: Any) -> list[Judgement]:
        """One Judgement per answer (the method the Grader calls); by default `judge_one` per answer."""
        refs = reference_list(columns, len(answers))
        out = []
        for i, (a, r) in enumerate(zip(answers, refs)):
            if a is None:
                out.append(Judgement.unparsed("no answer found in the completion"))
            elif r is None and self.needs_reference:
                out.append(Judgement.error("the example has no reference answer"))
            else:
                row = {
                    k: (v[i] if isinstance(v, (list, tuple)) and len(v) == len(answers) else v)
                    for k, v in columns.items()
                    if k != "reference"
                }
                out.append(self.judge_one(a, r, row))
        return out

    def judge_one(self, answer: str, reference: Any, row: dict[str, Any]) -> Judgement:
        """One answer's Judgement; `row` holds the example's other columns."""
        raise NotImplementedError(f"{type(self).__name__} implements none of judge, judge_one, score")

    def score(self, answers: list[str | None], **columns: Any) -> list[float | None]:
        """1.0 correct, 0.0 wrong, in between partial, None cannot judge; one per answer."""
        return [j.score for j in self.judge(answers, **columns)]

    def _judge_scores(self, answers: Sequence[str | None], **columns: Any) -> list[Judgement]:
        """`judge` for a class that writes only `score`: its floats wrapped, a None told apart by its answer."""
        return judgements_from_scores(self.kind, answers, self.score(list(answers), **columns))


def judgements_from_scores(kind: str, answers: Sequence[str | None], scores: Sequence[float | None]) -> list[Judgement]:
    """TRL-style scores as Judgements: a None is unparsed when its answer is None, else an error."""
    return [
        Judgement(float(s), f"{kind} scored {float(s):g}")
        if s is not None
        else Judgement(None, f"{kind} could not judge", UNPARSED if a is None else ERROR)
        for a, s in zip(answers, scores)
    ]


class _Wrapped(Verifier):
    """A plugin that does not subclass Verifier, adapted once when it is loaded."""

    def __init__(self, plugin: Any, kind: str):
        super().__init__(kind=kind)
        self.plugin = plugin
        self.needs_reference = bool(getattr(plugin, "needs_reference", False))
        own = getattr(plugin, "judge", None)
        self._judge = own if callable(own) else self._judge_plugin_scores

    def judge(self, answers: Sequence[str | None], **columns: Any) -> list[Judgement]:
        return self._judge(answers, **columns)

    def _judge_plugin_scores(self, answers: Sequence[str | None], **columns: Any) -> list[Judgement]:
        return judgements_from_scores(self.kind, answers, self.plugin.score(answers, **columns))


def as_verifier(plugin: Any, kind: str) -> Verifier:
    """A built plugin as a Verifier: a subclass is itself; any other object with `judge` or `score` is
    wrapped (called once, at load, so the Grader only ever calls `judge`)."""
    return plugin if isinstance(plugin, Verifier) else _Wrapped(plugin, kind)


def contract_problems(cls: Any) -> list[str]:
    """What a verifiers plugin lacks (empty when it keeps the contract); plugins.py reports them."""
    problems = []
    if not hasattr(cls, "Params"):
        problems.append("missing class attribute `Params` (a pydantic model)")
    if isinstance(cls, type) and issubclass(cls, Verifier):
        written = [m for m in ("judge", "judge_one", "score") if getattr(cls, m) is not getattr(Verifier, m)]
        if not written:
            problems.append("implements none of `judge`, `judge_one`, `score`")
    elif not (callable(getattr(cls, "judge", None)) or callable(getattr(cls, "score", None))):
        problems.append("missing method `score(answers, **columns)` (or `judge`)")
    return problems
