"""The coverage view (issue 16): pass@k and pass^k for k = 1 … m with intervals, the diversity verdict read from
that curve, before and after (--compare), and the curve in the text and HTML reports."""

from __future__ import annotations

import math

import html5lib
import pytest

from phasecheck.checks._common import coverage_curve, coverage_ks, pass_at_k, pass_hat_k
from phasecheck.checks.diversity import Diversity
from phasecheck.evidence import Evidence
from phasecheck.names import CheckMetric
from phasecheck.records import Example, Sample
from phasecheck.reports import render
from phasecheck.results import Fingerprint, Phase, Status, Verdict
from phasecheck.task import TaskSpec
from support import VERIFIER, failing_verdict


def evidence(prompts: int, m: int, correct_count, previous: Verdict | None = None) -> Evidence:
    """`prompts` prompts with m samples each (one run), the first correct_count(i) right and the rest one same
    wrong answer."""
    task = TaskSpec.model_validate({"name": "unit", "grader": {"verifier": VERIFIER}})
    ex = [Example(id=f"e{i}", prompt=f"Double {i}.", reference=str(2 * i)) for i in range(prompts)]
    samples = [
        Sample(
            example_id=e.id,
            run=0,
            index=j,
            seed=j,
            completion=f"The answer is {2 * i + (j >= correct_count(i))}.",
            model="m",
            engine="replay",
        )
        for i, e in enumerate(ex)
        for j in range(m)
    ]
    return Evidence(task, examples=ex, samples=samples, previous=previous)


def run(prompts: int, m: int, correct_count, previous: Verdict | None = None, **params):
    """Diversity over `prompts` prompts with m samples each, correct_count(i) of them right."""
    return Diversity().run(evidence(prompts, m, correct_count, previous), Diversity.Params(**params))


def as_previous(result) -> Verdict:
    fp = Fingerprint(task="t", sampling="s", version="0", digest="d")
    return Verdict(task="unit", status=Phase.GRPO_PHASE, action="", checks=[result], fingerprint=fp, created_at="x")


# --- the curve ---------------------------------------------------------------------------------------------


def test_pass_at_k_and_pass_hat_k_per_prompt_by_hand():
    # 4 samples, 2 correct: pass@2 = 1 - C(2,2)/C(4,2) = 5/6, pass^2 = C(2,2)/C(4,2) = 1/6.
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6) and pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert pass_hat_k(4, 1, 2) == 0.0 and pass_hat_k(4, 4, 4) == 1.0 and pass_hat_k(4, 3, 1) == 0.75
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_hat_k(n, c, k) == pytest.approx(math.comb(c, k) / math.comb(n, k))
                assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))
    with pytest.raises(ValueError):
        pass_hat_k(3, 1, 4)


def test_the_curve_is_the_mean_over_prompts_with_intervals_around_it():
    counts = [(4, 0), (4, 1), (4, 2), (4, 4)]
    curve = coverage_curve(counts, [1, 2, 3, 4])
    assert [p["k"] for p in curve] == [1, 2, 3, 4]
    # by hand at k = 2: pass@2 per prompt 0, 1/2, 5/6, 1; pass^2 per prompt 0, 0, 1/6, 1
    assert curve[1]["pass_at_k"] == pytest.approx((0 + 1 / 2 + 5 / 6 + 1) / 4)
    assert curve[1]["pass_hat_k"] == pytest.approx((0 + 0 + 1 / 6 + 1) / 4)
    assert curve[0]["pass_at_k"] == curve[0]["pass_hat_k"] == pytest.approx(7 / 16)  # k = 1: both are c / n
    assert curve[3]["pass_at_k"] == pytest.approx(3 / 4) and curve[3]["pass_hat_k"] == pytest.approx(1 / 4)
    for p in curve:
        for key in ("pass_at_k", "pass_hat_k"):
            lo, hi = p[key + "_ci"]
            assert 0 <= lo <= p[key] <= hi <= 1 and lo < hi
    ats, hats = [p["pass_at_k"] for p in curve], [p["pass_hat_k"] for p in curve]
    assert ats == sorted(ats) and hats == sorted(hats, reverse=True)


