"""Math verifier: math-verify equivalence, every parse/verify in a killable worker process under a CPU budget.

Lone numbers (with currency, percent, units or digit-group separators) are read by our own number reader on
both sides, so the fast path and the worker agree; everything else goes to math-verify in the worker pool.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from .base import Judgement, StrictParams, Verifier, as_text, reference_list
from .extract import final_answer
from .numeric import Quantity, read_quantity
from .pool import ERROR, OK, TIMEOUT, TimeoutPool, shared_pool

__all__ = ["Math", "fast_verdict", "judge_pair", "reading", "unbold"]

# Unescaped $, \( \[ or a box: math-verify finds the math itself. "\$" is currency and \begin{..} is
# content, not a delimiter, so neither stops a bare text from being read in math mode.
_DELIM = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed|\\fbox")
# Not prose: words inside \text{} and the like, and environment names (\begin{pmatrix} is a matrix).
_TEXT_GROUP = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname|begin|end)\s*\{[^{}]*\}")
# Bold is typeface: math-verify misreads "\frac{\mathbf{9}}{\mathbf{3 2}}" (as 2), so a bold group is read as a
# plain one. Spaces between its digits go, as TeX ignores spaces in math mode (PDF-to-LaTeX tools bold digit by digit).
_BOLD = re.compile(r"\\(?:mathbf|textbf|boldsymbol|bm|pmb)\s*\{([^{}]*)\}")
_DIGIT_SPACE = re.compile(r"(?<=[\d.])\s+(?=[\d.])")
_ARGUMENT = re.compile(r"(?:[\^_]|\\[A-Za-z]+)\s*$")  # what takes the next group as its argument
_STOP = re.compile(r"(?<=\d)\.\s*$")  # "\mathbf{1 1 .}": the sentence's full stop, bolded with the number
_LATEX_CMD = re.compile(r"\\[A-Za-z]+")
_WORDS = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")  # prose or units, not \frac or x^2


def unbold(text: str) -> str:
    """`text` with bold groups read as their content (`= \\mathbf{1 4 4}` -> `= 144`); braces stay where an
    argument needs them (`x^\\mathbf{12}` -> `x^{12}`), as math-verify does not read `= {144}.`."""
    if "\\" not in text:
        return text

    def plain(m: re.Match) -> str:
        inner = _STOP.sub("", _DIGIT_SPACE.sub("", m.group(1)))
        return "{" + inner + "}" if _ARGUMENT.search(text, max(0, m.start() - 30), m.start()) else inner

    return _BOLD.sub(plain, text)


def reading(text: str, role: Literal["reference", "answer"]) -> tuple[str, ...]:
    """The texts to hand math-verify for `text`, tried in order until one parses.

    A reference is bare LaTeX unless it has its own delimiters, so it is read in math mode first. An answer
    with delimiters is read as math-verify reads it by default; prose ("7 apples") is read as prose first."""
    if role == "reference" and "$,$" in text and not text.lstrip().startswith("$"):
        return (f"${text.replace('$,$', ', ')}$", text)  # OlympiadBench lists answers as "a$,$b"
    if _DELIM.search(text):
        return (text,)
    wrapped = f"${text}$"
    if role == "reference":
        return (wrapped, text)
    words = _WORDS.search(_LATEX_CMD.sub(" ", _TEXT_GROUP.sub(" ", text)))
    return (text, wrapped) if words else (wrapped, text)


def _latex(q: Quantity) -> str:
    """A number as plain LaTeX math-verify reads exactly: an integer, a terminating decimal, or \\frac."""
    v = q.value
    sign, v = ("-" if v < 0 else ""), abs(v)
    if v.denominator == 1:
        return f"{sign}{v.numerator}"
    d, twos, fives = v.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d == 1:
        places = max(twos, fives)
        whole, frac = divmod(v.numerator * 10**places // v.denominator, 10**places)
        return f"{sign}{whole}.{frac:0{places}d}"
    return f"{sign}\\frac{{{v.numerator}}}{{{v.denominator}}}"


def _numbers(reference: str, answer: str) -> tuple[Quantity | None, Quantity | None]:
    ref = read_quantity(reference, decimal_comma=False)
    # Units and currency around the answer are ignored only against a bare-number reference.
    ans = read_quantity(answer, units=ref is not None, decimal_comma=True)
    return ref, ans


def _compare(ref: Quantity, ans: Quantity) -> Judgement | None:
    notes = "".join(f"; {n} ignored" for n in ans.notes)
    if ans.value == ref.value:
        return Judgement(1.0, "same number as the reference" + notes)
    if ans.percent != ref.percent and ans.written == ref.written:  # math-verify reads 25% as 25 or 0.25
        return Judgement(1.0, "same number as the reference (percent read as its number)" + notes)
    if ans.value.denominator == 1 and ref.value.denominator == 1 and ans.written.denominator == 1:
        return Judgement(0.0, f"{_latex(ans)} != {_latex(ref)}" + notes)
    return None  # two unequal non-integers may still agree after math-verify's rounding: let it decide


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
    ref, ans = _numbers(reference, answer)
    return _compare(ref, ans) if ref is not None and ans is not None else None


@functools.lru_cache(maxsize=8192)
def _parse(forms: tuple[str, ...]) -> tuple:
    from math_verify import parse

    # Our pool enforces the time budget; math-verify's own SIGALRM one is off (it only works on a main thread).
    for text in forms:
        got = parse(text, parsing_timeout=None)
        if got:
            return tuple(got)
    return ()


def warm_up() -> None:
    """Build math-verify's LaTeX parser once in a fresh worker (about a second of CPU on its first use)."""
    judge_pair(("$\\frac{1}{2}+x^2$",), ("$0.5+x^{2}$",), (6, 15, True, False))
    _parse.cache_clear()


