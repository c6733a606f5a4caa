"""Answer extraction (whole, last_line, boxed, regex, after-marker) and hedge/refusal phrase detection.

Everything here is plain string work on untrusted text: bounded regexes, no eval, no sympy.
"""
from __future__ import annotations

import functools
import re
from typing import Iterable

from ..errors import VerifierError

__all__ = ["extract_answer", "completion_text", "last_boxed", "HEDGING_PHRASES", "REFUSAL_PHRASES",
           "find_phrase", "normalize_text"]

HEDGING_PHRASES = [
    "i think", "i believe", "i guess", "it might be", "it may be", "it could be", "might be", "could be",
    "maybe", "perhaps", "probably", "possibly", "i'm not sure", "i am not sure", "not entirely sure",
    "not certain", "it seems", "seems to be", "likely", "if i recall", "if i remember",
]

REFUSAL_PHRASES = [
    "i don't know", "i do not know", "i don't recognize", "i do not recognize", "not recognized",
    "unknown tag", "not a known", "not a valid", "no such", "does not exist", "doesn't exist",
    "not in the taxonomy", "not part of the", "i'm not familiar", "i am not familiar", "not familiar with",
    "cannot find", "can't find", "could not find", "couldn't find", "no information", "not aware of",
    "unable to identify", "cannot identify", "can't identify", "i cannot answer", "i can't answer",
    "i don't have", "i do not have",
]

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
_EXTRACT_HELP = "use whole, last_line, boxed, {regex: PATTERN} or {after: MARKER}"


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


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} or \\fbox{...}, braces balanced; None when absent or unclosed."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        rest = text[start + len("\\boxed"):]
        m = re.match(r"\s+(\S+)", rest)           # "\boxed 5" form
        return m.group(1).rstrip(".$") if m else None
    if text[start:i].strip() not in ("\\boxed", "\\fbox"):
        return None
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip()
    return None


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
        (kind, arg), = how.items()
        if kind == "regex":
            matches = list(_compile(str(arg), "extract.regex").finditer(text))
            if not matches:
                return None
            m = matches[-1]                       # the last match: models restate the question first
            got = m.group(1) if m.re.groups else m.group(0)
            return got.strip() if got is not None and got.strip() else None
        if kind in ("after", "marker"):
            i = text.rfind(str(arg))
            if i < 0:
                return None
            rest = text[i + len(str(arg)):].strip()
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
