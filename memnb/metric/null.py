"""Null levels: what a perfect generator scores under the paper's criterion.

For a smooth d-dimensional density the nearest-train and nearest-test distances of a fresh point
are independent with P(D > r) = exp(-c_d r^d n p) (and m for test), so P(D_test >= k D_train) =
n / (n + k^d m): 31 % at k = 1.5, d = 2, n = m. The formula holds for smooth full-dimensional
densities only; data on a lower-dimensional set (images) or without fresh draws need the empirical
null of held-out points, which every run stores beside its rates.
"""

from __future__ import annotations

import math

from ..core.registry import DATASETS
from ..core.run_config import RunConfig
from ..core.validate import check_int, check_real, fail


def chance_level(n_train: int, n_test: int, ratio: float, dim: int = 2) -> float:
    """Analytic share a perfect generator of a smooth `dim`-dimensional density scores under the
    paper's criterion: n / (n + k^d m), a probability in [0, 1].

    n_train (n), n_test (m): numbers of training and test points, integers >= 0, not both 0 (m = 0: no test point,
    every sample is memorized, 1; n = 0: none is, 0); ratio (k): the criterion's threshold, a finite number >= 1;
    dim (d): the data's dimension, an integer >= 1. ValueError naming the argument otherwise, before any work.

    For a fresh point where the density is locally constant, the nearest-train and nearest-test
    distances are independent with P(D > r) = exp(-c_d r^d n p) (and m for test; c_d the unit
    ball's volume), so P(D_test >= k D_train) = n / (n + k^d m). Accurate when n, m are large.
    Computed as 1 / (1 + exp(d ln k + ln m - ln n)), so that k^d beyond float range (d = 1024) gives 0, not an error.
    """
    n = check_int("n_train", n_train, lo=0)
    m = check_int("n_test", n_test, lo=0)
    if n + m == 0:
        fail("n_train + n_test", 0, "a total > 0 (the level is a share of training against test points)")
    k = check_real("ratio", ratio, lo=1.0)
    d = check_int("dim", dim, lo=1)
    if m == 0 or n == 0:
        return 1.0 if m == 0 else 0.0
    x = d * math.log(k) + math.log(m) - math.log(n)  # ln(k^d m / n)
    if x >= 0:
        e = math.exp(-x)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(x))


def expected_null(config: RunConfig, threshold: float | None = None) -> float:
    """Null level of the paper criterion for the 'all' group, outlier cluster included.

    Fresh draws from the base distribution score n/(n + k^d m) with n the distinct base locations
    (duplicates sit on base points) and m test points; draws from the outlier cluster (a share
    n_outliers / n_train) have no test point near them and are memorized almost surely, unless the
    test set is "matched" (it then holds the cluster's own test points).
    """
    k = config.ratio if threshold is None else threshold
    d = config.dim
    f = config.n_outliers / config.n_train
    n_test_outliers = config.n_test_outliers  # a "matched" test set holds outliers too
    outlier_level = (
        chance_level(config.n_outliers, n_test_outliers, k, d) if (n_test_outliers and config.n_outliers) else 1.0
    )
    return (1 - f) * chance_level(config.n_base, config.n_test_base, k, d) + f * outlier_level


def analytic_null(config: RunConfig) -> bool:
    """Whether n/(n + k^d m) describes `config`'s null: only for datasets with a smooth full-dimensional density
    that can draw fresh points (every 2-D toy). Otherwise only the stored empirical null applies (also for a
    monitored run's own data, of which memnb knows nothing: memnb.experiment.monitor)."""
    if config.dataset not in DATASETS:  # a monitored run's own data
        return False
    return bool(DATASETS.get(config.dataset).smooth)
