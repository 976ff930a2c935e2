"""Null levels: what a perfect generator scores under the paper's criterion.

For a smooth d-dimensional density the nearest-train and nearest-test distances of a fresh point
are independent with P(D > r) = exp(-c_d r^d n p) (and m for test), so P(D_test >= k D_train) =
n / (n + k^d m): 31 % at k = 1.5, d = 2, n = m. The formula holds for smooth full-dimensional
densities only; data on a lower-dimensional set (images) or without fresh draws need the empirical
null of held-out points, which every run stores beside its rates.
"""

from __future__ import annotations

from ..core.registry import DATASETS


def chance_level(n_train: int, n_test: int, ratio: float, dim: int = 2) -> float:
    """Analytic share a perfect generator of a smooth `dim`-dimensional density scores under the
    paper's criterion: n / (n + k^d m).

    For a fresh point where the density is locally constant, the nearest-train and nearest-test
    distances are independent with P(D > r) = exp(-c_d r^d n p) (and m for test; c_d the unit
    ball's volume), so P(D_test >= k D_train) = n / (n + k^d m). Accurate when n, m are large.
    """
    return n_train / (n_train + ratio**dim * n_test)


def expected_null(config, threshold: float | None = None) -> float:
    """Null level of the paper criterion for the 'all' group, outlier cluster included.

    Fresh draws from the base distribution score n/(n + k^d m) with n the distinct base locations
    (duplicates sit on base points) and m test points; draws from the outlier cluster (a share
    n_outliers / n_train) have no test point near them and are memorized almost surely, unless the
    test set is "matched" (it then holds the cluster's own test points).
    """
    k = config.ratio if threshold is None else threshold
    d = getattr(config, "dim", 2)
    f = config.n_outliers / config.n_train
    n_test_base = getattr(config, "n_test_base", config.n_test_points)
    n_test_outliers = getattr(config, "n_test_outliers", 0)  # a "matched" test set holds outliers too
    outlier_level = (
        chance_level(config.n_outliers, n_test_outliers, k, d) if (n_test_outliers and config.n_outliers) else 1.0
    )
    return (1 - f) * chance_level(config.n_base, n_test_base, k, d) + f * outlier_level


def analytic_null(config) -> bool:
    """Whether n/(n + k^d m) describes `config`'s null: only for datasets with a smooth full-dimensional density
    that can draw fresh points (every 2-D toy). Otherwise only the stored empirical null applies (also for a
    monitored run's own data, of which memnb knows nothing: memnb.experiment.monitor)."""
    if getattr(config, "kind", None) == "monitor" and config.dataset not in DATASETS:
        return False
    return bool(getattr(DATASETS.get(config.dataset), "smooth", True))
