"""phasecheck.stats: the t quantile, intervals over prompts as clusters, and the unbiased zero-variance
share, checked against exact enumeration and against the zero-std groups GRPO itself measures."""

from __future__ import annotations

import itertools
import math
import random
from statistics import NormalDist

import pytest

from phasecheck.checks.grpo_readiness import GrpoReadiness
from phasecheck.evidence import Evidence
from phasecheck.records import Example, Sample
from phasecheck.stats import (
    clustered_mean,
    clustered_proportion,
    equal_group_share,
    modified_wilson,
    poisson_lower,
    reward_classes,
    t_quantile,
    unseen_share,
    wilson,
    zero_variance_share,
)
from phasecheck.task import TaskSpec


@pytest.mark.parametrize("df, q", [(1, 12.7062), (2, 4.3027), (5, 2.5706), (9, 2.2622), (30, 2.0423), (120, 1.9799)])
def test_t_quantile_matches_the_tables(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=2e-4)


def test_wilson_is_the_score_interval():
    lo, hi = wilson(8, 10)
    assert lo < 0.8 < hi and wilson(80, 100)[1] - wilson(80, 100)[0] < hi - lo
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    "count, alpha, bound",
    [
        (1, 0.05, -math.log(0.95)),  # P(X >= 1) = 1 - exp(-lambda)
        (2, 0.05, 0.710723 / 2),
        (3, 0.05, 1.635383 / 2),  # chi2 tables: chi2_{2x, 0.05} / 2
        (1, 0.025, -math.log(0.975)),
        (50, 0.05, 77.9295 / 2),
        (0.5, 0.05, NormalDist().inv_cdf(0.525) ** 2 / 2),  # fractional: P(1/2, l) = erf(sqrt(l))
    ],
)
def test_poisson_lower_bound_is_the_exact_one(count, alpha, bound):
    assert poisson_lower(count, alpha) == pytest.approx(bound, rel=1e-5)


def _binomial_coverage(interval, n: int, p: float) -> float:
    return sum(
        math.comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(n + 1) if interval(x, n)[0] <= p <= interval(x, n)[1]
    )


def test_modified_wilson_takes_the_poisson_bound_within_three_counts_of_an_end():
    """Brown, Cai & DasGupta's rule: 1-2 counts from an end at n <= 50, 1-3 above; Wilson elsewhere."""
    assert modified_wilson(49, 50)[1] == pytest.approx(1 - poisson_lower(1, 0.05) / 50)
    assert modified_wilson(2, 50)[0] == pytest.approx(poisson_lower(2, 0.05) / 50)
    assert modified_wilson(3, 50) == wilson(3, 50) and modified_wilson(47, 50) == wilson(47, 50)
    assert modified_wilson(397, 400)[1] == pytest.approx(1 - poisson_lower(3, 0.05) / 400)
    assert modified_wilson(396, 400) == wilson(396, 400) and modified_wilson(400, 400) == wilson(400, 400)
    assert modified_wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("n", [50, 400])
def test_modified_wilson_covers_where_wilson_dips_next_to_an_end(n):
    """Exact binomial coverage for true rates within one expected failure of 1 (p = 1 - l/n, 0 < l <= 1).
    Wilson puts one failure's upper bound at 1 - 0.18/n, so it dips to 84% at l = 0.175 (90% at l = 0.1)."""
    rates = [1 - i / 200 / n for i in range(1, 201)]
    assert min(_binomial_coverage(wilson, n, p) for p in rates) < 0.85
    assert _binomial_coverage(wilson, n, 1 - 0.1 / n) < 0.91
    assert min(_binomial_coverage(modified_wilson, n, p) for p in rates) >= 0.92
    assert _binomial_coverage(modified_wilson, n, 1 - 0.1 / n) > 0.99


