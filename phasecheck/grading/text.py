"""String verifiers: exact, normalized, regex, choice, and vocabulary (answers outside it are "invented")."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any, Literal

from pydantic import Field, field_validator

from ..errors import ConfigError
from .base import Judgement, StrictParams, Verifier, as_text

__all__ = ["Exact", "Normalized", "Regex", "Choice", "Vocabulary", "normalize_answer"]

_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_EDGE_PUNCT = " \t\n\"'`.,;:!?()[]{}*$"


def normalize_answer(s: str, case_sensitive: bool = False) -> str:
    """NFKC, LaTeX text wrappers and $ removed, edge punctuation stripped, whitespace collapsed."""
    s = unicodedata.normalize("NFKC", s)
    s = _LATEX_TEXT.sub(r"\1", s).replace("\\boxed", "")
    s = " ".join(s.split()).strip(_EDGE_PUNCT)
    return s if case_sensitive else s.casefold()


class Exact(Verifier):
    """Correct when the answer equals the reference (surrounding whitespace ignored unless strip is off)."""

    class Params(StrictParams):
        strip: bool = Field(True, description="Ignore leading/trailing whitespace.")

    def judge_one(self, answer: str, reference: Any, row: dict) -> Judgement:
        a, r = answer, as_text(reference) or ""
        if self.params.strip:
            a, r = a.strip(), r.strip()
        return Judgement(1.0 if a == r else 0.0, "exact match" if a == r else f"expected {r[:80]!r}")


class Normalized(Verifier):
    """Correct when answer and reference agree after normalize_answer (case, LaTeX text, punctuation)."""

    class Params(StrictParams):
        case_sensitive: bool = Field(False, description="Keep letter case when comparing.")

    def judge_one(self, answer: str, reference: Any, row: dict) -> Judgement:
        cs = self.params.case_sensitive
        a, r = normalize_answer(answer, cs), normalize_answer(as_text(reference) or "", cs)
        if not a:
            return Judgement.unparsed("the answer is empty after normalisation")
        return Judgement(1.0 if a == r else 0.0, "match" if a == r else f"expected {r[:80]!r}")


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str, flags: int) -> re.Pattern:
    return re.compile(pattern, flags)


class Regex(Verifier):
    """Correct when the answer matches `pattern` (or, with no pattern, the reference used as a regex)."""

    class Params(StrictParams):
        pattern: str | None = Field(None, description="Regex the answer must match; None uses each row's reference.")
        mode: Literal["fullmatch", "search"] = Field("fullmatch", description="Match the whole answer or any part.")
        ignore_case: bool = False
        max_chars: int = Field(10_000, gt=0, description="Longer answers are not matched (guards slow patterns).")

        @field_validator("pattern")
        @classmethod
        def _valid(cls, v: str | None) -> str | None:
            if v is not None:
                try:
                    re.compile(v)
                except re.error as exc:
                    raise ValueError(f"invalid regex ({exc})") from None
            return v

    def __init__(self, params=None, vocabulary=None, **context):
        super().__init__(params, vocabulary, **context)
        self.needs_reference = self.params.pattern is None

    def judge_one(self, answer: str, reference: Any, row: dict) -> Judgement:
        p = self.params
        if len(answer) > p.max_chars:
            return Judgement.unparsed(f"answer longer than {p.max_chars} characters")
        pattern = p.pattern if p.pattern is not None else as_text(reference)
        try:
            rx = _compiled(pattern, re.IGNORECASE if p.ignore_case else 0)
        except re.error as exc:
            return Judgement.error(f"the reference {pattern[:60]!r} is not a valid regex ({exc})")
        m = rx.fullmatch(answer.strip()) if p.mode == "fullmatch" else rx.search(answer)
        return Judgement(1.0 if m else 0.0, "matches" if m else f"does not match {pattern[:60]!r}")


_LETTER_ALONE = re.compile(r"^\(?\s*([A-Za-z])\s*\)?[.:)]?$")
_LETTER_STATED = re.compile(r"(?i:answer|option|choice)\s*(?:is|:|=)?\s*[:(\[]?\s*([A-Z])\b(?![-'])")
_LETTER_LEADING = re.compile(r"^\(?([A-Z])[).:]\s")


class Choice(Verifier):
    """Multiple choice: the answer's letter (or a `choices` option's text) equals the reference letter."""

    class Params(StrictParams):
        letters: str = Field("ABCDEFGHIJKLMNOPQRSTUVWXYZ", description="Valid option labels, in order.")

    def _letter(self, text: str, choices: list | None) -> str | None:
        text = text.strip()
        letters = self.params.letters.upper()
        for rx in (_LETTER_ALONE, _LETTER_LEADING):
            m = rx.match(text)
            if m and m.group(1).upper() in letters:
                return m.group(1).upper()
        stated = [m.group(1) for m in _LETTER_STATED.finditer(text) if m.group(1) in letters]
        if stated:
            return stated[-1]
        if choices:
            norm = normalize_answer(text)
            for i, c in enumerate(choices):
                if i < len(letters) and normalize_answer(str(c)) == norm:
                    return letters[i]
        return None

    def judge_one(self, answer: str, reference: Any, row: dict) -> Judgement:
        choices = row.get("choices")
        choices = list(choices) if isinstance(choices, (list, tuple)) else None
        ref = self._letter(as_text(reference) or "", choices)
        if ref is None:
            return Judgement.error(f"the reference {as_text(reference)!r} names no option")
        got = self._letter(answer, choices)
        if got is None:
            return Judgement.unparsed("no option letter found in the answer")
        return Judgement(1.0 if got == ref else 0.0, f"chose {got}, expected {ref}")


class Vocabulary(Verifier):
    """The answer must be a known term; with a reference it must be that term. Unknown answers are invented."""

    needs_reference = False

    class Params(StrictParams):
        case_sensitive: bool = Field(False, description="Match vocabulary terms with letter case.")
        partial: float = Field(0.5, ge=0, le=1, description="Score when the reference is named among other terms.")

    def __init__(self, params=None, vocabulary=None, **context):
        super().__init__(params, vocabulary, **context)
        if not self.vocabulary:
            raise ConfigError(
                "grader.vocabulary: the vocabulary verifier needs known terms "
                "(a list, or a file with one term per line)"
            )
        cs = self.params.case_sensitive
        self._canon = {normalize_answer(t, cs): t for t in self.vocabulary}
        terms = sorted({t.strip() for t in self.vocabulary if t.strip()}, key=len, reverse=True)
        # Tag-like terms contain - _ . : so a term must not be glued to more of those characters.
        self._find = re.compile(
            r"(?<![\w\-.:/])(?:" + "|".join(map(re.escape, terms)) + r")(?![\w\-:/]|\.\w)", 0 if cs else re.IGNORECASE
        )

    def terms_in(self, text: str) -> list[str]:
        """Vocabulary terms named in `text`, canonical spelling, first mention order, no repeats."""
        cs = self.params.case_sensitive
        seen: dict[str, None] = {}
        for m in self._find.finditer(text):
            seen.setdefault(self._canon.get(normalize_answer(m.group(0), cs), m.group(0)), None)
        return list(seen)

    def judge_one(self, answer: str, reference: Any, row: dict) -> Judgement:
        cs = self.params.case_sensitive
        whole = self._canon.get(normalize_answer(answer, cs))
        named = [whole] if whole else self.terms_in(answer)
        if not named:
            return Judgement(0.0, f"invented: {answer.strip()[:80]!r} is not a known term")
        ref = as_text(reference)
        if ref is None:
            return Judgement(1.0, f"known term {named[0]!r}")
        ref_key = normalize_answer(ref, cs)
        hits = [t for t in named if normalize_answer(t, cs) == ref_key]
        if hits and len(named) == 1:
            return Judgement(1.0, f"named {hits[0]!r}")
        if hits:
            return Judgement(self.params.partial, f"named {ref!r} among {len(named)} terms")
        return Judgement(0.0, f"named the real term {named[0]!r}, expected {ref!r}")