def test_the_check_writes_the_curve_it_judges_from():
    res = run(8, 4, lambda i: i % 5)  # 0, 1, 2, 3, 4, 0, 1, 2 correct of 4
    curve = res.metrics[CheckMetric.COVERAGE]
    counts = [(4, i % 5) for i in range(8)]
    assert curve == coverage_curve(counts, [1, 2, 3, 4])
    m = res.metrics
    assert (m["pass_at_1"], m["pass_at_k"], m["k"]) == (curve[0]["pass_at_k"], curve[-1]["pass_at_k"], 4)
    assert m["pass_hat_k"] == curve[-1]["pass_hat_k"]
    assert m["headroom"] == pytest.approx(curve[-1]["pass_at_k"] - curve[0]["pass_at_k"])
    assert m["headroom_ci"][0] <= m["headroom"] <= m["headroom_ci"][1]


def test_the_number_of_points_is_capped_past_16():
    assert coverage_ks(2) == [1, 2]
    assert coverage_ks(16) == list(range(1, 17))
    assert coverage_ks(17) == list(range(1, 17)) + [17]
    assert coverage_ks(64) == list(range(1, 17)) + [32, 64]
    assert coverage_ks(100) == list(range(1, 17)) + [32, 64, 100]
    res = run(6, 40, lambda i: 3 * i)
    assert [p["k"] for p in res.metrics[CheckMetric.COVERAGE]] == list(range(1, 17)) + [32, 40]
    assert any("shows 18 of k = 1 … 40" in f.message for f in res.findings)
    assert not any("shows" in f.message for f in run(6, 8, lambda i: i).findings)


# --- the verdict from the curve ---------------------------------------------------------------------------


def test_a_rising_curve_is_room_to_explore_even_with_few_distinct_answers():
    # one right and one wrong answer a prompt (distinct ratio 1/7), half right: pass@1 50%, pass@8 100%
    res = run(20, 8, lambda i: 4)
    assert res.metrics["distinct_ratio"] < Diversity.Params().min_distinct_ratio
    assert res.status is Status.PASS and res.metrics["headroom"] == pytest.approx(0.5)
    # judged again at another threshold, from the same metrics
    measured = Diversity().measure(evidence(20, 8, lambda i: 4).view(True), Diversity.Params())
    strict = Diversity().judge(measured, Diversity.Params(min_headroom=0.6))
    assert strict.status is Status.WARN and "coverage curve is flat" in strict.findings[0].message


def test_collapsed_answers_and_a_flat_curve_warn_and_say_when_the_interval_cannot_rule_out_a_rise():
    few = run(5, 4, lambda i: 4 * (i == 0))  # every prompt always right or always the same wrong answer
    assert few.status is Status.WARN and few.metrics["headroom"] == 0.0
    assert few.metrics["headroom_ci"][1] >= 0.05 and "too few to rule out a rise ≥ 5 pts" in few.headline
    many = run(200, 8, lambda i: 8 * (i % 2))
    assert many.status is Status.WARN and many.metrics["headroom_ci"][1] < 0.05
    assert "too few" not in many.headline
    assert run(5, 4, lambda i: 4).status is Status.PASS  # flat because everything is solved


# --- before and after ----------------------------------------------------------------------------------------


def compare(before_count, after_count, prompts: int = 40, m: int = 8):
    before = run(prompts, m, before_count)
    return run(prompts, m, after_count, previous=as_previous(before))


def test_compare_says_sharpened_and_narrowed_when_the_intervals_do_not_overlap():
    res = compare(lambda i: 2, lambda i: 8 * (i % 5 < 3))  # pass@1 25% -> 60%, pass@8 100% -> 60%
    change = res.metrics[CheckMetric.COVERAGE_CHANGE]
    assert change == {"k": 8, "pass_at_1": "up", "pass_at_k": "down"}
    assert res.metrics[CheckMetric.COVERAGE_BEFORE][0]["pass_at_k"] == pytest.approx(0.25)
    said = [f.message for f in res.findings if CheckMetric.COVERAGE_CHANGE in f.data]
    assert len(said) == 1 and "sharpened (pass@1 up), narrowed (pass@8 down)" in said[0]
    assert "the trade-off reported for RL-trained models" in said[0] and "25% [" in said[0]


