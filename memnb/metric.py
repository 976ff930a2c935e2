"""The memorization criteria and rates, and the data-copying statistic: pure functions on arrays.

Three criteria, each decided by a per-sample *critical ratio* r and a threshold k >= 1:

- ``paper`` (the paper's): memorized iff d_test >= k * d1, i.e. r = d_test / d1 >= k, with d1 the
  distance to the nearest training point and d_test to the nearest test point.
- ``train_only`` (Gu et al. 2023; Bonnaire et al. 2025): memorized iff d1 / d2 < 1/k, i.e.
  r = d2 / d1 > k, with d2 the distance to the second-nearest distinct training location
  (k = 3 is the literature's 1/3 rule).
- ``relative`` (Carlini et al. 2023, their CIFAR-10 definition): memorized iff
  d1 < alpha * mean_{y in S} ||x - y||, S the n = 50 nearest training locations (d1 included),
  i.e. r = d_mean50 / d1 > k with k = 1 / alpha. Carlini's alpha = 0.5 (k = 2) suits high
  dimension, where neighbour distances concentrate; in 2-D the k-th neighbour distance grows like
  sqrt(k), the mean of the 50 is ~5x E[d1], and k = 2 flags ~99.6% of fresh draws. memnb's default
  alpha = 0.1 (k = 10) flags ~20% (config.relative_alpha; the table holds both k = 2 and 1/alpha).

Independent of any threshold, `mann_whitney_z` is the data-copying statistic Z_U of Meehan,
Chaudhuri & Dasgupta (2020): a distribution-free comparison of generated-to-train with
test-to-train nearest-neighbour distances (Z_U << 0: generated points sit closer to the training
set than held-out points do, i.e. copying; Z_U >> 0: underfitting).

A memorized sample is attributed to the group of its nearest training point. Rates are reported
in two normalisations: ``memorized`` = share of the generated set that is memorized and
attributed to the group (the paper's plots), and ``copied`` = share of the group's training
points that at least one memorized sample copies.
"""

from __future__ import annotations

import numpy as np

CRITERIA = ("paper", "train_only", "relative")


