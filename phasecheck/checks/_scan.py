"""Streaming scan for ungrounded identifiers (the golden_hour_sun detector), shared by the check and the bench.

Only identifier-like tokens are extracted (snake_case, camelCase/PascalCase, dotted names, LaTeX commands,
subscripted symbols, and single-letter free symbols of math written in LaTeX or ASCII); plain English words
never match. Model text is only tokenised with regular expressions, never parsed or evaluated."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ._phrases import PhraseCounter, drop_subsumed, phrase_key, phrase_pattern, with_chains

__all__ = [
    "extract_tokens",
    "TokenScanner",
    "TokenStats",
    "LATEX_STRUCTURE",
    "LATEX_NOTATION",
    "reference_tokens",
    "is_notation",
    "prompt_symbols",
    "grounded_in",
]

# Plain words (one leading capital at most, or all caps/digits) and separators are consumed inside the
# regex by a possessive prefix, so a match object is made only per identifier: 4-5x faster than trying
# every alternative at every character.
# (Most text is lowercase words followed by separators, so that branch comes first and takes both.) `junk` swallows word-like runs that are not identifiers.
_SKIP = r"(?:[A-Z]?[a-z0-9]++(?![\w\\{]|[.-]\w)[^\w\\]*+|[^\w\\]++|[A-Z0-9]++(?![\w\\{]|[.-]\w))*+"
_TOKEN = re.compile(
    _SKIP
    + r"""(?:
  (?P<latex>\\[A-Za-z]+(?:_(?:\{[A-Za-z0-9]+\}|[A-Za-z0-9]))?)
| (?P<subscript>(?<![\w\\])[A-Za-z]_(?:\{[A-Za-z0-9,]+\}|[A-Za-z0-9])(?![\w-]))
| (?P<snake_case>(?<![\w\\.-])[A-Za-z][\w-]*_[\w-]*[A-Za-z0-9])
| (?P<camelCase>(?<![\w\\.])[a-z]+[A-Z][A-Za-z0-9]*(?!\w|\.\w))
| (?P<PascalCase>(?<![\w\\.])[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*(?!\w|\.\w))
| (?P<dotted>(?<![\w\\.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)
| (?P<junk>[\w\\{}.-]+|.)
| $)""",
    re.X | re.A | re.S,
)
# Delimited math: $$...$$, $...$, \(...\), \[...\], \boxed{...} (no nested braces). Inline $ follows pandoc's
# rule (no space inside either dollar, no digit right after the closing one), so prices such as
# "$10 x 2 = $20" are not read as the math span "10 x 2 = ".
_MATH_SPAN = re.compile(
    r"\$\$([^$]{1,400})\$\$|\$(?![\s$])([^$\n]{1,400}?)(?<!\s)\$(?!\d)|\\\((.{1,400}?)\\\)"
    r"|\\\[(.{1,400}?)\\\]|\\boxed\{([^{}]{1,200})\}",
    re.S,
)
_SPAN_SYMBOL = re.compile(r"(?<![A-Za-z\\])[A-Za-z](?![A-Za-z])")
# ASCII math outside delimiters: a single letter beside an operator, e.g. "x = 3", "2*k", "p^2".
# The pattern starts with the operator class, so the regex engine skips to operators at C speed. Run on
# the reversed text it finds the letters to the left of operators with the same single pattern.
_OPERAND = re.compile(r"[=+*/^<>] ?([A-Za-z])(?![\w\\.'])", re.A)
_WORDS = re.compile(r"\\?[A-Za-z][\w.]*", re.A)

# LaTeX that structures math rather than naming anything; never evidence of an invented parameter.
LATEX_STRUCTURE = frozenset(
    """
\\frac \\dfrac \\tfrac \\sqrt \\boxed \\cdot \\times \\div \\left \\right \\text \\textbf \\mathrm \\mathbf
\\mathit \\mathcal \\mathbb \\operatorname \\displaystyle \\quad \\qquad \\le \\ge \\leq \\geq \\neq \\ne \\pm
\\mp \\approx \\sim \\simeq \\equiv \\propto \\sum \\prod \\int \\oint \\partial \\nabla \\infty \\lim \\to
\\rightarrow \\Rightarrow \\leftarrow \\Leftarrow \\leftrightarrow \\iff \\implies \\mapsto \\begin \\end
\\ldots \\cdots \\dots \\vdots \\ddots \\sin \\cos \\tan \\cot \\sec \\csc \\arcsin \\arccos \\arctan \\sinh
\\cosh \\tanh \\log \\ln \\exp \\min \\max \\det \\deg \\hat \\bar \\vec \\dot \\ddot \\tilde \\overline
\\underline \\prime \\circ \\in \\notin \\subset \\subseteq \\cup \\cap \\emptyset \\forall \\exists \\neg
\\land \\lor \\mid \\over \\binom \\choose \\langle \\rangle \\lfloor \\rfloor \\lceil \\rceil \\big \\Big
\\bigg \\Bigg \\hline \\label \\ref \\tag \\newline \\displaystyle \\limits \\nolimits \\,
""".split()
)

# Standard LaTeX/AMS symbols (Greek letters, relations, operators, arrows, fonts, accents). Unlike the
# layout commands above they can name things, but as notation: solutions introduce \theta for an angle the
# problem never names. They are judged like single letters (see is_notation), never silenced outright.
LATEX_NOTATION = frozenset(
    """
\\alpha \\beta \\gamma \\delta \\epsilon \\varepsilon \\zeta \\eta \\theta \\vartheta \\iota \\kappa \\varkappa
\\lambda \\mu \\nu \\xi \\pi \\varpi \\rho \\varrho \\sigma \\varsigma \\tau \\upsilon \\phi \\varphi \\chi \\psi
\\omega \\Gamma \\Delta \\Theta \\Lambda \\Xi \\Pi \\Sigma \\Upsilon \\Phi \\Psi \\Omega \\ell \\hbar \\imath
\\jmath \\aleph \\beth \\wp \\Re \\Im \\mho \\eth \\daleth \\gimel
\\geqslant \\leqslant \\ll \\gg \\lesssim \\gtrsim \\prec \\succ \\preceq \\succeq \\doteq \\cong \\asymp
\\parallel \\nparallel \\perp \\nmid \\not \\ni \\supset \\supseteq \\subsetneq \\supsetneq \\sqsubset
\\vdash \\models \\smile \\frown \\bowtie \\triangleq \\bmod \\pmod \\mod \\gcd \\lcm \\arg \\inf \\sup
\\limsup \\liminf \\ker \\dim \\hom \\Pr \\coth \\angle \\measuredangle \\triangle \\square \\blacksquare
\\Box \\diamond \\star \\ast \\bullet \\oplus \\ominus \\otimes \\oslash \\odot \\dagger \\ddagger \\wedge
\\vee \\setminus \\backslash \\bigcup \\bigcap \\bigoplus \\bigotimes \\coprod \\iint \\iiint \\varnothing
\\top \\bot \\therefore \\because \\uparrow \\downarrow \\Uparrow \\Downarrow \\nearrow \\searrow
\\swarrow \\nwarrow \\longrightarrow \\longleftarrow \\Longrightarrow \\Longleftarrow \\longleftrightarrow
\\Longleftrightarrow \\Leftrightarrow \\hookrightarrow \\rightleftharpoons \\leadsto \\overrightarrow
\\overleftarrow \\overleftrightarrow \\widehat \\widetilde \\check \\breve \\acute \\grave \\mathring
\\overbrace \\underbrace \\overparen \\underparen \\stackrel \\overset \\underset \\substack \\boldsymbol
\\bm \\mathsf \\mathtt \\mathfrak \\mathscr \\textit \\textrm \\emph \\mbox \\hbox \\phantom \\vphantom
\\hspace \\vspace \\qedhere \\qed \\cr \\\\ \\; \\: \\! \\{ \\} \\| \\lvert \\rvert \\lVert \\rVert \\vert
\\Vert \\middle \\bigl \\bigr \\Bigl \\Bigr \\biggl \\biggr \\dfrac \\cfrac \\sqrt \\surd \\neg \\lnot
\\nexists \\complement \\partial \\Diamond \\clubsuit \\spadesuit \\heartsuit \\diamondsuit \\natural
\\sharp \\flat \\checkmark \\textstyle \\scriptstyle \\enspace \\thinspace \\medspace \\thickspace
""".split()
)
_NOTATION_KINDS = frozenset({"symbol", "subscript"})


def is_notation(token: str, kind: str) -> bool:
    """Single letters, subscripted symbols and standard LaTeX symbols: the ordinary notation of maths."""
    return kind in _NOTATION_KINDS or (kind == "latex" and token in LATEX_NOTATION)


def _normalise(token: str) -> str:
    return token.replace("{", "").replace("}", "") if "{" in token else token


def extract_tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """(token, kind, offset) for every identifier-like token in `text`, in order, repeats included."""
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind is None or kind == "junk":
            continue
        tok = m.group(kind)
        if kind == "dotted" and max(len(p) for p in tok.split(".")) <= 1:  # e.g., i.e
            continue
        if kind == "latex" and "_" in tok:
            kind = "subscript"
        yield (tok.replace("{", "").replace("}", "") if "{" in tok else tok), kind, m.start(kind)
    if "$" in text or "\\" in text:
        for span in _MATH_SPAN.finditer(text):
            gi = span.lastindex
            body, start = span.group(gi), span.start(gi)
            for m in _SPAN_SYMBOL.finditer(body):
                i = m.start()
                if i == 0 or (body[i - 1] != "_" and body[i - 2 : i] != "_{"):  # not a subscript's letter
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


_STANDALONE = re.compile(r"(?<![A-Za-z\\])[A-Za-z](?![A-Za-z])", re.A)
_CAPS_RUN = re.compile(r"(?<![A-Za-z\\])[A-Z]{2,6}(?![a-z])", re.A)  # "triangle ABC", "ABCD"
_COMMAND = re.compile(r"\\[A-Za-z]+", re.A)


@functools.lru_cache(maxsize=4096)
def prompt_symbols(prompt: str) -> frozenset[str]:
    """Letters a prompt uses as symbols: standalone, inside a run of capitals naming points ("ABC"), or
    anywhere in its math ("$xy$" uses x and y). Cached: sampled runs repeat each prompt many times."""
    out = set(_STANDALONE.findall(prompt))
    for run in _CAPS_RUN.findall(prompt):
        out.update(run)
    if "$" in prompt or "\\" in prompt:
        for span in _MATH_SPAN.finditer(prompt):
            out.update(c for c in _COMMAND.sub(" ", span.group(span.lastindex)) if c.isascii() and c.isalpha())
    return frozenset(out)


def grounded_in(token: str, kind: str, prompt: str) -> bool:
    """Whether the prompt names the token: verbatim, brace-free, (for LaTeX) as a plain word, or, for a
    letter, as a symbol anywhere in it; a subscripted symbol is grounded by its letter with any subscript."""
    if kind == "symbol":
        return token in prompt_symbols(prompt)
    if token in prompt:
        return True
    flat = _normalise(prompt) if "{" in prompt else prompt
    if "{" in prompt and token in flat:
        return True
    if kind == "subscript":
        return token[: token.index("_") + 1] in flat  # the prompt has a_k; the solution writes a_1
    if token.startswith("\\"):
        return token[1:] in prompt  # the prompt may spell \\omega as "omega"
    return False


@functools.lru_cache(maxsize=256)
def phrase_pattern_one(phrase: str) -> re.Pattern:
    return phrase_pattern([phrase])


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
    row ids are kept per token. With `phrases`, word pairs are collected for the phrase pass (_phrases.py):
    `phrase_candidates()` after the stream, then `count_phrases(rows)` over the same rows again."""

    def __init__(
        self, allowed: Iterable[str] = (), *, max_tokens: int = 100_000, max_ids: int = 20, phrases: bool = False
    ) -> None:
        self.allowed = set(allowed) | LATEX_STRUCTURE
        self.max_tokens = max_tokens
        self.max_ids = max_ids
        self.stats: dict[str, TokenStats] = {}
        self.rows = self.judged = self.passed = 0
        self.undercount_bound = 0
        self.phrase_counter = PhraseCounter(max_tokens) if phrases else None

    def add(self, row_id: str, text: str, prompt: str, passed: bool | None) -> None:
        self.rows += 1
        if passed is not None:
            self.judged += 1
            self.passed += passed
        if not text:
            return
        pc = self.phrase_counter
        if pc is not None and passed is not None and (not passed or pc.n_sample < pc.n_fail):
            pc.add(text, passed)  # the test is inlined: most rows pass and are not sampled
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
            self._count(st, pos / n, passed, row_id)
        if len(stats) > self.max_tokens:
            self._prune()

    def _count(self, st: TokenStats, rel: float, passed: bool | None, row_id: str) -> None:
        st.rows += 1
        st.pos_sum += rel
        st.pos_sq += rel * rel
        if passed is not None:
            st.judged += 1
            st.passed += passed
        if len(st.ids) < self.max_ids:
            st.ids.append(row_id)

    def phrase_candidates(self, max_rate: float, min_rows: int, max_pass_ratio: float, limit: int) -> list[str]:
        """Word pairs worth an exact count: recurring in failing rows and clearly commoner there."""
        if self.phrase_counter is None:
            return []
        # A phrase in max_rate of the judged rows whose rows pass at most max_pass_ratio as often as the
        # rest fails in at least (1 - max_pass_ratio) of its rows.
        floor = max(min_rows, int(max_rate * self.judged * (1 - max_pass_ratio)))
        return self.phrase_counter.candidates(floor, max_pass_ratio, limit)

    def count_phrases(self, rows: Iterable[tuple], phrases: list[str]) -> None:
        """Pass 2: exact rows, positions and verifier counts of `phrases` (and their three-word chains),
        skipping rows whose own prompt has the phrase."""
        if not phrases:
            return
        terms = with_chains(phrases)
        pat = phrase_pattern(terms)
        stats = {t: TokenStats("phrase") for t in terms}
        for row_id, text, prompt, passed in rows:
            if not text:
                continue
            seen: set[str] = set()
            for m in pat.finditer(text):
                key = phrase_key(m.group())
                words = key.split()
                # The regex takes the longest term at a spot, so a chain stands for its two pairs as well.
                for k in (key, " ".join(words[:2]), " ".join(words[1:])) if len(words) == 3 else (key,):
                    if k in seen or k not in stats:
                        continue
                    seen.add(k)
                    if not phrase_pattern_one(k).search(prompt):
                        self._count(stats[k], m.start() / len(text), passed, row_id)
        drop_subsumed(stats)
        self.stats.update({t: st for t, st in stats.items() if st.rows})

    def _prune(self) -> None:
        counts = sorted(st.rows for st in self.stats.values())
        cut = counts[len(counts) // 2]  # drop the rarer half
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
            consistency = max(0.0, 1.0 - std * 12**0.5)
            without_judged = self.judged - st.judged
            out.append(
                {
                    "token": tok,
                    "kind": st.kind,
                    "rate": rate,
                    "n_rows": st.rows,
                    "position_consistency": round(consistency, 4),
                    "mean_position": round(mean, 4),
                    "judged_with": st.judged,
                    "passed_with": st.passed,
                    "judged_without": without_judged,
                    "passed_without": self.passed - st.passed,
                    "pass_rate_with": st.passed / st.judged if st.judged else None,
                    "pass_rate_without": (self.passed - st.passed) / without_judged if without_judged else None,
                    "example_ids": list(st.ids),
                }
            )
        out.sort(key=lambda d: (-d["n_rows"], d["token"]))
        return out