def test_agreement_interval_covers_a_nearly_perfect_agreement():
    """The bench's worst cell (5% of prompts never solved, the rest at 0.95; 200 prompts, R=2 runs x n=8):
    true agreement 0.99965, and a prompt disagrees (value 1/2) with probability d. Exact over the number of
    disagreeing prompts: with one of them the plain Wilson step said <= 0.99955, so it covered only when
    none disagreed (87%). Called as the stability check calls it, on agreement's range [1/2, 1]."""
    q = sum(math.comb(8, j) * 0.95**j * 0.05 ** (8 - j) for j in range(5, 9))  # a run's majority is right
    d = 0.95 * 2 * q * (1 - q)
    truth = 1 - d / 2
    coverage = 0.0
    for bad in range(12):
        ci = clustered_mean([0.5] * bad + [1.0] * (200 - bad), cap=400, floor=0.5)
        coverage += math.comb(200, bad) * d**bad * (1 - d) ** (200 - bad) * (ci.low <= truth <= ci.high)
    assert coverage >= 0.95


def _agreements(rng: random.Random, prompts: int, units: int) -> list[float]:
    """Per-prompt agreement as the stability check counts it, max(yes, no) / units, for a mix of rates."""
    rates = rng.choice([[rng.random()], [0.0, 1.0, rng.random()], [0.95], [0.5]])
    out = []
    for _ in range(prompts):
        yes = sum(rng.random() < rng.choice(rates) for _ in range(units))
        out.append(max(yes, units - yes) / units)
    return out


def test_floor_zero_is_todays_interval():
    """Bounds and n_eff from before `floor` existed, to the last bit: the plain interval must not move."""
    rng = random.Random(13)
    cases = [
        ([rng.random() for _ in range(12)], 48, (0.1973247070348285, 0.65657697318055, 40.370481681350725)),
        ([1.0] * 8, 32, (0.6097976541016069, 1.0, 32)),
        ([0.0] * 3 + [1.0] * 17, 80, (0.6165244477748153, 0.9523195873829631, 19.00000000000001)),
        ([0.5] * 2 + [1.0] * 198, 400, (0.9764237283183044, 0.9991115962232533, 400)),
        ([0.25, 0.5, 0.75, 1.0, 1.0, 0.0, 0.5, 0.5], 16, (0.26884670342917116, 0.7992807294774483, 16)),
    ]
    for values, cap, before in cases:
        for ci in (clustered_mean(values, cap), clustered_mean(values, cap, floor=0.0)):
            assert (ci.low, ci.high, ci.n_eff) == before


def test_agreement_interval_uses_the_range_agreement_can_take():
    """Agreement is never below 1/2, so the interval is computed on (v - 1/2) / (1/2) and mapped back: within
    [1/2, 1], never wider than the plain one and never lower at its low end (it is the low end that the
    unseen share and the Wilson step pushed toward 0). Its high end may sit a little higher: Wilson's centre
    is then pulled toward 3/4, the middle of the range, not 1/2."""
    rng = random.Random(7)
    narrower = 0
    for _ in range(400):
        values = _agreements(rng, rng.choice([2, 3, 8, 16, 50, 200]), rng.choice([1, 2, 3, 4, 8]))
        cap = len(values) * 4
        plain, ranged = clustered_mean(values, cap), clustered_mean(values, cap, floor=0.5)
        assert 0.5 <= ranged.low <= ranged.estimate == plain.estimate <= ranged.high <= 1.0
        assert ranged.high - ranged.low <= plain.high - plain.low + 1e-12
        assert ranged.low >= plain.low
        narrower += ranged.high - ranged.low < 0.9 * (plain.high - plain.low)
    assert narrower > 200
    # Eight prompts all agreeing: the unseen share now sits at 1/2, not 0, so the bound is halfway up.
    assert clustered_mean([1.0] * 8, 32, floor=0.5).low == pytest.approx(0.5 + clustered_mean([1.0] * 8, 32).low / 2)
    assert clustered_mean([0.5] * 8, 32, floor=0.5).bounds()[0] == 0.5
    with pytest.raises(ValueError, match="values in"):
        clustered_mean([0.25, 1.0], 4, floor=0.5)


