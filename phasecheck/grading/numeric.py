"""Numeric verifier: the last number in the answer against the reference, with abs/rel tolerance.

Numbers are read by a bounded regex into Fractions (digits and exponents capped), never eval'd.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from pydantic import Field

from .base import Judgement, StrictParams, Verifier, as_text

__all__ = ["Numeric", "parse_number", "last_number", "MAX_DIGITS", "MAX_EXPONENT"]

MAX_DIGITS = 400        # a longer literal is not a number a model should be graded on
MAX_EXPONENT = 400      # Fraction("1e999999999") would build a billion-digit integer

_NUM = r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+(?:[eE][-+]?\d+)?"
_FRAC = rf"(?P<fs>-)?\\[dt]?frac\s*\{{\s*(?P<fn>{_NUM})\s*\}}\s*\{{\s*(?P<fd>{_NUM})\s*\}}"
_SLASH = rf"(?P<sn>{_NUM})\s*/\s*(?P<sd>{_NUM})(?![\d.])"
_TIMES10 = rf"(?P<tm>{_NUM})\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*\{{?\s*(?P<te>[-+−]?\d+)\s*\}}?"
_ANY = re.compile(rf"{_FRAC}|{_TIMES10}|{_SLASH}|(?P<n>{_NUM})(?P<pct>\s*(?:\\%|%))?")
_WHOLE_NUM = re.compile(rf"\s*(?:{_NUM})\s*")
_NOISE = re.compile(r"\\[,!;: ]|\{,\}|\\left|\\right|\$")


def _literal(s: str) -> Fraction | None:
    s = s.replace(",", "").replace("−", "-").strip()
    mant, _, exp = s.lower().partition("e")
    if len(mant) > MAX_DIGITS or (exp and abs(int(exp)) > MAX_EXPONENT):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _value(m: re.Match) -> Fraction | None:
    g = m.groupdict()
    if g["fn"] is not None:
        n, d = _literal(g["fn"]), _literal(g["fd"])
        if n is None or not d:
            return None
        return -n / d if g["fs"] else n / d
    if g["tm"] is not None:
        mant, e = _literal(g["tm"]), int(g["te"].replace("−", "-"))
        return None if mant is None or abs(e) > MAX_EXPONENT else mant * Fraction(10) ** e
    if g["sn"] is not None:
        n, d = _literal(g["sn"]), _literal(g["sd"])
        return None if n is None or not d else n / d
    v = _literal(g["n"])
    if v is not None and g["pct"]:
        v /= 100
    return v


def last_number(text: str) -> Fraction | None:
    """The last number written in `text` (fractions, \\frac, a x 10^b, thousands commas, %), or None."""
    text = _NOISE.sub("", text)
    found = None
    for m in _ANY.finditer(text):
        found = m
    return _value(found) if found else None


def parse_number(text: str) -> Fraction | None:
    """`text` as an exact number when it is nothing but one number (after LaTeX noise), else None."""
    text = _NOISE.sub("", text).strip()
    m = _ANY.fullmatch(text)
    return _value(m) if m else None


def close(a: Fraction, b: Fraction, abs_tol: float, rel_tol: float) -> bool:
    if a == b:
        return True
    diff = abs(a - b)
    return diff <= Fraction(abs_tol) or diff <= Fraction(rel_tol) * max(abs(a), abs(b))


class Numeric(Verifier):
    """Correct when |answer - reference| <= abs_tol or <= rel_tol * max(|answer|, |reference|)."""

    class Params(StrictParams):
        abs_tol: float = Field(1e-6, ge=0, description="Absolute tolerance.")
        rel_tol: float = Field(1e-6, ge=0, description="Relative tolerance.")
        max_chars: int = Field(4000, gt=0, description="Longer answers are not searched for a number.")

    def judge_one(self, answer: str, reference: Any, row: dict) -> Judgement:
        p = self.params
        if isinstance(reference, (int, float)) and not isinstance(reference, bool):
            if not math.isfinite(reference):
                return Judgement.error(f"the reference {reference!r} is not a finite number")
            ref = Fraction(reference)
        else:
            ref = last_number(as_text(reference) or "")
        if ref is None:
            return Judgement.error(f"the reference {as_text(reference)!r} holds no number")
        if len(answer) > p.max_chars:
            return Judgement.unparsed(f"answer longer than {p.max_chars} characters")
        got = last_number(answer)
        if got is None:
            return Judgement.unparsed("no number found in the answer")
        ok = close(got, ref, p.abs_tol, p.rel_tol)
        return Judgement(1.0 if ok else 0.0, f"{float(got):g} {'==' if ok else '!='} {float(ref):g}")
