"""Answer extraction (final, whole, last_line, boxed, regex, after-marker) and hedge/refusal phrase detection.

Everything here is plain string work on untrusted text: bounded regexes, no eval, no sympy.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from ..errors import VerifierError

__all__ = [
    "extract_answer",
    "completion_text",
    "last_boxed",
    "boxed_spans",
    "final_answer",
    "answer_line",
    "last_math_span",
    "HEDGING_PHRASES",
    "REFUSAL_PHRASES",
    "find_phrase",
    "normalize_text",
]

HEDGING_PHRASES = [
    "i think",
    "i believe",
    "i guess",
    "it might be",
    "it may be",
    "it could be",
    "might be",
    "could be",
    "maybe",
    "perhaps",
    "probably",
    "possibly",
    "i'm not sure",
    "i am not sure",
    "not entirely sure",
    "not certain",
    "it seems",
    "seems to be",
    "likely",
    "if i recall",
    "if i remember",
]

REFUSAL_PHRASES = [
    "i don't know",
    "i do not know",
    "i don't recognize",
    "i do not recognize",
    "not recognized",
    "unknown tag",
    "not a known",
    "not a valid",
    "no such",
    "does not exist",
    "doesn't exist",
    "not in the taxonomy",
    "not part of the",
    "i'm not familiar",
    "i am not familiar",
    "not familiar with",
    "cannot find",
    "can't find",
    "could not find",
    "couldn't find",
    "no information",
    "not aware of",
    "unable to identify",
    "cannot identify",
    "can't identify",
    "i cannot answer",
    "i can't answer",
    "i don't have",
    "i do not have",
]

_BRACE = re.compile(r"[{}]")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
# What may stand between boxes that list one answer: "\boxed{1}, \boxed{2}", "$\boxed{1}$ and $\boxed{2}$",
# "\boxed{1} \quad \text{and} \quad \boxed{2}", "\(p = \boxed{1}\) and \(q = \boxed{2}\)": a run of separators
# (a \text{} counts when it ends in and/or), then maybe a one-letter name (maybe subscripted) and "=".
# Each separator opens with its own character, so the run matches without backtracking between them.
_CONNECTOR = re.compile(
    r"(?:[\s$,;~]|\band\b|\bor\b|\\[()]|\\q?quad\b|\\[,;:! ]"
    r"|\\text\s*\{(?:[^{}]{0,40}?(?:,|;|\band|\bor))?\s*\})*"
    r"(?:[A-Za-z](?:_\{?\w{1,3}\}?)?\s*=\s*)?(?:[\s$]|\\[()])*"
)
_MAX_CONNECTOR = 120  # a longer stretch between two answers is prose, and the match stays cheap
_ANSWER_LINE = re.compile(
    r"(?im)(?:^[ \t]*\#{4}|\bfinal\s+answer\b[^\n]{0,40}?(?:\bis\b|:)|\bthe\s+answer\s+is\b|\banswer\s*:"
    r"|^[ \t]*\**A\**[ \t]*:)[ \t*:]*([^\n]*\S)"
)
_STATED = re.compile(r"\d|\$|\\[(\[]|\\[a-z]+")  # an answer line that states something, not "is correct"
_HOPE = re.compile(r"(?i)\s*I hope it is correct\.?\s*$")
# Content may not contain its own opening delimiter, so an unclosed one costs one scan, not one per opening.
_MATH_SPANS = (
    re.compile(r"\$\$(?:[^$]|\$(?!\$)){1,8000}?\$\$"),
    re.compile(r"\\\[(?:[^\\]|\\(?![\[\]])){1,8000}?\\\]"),
    re.compile(r"\\\((?:[^\\\n]|\\(?![()])){1,2000}?\\\)"),
    re.compile(r"(?<![\\$])\$(?![\s$])(?:[^\n$\\]|\\.){1,2000}?(?<!\s)\$(?!\$)"),
)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
_EXTRACT_HELP = "use final, whole, last_line, boxed, {regex: PATTERN} or {after: MARKER}"


def completion_text(completion: object) -> str:
    """A completion as text: a string, or a TRL conversational list (assistant contents joined)."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        msgs = [m for m in completion if isinstance(m, dict)]
        said = [m for m in msgs if m.get("role", "assistant") == "assistant"] or msgs
        return "\n".join(str(m.get("content") or "") for m in said)
    return str(completion)


def _joins(between: str) -> bool:
    """Whether `between` only separates items of one answer list."""
    return len(between) <= _MAX_CONNECTOR and _CONNECTOR.fullmatch(between) is not None


def _brace_pairs(text: str) -> dict[int, int]:
    """Position of each `{` -> its matching `}`, in one pass (unbalanced ones are left out)."""
    pairs, stack = {}, []
    for m in _BRACE.finditer(text):
        if m.group(0) == "{":
            stack.append(m.start())
        elif stack:
            pairs[stack.pop()] = m.start()
    return pairs


def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every outermost \\boxed{...}/\\fbox{...} with balanced braces, in order."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return []
    pairs = _brace_pairs(text)
    out: list[tuple[int, int, str]] = []
    for m in _BOX.finditer(text):
        if out and m.start() < out[-1][1]:
            continue  # a box inside the previous box
        close = pairs.get(m.end() - 1)
        if close is not None:
            out.append((m.start(), close + 1, text[m.end() : close].strip()))
    return out


