"""Statistics shared by the checks: proportions and means over prompts as clusters, the unbiased
share of zero-variance GRPO groups (Fisher's exact test is in fisher.py).
Pure Python, analytic (no resampling), so verdicts are deterministic."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

__all__ = [
    "Interval",
    "wilson",
    "modified_wilson",
    "poisson_lower",
    "t_quantile",
    "unseen_share",
    "clustered_mean",
    "clustered_proportion",
    "ZeroVariance",
    "zero_variance_share",
    "reward_classes",
    "equal_group_share",
]


# --- Sampling statistics (issue 13): cluster-aware intervals, zero-variance groups --------------------


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval and what it rests on (prompts, observations, effective n)."""

    estimate: float
    low: float
    high: float
    confidence: float
    prompts: int
    n: int  # observations (samples, run outcomes or disjoint groups) behind the estimate
    n_eff: float  # effective sample size after the clustering of observations within prompts
    method: str
    unseen: float = 0.0  # share of the task's prompts that this many could all have missed (see clustered_mean)

    def bounds(self) -> list[float]:
        return [self.low, self.high]

    def to_dict(self) -> dict:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "prompts": self.prompts,
            "n": self.n,
            "n_eff": round(self.n_eff, 3),
            "unseen_share": round(self.unseen, 4),
            "method": self.method,
        }


def wilson(successes: float, n: float, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when n is 0. `n` may be an effective (fractional) size."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def modified_wilson(successes: float, n: float, z: float = 1.959964, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's interval with Brown, Cai & DasGupta's boundary fix (2001, Statistical Science 16:101, sec. 4.1.1).

    Within a few counts of 0 or n, Wilson's bound on that side sits too far in: with one failure in n its
    upper bound is 1 - 0.18/n, so a true rate of 1 - 0.1/n, which shows one failure about a tenth of the
    time, is missed that often (coverage near 0.90 for a nominal 0.95). For x = 1..x* successes (or failures)
    that bound becomes the one-sided Poisson bound poisson_lower(x) / n, x* = 2 for n <= 50 and 3 above
    (they stop at n = 100; past it x* stays 3, as in R's DescTools). It is one-sided at the full 1 - confidence,
    as theirs is, because so near an end the far bound cannot miss. The far bound stays Wilson's, which is
    already about exact there (one failure: 1 - 5.66/n against the Poisson 1 - 5.57/n). Counts may be
    effective (fractional) ones: the Poisson bound is then the gamma quantile. Never narrower than Wilson's."""
    lo, hi = wilson(successes, n, z)
    if n <= 0:
        return (lo, hi)
    near = (2.0 if n <= 50 else 3.0) + 1e-9
    alpha = 1.0 - confidence
    if 0 < successes <= near:
        lo = min(lo, poisson_lower(successes, alpha) / n)
    if 0 < n - successes <= near:
        hi = max(hi, 1.0 - poisson_lower(n - successes, alpha) / n)
    return (lo, hi)


def _gamma_p(a: float, x: float) -> float:
    """Regularised lower incomplete gamma P(a, x): its series below x = a + 1, else 1 - the continued
    fraction of Q (modified Lentz), each converging fast on its side."""
    if x <= 0.0:
        return 0.0
    front = math.exp(a * math.log(x) - x - math.lgamma(a))
    if x < a + 1.0:
        term = total = 1.0 / a
        for k in range(1, 1000):
            term *= x / (a + k)
            total += term
            if term < total * 1e-16:
                break
        return min(1.0, front * total)
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        if abs(d * c - 1.0) < 1e-16:
            break
    return max(0.0, 1.0 - front * h)


def poisson_lower(count: float, alpha: float) -> float:
    """One-sided lower confidence bound, at level 1 - alpha, on a Poisson mean from `count` events: the
    lambda with P(X >= count) = alpha, i.e. the gamma(count) alpha-quantile, chi2_{2 count, alpha} / 2.
    `count` may be fractional (an effective count); by bisection on P(count, lambda), deterministic."""
    if count <= 0:
        return 0.0
    lo, hi = 0.0, count + 10.0
    while _gamma_p(count, hi) < alpha:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if _gamma_p(count, mid) < alpha else (lo, mid)
    return (lo + hi) / 2.0


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


@lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The p quantile (p > 0.5) of Student's t with df degrees of freedom, by bisection on its CDF."""
    if df > 1e6:
        return NormalDist().inv_cdf(p)

    def upper_tail(t: float) -> float:  # P(T > t) for t >= 0
        return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))

    lo, hi, target = 0.0, 1.0, 1.0 - p
    while upper_tail(hi) > target:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if upper_tail(mid) > target else (lo, mid)
    return (lo + hi) / 2.0


def unseen_share(prompts: int, confidence: float = 0.95) -> float:
    """The largest share q of a task's prompts that a draw of `prompts` misses entirely with probability at
    least (1 - confidence) / 2: (1 - q)^prompts = (1 - confidence) / 2, the "rule of three" for one tail."""
    return 1.0 - ((1.0 - confidence) / 2.0) ** (1.0 / prompts) if prompts > 0 else 1.0