@pytest.mark.parametrize("prompts", [8, 16])
def test_agreement_interval_on_its_range_covers_exactly(prompts):
    """Two runs: a prompt agrees (1) or not (1/2), so the number of disagreeing prompts is binomial and the
    coverage exact. Over disagreement rates from 0.1% to 99% it stays >= 95%, and the interval is about half
    as wide as on [0, 1] (there every rate of 30% or more was covered 99-100%, at 8 prompts)."""
    width = {0.0: 0.0, 0.5: 0.0}
    for d in (0.001, 0.005, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99):
        truth = 1 - d / 2
        coverage = 0.0
        for bad in range(prompts + 1):
            p = math.comb(prompts, bad) * d**bad * (1 - d) ** (prompts - bad)
            for floor in width:
                ci = clustered_mean([0.5] * bad + [1.0] * (prompts - bad), cap=2 * prompts, floor=floor)
                width[floor] += p * (ci.high - ci.low)
                coverage += p * (ci.low <= truth <= ci.high) * (floor == 0.5)
        assert coverage >= 0.95, d
    assert width[0.5] < 0.65 * width[0.0]
    # Four runs: values 1/2, 3/4, 1, a trinomial over eight prompts, enumerated.
    for a, b in ((0.01, 0.02), (0.05, 0.1), (0.2, 0.3), (0.4, 0.4), (0.1, 0.8), (0.3, 0.1)):
        truth, coverage = 0.5 * a + 0.75 * b + (1 - a - b), 0.0
        for i, j in itertools.product(range(9), repeat=2):
            if i + j <= 8:
                p = math.factorial(8) / math.factorial(i) / math.factorial(j) / math.factorial(8 - i - j)
                ci = clustered_mean([0.5] * i + [0.75] * j + [1.0] * (8 - i - j), cap=32, floor=0.5)
                coverage += p * a**i * b**j * (1 - a - b) ** (8 - i - j) * (ci.low <= truth <= ci.high)
        assert coverage >= 0.95, (a, b)


def test_cluster_interval_widens_when_samples_of_a_prompt_agree():
    """Same 50% over 256 samples: 64 prompts each half right (little between-prompt spread) against
    32 always right and 32 never (all spread between prompts): the second is worth about 63 samples
    (64 prompts, one degree of freedom spent on the mean)."""
    mixed = clustered_proportion([(2, 4)] * 64)
    split = clustered_proportion([(4, 4)] * 32 + [(0, 4)] * 32)
    assert mixed.estimate == split.estimate == 0.5
    assert split.high - split.low > 1.6 * (mixed.high - mixed.low)
    assert split.n_eff == pytest.approx(63.0) and mixed.n_eff == 256 and split.prompts == 64 and split.n == 256


def test_cluster_interval_at_the_boundary_and_with_one_prompt():
    none = clustered_proportion([(0, 4)] * 20)
    # 20 prompts never solved leave room for the 17% of the task they could all have missed.
    assert none.low == 0.0 and 0.1 < none.high < 0.2 and none.unseen == pytest.approx(unseen_share(20))
    one = clustered_proportion([(3, 4)])
    assert (one.low, one.high) == (0.0, 1.0) and "one prompt" in one.method


def test_eight_prompts_all_solved_cannot_confirm_a_task_solved_at_80_percent():
    """Eight prompts drawn could all miss a share of the task's prompts that is never solved, however many
    samples each prompt gets: the interval must allow for it."""
    assert unseen_share(8) == pytest.approx(1 - 0.025 ** (1 / 8))
    eight = clustered_proportion([(64, 64)] * 8)
    # Near the rule of three on eight draws, 0.025 ** (1 / 8) = 0.63: the prompts, not the samples, bound it.
    assert eight.estimate == 1.0 and 0.55 < eight.low < 0.7 and eight.unseen == pytest.approx(0.369, abs=1e-3)
    assert clustered_proportion([(4, 4)] * 8).bounds() == eight.bounds()
    # With many prompts the cap fades: 200 prompts all solved pin the rate near 1.
    assert clustered_proportion([(64, 64)] * 200).low > 0.97


