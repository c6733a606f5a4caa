"""Streaming scan for ungrounded identifiers (the golden_hour_sun detector), shared by the check and the bench.

Only identifier-like tokens are extracted (snake_case, camelCase/PascalCase, dotted names, LaTeX commands,
subscripted symbols, and single-letter free symbols of math written in LaTeX or ASCII); plain English words
never match. Model text is only tokenised with regular expressions, never parsed or evaluated."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

__all__ = ["extract_tokens", "TokenScanner", "TokenStats", "LATEX_STRUCTURE", "reference_tokens"]

# Plain words (one leading capital at most, or all caps/digits) and separators are consumed inside the
# regex by a possessive prefix, so a match object is made only per identifier: 4-5x faster than trying
# every alternative at every character.
# (Most text is lowercase words followed by separators, so that branch comes first and takes both.) `junk` swallows word-like runs that are not identifiers.
_SKIP = r"(?:[A-Z]?[a-z0-9]++(?![\w\\{]|[.-]\w)[^\w\\]*+|[^\w\\]++|[A-Z0-9]++(?![\w\\{]|[.-]\w))*+"
_TOKEN = re.compile(_SKIP + r"""(?:
  (?P<latex>\\[A-Za-z]+(?:_(?:\{[A-Za-z0-9]+\}|[A-Za-z0-9]))?)
| (?P<subscript>(?<![\w\\])[A-Za-z]_(?:\{[A-Za-z0-9,]+\}|[A-Za-z0-9])(?![\w-]))
| (?P<snake_case>(?<![\w\\.-])[A-Za-z][\w-]*_[\w-]*[A-Za-z0-9])
| (?P<camelCase>(?<![\w\\.])[a-z]+[A-Z][A-Za-z0-9]*(?!\w|\.\w))
| (?P<PascalCase>(?<![\w\\.])[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*(?!\w|\.\w))
| (?P<dotted>(?<![\w\\.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)
| (?P<junk>[\w\\{}.-]+|.)
| $)""", re.X | re.A | re.S)
# Delimited math: $...$, $$...$$, \(...\), \[...\], \boxed{...} (no nested braces).
_MATH_SPAN = re.compile(r"\$\$?([^$]{1,400})\$\$?|\\\((.{1,400}?)\\\)|\\\[(.{1,400}?)\\\]|\\boxed\{([^{}]{1,200})\}", re.S)
_SPAN_SYMBOL = re.compile(r"(?<![A-Za-z\\])[A-Za-z](?![A-Za-z])")
# ASCII math outside delimiters: a single letter beside an operator, e.g. "x = 3", "2*k", "p^2".
# The pattern starts with the operator class, so the regex engine skips to operators at C speed. Run on
# the reversed text it finds the letters to the left of operators with the same single pattern.
_OPERAND = re.compile(r"[=+*/^<>] ?([A-Za-z])(?![\w\\.'])", re.A)
_WORDS = re.compile(r"\\?[A-Za-z][\w.]*", re.A)

# LaTeX that structures math rather than naming anything; never evidence of an invented parameter.
LATEX_STRUCTURE = frozenset("""
\\frac \\dfrac \\tfrac \\sqrt \\boxed \\cdot \\times \\div \\left \\right \\text \\textbf \\mathrm \\mathbf
\\mathit \\mathcal \\mathbb \\operatorname \\displaystyle \\quad \\qquad \\le \\ge \\leq \\geq \\neq \\ne \\pm
\\mp \\approx \\sim \\simeq \\equiv \\propto \\sum \\prod \\int \\oint \\partial \\nabla \\infty \\lim \\to
\\rightarrow \\Rightarrow \\leftarrow \\Leftarrow \\leftrightarrow \\iff \\implies \\mapsto \\begin \\end
\\ldots \\cdots \\dots \\vdots \\ddots \\sin \\cos \\tan \\cot \\sec \\csc \\arcsin \\arccos \\arctan \\sinh
\\cosh \\tanh \\log \\ln \\exp \\min \\max \\det \\deg \\hat \\bar \\vec \\dot \\ddot \\tilde \\overline
\\underline \\prime \\circ \\in \\notin \\subset \\subseteq \\cup \\cap \\emptyset \\forall \\exists \\neg
\\land \\lor \\mid \\over \\binom \\choose \\langle \\rangle \\lfloor \\rfloor \\lceil \\rceil \\big \\Big
\\bigg \\Bigg \\hline \\label \\ref \\tag \\newline \\displaystyle \\limits \\nolimits \\,
""".split())


def _normalise(token: str) -> str:
    return token.replace("{", "").replace("}", "") if "{" in token else token


def extract_tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """(token, kind, offset) for every identifier-like token in `text`, in order, repeats included."""
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind is None or kind == "junk":
            continue
        tok = m.group(kind)
        if kind == "dotted" and max(len(p) for p in tok.split(".")) <= 1:     # e.g., i.e
            continue
        if kind == "latex" and "_" in tok:
            kind = "subscript"
        yield (tok.replace("{", "").replace("}", "") if "{" in tok else tok), kind, m.start(kind)
    if "$" in text or "\\" in text:
        for span in _MATH_SPAN.finditer(text):
            gi = span.lastindex
            body, start = span.group(gi), span.start(gi)
            for m in _SPAN_SYMBOL.finditer(body):
                if m.start() == 0 or body[m.start() - 1] != "_":
                    yield m.group(), "symbol", start + m.start()
    for m in _OPERAND.finditer(text):
        yield m.group(1), "symbol", m.start(1)
    last = len(text) - 1
    for m in _OPERAND.finditer(text[::-1]):
        yield m.group(1), "symbol", last - m.start(1)


def reference_tokens(references: Iterable[object]) -> set[str]:
    """Every token and word of every reference answer: anything in a reference is grounded."""
    out: set[str] = set()
    for ref in references:
        values = ref if isinstance(ref, (list, tuple)) else [ref]
        for v in values:
            if v is None:
                continue
            s = str(v)
            out.update(t for t, _, _ in extract_tokens(s))
            out.update(_normalise(w) for w in _WORDS.findall(s))
    return out


_LETTER_RE = {}


def _letter_in(letter: str, prompt: str) -> bool:
    pat = _LETTER_RE.get(letter)
    if pat is None:
        pat = _LETTER_RE[letter] = re.compile(rf"(?<![A-Za-z]){letter}(?![A-Za-z])")
    return pat.search(prompt) is not None


def grounded_in(token: str, kind: str, prompt: str) -> bool:
    """Whether the prompt names the token: verbatim, brace-free, or (for LaTeX) as a plain word."""
    if kind == "symbol":
        return _letter_in(token, prompt)
    if token in prompt:
        return True
    if "{" in prompt and token in _normalise(prompt):
        return True
    if token.startswith("\\"):
        return token[1:] in prompt          # the prompt may spell \\omega as "omega"
    return False


@dataclass
class TokenStats:
    kind: str
    rows: int = 0
    judged: int = 0
    passed: int = 0
    pos_sum: float = 0.0
    pos_sq: float = 0.0
    ids: list = field(default_factory=list)


class TokenScanner:
    """Counts, per ungrounded token, the rows it is in, where it sits, and whether those rows pass.

    Memory is bounded: at most `max_tokens` tokens are tracked (lossy counting: when full, the rarest are
    dropped, and `undercount_bound` says by how much any reported count may be low) and at most `max_ids`
    row ids are kept per token."""

    def __init__(self, allowed: Iterable[str] = (), *, max_tokens: int = 100_000, max_ids: int = 20) -> None:
        self.allowed = set(allowed) | LATEX_STRUCTURE
        self.max_tokens = max_tokens
        self.max_ids = max_ids
        self.stats: dict[str, TokenStats] = {}
        self.rows = self.judged = self.passed = 0
        self.undercount_bound = 0

    def add(self, row_id: str, text: str, prompt: str, passed: bool | None) -> None:
        self.rows += 1
        if passed is not None:
            self.judged += 1
            self.passed += passed
        if not text:
            return
        seen: set[str] = set()
        allowed, stats, n = self.allowed, self.stats, len(text)
        for tok, kind, pos in extract_tokens(text):
            if tok in seen or tok in allowed:
                continue
            seen.add(tok)
            if grounded_in(tok, kind, prompt):
                continue
            st = stats.get(tok)
            if st is None:
                st = stats[tok] = TokenStats(kind)
            st.rows += 1
            rel = pos / n
            st.pos_sum += rel
            st.pos_sq += rel * rel
            if passed is not None:
                st.judged += 1
                st.passed += passed
            if len(st.ids) < self.max_ids:
                st.ids.append(row_id)
        if len(stats) > self.max_tokens:
            self._prune()

    def _prune(self) -> None:
        counts = sorted(st.rows for st in self.stats.values())
        cut = counts[len(counts) // 2]               # drop the rarer half
        self.stats = {t: st for t, st in self.stats.items() if st.rows > cut}
        self.undercount_bound = max(self.undercount_bound, cut)

    def flagged(self, max_rate: float, min_rows: int = 1) -> list[dict]:
        """Tokens in at least max_rate of rows (and min_rows rows), most frequent first."""
        out = []
        if not self.rows:
            return out
        for tok, st in self.stats.items():
            rate = st.rows / self.rows
            if rate < max_rate or st.rows < min_rows:
                continue
            mean = st.pos_sum / st.rows
            std = max(0.0, st.pos_sq / st.rows - mean * mean) ** 0.5
            # Uniform positions on [0, 1] have std 1/sqrt(12): consistency 0; one fixed spot: 1.
            consistency = max(0.0, 1.0 - std * 12 ** 0.5)
            without_judged = self.judged - st.judged
            out.append({
                "token": tok, "kind": st.kind, "rate": rate, "n_rows": st.rows,
                "position_consistency": round(consistency, 4), "mean_position": round(mean, 4),
                "pass_rate_with": st.passed / st.judged if st.judged else None,
                "pass_rate_without": (self.passed - st.passed) / without_judged if without_judged else None,
                "example_ids": list(st.ids),
            })
        out.sort(key=lambda d: (-d["n_rows"], d["token"]))
        return out