def clustered_mean(
    values: Sequence[float],
    cap: float,
    confidence: float = 0.95,
    *,
    n: int | None = None,
    method: str = "cluster",
    floor: float = 0.0,
) -> Interval:
    """Interval for the mean of per-prompt values in [floor, 1] (each prompt one cluster), for prompts drawn
    from the task's population: the values m0 that the prompts seen do not rule out, from either of two
    sources of spread. Both are computed on (v - floor) / (1 - floor), which lies in [0, 1], and the bounds
    mapped back, so the interval stays in [floor, 1].

    The prompts seen: Korn & Graubard's effective-size interval in Wilson (score) form, the spread of the
    prompt values giving the variance, n_eff = m(1-m)/var (at most `cap`, the observations there are), and
    Student's t with prompts-1 degrees of freedom in place of z; within 2-3 effective counts of 0 or 1,
    the bound on that side is Brown, Cai & DasGupta's Poisson bound (`modified_wilson`), where Wilson's own
    misses a truth near the end: agreement 0.99965 over 200 prompts (one disagreeing prompt gave <= 0.99955)
    was covered 87% of the time, now 99%.
    The prompts not seen: a share q = unseen_share(prompts) of the task could be missed by every draw (a few
    never-solved prompts among eight), and the spread of the prompts seen cannot show them. So m0 also stays
    in the interval while |m - m0| <= t sqrt(V / k), V being the most a share q of prompts can make a
    prompt's value vary about m0: that share at 0 (or at 1) and the rest at the one value that keeps the
    mean m0, or, where that value would pass 1 (or 0), the rest at 1 and the share as far off as the mean
    allows. Each case is linear in m0, so the bounds are closed-form (`_unseen_bounds`).

    q is 37% at 8 prompts, 7% at 50 and 2% at 200 (ARCHITECTURE.md has the coverage it bought).

    `floor` is the least value a prompt can take: a prompt's agreement, max(yes, no) / units, is never
    below 1/2. On [0, 1] the unseen share sits at 0 and the Wilson step runs to 0, room the values cannot
    use: agreement's interval covered 98.6% (median, 50 prompts or more) for a nominal 95%; on [1/2, 1],
    95.5%. The n_eff reported is that of the rescaled values."""
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor must be in [0, 1), got {floor}")
    k = len(values)
    obs = int(n if n is not None else cap)
    if k == 0:
        return Interval(floor, floor, 1.0, confidence, 0, obs, 0.0, method, 1.0)
    if not all(floor - 1e-9 <= v <= 1.0 + 1e-9 for v in values):
        raise ValueError(f"clustered_mean takes values in [{floor}, 1], got {min(values)} to {max(values)}")
    m = sum(values) / k
    if k < 2:
        # One prompt says nothing about the spread between prompts: no interval across prompts.
        return Interval(m, floor, 1.0, confidence, k, obs, 1.0, method + " (one prompt: no interval)", 1.0)
    span = 1.0 - floor
    x = [(v - floor) / span for v in values]  # exactly the values when floor is 0
    mx = sum(x) / k
    var = sum((v - mx) ** 2 for v in x) / (k - 1) / k
    n_eff = cap if var <= 0 else mx * (1 - mx) / var
    n_eff = max(min(n_eff, cap), 1.0)
    t = t_quantile(0.5 + confidence / 2, k - 1)
    lo, hi = modified_wilson(mx * n_eff, n_eff, t, confidence)
    q = unseen_share(k, confidence)
    far_lo, far_hi = _unseen_bounds(mx, t / math.sqrt(k), q)
    lo, hi = max(0.0, min(lo, mx, far_lo)), min(1.0, max(hi, mx, far_hi))
    # Mapped back; min/max with m keep the estimate inside whatever the rounding of floor + span * mx.
    lo, hi = min(m, floor + span * lo), max(m, floor + span * hi)
    return Interval(m, lo, hi, confidence, k, obs, n_eff, method, q)


def _unseen_bounds(m: float, s: float, q: float) -> tuple[float, float]:
    """The m0 in [0, 1] with |m - m0| <= s sqrt(V(m0)), V(m0) the largest variance of a prompt's value about
    a mean m0 when a share q of prompts sits apart from the rest (see clustered_mean). Four linear cases:
    the share at 0 under the rest at m0/(1-q) (while m0 <= 1-q): V = q m0^2/(1-q); past that, the rest at 1
    and the share at 1-(1-m0)/q: V = (1-q)(1-m0)^2/q; and the mirror images with the share at 1."""
    c, c2 = s * math.sqrt(q / (1 - q)), s * math.sqrt((1 - q) / q)
    inf = math.inf
    cases = (  # |m - m0| <= c m0 and |m - m0| <= c (1 - m0), each on the m0 where its picture holds
        (m / (1 + c), m / (1 - c) if c < 1 else inf, 0.0, 1 - q),
        ((m - c2) / (1 - c2) if c2 < 1 else -inf, (m + c2) / (1 + c2), 1 - q, 1.0),
        ((m - c) / (1 - c) if c < 1 else -inf, (m + c) / (1 + c), q, 1.0),
        (m / (1 + c2), m / (1 - c2) if c2 < 1 else inf, 0.0, q),
    )
    kept = [(max(lo, a), min(hi, b)) for lo, hi, a, b in cases if max(lo, a) <= min(hi, b)]
    return min((lo for lo, _ in kept), default=m), max((hi for _, hi in kept), default=m)