def _coverage(rates: list[float], weights: list[float], prompts: int, samples: int, reps: int, seed: int) -> float:
    rng = random.Random(seed)
    truth = sum(r * w for r, w in zip(rates, weights))
    hits = 0
    for _ in range(reps):
        drawn = rng.choices(rates, weights, k=prompts)
        ci = clustered_proportion([(sum(rng.random() < p for _ in range(samples)), samples) for p in drawn])
        hits += ci.low <= truth <= ci.high
    return hits / reps


@pytest.mark.parametrize("prompts", [8, 16])
def test_interval_covers_a_task_with_a_few_never_solved_prompts(prompts):
    """5% of the prompts never solved (a wrong reference), the rest at 95%: eight or sixteen prompts often
    draw none of the broken ones. Without the unseen-share cap this covered 60% (8 prompts) and 59%
    (16 prompts) of the time for a nominal 95%."""
    assert _coverage([0.0, 0.95], [0.05, 0.95], prompts, 32, 400, seed=prompts) >= 0.93


def test_cluster_interval_is_deterministic():
    rng = random.Random(5)
    counts = [(rng.randint(0, 8), 8) for _ in range(30)]
    assert clustered_proportion(counts) == clustered_proportion(list(counts))
    assert clustered_mean([c / m for c, m in counts], cap=240).bounds() == clustered_proportion(counts).bounds()


def _enumerate_share(q: dict[float, float], m: int, g: int) -> tuple[float, float]:
    """(expected unbiased estimate from m draws, truth sum q_v^g), by enumerating every outcome."""
    values, probs = zip(*q.items())
    expect = 0.0
    for draw in itertools.product(range(len(values)), repeat=m):
        p = math.prod(probs[i] for i in draw)
        expect += p * equal_group_share(reward_classes([values[i] for i in draw]), m, g)
    return expect, sum(p**g for p in probs)


@pytest.mark.parametrize("m, g", [(4, 4), (6, 4), (7, 3), (8, 8)])
def test_zero_variance_estimate_is_unbiased_by_exact_enumeration(m, g):
    q = {1.1: 0.2, 1.0: 0.1, 0.1: 0.45, 0.0: 0.25}  # correct x format bonus, four reward values
    expect, truth = _enumerate_share(q, m, g)
    assert expect == pytest.approx(truth, abs=1e-12)
    # The plug-in (sample frequencies to the power g) is biased upward; measured here for contrast.
    plug = 0.0
    values, probs = zip(*q.items())
    for draw in itertools.product(range(len(values)), repeat=m):
        p = math.prod(probs[i] for i in draw)
        plug += p * sum((draw.count(i) / m) ** g for i in range(len(values)))
    assert plug > truth + 0.01


def test_zero_variance_below_g_is_an_upper_bound_and_says_so():
    zv = zero_variance_share({"a": [1.0, 1.0, 0.0, 1.0], "b": [0.0] * 4}, 8)
    assert (zv.exact, zv.estimated_at, zv.group_size) == (False, 4, 8)
    assert zv.interval.estimate == pytest.approx(0.5) and "upper bound for G=8" in zv.interval.method


def test_zero_variance_effective_size_is_the_spread_not_the_disjoint_groups():
    # 20 prompts of 16 rewards at G=8: two disjoint groups each, 40 in all. The U-statistics' spread is
    # worth far more than 40 groups; the interval must say so rather than stop at 40.
    rewards = {str(j): [1.0] * (3 + j % 4) + [0.0] * (13 - j % 4) for j in range(20)}
    zv = zero_variance_share(rewards, 8)
    assert zv.interval.n_eff > 40 and zv.interval.n == 320
    capped = clustered_mean(list(zv.per_prompt.values()), cap=40)
    assert zv.interval.high - zv.interval.low < capped.high - capped.low


def test_zero_variance_values_all_equal_rest_on_the_disjoint_groups():
    # m = G: each prompt's value is one group's 0 or 1. No prompt's group was all equal: the spread says
    # nothing, and the 12 groups, not the 96 samples, are the effective size.
    zv = zero_variance_share({str(j): [1.0, 0.0] * 4 for j in range(12)}, 8)
    assert zv.interval.estimate == 0 and zv.interval.n_eff == 12
    assert zv.interval.high == pytest.approx(clustered_mean([0.0] * 12, cap=12).high)


