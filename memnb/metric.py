"""The memorization criteria and rates: pure functions on arrays.

Two criteria, both decided by a per-sample *critical ratio* r and a threshold k >= 1:

- ``paper`` (the paper's): memorized iff d_test >= k * d1, i.e. r = d_test / d1 >= k, with d1 the
  distance to the nearest training point and d_test to the nearest test point.
- ``train_only`` (Gu et al. 2023; Bonnaire et al. 2025): memorized iff d1 / d2 < 1/k, i.e.
  r = d2 / d1 > k, with d2 the distance to the second-nearest distinct training location
  (k = 3 is the literature's 1/3 rule).

A memorized sample is attributed to the group of its nearest training point. Rates are reported
in two normalisations: ``memorized`` = share of the generated set that is memorized and
attributed to the group (the paper's plots), and ``copied`` = share of the group's training
points that at least one memorized sample copies.
"""

from __future__ import annotations

import numpy as np

CRITERIA = ("paper", "train_only")


def critical_ratio(criterion: str, d1: np.ndarray, d2: np.ndarray, d_test: np.ndarray) -> np.ndarray:
    """(n,) float64 ratio r compared with the threshold (inf where d1 = 0: an exact copy).

    d1, d2, d_test: (n,) distances in data units.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion {criterion!r} is unknown; allowed: {' | '.join(CRITERIA)}")
    num = d_test if criterion == "paper" else d2
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.asarray(num, np.float64) / np.asarray(d1, np.float64)
    return np.where(np.asarray(d1) == 0, np.inf, r)


def is_memorized(criterion: str, r: np.ndarray, threshold: float) -> np.ndarray:
    """(n,) bool: r >= k for ``paper``, r > k for ``train_only`` (the literature's strict d1/d2 < 1/k)."""
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