def test_compare_says_sharpened_alone_and_narrowed_alone():
    up = compare(lambda i: 1, lambda i: 7)  # pass@1 12% -> 88%, pass@8 100% both
    assert up.metrics[CheckMetric.COVERAGE_CHANGE] == {"k": 8, "pass_at_1": "up", "pass_at_k": None}
    msg = next(f.message for f in up.findings if CheckMetric.COVERAGE_CHANGE in f.data)
    assert "sharpened (pass@1 up), pass@8 unchanged within its intervals" in msg and "trade-off" not in msg
    down = compare(lambda i: 4, lambda i: 8 * (i % 2))  # pass@1 50% both, pass@8 100% -> 50%
    assert down.metrics[CheckMetric.COVERAGE_CHANGE] == {"k": 8, "pass_at_1": None, "pass_at_k": "down"}


def test_compare_claims_nothing_when_the_intervals_overlap():
    res = compare(lambda i: 2 + (i % 2), lambda i: 3 + (i % 2), prompts=6, m=4)
    assert res.metrics[CheckMetric.COVERAGE_CHANGE] == {"k": 4, "pass_at_1": None, "pass_at_k": None}
    msg = next(f.message for f in res.findings if CheckMetric.COVERAGE_CHANGE in f.data)
    assert "no change the intervals can show" in msg


def test_compare_uses_the_largest_k_both_curves_show_and_skips_an_earlier_verdict_without_one():
    before = run(10, 40, lambda i: 4 * (i % 3))
    after = run(10, 20, lambda i: 2 * (i % 3), previous=as_previous(before))
    assert after.metrics[CheckMetric.COVERAGE_CHANGE]["k"] == 16  # 1..16, 32, 40 against 1..16, 20
    old = before.model_copy(update={"metrics": {}})
    assert CheckMetric.COVERAGE_BEFORE not in run(10, 4, lambda i: 2, previous=as_previous(old)).metrics


# --- reports ---------------------------------------------------------------------------------------------------


def with_diversity(result) -> Verdict:
    v = failing_verdict()
    v.checks = [c if c.id != result.id else result for c in v.checks]
    return v


def test_text_report_has_one_coverage_line():
    text = render(with_diversity(run(10, 8, lambda i: i % 9)), "text")
    lines = [ln for ln in text.splitlines() if ln.startswith("Coverage:")]
    assert len(lines) == 1 and "pass@1 " in lines[0] and ", pass@8 " in lines[0] and ", pass^8 " in lines[0]
    assert "Coverage:" not in render(failing_verdict(), "text")


def test_html_draws_the_curves_and_the_earlier_ones_dashed():
    now = with_diversity(compare(lambda i: 2, lambda i: 8 * (i % 5 < 3)))
    html = render(now, "html")
    html5lib.HTMLParser(strict=True).parse(html)
    section = html.split('<section id="coverage">')[1].split("</section>")[0]
    assert section.count('<svg class="kchart"') == 1
    assert section.count('<polyline points="') == 4  # pass@k and pass^k, now and earlier
    assert section.count('class="kline at dashed"') == 2  # the earlier pass@k and its legend swatch
    assert section.count('class="kband') == 2  # intervals for the current curves only
    assert section.count("<circle") == 2 * 8 * 2
    assert "sharpened (pass@1 up), narrowed (pass@8 down)" in section and "pass^8 " in section
    alone = render(with_diversity(run(10, 8, lambda i: i % 9)), "html")
    html5lib.HTMLParser(strict=True).parse(alone)
    assert '<section id="coverage">' in alone and "dashed" not in alone.split('<section id="coverage">')[1]
    assert '<section id="coverage">' not in render(failing_verdict(), "html")


def test_html_chart_escapes_and_puts_the_largest_k_on_the_axis():
    res = run(6, 40, lambda i: 3 * i)
    html = render(with_diversity(res), "html")
    html5lib.HTMLParser(strict=True).parse(html)
    section = html.split('<section id="coverage">')[1].split("</section>")[0]
    assert ">40</text>" in section and ">32</text>" in section and "then powers of two and 40" in section
    assert "pass^k (all k correct), k=40:" in section
