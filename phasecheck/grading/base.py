"""The verifier base class: `score` (TRL-style) on top of `judge`, which also says why it could not judge."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from pydantic import BaseModel

from ..errors import VerifierError
from ..strict import Strict

__all__ = ["Judgement", "Verifier", "StrictParams", "reference_list", "as_text"]

# Why a verifier returned None: the Grader turns these into Grade outcomes.
UNPARSED, TIMEOUT, ERROR, TOO_LONG = "unparsed", "timeout", "error", "too_long"


StrictParams = Strict          # the base of every verifier's Params


@dataclass(frozen=True, slots=True)
class Judgement:
    """score in [0, 1] (None = cannot judge); `why` is unparsed|timeout|too_long|error when score is None."""

    score: float | None
    detail: str = ""
    why: str | None = None

    @classmethod
    def unparsed(cls, detail: str) -> "Judgement":
        return cls(None, detail, UNPARSED)

    @classmethod
    def error(cls, detail: str) -> "Judgement":
        return cls(None, detail, ERROR)

    @classmethod
    def timeout(cls, detail: str) -> "Judgement":
        return cls(None, detail, TIMEOUT)

    @classmethod
    def too_long(cls, detail: str) -> "Judgement":
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
    """Built-in verifiers: `cls(params, vocabulary=None, **context)`; context may carry timeout, pool, base_dir."""

    Params: ClassVar[type[BaseModel]] = StrictParams
    needs_reference: ClassVar[bool] = True

    def __init__(self, params: BaseModel | None = None, vocabulary: list[str] | None = None, **context: Any):
        self.params = params if params is not None else self.Params()
        self.vocabulary = list(vocabulary or [])
        self.context = context

    def judge(self, answers: Sequence[str | None], **columns: Any) -> list[Judgement]:
        refs = reference_list(columns, len(answers))
        out = []
        for i, (a, r) in enumerate(zip(answers, refs)):
            if a is None:
                out.append(Judgement.unparsed("no answer found in the completion"))
            elif r is None and self.needs_reference:
                out.append(Judgement.error("the example has no reference answer"))
            else:
                row = {k: (v[i] if isinstance(v, (list, tuple)) and len(v) == len(answers) else v)
                       for k, v in columns.items() if k != "reference"}
                out.append(self.judge_one(a, r, row))
        return out

    def judge_one(self, answer: str, reference: Any, row: dict[str, Any]) -> Judgement:
        raise NotImplementedError

    def score(self, answers: list[str | None], **columns: Any) -> list[float | None]:
        """1.0 correct, 0.0 wrong, in between partial, None cannot judge; one per answer."""
        return [j.score for j in self.judge(answers, **columns)]
