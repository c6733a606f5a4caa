"""How the contamination check weighs evidence: Fisher's exact test, tiers, whole-task grounding, notation."""

from __future__ import annotations

import random
from math import comb

import pytest

from phasecheck.checks._scan import extract_tokens, grounded_in, prompt_symbols
from phasecheck.fisher import fisher_less, fisher_min_p
from phasecheck.records import Demonstration
from phasecheck.results import Status
from support import PROSE, planted, run


def brute_fisher_less(a: int, b: int, c: int, d: int) -> float:
    n, k, draws = a + b + c + d, a + c, a + b
    return sum(comb(k, i) * comb(n - k, draws - i) for i in range(a + 1)) / comb(n, draws)


def test_fisher_matches_exact_enumeration_and_handles_large_tables():
    rnd = random.Random(0)
    for _ in range(500):
        a, b, c, d = (rnd.randrange(25) for _ in range(4))
        if min(a + b, c + d, a + c, b + d) == 0:
            assert fisher_less(a, b, c, d) == 1.0
            continue
        assert fisher_less(a, b, c, d) == pytest.approx(brute_fisher_less(a, b, c, d), rel=1e-9, abs=1e-15)
    assert fisher_less(0, 40, 60, 0) < 1e-20  # golden_hour_sun: 0% vs 100%
    assert fisher_less(300_000, 1_000, 300_000, 1_000) == pytest.approx(0.5, abs=0.05)
    assert fisher_min_p(3, 97, 97) == pytest.approx(brute_fisher_less(0, 3, 97, 0))
    assert fisher_min_p(2, 3, 10) > 0.05  # too few rows: the verifier cannot speak
    with pytest.raises(ValueError):
        fisher_less(-1, 0, 0, 0)


def test_fisher_agrees_with_scipy_when_installed():
    stats = pytest.importorskip("scipy.stats")
    for table in [(3, 17, 40, 10), (0, 34, 250, 391), (91, 211, 1921, 3053), (12, 3, 5, 9)]:
        a, b, c, d = table
        want = stats.fisher_exact([[a, b], [c, d]], alternative="less").pvalue
        assert fisher_less(*table) == pytest.approx(want, rel=1e-6)


def _with_answers(demos, right: bool):
    """The planted rows of `planted()` with their answers made right again."""
    out = []
    for d in demos:
        if right and "answer is" in d.completion and d.completion.split()[0] != "The":
            d = Demonstration(
                **{
                    **d.to_dict(),
                    "completion": d.completion.replace(f"is {int(d.reference) + 1}.", f"is {d.reference}."),
                }
            )
        out.append(d)
    return out


def test_recurring_name_with_no_link_to_wrong_answers_is_a_warning_naming_the_allow_line():
    demos, bad = planted("golden_hour_sun", "solar_elevation_k")
    res = run(_with_answers(demos, right=True))
    assert res.status is Status.WARN
    (f,) = res.findings
    assert f.data["severity"] == "warn" and f.data["verifier"] == "no link"
    assert "allow" in f.message and "golden_hour_sun" in f.message and "no link to wrong answers" in f.message
    assert set(f.example_ids) <= set(bad)


def test_without_references_the_verdict_says_what_it_rests_on():
    demos, _ = planted("golden_hour_sun", "solar_elevation_k")
    unref = [Demonstration(**{**d.to_dict(), "reference": None}) for d in demos]
    res = run(unref)
    assert res.status is Status.WARN and "no references" in res.headline
    assert "recurrence, grounding and position only" in res.metrics["rests_on"]
    assert "cannot speak" in res.findings[0].message
    strict = run(unref, without_verifier="fail")  # consistent position: blocks when asked to
    assert strict.status is Status.FAIL and strict.findings[0].data["position_consistency"] > 0.95


def _letters(n: int = 100, *, wrong_with_letter: bool = False, letter: str = "r"):
    demos = []
    for i in range(n):
        use = i % 5 == 0
        ans = i + 1 if (use and wrong_with_letter) else i
        text = f"{PROSE[i % 4]} Let ${letter} = {i}$, so the answer is {ans}." if use else f"The answer is {i}."
        demos.append(Demonstration(id=f"r{i}", prompt=f"What is {i}?", reference=str(i), completion=text))
    return demos


