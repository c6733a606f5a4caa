"""Fisher's exact test, one-sided: the contamination check asks whether rows carrying a token pass the
verifier less often than the rest. Summed in the pmf's ratio, away from the mean, without scipy."""

from __future__ import annotations

import math

__all__ = ["fisher_less", "fisher_min_p"]


def _log_hypergeom(k: int, total: int, successes: int, draws: int) -> float:
    """log P(X = k) for X ~ Hypergeometric(total, successes, draws)."""

    def log_comb(n: int, r: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)

    return log_comb(successes, k) + log_comb(total - successes, draws - k) - log_comb(total, draws)


def fisher_less(pass_with: int, fail_with: int, pass_without: int, fail_without: int) -> float:
    """One-sided Fisher exact p-value that rows "with" pass less often than rows "without".

    The 2x2 table is [[pass_with, fail_with], [pass_without, fail_without]]; p = P(X <= pass_with) with
    X hypergeometric under the margins. Terms are summed downward from the observed cell by the pmf
    ratio, always away from the mean, so the terms only shrink and the sum stops once they are negligible."""
    cells = (pass_with, fail_with, pass_without, fail_without)
    if min(cells) < 0:
        raise ValueError(f"counts must be non-negative, got {cells}")
    draws = pass_with + fail_with
    successes = pass_with + pass_without
    total = draws + pass_without + fail_without
    if draws == 0 or draws == total or successes in (0, total):
        return 1.0  # a margin is empty: the table carries no evidence
    low, high = max(0, draws - (total - successes)), min(draws, successes)
    if pass_with * total <= draws * successes:  # at or below the mean: sum the lower tail
        return min(1.0, _tail(pass_with, low, -1, total, successes, draws))
    if pass_with >= high:
        return 1.0
    return max(0.0, 1.0 - _tail(pass_with + 1, high, 1, total, successes, draws))


def _tail(start: int, stop: int, step: int, total: int, successes: int, draws: int) -> float:
    """Sum of P(X = k) from `start` toward `stop` (inclusive), by the pmf ratio, in units of P(X = start).

    Summed away from the mean, the terms only shrink, so the sum stops once they are negligible."""
    fails = total - successes
    acc = term = 1.0
    k = start
    while k != stop:
        if step < 0:  # P(k-1)/P(k)
            term *= k * (fails - draws + k) / ((successes - k + 1) * (draws - k + 1))
        else:  # P(k+1)/P(k)
            term *= (successes - k) * (draws - k) / ((k + 1) * (fails - draws + k + 1))
        acc += term
        k += step
        if term < 1e-17 * acc:
            break
    return math.exp(_log_hypergeom(start, total, successes, draws) + math.log(acc))


def fisher_min_p(n_with: int, pass_without: int, n_without: int) -> float:
    """The p-value had every row "with" failed while the rows "without" stayed as they are.

    When even this is not small, the verifier cannot speak about the token, whatever its rows say."""
    return fisher_less(0, n_with, pass_without, n_without - pass_without)
