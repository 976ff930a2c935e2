"""Intervals and tests over repeats: one number per repeat in, an estimate with its uncertainty out.

Pure functions on (R,) arrays. Randomness (the bootstrap, and the permutation test above 16 repeats)
comes only from a `numpy.random.Generator` made from the `seed` argument, never from global state
(rliable's pitfall: its bootstrap draws from numpy's global RNG, so two identical calls can disagree).
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
from scipy.stats import rankdata


def bootstrap_ci(
    values, n_bootstrap: int = 10_000, seed: int = 0, level: float = 0.95, statistic=np.mean
) -> tuple[float, float, float]:
    """(estimate, low, high): percentile bootstrap interval of `statistic` over repeats.

    values: (R,) one number per repeat (NaN entries are dropped first); resamples R repeats with
    replacement `n_bootstrap` times from `numpy.random.default_rng(seed)`, so the same call gives
    the same interval. NaNs when no value is left.
    """
    x = np.asarray(values, np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_bootstrap, len(x)))
    boot = statistic(x[idx], axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return float(statistic(x)), float(lo), float(hi)


N_PERMUTATIONS = 100_000  # sign patterns drawn when the exact enumeration is too long
EXACT_UP_TO = 16  # repeats up to which all 2^R patterns are enumerated


def smallest_p(n_pairs, n_permutations: int = N_PERMUTATIONS, exact_up_to: int = EXACT_UP_TO) -> np.ndarray:
    """The smallest p `paired_permutation_test` can return with n_pairs (array) differences: 2 / 2^R exactly
    enumerated, 1 / (n_permutations + 1) when drawn (the observed pattern counted)."""
    r = np.asarray(n_pairs, np.float64)
    return np.where(r <= exact_up_to, 2.0 / 2.0**r, 1.0 / (n_permutations + 1))


def paired_permutation_test(
    diff, n_permutations: int = N_PERMUTATIONS, seed: int = 0, exact_up_to: int = EXACT_UP_TO
) -> float:
    """Two-sided p-value of a mean paired difference of zero, by flipping signs (Fisher's paired test).

    diff: (R,) paired differences (NaN dropped). Under H0 each difference is as likely to have
    either sign; p = share of the 2^R sign patterns whose |mean| is at least the observed one,
    enumerated exactly when R <= `exact_up_to`, else estimated from `n_permutations` patterns
    drawn from `default_rng(seed)` (with the observed one counted, (b + 1) / (n + 1)). The smallest
    attainable exact p is 2 / 2^R: 0.25 with 3 repeats, 0.0625 with 5, 0.03125 with 6.
    """
    d = np.asarray(diff, np.float64)
    d = d[~np.isnan(d)]
    R = len(d)
    if R == 0:
        return math.nan
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, np.abs(d).max())  # float noise must not push an equal |mean| below the observed one
    if R <= exact_up_to:
        signs = np.array(list(product((1.0, -1.0), repeat=R)))
        return float(np.mean(np.abs(signs @ d) / R >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_permutations, R))
    b = np.sum(np.abs(signs @ d) / R >= observed - tol)
    return float((b + 1) / (n_permutations + 1))


def cohens_dz(diff) -> float:
    """Standardised mean paired difference: mean / sd (ddof 1). +-inf for a constant non-zero
    difference, NaN for fewer than 2 values or all zeros."""
    d = np.asarray(diff, np.float64)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return math.nan
    m, s = d.mean(), d.std(ddof=1)
    if s == 0:
        return math.nan if m == 0 else math.copysign(math.inf, m)
    return float(m / s)


def rank_biserial(diff) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014): (W+ - W-) / (W+ + W-) in [-1, 1].

    W+ and W- are the sums of the ranks of |diff| (average ranks for ties; zero differences
    dropped, as in Wilcoxon's signed-rank test) over the positive and the negative differences.
    NaN when every difference is zero.
    """
    d = np.asarray(diff, np.float64)
    d = d[~np.isnan(d) & (d != 0)]
    if len(d) == 0:
        return math.nan
    ranks = rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())