def clustered_proportion(counts: Sequence[tuple[int, int]], confidence: float = 0.95) -> Interval:
    """Interval for a success rate from (successes, trials) per prompt: every prompt weighs the same
    (pass@1), and samples of one prompt are not treated as independent of each other."""
    counts = [(c, m) for c, m in counts if m > 0]
    return clustered_mean([c / m for c, m in counts], cap=sum(m for _, m in counts), confidence=confidence)


def reward_classes(rewards: Sequence[float]) -> dict[float, int]:
    """Rewards that GRPO sees as equal (a group of them has zero std), counted. Rounding to 1e-9 treats
    two floats that differ by arithmetic noise as one reward, as TRL's isclose(std, 0) does."""
    out: dict[float, int] = {}
    for r in rewards:
        key = round(float(r), 9)
        out[key] = out.get(key, 0) + 1
    return out


@dataclass(frozen=True)
class ZeroVariance:
    """The predicted share of GRPO groups of size `group_size` whose rewards are all equal."""

    group_size: int
    estimated_at: int  # the group size the unbiased estimate is for (< group_size when too few samples)
    interval: Interval
    per_prompt: dict[str, float]
    exact: bool  # False: too few samples per prompt; the figure is an upper bound at group_size

    def to_dict(self) -> dict:
        return {
            "group_size": self.group_size,
            "estimated_at": self.estimated_at,
            "exact": self.exact,
            **{f"share_{k}": v for k, v in self.interval.to_dict().items() if k in ("estimate", "low", "high")},
        }


def equal_group_share(classes: dict[float, int], m: int, g: int) -> float:
    """Unbiased estimate of P(g draws all share one reward) from m draws: sum_v C(c_v, g) / C(m, g)."""
    return sum(math.comb(c, g) for c in classes.values()) / math.comb(m, g)


U_METHOD = "cluster, unbiased U-statistic"


def disjoint_groups(samples: Iterable[int], g: int) -> int:
    """The disjoint groups of g that prompts with these sample counts could form (one for a prompt with fewer)."""
    return sum(max(1, m // g) for m in samples)


def equal_group_mean(
    values: Sequence[float], samples: Sequence[int], g: int, confidence: float = 0.95, method: str = U_METHOD
) -> Interval:
    """Interval for the mean over prompts of the per-prompt U-statistics sum_v C(c_v, g) / C(m, g), prompts as
    clusters (`clustered_mean`), each prompt's `samples` m beside its value.

    The effective size comes from the spread of the values. A U-statistic varies less than the share of
    equal groups among the m // g disjoint groups its samples could form (it averages over all C(m, g)
    groups: Hoeffding 1948, Rao-Blackwell), so capping the effective size at those groups, as this did
    before, widened the interval where the spread was only sampling noise: at G=8 the median coverage at 50+
    prompts was 97.3% for a nominal 95% (bench/stat_coverage.py). The cap is now the samples there are. It
    can still bind where the prompts are alike (every prompt at p = 1/2, where the U-statistic hardly
    varies), but there the unseen-share bound sets the width: with no cap at all the mean width moved by
    under 0.002 (50 and 200 prompts x 16 samples, G = 4 and 8). When all values are equal the spread says
    nothing, and the disjoint groups are the effective size (with m = g each value is one group's 0 or 1)."""
    k = len(values)
    cap = disjoint_groups(samples, g) if k and all(v == values[0] for v in values) else sum(samples)
    return clustered_mean(values, cap=max(1, cap), confidence=confidence, n=sum(samples), method=method)


def zero_variance_share(rewards: dict[str, Sequence[float]], group_size: int, confidence: float = 0.95) -> ZeroVariance:
    """The unbiased share of zero-variance groups over prompts, from each prompt's sampled rewards.

    With m >= G samples a prompt, sum_v C(c_v, G) / C(m, G) is unbiased for sum_v q_v^G (unlike the
    plug-in q_hat^G, which is biased upward). With m < G no unbiased estimator exists; the share is
    estimated at G' = the fewest samples any prompt has, an upper bound for G (a group of G with equal
    rewards contains a group of G' with equal rewards), and the result says so (`exact` False)."""
    if not rewards:
        return ZeroVariance(group_size, group_size, clustered_mean([], 0, confidence), {}, True)
    fewest = min(len(v) for v in rewards.values())
    g = min(group_size, fewest)
    if g < 2:
        raise ValueError("the zero-variance share needs at least 2 samples per prompt")
    per = {i: equal_group_share(reward_classes(v), len(v), g) for i, v in rewards.items()}
    ci = equal_group_mean(
        list(per.values()),
        [len(v) for v in rewards.values()],
        g,
        confidence,
        method=U_METHOD if g == group_size else f"cluster, unbiased at G={g}: upper bound for G={group_size}",
    )
    return ZeroVariance(group_size, g, ci, per, g == group_size)
