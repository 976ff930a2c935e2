"""The data-copying statistic Z_U of Meehan, Chaudhuri & Dasgupta (2020): pure functions on distances.

Independent of any threshold, Z_U is a distribution-free comparison of generated-to-train with
test-to-train nearest-neighbour distances (Z_U << 0: generated points sit closer to the training
set than held-out points do, i.e. copying; Z_U >> 0: underfitting).
"""

from __future__ import annotations

import numpy as np

from ..core.validate import fail, is_real


def mann_whitney_z(test_d: np.ndarray, gen_d: np.ndarray, continuity: float = 0.0) -> float:
    """Meehan et al. (2020)'s Z_U: the Mann-Whitney U of generated vs test distances, z-scored.

    test_d: (n,) distances of held-out points to their nearest training point, L(P_n);
    gen_d: (m,) the same for generated points, L(Q_m) (data units; any monotone transform gives the
    same value). U = #{(i, j): gen_d[j] > test_d[i]} + 1/2 #{ties}, and under H0 (same distribution)
    E U = mn/2, Var U = mn(m + n + 1)/12, so Z_U = (U - mn/2 + continuity) / sqrt(mn(m + n + 1)/12) (their
    eq. 3). continuity: 0 (memnb's default, the equation as printed) or 0.5, the reference code's
    (casey-meehan/data-copying, `Zu`: mean = mn/2 - 0.5, always subtracted, so Z_U moves up by 0.5 / sd U: 4e-7
    for 20000 x 20000 points, 5e-4 for 170 x 200 (digits), 0.04 for 10 x 10), to reproduce their numbers exactly; no tie correction in
    either. NaN if either is empty.
    """
    if not is_real(continuity):
        fail("continuity", continuity, "a finite number (0: memnb's Z_U; 0.5: Meehan et al.'s reference code)")
    test_d = np.sort(np.asarray(test_d, np.float64))
    gen_d = np.sort(np.asarray(gen_d, np.float64))  # sorted queries make searchsorted ~5x faster
    n, m = len(test_d), len(gen_d)
    if n == 0 or m == 0:
        return float("nan")
    below = np.searchsorted(test_d, gen_d, side="left")  # test distances strictly below each generated one
    ties = np.searchsorted(test_d, gen_d, side="right") - below
    u = below.sum() + 0.5 * ties.sum()
    return float((u - n * m / 2 + continuity) / np.sqrt(n * m * (n + m + 1) / 12))


def mann_whitney_z_by_group(
    test_d: np.ndarray,
    test_group: np.ndarray,
    gen_d: np.ndarray,
    gen_group: np.ndarray,
    n_groups: int = 3,
    continuity: float = 0.0,
) -> np.ndarray:
    """(n_groups + 1,) Z_U within each group's cell, then all points (the last entry).

    A point's cell is the group of its nearest training point (Meehan et al.'s cell-wise test with
    the training groups as cells). test_d, test_group: (n,); gen_d, gen_group: (m,). NaN for a
    cell with no test or no generated point (the "base" test set has none near the outliers). continuity: see
    mann_whitney_z (0.5: Meehan et al.'s reference code).
    """
    out = np.empty(n_groups + 1)
    for g in range(n_groups):
        out[g] = mann_whitney_z(test_d[test_group == g], gen_d[gen_group == g], continuity)
    out[n_groups] = mann_whitney_z(test_d, gen_d, continuity)
    return out
