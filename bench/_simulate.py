"""Simulated models with known per-prompt pass rates for bench/stat_coverage.py, not a benchmark itself:
rate populations, exact truths (population mean, agreement, zero-variance share) and one draw of
samples per replicate, graded into correctness and a banded reward (format bonus)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# A sample's reward: 1 if correct, plus a format bonus of BONUS with probability FORMAT; four reward
# values in all, as a task with `format_bonus` gives GRPO.
BONUS, FORMAT = 0.1, 0.9


@dataclass(frozen=True)
class Population:
    """Per-prompt pass rates: a discrete mix {rate: weight}, or Beta(a, b) when `beta` is set."""

    name: str
    mix: tuple[tuple[float, float], ...] = ()
    beta: tuple[float, float] | None = None

    def draw(self, rng, k: int):
        import numpy as np

        if self.beta:
            return rng.beta(*self.beta, size=k)
        rates, weights = zip(*self.mix)
        return np.asarray(rates)[rng.choice(len(rates), size=k, p=np.asarray(weights))]

    def expect(self, f) -> float:
        """E[f(p)] over the population (exact for a mix; Gauss-Legendre on 400 nodes for a Beta)."""
        if not self.beta:
            return sum(w * f(p) for p, w in self.mix)
        import numpy as np

        a, b = self.beta
        # Substitute p = sin^2(theta) to remove the Beta's endpoint singularities.
        x, w = np.polynomial.legendre.leggauss(400)
        th = (x + 1) * math.pi / 4
        p = np.sin(th) ** 2
        dens = (
            2
            * np.sin(th) ** (2 * a - 1)
            * np.cos(th) ** (2 * b - 1)
            / math.exp(math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
        )
        return float(sum(wi * dens_i * f(pi) for wi, dens_i, pi in zip(w, dens, p)) * math.pi / 4)


POPULATIONS = [
    Population("all at 0.31", mix=((0.31, 1.0),)),
    Population("hard: half never solved", mix=((0.0, 0.5), (0.1, 0.3), (0.5, 0.2))),
    Population("spread: Beta(0.5, 0.5)", beta=(0.5, 0.5)),
    Population("easy: most always solved", mix=((1.0, 0.6), (0.9, 0.25), (0.4, 0.15))),
    # A strong model on a task where 5% of the references are wrong: those prompts are never solved, and a
    # few dozen prompts often hold none of them.
    Population("rare: 5% never solved", mix=((0.0, 0.05), (0.95, 0.95))),
]


def reward_probs(p: float) -> dict[float, float]:
    """The four reward values of a prompt with pass rate p and their probabilities."""
    return {1.0 + BONUS: p * FORMAT, 1.0: p * (1 - FORMAT), BONUS: (1 - p) * FORMAT, 0.0: (1 - p) * (1 - FORMAT)}


def zero_variance_truth(p: float, g: int) -> float:
    """P(g rewards all equal) for a prompt with pass rate p: the four reward values factor into
    correctness x format."""
    return (p**g + (1 - p) ** g) * (FORMAT**g + (1 - FORMAT) ** g)


def run_outcome(p: float, n: int) -> float:
    """P(a run's majority of n samples is correct; ties count as wrong), as the stability check counts it."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1) if 2 * j > n)


def agreement_truth(p: float, runs: int, n: int) -> float:
    """E[max(Y, R - Y) / R] with Y ~ Binomial(R, q): one prompt's expected agreement across R runs."""
    q = run_outcome(p, n)
    return sum(math.comb(runs, y) * q**y * (1 - q) ** (runs - y) * max(y, runs - y) / runs for y in range(runs + 1))


def draw_samples(rng, rates, runs: int, n: int):
    """(prompts, runs, n) correctness and reward arrays for one replicate."""
    correct = rng.random((len(rates), runs, n)) < rates[:, None, None]
    formatted = rng.random(correct.shape) < FORMAT
    return correct, correct + BONUS * formatted