def critical_ratio(criterion: str, d1: np.ndarray, d2: np.ndarray, d_test: np.ndarray,
                   d_mean50: np.ndarray | None = None) -> np.ndarray:
    """(n,) float64 ratio r compared with the threshold (inf where d1 = 0: an exact copy).

    d1, d2, d_test, d_mean50: (n,) distances in data units (d_mean50, the mean distance to the 50
    nearest training locations, is needed by ``relative`` only).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion {criterion!r} is unknown; allowed: {' | '.join(CRITERIA)}")
    if criterion == "relative" and d_mean50 is None:
        raise ValueError("criterion 'relative' needs d_mean50 (runs stored before it existed lack it)")
    num = {"paper": d_test, "train_only": d2, "relative": d_mean50}[criterion]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.asarray(num, np.float64) / np.asarray(d1, np.float64)
    return np.where(np.asarray(d1) == 0, np.inf, r)


def is_memorized(criterion: str, r: np.ndarray, threshold: float) -> np.ndarray:
    """(n,) bool: r >= k for ``paper``; r > k for ``train_only`` (the literature's strict d1/d2 < 1/k)
    and ``relative`` (d1 < alpha * mean, alpha = 1/k)."""
    return r >= threshold if criterion == "paper" else r > threshold


def _count_at_least(sorted_r: np.ndarray, thresholds: np.ndarray, criterion: str) -> np.ndarray:
    side = "left" if criterion == "paper" else "right"
    return len(sorted_r) - np.searchsorted(sorted_r, thresholds, side=side)


def memorized_shares(criterion: str, r: np.ndarray, sample_group: np.ndarray, thresholds, n_groups: int = 3) -> np.ndarray:
    """Share of all generated samples that are memorized and attributed to each group.

    r: (n,) critical ratios; sample_group: (n,) group code of each sample's nearest training point;
    thresholds: (K,). Returns (n_groups + 1, K); the last row is all groups together.
    """
    thresholds = np.asarray(thresholds, np.float64)
    out = np.zeros((n_groups + 1, len(thresholds)))
    n = len(r)
    if n == 0:
        return out
    for g in range(n_groups):
        out[g] = _count_at_least(np.sort(r[sample_group == g]), thresholds, criterion) / n
    out[n_groups] = out[:n_groups].sum(0)
    return out


def copied_shares(criterion: str, r: np.ndarray, sample_location: np.ndarray, point_location: np.ndarray,
                  point_group: np.ndarray, thresholds, n_groups: int = 3) -> np.ndarray:
    """Share of each group's training points copied by at least one memorized sample.

    r: (n,) critical ratios; sample_location: (n,) location id of each sample's nearest training
    point; point_location, point_group: (N,) location id and group code of every training point
    (all points at a copied location count as copied). Returns (n_groups + 1, K), NaN for an
    empty group; the last row is all training points.
    """
    thresholds = np.asarray(thresholds, np.float64)
    n_loc = int(point_location.max()) + 1 if len(point_location) else 0
    best = np.full(n_loc, -np.inf)
    np.maximum.at(best, sample_location, r)  # a location is copied at k iff its best sample passes k
    point_best = best[point_location]
    out = np.full((n_groups + 1, len(thresholds)), np.nan)
    for g in range(n_groups):
        sel = point_best[point_group == g]
        if len(sel):
            out[g] = _count_at_least(np.sort(sel), thresholds, criterion) / len(sel)
    if len(point_best):
        out[n_groups] = _count_at_least(np.sort(point_best), thresholds, criterion) / len(point_best)
    return out


def chance_level(n_train: int, n_test: int, ratio: float) -> float:
    """Analytic share a perfect 2-D generator scores under the paper's criterion: n / (n + k^2 m).

    For a fresh point where the density is locally constant, the nearest-train and nearest-test
    distances are independent with P(D > r) = exp(-pi r^2 n p) (and m for test), so
    P(D_test >= k D_train) = n / (n + k^2 m). Accurate when n, m are large.
    """
    return n_train / (n_train + ratio**2 * n_test)


def mann_whitney_z(test_d: np.ndarray, gen_d: np.ndarray) -> float:
    """Meehan et al. (2020)'s Z_U: the Mann-Whitney U of generated vs test distances, z-scored.

    test_d: (n,) distances of held-out points to their nearest training point, L(P_n);
    gen_d: (m,) the same for generated points, L(Q_m) (data units; any monotone transform gives the
    same value). U = #{(i, j): gen_d[j] > test_d[i]} + 1/2 #{ties}, and under H0 (same distribution)
    E U = mn/2, Var U = mn(m + n + 1)/12, so Z_U = (U - mn/2) / sqrt(mn(m + n + 1)/12) (their eq. 3,
    without the reference code's 0.5 continuity shift, which is < 1e-5 here). NaN if either is empty.
    """
    test_d = np.sort(np.asarray(test_d, np.float64))
    gen_d = np.sort(np.asarray(gen_d, np.float64))  # sorted queries make searchsorted ~5x faster
    n, m = len(test_d), len(gen_d)
    if n == 0 or m == 0:
        return float("nan")
    below = np.searchsorted(test_d, gen_d, side="left")  # test distances strictly below each generated one
    ties = np.searchsorted(test_d, gen_d, side="right") - below
    u = below.sum() + 0.5 * ties.sum()
    return float((u - n * m / 2) / np.sqrt(n * m * (n + m + 1) / 12))


def mann_whitney_z_by_group(test_d: np.ndarray, test_group: np.ndarray, gen_d: np.ndarray, gen_group: np.ndarray,
                            n_groups: int = 3) -> np.ndarray:
    """(n_groups + 1,) Z_U within each group's cell, then all points (the last entry).

    A point's cell is the group of its nearest training point (Meehan et al.'s cell-wise test with
    the training groups as cells). test_d, test_group: (n,); gen_d, gen_group: (m,). NaN for a
    cell with no test or no generated point (the "base" test set has none near the outliers).
    """
    out = np.empty(n_groups + 1)
    for g in range(n_groups):
        out[g] = mann_whitney_z(test_d[test_group == g], gen_d[gen_group == g])
    out[n_groups] = mann_whitney_z(test_d, gen_d)
    return out