# --- the prediction against what GRPO measures ------------------------------------------------------


def _partial_credit_task() -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "name": "bands",
            "grader": {
                "verifier": {"kind": "exact", "extract": {"regex": r"answer is (-?\d+)"}},
                "default": {"correct": 1.0, "wrong": -0.5},
                "format_bonus": 0.2,
                "concise_chars": 20,
            },
            "sampling": {"runs": 2, "n": 3},
            "training": {"grpo": {"group_size": 4}},
        }
    )


def _samples(examples):
    """Six samples a prompt: right or wrong, terse (bonus) or padded (no bonus), in a fixed pattern."""
    rng = random.Random(0)
    out = []
    for ex in examples:
        for r in range(2):
            for j in range(3):
                right = rng.random() < 0.7
                ans = ex.reference if right else "0"
                text = f"answer is {ans}" if rng.random() < 0.6 else f"Let me think it over: answer is {ans}"
                out.append(
                    Sample(example_id=ex.id, run=r, index=j, seed=0, completion=text, model="m", engine="replay")
                )
    return out


def test_partial_credit_bands_predict_zero_reward_std_as_grpo_measures_it():
    """The check's share equals the mean, over every group of 4 one could draw from each prompt's
    samples, of GRPO's own zero-std test on the rewards GRPO is given (grader bands, format bonus)."""
    import torch

    from phasecheck.grading import Grader, as_reward_func

    task = _partial_credit_task()
    examples = [Example(id=f"e{i}", prompt=f"Twice {i}?", reference=str(2 * i + 1)) for i in range(12)]
    samples = _samples(examples)
    res = GrpoReadiness().run(Evidence(task, examples=examples, samples=samples), GrpoReadiness.Params())
    by_id = {ex.id: ex for ex in examples}
    with Grader(task) as grader:
        reward_fn = as_reward_func(task, grader)
        measured, correct_only = [], []
        for ex in examples:
            texts = [s.completion for s in samples if s.example_id == ex.id]
            grades = grader.grade_many([(t, by_id[ex.id]) for t in texts])  # what train_grpo rewards with
            rewards = [g.reward for g in grades]
            assert reward_fn(texts, id=[ex.id] * 6, reference=[ex.reference] * 6) == rewards  # the TRL path
            groups = torch.tensor([[rewards[i] for i in c] for c in itertools.combinations(range(6), 4)])
            measured.append((groups.std(dim=1, unbiased=False) < 1e-6).float().mean().item())
            ok = [g.correct for g in grades]
            correct_only.append(sum(len({ok[i] for i in c}) == 1 for c in itertools.combinations(range(6), 4)) / 15)
    assert res.metrics["group_size"] == 4 and res.metrics["exact"]
    assert res.metrics["zero_variance_share"] == pytest.approx(sum(measured) / len(measured), abs=1e-6)
    # Judged on correctness alone, the bonus would be invisible and the share overstated.
    assert sum(correct_only) / len(correct_only) > res.metrics["zero_variance_share"] + 0.05


def test_train_grpo_sets_the_verdicts_prediction_beside_its_first_step_only_for_the_same_g():
    from phasecheck.results import CheckResult, Fingerprint, Phase, Status, Verdict
    from phasecheck.training.prompt_selection import predicted_zero_std

    check = CheckResult(
        id="grpo_readiness",
        question="q",
        status=Status.PASS,
        headline="h",
        metrics={"group_size": 8, "zero_variance_share": 0.05, "zero_variance_ci": [0.02, 0.1], "exact": True},
    )
    verdict = Verdict(
        task="t",
        status=Phase.GRPO_PHASE,
        action="",
        checks=[check],
        fingerprint=Fingerprint(task="t", sampling="s", version="0", digest="d"),
        created_at="2020-01-01T00:00:00Z",
    )
    assert predicted_zero_std(verdict, 8) == {
        "predicted_zero_std": 0.05,
        "predicted_zero_std_ci": [0.02, 0.1],
        "predicted_exact": True,
    }
    assert predicted_zero_std(verdict, 4) == {} and predicted_zero_std(None, 8) == {}
