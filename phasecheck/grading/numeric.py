"""Numeric verifier, and the one number reader the numeric and math verifiers share.

Numbers are read by bounded regexes into Fractions (digits and exponents capped), never eval'd. A text
that is one number (with currency, percent or units around it) is read whole; otherwise the last number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pydantic import Field

from .base import Judgement, StrictParams, Verifier, as_text

__all__ = ["Numeric", "Quantity", "read_quantity", "parse_number", "last_number", "MAX_DIGITS", "MAX_EXPONENT"]

MAX_DIGITS = 400  # a longer literal is not a number a model should be graded on
MAX_EXPONENT = 400  # Fraction("1e999999999") would build a billion-digit integer

# Thousands groups need a non-zero lead ("0,111" is not 111); exponents are part of a literal.
_NUM = r"[-+−]?(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+(?:[eE][-+]?\d+)?"
_FRAC = rf"(?P<fs>-)?\\[dt]?frac\s*\{{\s*(?P<fn>{_NUM})\s*\}}\s*\{{\s*(?P<fd>{_NUM})\s*\}}"
_SLASH = rf"(?P<sn>{_NUM})\s*/\s*(?P<sd>{_NUM})(?![\d.])"
_TIMES10 = rf"(?P<tm>{_NUM})\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*\{{?\s*(?P<te>[-+−]?\d+)\s*\}}?"
_POW10 = r"(?P<ps>-)?10\s*\^\s*\{?\s*(?P<pe>[-+−]?\d+)\s*\}?"
_ANY = re.compile(rf"{_FRAC}|{_TIMES10}|{_POW10}|{_SLASH}|(?P<n>{_NUM})(?P<pct>\s*(?:\\%|%))?")
_NOISE = re.compile(r"\\[,!;: ]|\{,\}|\\left|\\right|\$")
# A digit group separator: LaTeX thin spaces, {,}, ",\!", no-break/thin spaces, or (in a lone number) a space.
_SEP = re.compile(r"(?<=\d)(?:\{,\}|,\\!|\\[,!; ]|~|[\u00a0\u2009\u202f]| )(?=\d{3}(?!\d))")
_UNIT_EXPONENT = re.compile(r"(?:[A-Za-z]|\\circ|\})\s*\^\s*\{?\s*$")  # the 2 of "cm^2" is no answer

# Around a lone number: wrappers, currency, percent, degrees, units.
_WRAPPED = re.compile(r"^\s*(?:\$\$(.*)\$\$|\$(.*)\$|\\\((.*)\\\)|\\\[(.*)\\\]|\\boxed\s*\{(.*)\})\s*$", re.DOTALL)
_CURRENCY = re.compile(r"^(?:\\\$|\$|\\text\s*\{\s*\\\$\s*\}|US\$|USD|€|£|¥|₹|\\euro|\\pounds)\s*")
_PERCENT = re.compile(r"\s*(?:\\%|%|\s(?:per\s?cent|percentage)\b)\s*$", re.IGNORECASE)
_DEGREE = re.compile(r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree)\s*$")
_TEXT_UNIT = re.compile(r"\s*\\(?:text|mathrm|textrm|mbox|operatorname)\s*\{\s*([^{}$\\]{1,40}?)\s*\}\s*$")
_WORD_UNIT = re.compile(
    r"\s*((?:[A-Za-z]{2,}|[mshgLKNJWVA])(?:\s*(?:/|\^)\s*\{?[A-Za-z0-9]{1,6}\}?|[²³])*"
    r"(?:\s+(?:[A-Za-z]{2,})(?:\s*/\s*[A-Za-z]{1,6}|[²³])?){0,3})\s*$"
)
# Words that make math, not a unit, of what follows a number ("2 pi", "3 and 4").
_NOT_UNITS = {
    "pi",
    "sin",
    "cos",
    "tan",
    "log",
    "ln",
    "exp",
    "sqrt",
    "mod",
    "and",
    "or",
    "to",
    "of",
    "times",
    "plus",
    "minus",
    "over",
    "divided",
    "is",
    "i",
    "e",
}


@dataclass(frozen=True, slots=True)
class Quantity:
    """A lone number as written: `value` (percent applied), `written` (before /100) and what was ignored."""

    value: Fraction
    written: Fraction
    percent: bool = False
    notes: tuple[str, ...] = ()


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
    if g["tm"] is not None or g["pe"] is not None:
        mant = _literal(g["tm"]) if g["tm"] is not None else Fraction(-1 if g["ps"] else 1)
        e = int((g["te"] or g["pe"]).replace("−", "-"))
        return None if mant is None or abs(e) > MAX_EXPONENT else mant * Fraction(10) ** e
    if g["sn"] is not None:
        n, d = _literal(g["sn"]), _literal(g["sd"])
        return None if n is None or not d else n / d
    v = _literal(g["n"])
    if v is not None and g["pct"]:
        v /= 100
    return v


def last_number(text: str) -> Fraction | None:
    """The last number written in `text` (fractions, \\frac, a x 10^b, thousands commas, %), or None.

    The exponent of a unit or variable ("12 cm^2", "x^2") is not taken for the number."""
    text = _SEP.sub(lambda m: "" if m.group(0) != " " else " ", text)
    text = _NOISE.sub("", text)
    found = None
    for m in _ANY.finditer(text):
        if m.group("n") is not None and _UNIT_EXPONENT.search(text, max(0, m.start() - 12), m.start()):
            continue
        found = m
    return _value(found) if found else None


def _peel_units(s: str, notes: list[str]) -> str:
    """Strip one trailing unit (\\text{cm}, m/s, degrees, dollars) and note it; the rest is returned."""
    if m := _DEGREE.search(s):
        notes.append("degrees")
        return s[: m.start()]
    if m := _TEXT_UNIT.search(s):
        notes.append(f"unit {m.group(1).strip()!r}")
        return s[: m.start()]
    m = _WORD_UNIT.search(s)
    if (
        m
        and m.start() > 0
        and (s[m.start() - 1].isspace() or s[m.start() - 1].isdigit())
        and not ({w.lower() for w in re.findall(r"[A-Za-z]+", m.group(1))} & _NOT_UNITS)
    ):
        notes.append(f"unit {m.group(1).strip()!r}")
        return s[: m.start()]
    return s


def read_quantity(text: str, *, units: bool = True, decimal_comma: bool = False) -> Quantity | None:
    """`text` as one number, or None when it holds anything else.

    Accepts $...$/\\boxed{} around it, currency before it, percent, degrees or (with `units`) a unit after
    it, and digit groups written 1,234 / 10{,}000 / 16,\\!386 / 1 000. With `decimal_comma`, 1,22 is 1.22
    (how plain-text answers write it); in a LaTeX reference a comma separates list items instead."""
    s = text.strip()
    if len(s) > 4 * MAX_DIGITS:
        return None
    notes: list[str] = []
    for _ in range(3):  # "$\boxed{5}$": peel each wrapper
        m = _WRAPPED.match(s)
        if not m:
            break
        s = next(g for g in m.groups() if g is not None).strip()
    s = s.rstrip(".").strip()
    if m := _CURRENCY.match(s):
        notes.append(f"currency {m.group(0).strip()!r}")
        s = s[m.end() :]
    percent = bool(pm := _PERCENT.search(s))
    if pm:
        s = s[: pm.start()]
    elif units:
        s = _peel_units(s, notes)
    s = s.replace("\\left", "").replace("\\right", "").strip()
    s = _SEP.sub("", s)
    if decimal_comma and re.fullmatch(r"[-+−]?\d+,\d+", s) and not re.fullmatch(r"[-+−]?[1-9]\d{0,2}(?:,\d{3})+", s):
        s = s.replace(",", ".")
    m = _ANY.fullmatch(s)
    if not m or m.group("pct"):
        return None
    written = _value(m)
    if written is None:
        return None
    return Quantity(written / 100 if percent else written, written, percent, tuple(notes))


def parse_number(text: str) -> Fraction | None:
    """`text` as an exact number when it is nothing but one number (after LaTeX noise), else None."""
    q = read_quantity(text, units=False)
    return q.value if q is not None and not q.notes else None


def close(a: Fraction, b: Fraction, abs_tol: float, rel_tol: float) -> bool:
    if a == b:
        return True
    diff = abs(a - b)
    return diff <= Fraction(abs_tol) or diff <= Fraction(rel_tol) * max(abs(a), abs(b))


def _reference_value(reference: Any) -> tuple[Quantity | None, str | None]:
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        if not math.isfinite(reference):
            return None, f"the reference {reference!r} is not a finite number"
        return Quantity(Fraction(reference), Fraction(reference)), None
    text = as_text(reference) or ""
    q = read_quantity(text)
    if q is None and (v := last_number(text)) is not None:
        q = Quantity(v, v)
    return q, (None if q is not None else f"the reference {text!r} holds no number")


class Numeric(Verifier):
    """Correct when |answer - reference| <= abs_tol or <= rel_tol * max(|answer|, |reference|)."""

    default_extract = "final"

    class Params(StrictParams):
        abs_tol: float = Field(1e-6, ge=0, description="Absolute tolerance.")
        rel_tol: float = Field(1e-6, ge=0, description="Relative tolerance.")
        max_chars: int = Field(
            200_000,
            gt=0,
            description="Longer answers are 'too long' (not searched); the "
            "search is one linear regex pass, so this bounds cost only.",
        )
        percent_either_way: bool = Field(
            True,
            description="Where one side is a percentage, '25%' matches 25 or 0.25 (as math-verify reads percentages).",
        )

    def judge_one(self, answer: str, reference: Any, row: dict) -> Judgement:
        p = self.params
        ref, why = _reference_value(reference)
        if ref is None:
            return Judgement.error(why or "the reference holds no number")
        if len(answer) > p.max_chars:
            return Judgement.too_long(f"answer longer than {p.max_chars} characters; not searched")
        got = read_quantity(answer, decimal_comma=True)
        if got is None:
            v = last_number(answer)
            if v is None:
                return Judgement.unparsed("no number found in the answer")
            got = Quantity(v, v)
        ok = close(got.value, ref.value, p.abs_tol, p.rel_tol)
        notes = [n + " ignored" for n in got.notes]
        if not ok and p.percent_either_way and got.percent != ref.percent:
            ok = close(got.written, ref.written, p.abs_tol, p.rel_tol)
            if ok:
                notes.append("percent read as its number")
        text = f"{float(got.value):g} {'==' if ok else '!='} {float(ref.value):g}"
        return Judgement(1.0 if ok else 0.0, "; ".join([text] + notes))
