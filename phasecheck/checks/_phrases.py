"""Made-up terms in plain words ("the golden hour coefficient"): word pairs that recur in failing rows.

Plain prose recurs everywhere, so a phrase is only ever judged on its link to wrong answers. Counting every
word pair of every row would double the scan; pass 1 counts pairs in failing rows and in an equal number of
passing rows, keeps the pairs clearly commoner in failures, and pass 2 counts those exactly in all rows."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["PhraseCounter", "phrase_pattern", "phrase_key", "with_chains", "drop_subsumed"]

_WORD = re.compile(r"(?<![\w\\])[a-z]+(?!\w)")
_SPLIT = re.compile(r"[a-z]+")
# Function words: a pair made of one is grammar, not a term. Short words (< 3 letters) are left out too.
_STOP = frozenset(
    """
the and for with that this these those are was were has have had from then than which each per its his her
she they them there their into not but all any can will would our you your one two three four five six
seven eight nine ten many much more most less few some how what when where who whom why also just only
very each every both either neither does did doing done been being about above after again against
before below between during over under until while because since same other such own out off once here
now too let lets get gets got use used using give gives gave total left right number numbers so hence thus
therefore since first second third last next find found need needs take takes took make makes made
""".split()
)


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern:
    """One regex for many phrases, words separated by up to three non-word characters, case-insensitive."""
    alts = sorted((r"\W{1,3}".join(map(re.escape, p.split())) for p in phrases), key=len, reverse=True)
    return re.compile(r"(?<![\w\\])(?:" + "|".join(alts) + r")(?!\w)", re.I)


def phrase_key(match: str) -> str:
    return " ".join(_SPLIT.findall(match.lower()))


class PhraseCounter:
    """Pass 1: word pairs in failing rows and in a balanced sample of passing rows (bounded memory)."""

    def __init__(self, max_pairs: int = 100_000) -> None:
        self.max_pairs = max_pairs
        self.fail: Counter = Counter()
        self.sample: Counter = Counter()
        self.n_fail = self.n_sample = 0

    def add(self, text: str, passed: bool | None) -> None:
        if passed is None or not text:
            return
        if passed:
            # Keep the passing sample as large as the failures seen so far, spread through the stream.
            if self.n_sample >= self.n_fail:
                return
            self.n_sample += 1
            target = self.sample
        else:
            self.n_fail += 1
            target = self.fail
        words = _WORD.findall(text.lower())
        target.update(set(zip(words, words[1:])))
        if len(target) > self.max_pairs:
            cut = sorted(target.values())[len(target) // 2]
            for k in [k for k, v in target.items() if v <= cut]:
                del target[k]

    def candidates(self, min_fail_rows: int, max_pass_ratio: float, limit: int) -> list[str]:
        """Pairs in >= min_fail_rows failing rows whose share of the sampled passing rows is at most
        (1 + max_pass_ratio) / 2 of their share of failing rows. A pair tied to failure at max_pass_ratio
        has a passing share at most max_pass_ratio times its failing share, so the midpoint leaves room
        for sampling noise; pass 2 then counts the survivors exactly."""
        if not self.n_fail or not self.n_sample:
            return []
        bound = (1 + max_pass_ratio) / 2
        keep = []
        for (a, b), f in self.fail.items():
            if f < min_fail_rows or len(a) < 3 or len(b) < 3 or a in _STOP or b in _STOP:
                continue
            if self.sample.get((a, b), 0) / self.n_sample <= bound * f / self.n_fail:
                keep.append((f, f"{a} {b}"))
        keep.sort(key=lambda t: (-t[0], t[1]))
        return [p for _, p in keep[:limit]]


def with_chains(pairs: list[str]) -> list[str]:
    """The pairs plus every three-word chain of two of them ("golden hour" + "hour coefficient")."""
    by_first: dict[str, list[str]] = {}
    for p in pairs:
        by_first.setdefault(p.split()[0], []).append(p)
    chains = [f"{p} {q.split()[1]}" for p in pairs for q in by_first.get(p.split()[1], ()) if q != p]
    return pairs + chains


def drop_subsumed(stats: dict, min_share: float = 0.95) -> None:
    """Report a three-word term once: keep the chain and drop its two pairs when it is in nearly all of
    their rows; otherwise keep the pairs and drop the chain."""
    for term in [t for t in stats if t.count(" ") == 2]:
        words = term.split()
        pairs = [" ".join(words[:2]), " ".join(words[1:])]
        if all(q in stats and stats[term].rows >= min_share * stats[q].rows for q in pairs):
            for q in pairs:
                del stats[q]
        else:
            del stats[term]