def _boxed_group(text: str) -> tuple[str | None, int]:
    """The final boxed answer and where it ends (-1 when there is none); see `last_boxed`."""
    spans = boxed_spans(text)
    if not spans:
        m = re.search(r"\\boxed\s+([^\s{}$]+)", text[-200:])  # "\\boxed 5" form
        return (m.group(1).rstrip(".$"), len(text)) if m else (None, -1)
    group = [spans[-1]]
    for prev in reversed(spans[:-1]):
        if not _joins(text[prev[1] : group[0][0]]):
            break
        group.insert(0, prev)
    parts = list(dict.fromkeys(c for _, _, c in group if c))
    return (", ".join(parts) if parts else None), spans[-1][1]


def last_boxed(text: str) -> str | None:
    """The final boxed answer: the last box, joined with the boxes listed just before it
    (`\\boxed{1}, \\boxed{2}` -> "1, 2"; repeats dropped); None when there is no closed box."""
    return _boxed_group(text)[0]


def _answer_line(text: str) -> tuple[str | None, int]:
    """The last answer line's answer and where its marker starts (-1 when there is none)."""
    found, at = None, -1
    for m in _ANSWER_LINE.finditer(text):
        got = _HOPE.sub("", m.group(1)).strip().strip("*").strip().rstrip(".").strip()
        if got:
            found, at = got, m.start()
    return (_leading_spans(found), at) if found else (None, -1)


def answer_line(text: str) -> str | None:
    """What follows the last answer marker ("#### 5", "The answer is 5.", "Final answer: 5", "A: 5")."""
    return _answer_line(text)[0]


def _math_spans(text: str) -> list[tuple[int, int]]:
    return sorted((m.start(), m.end()) for rx in _MATH_SPANS for m in rx.finditer(text))


def _leading_spans(line: str) -> str:
    """An answer line that opens with math keeps only that math ("$800$ (independent of $T$)" -> "$800$")."""
    spans = _math_spans(line)
    if not spans or spans[0][0] != 0:
        return line
    end = spans[0][1]
    for s, e in spans[1:]:
        if s < end or not _joins(line[end:s]):
            break
        end = e
    return line[:end]


def last_math_span(text: str) -> str | None:
    """The last $...$, $$...$$, \\(...\\) or \\[...\\] span with the spans listed just before it
    ("$(3,0)$ and $(-3,1)$"), delimiters kept, as one slice of `text`; None when there is none."""
    spans = _math_spans(text)
    if not spans:
        return None
    start, end = spans[-1]
    for s, e in reversed(spans[:-1]):
        if e > start or not _joins(text[e:start]):
            break
        start = s
    return text[start:end].strip()


def final_answer(text: str, max_chars: int | None = None) -> tuple[str | None, str]:
    """The final answer in a completion and where it was found: boxed, answer_line, whole, or math_span.

    The last box, unless an answer line holding a number or math comes after it (boxes around steps, then
    "Final Answer: ..."). The whole text is the answer when it has neither and is at most `max_chars` long
    (no bound by default): math-verify's own reading of a short text is better than any one span of it."""
    box, box_end = _boxed_group(text)
    line, line_at = _answer_line(text)
    if line and line_at > box_end and (box is None or _STATED.search(line)):
        return line, "answer_line"
    if box:
        return box, "boxed"
    if max_chars is None or len(text.strip()) <= max_chars:
        return (text.strip() or None), "whole"
    got = last_math_span(text)
    return (got, "math_span") if got else (None, "whole")


@functools.lru_cache(maxsize=256)
def _compile(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise VerifierError(f"{where}: invalid regex {pattern!r} ({exc})") from None


def extract_answer(text: str, how: str | dict) -> str | None:
    """The answer inside `text` per `how`; None when nothing was found (the completion is unparsed)."""
    if not isinstance(text, str):
        text = completion_text(text)
    if isinstance(how, dict):
        if len(how) != 1:
            raise VerifierError(f"extract: {how!r} must have exactly one key; {_EXTRACT_HELP}")
        ((kind, arg),) = how.items()
        if kind == "regex":
            matches = list(_compile(str(arg), "extract.regex").finditer(text))
            if not matches:
                return None
            m = matches[-1]  # the last match: models restate the question first
            got = m.group(1) if m.re.groups else m.group(0)
            return got.strip() if got is not None and got.strip() else None
        if kind in ("after", "marker"):
            i = text.rfind(str(arg))
            if i < 0:
                return None
            rest = text[i + len(str(arg)) :].strip()
            line = rest.splitlines()[0].strip() if rest else ""
            return line or None
        raise VerifierError(f"extract: unknown method {kind!r}; {_EXTRACT_HELP}")
    if how == "whole":
        return text.strip() or None
    if how == "last_line":
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else None
    if how == "boxed":
        got = last_boxed(text)
        return got if got else None
    if how == "final":
        return final_answer(text)[0]
    raise VerifierError(f"extract: unknown method {how!r}; {_EXTRACT_HELP}")


def normalize_text(s: str) -> str:
    """Lowercase, straight quotes, collapsed whitespace: the form phrase matching works on."""
    return " ".join(s.translate(_QUOTES).lower().split())


@functools.lru_cache(maxsize=64)
def _phrase_re(phrases: tuple[str, ...]) -> re.Pattern | None:
    parts = [re.escape(normalize_text(p)) for p in phrases if p.strip()]
    if not parts:
        return None
    return re.compile(r"(?<![\w'])(?:" + "|".join(sorted(parts, key=len, reverse=True)) + r")(?![\w'])")


def find_phrase(text: str, phrases: Iterable[str]) -> str | None:
    """The first of `phrases` that occurs in `text` as whole words (case-insensitive), or None."""
    pat = _phrase_re(tuple(phrases))
    if pat is None or not text:
        return None
    m = pat.search(normalize_text(text))
    return m.group(0) if m else None
