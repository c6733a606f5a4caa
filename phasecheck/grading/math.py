"""Math verifier: math-verify equivalence, every parse/verify in a killable worker process under a timeout.

A cheap exact fast path (equal strings, or both plain numbers) answers most pairs without sympy; the
rest are deduplicated and sent to the pool, where each worker parses each distinct text once (LRU).
"""
from __future__ import annotations

import functools
import re
from typing import Any, Sequence

from pydantic import Field

from .base import Judgement, StrictParams, Verifier, as_text, reference_list
from .numeric import parse_number
from .pool import ERROR, OK, TIMEOUT, TimeoutPool, shared_pool

__all__ = ["Math", "fast_verdict", "judge_pair"]

_DELIMS = ("$", "\\(", "\\[", "\\boxed", "\\begin")
_LATEX_CMD = re.compile(r"\\[A-Za-z]+")


_WORDS = re.compile(r"(?<!\\)\b[A-Za-z]{2,}")      # prose or units, not \\frac or x^2


@functools.lru_cache(maxsize=8192)
def _parse(text: str) -> tuple:
    from math_verify import parse
    # Our pool enforces the timeout; math-verify's own SIGALRM one is off (it only works on a main thread).
    if any(d in text for d in _DELIMS):
        return tuple(parse(text, parsing_timeout=None))
    # A bare "[1, 2)" or "(x+1)^2" needs math mode (outside it math-verify reads "[1, 2)" as 2);
    # text with words ("7 apples") reads better as prose first.
    tries = [text, f"${text}$"] if _WORDS.search(_LATEX_CMD.sub("", text)) else [f"${text}$", text]
    for t in tries:
        got = parse(t, parsing_timeout=None)
        if got:
            return tuple(got)
    return ()


def judge_pair(reference: str, answer: str, opts: tuple) -> tuple[str, str]:
    """Runs in a worker: ("correct"|"wrong"|"unparsed"|"bad_reference", detail)."""
    from math_verify import verify
    float_rounding, numeric_precision, strict, allow_set_relation = opts
    gold = _parse(reference)
    if not gold:
        return "bad_reference", f"math-verify cannot parse the reference {reference[:60]!r}"
    pred = _parse(answer)
    if not pred:
        return "unparsed", "math-verify found no expression in the answer"
    ok = verify(list(gold), list(pred), float_rounding=float_rounding, numeric_precision=numeric_precision,
                strict=strict, allow_set_relation_comp=allow_set_relation, timeout_seconds=None)
    shown = pred[-1] if isinstance(pred[-1], str) else ""   # str() of a sympy object can itself be slow
    return ("correct" if ok else "wrong"), (f"{shown[:60]!r} " if shown else "") + ("==" if ok else "!=") + " reference"


def _plain(s: str) -> str:
    s = s.strip().strip("$").strip()
    if s.startswith("\\boxed{") and s.endswith("}"):
        s = s[7:-1].strip()
    return " ".join(s.split()).rstrip(".")


def fast_verdict(reference: str, answer: str) -> Judgement | None:
    """A verdict math-verify would also reach, without sympy; None when only math-verify can tell."""
    a, r = _plain(answer), _plain(reference)
    if a and a == r:
        return Judgement(1.0, "same text as the reference")
    na, nr = parse_number(a), parse_number(r)
    if na is not None and nr is not None:
        if na == nr:
            return Judgement(1.0, "same number as the reference")
        if na.denominator == 1 and nr.denominator == 1:
            return Judgement(0.0, f"{na} != {nr}")
        # two unequal non-integers may still agree after math-verify's rounding: let it decide
    return None


class Math(Verifier):
    """Correct when math-verify finds the answer equivalent to the reference (sympy, in the worker pool)."""

    class Params(StrictParams):
        float_rounding: int = Field(6, ge=0, le=50, description="Decimal places floats are rounded to.")
        numeric_precision: int = Field(15, ge=1, le=100, description="Digits for numeric comparison.")
        strict: bool = Field(True, description="Variables matter and sets differ from tuples.")
        allow_set_relation_comp: bool = Field(False, description="Compare sets with relations (1<x<2 vs (1,2)).")
        max_chars: int = Field(2000, gt=0, description="Longer answers are not parsed (guards sympy memory).")
        fast_path: bool = Field(True, description="Decide equal strings / plain numbers without sympy.")

    def __init__(self, params=None, vocabulary=None, **context: Any):
        super().__init__(params, vocabulary, **context)
        self.timeout = float(context.get("timeout") or 5.0)
        self._pool: TimeoutPool | None = context.get("pool")
        self._workers = int(context.get("workers") or 0)

    @property
    def pool(self) -> TimeoutPool:
        if self._pool is None:          # lazily: a task that never reaches sympy never spawns a process
            self._pool = shared_pool(self._workers)
        return self._pool

    def judge(self, answers: Sequence[str | None], **columns: Any) -> list[Judgement]:
        p = self.params
        refs = reference_list(columns, len(answers))
        out: list[Judgement | None] = [None] * len(answers)
        todo: dict[tuple[str, str], list[int]] = {}
        for i, (a, r) in enumerate(zip(answers, refs)):
            ref = as_text(r)
            if a is None or not a.strip():
                out[i] = Judgement.unparsed("no answer found in the completion")
            elif ref is None:
                out[i] = Judgement.error("the example has no reference answer")
            elif len(a) > p.max_chars:
                out[i] = Judgement.unparsed(f"answer longer than {p.max_chars} characters; not parsed")
            elif len(ref) > 50 * p.max_chars:
                out[i] = Judgement.error("the reference is too long to parse")
            elif p.fast_path and (fast := fast_verdict(ref, a)) is not None:
                out[i] = fast
            else:
                todo.setdefault((ref, a), []).append(i)
        if todo:
            opts = (p.float_rounding, p.numeric_precision, p.strict, p.allow_set_relation_comp)
            keys = list(todo)
            results = self.pool.map(judge_pair, [(r, a, opts) for r, a in keys], self.timeout)
            for key, (status, value) in zip(keys, results):
                j = self._to_judgement(status, value)
                for i in todo[key]:
                    out[i] = j
        return out  # type: ignore[return-value]

    def _to_judgement(self, status: str, value: Any) -> Judgement:
        if status == TIMEOUT:
            return Judgement.timeout(f"math-verify took longer than {self.timeout:g}s; worker killed")
        if status == ERROR or status != OK:
            return Judgement.error(f"math-verify failed: {value}")
        verdict, detail = value
        if verdict == "correct":
            return Judgement(1.0, detail)
        if verdict == "wrong":
            return Judgement(0.0, detail)
        if verdict == "unparsed":
            return Judgement.unparsed(detail)
        return Judgement.error(detail)