def judge_pair(reference: tuple[str, ...], answer: tuple[str, ...], opts: tuple) -> tuple[str, str]:
    """Runs in a worker: ("correct"|"wrong"|"unparsed"|"bad_reference", detail). Args are `reading` tuples."""
    from math_verify import verify

    float_rounding, numeric_precision, strict, allow_set_relation = opts
    gold = _parse(reference)
    if not gold:
        return "bad_reference", f"math-verify cannot parse the reference {reference[-1][:60]!r}"
    pred = _parse(answer)
    if not pred:
        return "unparsed", "math-verify found no expression in the answer"
    ok = verify(
        list(gold),
        list(pred),
        float_rounding=float_rounding,
        numeric_precision=numeric_precision,
        strict=strict,
        allow_set_relation_comp=allow_set_relation,
        timeout_seconds=None,
    )
    shown = pred[-1] if isinstance(pred[-1], str) else ""  # str() of a sympy object can itself be slow
    return ("correct" if ok else "wrong"), (f"{shown[:60]!r} " if shown else "") + ("==" if ok else "!=") + " reference"


class Math(Verifier):
    """Correct when math-verify finds the answer equivalent to the reference (sympy, in the worker pool)."""

    default_extract = "final"

    class Params(StrictParams):
        float_rounding: int = Field(6, ge=0, le=50, description="Decimal places floats are rounded to.")
        numeric_precision: int = Field(15, ge=1, le=100, description="Digits for numeric comparison.")
        strict: bool = Field(True, description="Variables matter and sets differ from tuples.")
        allow_set_relation_comp: bool = Field(False, description="Compare sets with relations (1<x<2 vs (1,2)).")
        max_chars: int = Field(
            2000,
            gt=0,
            description="An answer longer than this is judged by its final answer "
            "(boxed, answer line, last math span); if that is still "
            "longer, the outcome is too_long (guards sympy memory).",
        )
        fast_path: bool = Field(True, description="Decide equal strings / lone numbers without sympy.")
        clock: Literal["cpu", "wall"] = Field(
            "cpu",
            description="What `timeout` measures: the worker's CPU "
            "seconds (a verdict that does not change with machine load) or "
            "wall-clock seconds.",
        )
        wall_factor: float = Field(
            10.0,
            ge=1.0,
            description="With clock cpu, a judgement is also stopped after "
            "timeout x this many wall-clock seconds (a stalled worker, or one starved on a "
            "machine loaded about this many times over) and retried once on a fresh worker "
            "before it counts as a timeout. Hostile sympy input burns CPU, so the CPU "
            "budget, not this cap, stops it.",
        )

    def __init__(self, params=None, vocabulary=None, **context: Any):
        super().__init__(params, vocabulary, **context)
        self.timeout = float(context.get("timeout") or 5.0)
        self._pool: TimeoutPool | None = context.get("pool")
        self._workers = int(context.get("workers") or 0)

    @property
    def pool(self) -> TimeoutPool:
        if self._pool is None:  # lazily: a task that never reaches sympy never spawns a process
            self._pool = shared_pool(self._workers)
        return self._pool

    def _shorten(self, answer: str) -> tuple[str | None, str]:
        """A long answer's final answer, and a note saying so; None when even that is too long."""
        got, source = final_answer(answer, self.params.max_chars)
        if got is None or len(got) > self.params.max_chars:
            return None, ""
        return got, f"; judged its final answer ({source.replace('_', ' ')}) of a {len(answer)}-character answer"

    def _prejudge(self, a: str | None, ref: str | None) -> tuple[Judgement | None, str, str]:
        """A verdict reached without the pool (or None), the answer to send on, and a note for its detail."""
        p = self.params
        if a is None or not a.strip():
            return Judgement.unparsed("no answer found in the completion"), "", ""
        if ref is None:
            return Judgement.error("the example has no reference answer"), "", ""
        if len(ref) > 50 * p.max_chars:
            return Judgement.error("the reference is too long to parse"), "", ""
        note = ""
        if len(a) > p.max_chars:
            a, note = self._shorten(a)
            if a is None:
                return (
                    Judgement.too_long(
                        f"answer longer than {p.max_chars} characters and no shorter final "
                        "answer found in it; not parsed"
                    ),
                    "",
                    "",
                )
        if p.fast_path and (fast := fast_verdict(ref, a)) is not None:
            return Judgement(fast.score, fast.detail + note), a, note
        return None, a, note

    def judge(self, answers: Sequence[str | None], **columns: Any) -> list[Judgement]:
        p = self.params
        refs = reference_list(columns, len(answers))
        out: list[Judgement | None] = [None] * len(answers)
        todo: dict[tuple, list[tuple[int, str]]] = {}
        for i, (a, r) in enumerate(zip(answers, refs)):
            ref = as_text(r)
            done, a, note = self._prejudge(a and unbold(a), ref and unbold(ref))
            if done is not None:
                out[i] = done
                continue
            rq, aq = _numbers(ref, a)
            ref_forms = (f"${_latex(rq)}$",) if rq is not None else reading(ref, "reference")
            ans_forms = (f"${_latex(aq)}$",) if rq is not None and aq is not None else reading(a, "answer")
            todo.setdefault((ref_forms, ans_forms), []).append((i, note))
        if todo:
            opts = (p.float_rounding, p.numeric_precision, p.strict, p.allow_set_relation_comp)
            keys = list(todo)
            results = self.pool.map(
                judge_pair, [(r, a, opts) for r, a in keys], self.timeout, clock=p.clock, wall_factor=p.wall_factor
            )
            for key, (status, value) in zip(keys, results):
                j = self._to_judgement(status, value)
                for i, note in todo[key]:
                    out[i] = Judgement(j.score, j.detail + note, j.why) if note else j
        return out  # type: ignore[return-value]

    def _to_judgement(self, status: str, value: Any) -> Judgement:
        if status == TIMEOUT:
            return Judgement.timeout(f"math-verify ran past its budget ({value}); worker killed")
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
