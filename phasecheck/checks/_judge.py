"""Weighing the evidence on each recurring ungrounded token: whole-task grounding, the verifier link
(one-sided Fisher exact test, Bonferroni over the tokens tested), position, and the kind of token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..fisher import fisher_less, fisher_min_p
from ..results import pct
from ._phrases import phrase_pattern
from ._scan import TokenScanner, is_notation, prompt_symbols

__all__ = ["scan", "task_prompt_counts", "judge", "message"]

Rows = Callable[[], Iterator[tuple]]  # a fresh iterator of (row_id, completion, prompt, passed) per call


def scan(rows: Rows, allowed: Iterable[str], prompts: Iterable[str], params: Any) -> tuple[TokenScanner, list[dict]]:
    """Scan the rows, count candidate phrases exactly (a second pass), ground candidates in the whole
    task's prompts, and judge them. Returns the scanner and every candidate with its severity."""
    sc = TokenScanner(allowed, max_tokens=params.max_tokens, max_ids=params.max_example_ids, phrases=params.phrases)
    for row in rows():
        sc.add(*row)
    phrases = sc.phrase_candidates(params.max_rate, params.min_rows, params.max_pass_ratio, params.max_phrases)
    if phrases:
        sc.count_phrases(rows(), phrases)
    cands = sc.flagged(params.max_rate, params.min_rows)
    distinct = set(prompts)
    counts = task_prompt_counts(cands, distinct)
    return sc, judge(cands, counts, len(distinct), params)


def task_prompt_counts(cands: list[dict], prompts: set[str]) -> dict[str, int]:
    """How many of the task's distinct prompts use each candidate (a letter: as a symbol; a phrase: in
    any case; anything else: verbatim or brace-free)."""
    counts = {c["token"]: 0 for c in cands}
    letters = [c["token"] for c in cands if c["kind"] == "symbol"]
    phrases = [c["token"] for c in cands if c["kind"] == "phrase"]
    names = [c["token"] for c in cands if c["kind"] not in ("symbol", "phrase")]
    name_pat = re.compile("|".join(map(re.escape, sorted(names, key=len, reverse=True)))) if names else None
    phrase_pat = phrase_pattern(phrases) if phrases else None
    for prompt in prompts:
        if letters:
            used = prompt_symbols(prompt)
            for t in letters:
                counts[t] += t in used
        if name_pat is not None:
            flat = prompt.replace("{", "").replace("}", "") if "{" in prompt else prompt
            for t in set(name_pat.findall(flat)):
                counts[t] += 1
        if phrase_pat is not None:
            for t in {" ".join(m.lower().split()) for m in phrase_pat.findall(prompt)}:
                if t in counts:
                    counts[t] += 1
    return counts


def _family(c: dict) -> str:
    if c["kind"] == "phrase":
        return "phrase"
    return "notation" if is_notation(c["token"], c["kind"]) else "name"


def judge(cands: list[dict], prompt_counts: dict[str, int], n_prompts: int, params: Any) -> list[dict]:
    """Each candidate with `severity` (fail, warn or none), `verifier` (tied, no link, cannot speak),
    `family`, its share of the task's prompts, and the Fisher p-value (raw and Bonferroni-adjusted)."""
    for c in cands:
        c["family"] = _family(c)
        c["task_prompt_rows"] = prompt_counts.get(c["token"], 0)
        share = c["task_prompt_rows"] / n_prompts if n_prompts else 0.0
        c["task_prompt_share"] = share
        c["grounded_by_task"] = share > 0 and share >= params.task_ground_ratio * c["rate"]
    tested = [c for c in cands if not c["grounded_by_task"] and c["judged_with"] and c["judged_without"]]
    m = max(1, len(tested))
    tested_ids = {id(c) for c in tested}
    for c in cands:
        c["tests"] = m
        c["p_value"] = c["p_adjusted"] = None
        c["verifier"] = "cannot speak"
        if id(c) in tested_ids:
            pw, jw, po, jo = c["passed_with"], c["judged_with"], c["passed_without"], c["judged_without"]
            p = fisher_less(pw, jw - pw, po, jo - po)
            c["p_value"], c["p_adjusted"] = p, min(1.0, p * m)
            if fisher_min_p(jw, po, jo) * m < params.alpha:  # had its rows all failed, a link would show
                linked = p * m < params.alpha and pw / jw <= params.max_pass_ratio * (po / jo)
                c["verifier"] = "tied" if linked else "no link"
        c["severity"] = _severity(c, params)
    return cands


def _severity(c: dict, params: Any) -> str:
    if c["grounded_by_task"]:
        return "none"
    if c["verifier"] == "tied":
        return "fail"
    if c["family"] != "name":
        return "none"  # notation and plain phrases recur in every solution; only a link condemns them
    if (
        c["verifier"] == "cannot speak"
        and params.without_verifier == "fail"
        and c["position_consistency"] >= params.min_position_consistency
    ):
        return "fail"
    return "warn"


def _p(p: float) -> str:
    return "p < 1e-9" if p < 1e-9 else f"p = {p:.2g}"


def message(c: dict, source: str) -> str:
    """Why a token is flagged, with the numbers, in words a lead can act on."""
    where = (
        "in no prompt"
        if not c["task_prompt_rows"]
        else f"in {c['task_prompt_rows']} of the task's prompts but not in those rows' own"
    )
    head = f"{c['token']} ({c['kind']}) is in {pct(c['rate'])} of {source} ({c['n_rows']} rows), {where}"
    if c["pass_rate_with"] is not None and c["pass_rate_without"] is not None:
        rates = f"rows with it pass the verifier {pct(c['pass_rate_with'])} vs {pct(c['pass_rate_without'])} without"
    else:
        rates = ""
    tests = f"Fisher exact, {c['tests']} token{'s' if c['tests'] != 1 else ''} tested"
    pos = f"position consistency {c['position_consistency']:.2f}"
    allow = f" If it is legitimate, add it to `allow:` under checks.contamination (allow: [{c['token']!r}])."
    if c["severity"] == "fail" and c["verifier"] == "tied":
        return f"{head}; {rates} ({_p(c['p_value'])}, {tests}); {pos}. Treat it as an invented token."
    if c["verifier"] == "no link":
        return (
            f"Review: {head}, but the verifier shows no link to wrong answers ({rates}, "
            f"{_p(c['p_value'])}); {pos}.{allow}"
        )
    why = (
        "no row with it could be judged (no references)"
        if not c["judged_with"]
        else f"too few rows to show a link ({rates})"
    )
    verdict = "Blocking on position alone (without_verifier: fail)." if c["severity"] == "fail" else "Review."
    return (
        f"{verdict} {head}; the verifier cannot speak, {why}, so this rests on recurrence, "
        f"grounding and position only; {pos}.{allow}"
    )
