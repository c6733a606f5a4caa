"""Refusal verifier: correct when the answer declines (an unknown tag) without naming a real vocabulary term."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import Judgement, StrictParams, Verifier
from .extract import REFUSAL_PHRASES, find_phrase
from .text import Vocabulary

__all__ = ["Refusal", "is_refusal"]


def is_refusal(text: str, phrases: list[str] | None = None) -> str | None:
    """The refusal phrase found in `text` (case-insensitive, whole words), or None."""
    return find_phrase(text, phrases if phrases is not None else REFUSAL_PHRASES)


class Refusal(Verifier):
    """1.0 when the answer refuses and names no known term; 0.0 when it answers, or refuses yet names one."""

    needs_reference = False

    class Params(StrictParams):
        phrases: list[str] | None = Field(None, description="Replaces the built-in refusal phrases.")
        forbid_vocabulary: bool = Field(True, description="Naming a real vocabulary term is wrong even in a refusal.")

    def __init__(self, params=None, vocabulary=None, **context: Any):
        super().__init__(params, vocabulary, **context)
        self._vocab = Vocabulary(Vocabulary.Params(), self.vocabulary) if self.vocabulary else None

    def judge_one(self, answer: str, reference: Any, row: dict) -> Judgement:
        named = self._vocab.terms_in(answer) if self._vocab and self.params.forbid_vocabulary else []
        phrase = is_refusal(answer, self.params.phrases)
        if named:
            return Judgement(0.0, f"named the real term {named[0]!r} instead of refusing")
        if phrase:
            return Judgement(1.0, f"refused ({phrase!r})")
        return Judgement(0.0, "answered instead of refusing")