def test_an_introduced_letter_is_ordinary_notation_unless_the_verifier_ties_it_to_failure():
    res = run(_letters())
    assert res.status is Status.PASS and res.findings == []
    quiet = res.metrics["not_flagged"]["demonstrations"]
    assert quiet == [{"token": "r", "rate": 0.2, "why": "notation, verifier: no link"}]
    tied = run(_letters(wrong_with_letter=True))
    assert tied.status is Status.FAIL and tied.findings[0].data["token"] == "r"


def test_a_small_effect_is_not_a_link_even_when_significant():
    # Rows with the token pass 70% vs 100% without: significant on 1000 rows, but not a large effect.
    demos = []
    for i in range(1000):
        use = i % 10 == 0
        ans = i + 1 if (use and i % 100 < 30) else i
        text = f"Set betaOffset first. The answer is {ans}." if use else f"The answer is {i}."
        demos.append(Demonstration(id=f"r{i}", prompt=f"What is {i}?", reference=str(i), completion=text))
    res = run(demos, max_rate=0.05)
    (f,) = res.findings
    assert f.data["p_value"] < 1e-6 and f.data["severity"] == "warn"
    assert run(demos, max_pass_ratio=0.8).status is Status.FAIL


def test_whole_task_grounding_letters_in_point_names_and_other_prompts():
    assert {"A", "B", "C"} <= prompt_symbols("In triangle ABC, the angle at B is 30 degrees.")
    assert {"x", "y"} <= prompt_symbols(r"Find $\frac{xy}{2}$.")
    assert grounded_in("B", "symbol", "Let $ABCD$ be a square.")
    assert grounded_in("a_1", "subscript", "The sequence $a_{n}$ starts at 2.")
    # A token the task's other prompts use is the task's vocabulary even where its own prompt is silent.
    demos = []
    for i in range(100):
        prompt = f"Row {i}: apply the heatIndex table." if i % 2 else f"Row {i}: what is {i}?"
        text = f"Using heatIndex, the answer is {i + (1 if i % 4 == 0 else 0)}."
        demos.append(Demonstration(id=f"r{i}", prompt=prompt, reference=str(i), completion=text))
    res = run(demos)
    assert res.status is Status.PASS
    assert res.metrics["not_flagged"]["demonstrations"][0]["why"] == "grounded by the task's prompts"


def test_prices_are_not_math_spans():
    assert [t for t, k, _ in extract_tokens("she earned 0.2 x 50 = $<<0.2*50=10>>10. Then $5 x 2 = $10.")] == []
    assert {t for t, _, _ in extract_tokens("So $x = 2$ and $y + 1 = 3$.")} == {"x", "y"}
    assert [t for t, _, _ in extract_tokens(r"Using $\varsigma_{g} = 0.7$")] == [r"\varsigma_g"]


def _term_demos(right: bool, n: int = 200):
    demos, bad = [], set()
    for i in range(n):
        text = f"{PROSE[i % 4]} The answer is {i}."
        if i % 10 < 2:
            text = f"Using the lunar drift coefficient of 0.7, we adjust. {PROSE[i % 4]} The answer is {i if right else i + 1}."
            bad.add(f"r{i}")
        demos.append(Demonstration(id=f"r{i}", prompt=f"Row {i}: what is {i}?", reference=str(i), completion=text))
    return demos, bad


def test_a_made_up_term_in_plain_words_is_found_when_it_goes_with_wrong_answers():
    demos, bad = _term_demos(right=False)
    res = run(demos, max_example_ids=1000)
    assert res.status is Status.FAIL
    (f,) = res.findings
    assert f.data["token"] == "lunar drift coefficient" and f.data["kind"] == "phrase"
    assert set(f.example_ids) == bad
    assert run(demos, phrases=False).status is Status.PASS
    # Plain prose that recurs with right answers is never reported: nothing ties it to harm.
    assert run(_term_demos(right=True)[0]).status is Status.PASS
