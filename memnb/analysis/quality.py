"""Sample quality: how far a model's samples are from held-out data, as one number.

Energy distance (Székely & Rizzo 2013) between two point sets X (n, d) and Y (m, d):

    D²(X, Y) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|

with |.| the Euclidean norm and the expectations the plain averages over all pairs (the
V-statistic: the X-X' and Y-Y' averages include the zero self-pairs, as
`scipy.stats.energy_distance` does). D² >= 0, and D² = 0 iff the two empirical distributions
are equal; `energy_distance` returns D = sqrt(D²), as scipy does. D² is a mean of distances, in
the points' units, so D is in the square root of those units (scaling both sets by c scales D by
sqrt(c)): compare values on one dataset, not across datasets of other scales. Unlike MMD it has no
kernel or bandwidth to choose. Both sets are finite samples, so D of two draws from one
distribution is not 0: compare a model's distance with that of fresh data draws (a perfect
generator) of the same sizes.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


def _mean_pairwise(a: np.ndarray, b: np.ndarray, chunk: int = 4096) -> float:
    """Mean Euclidean distance over all pairs (a_i, b_j); in chunks so that memory stays O(chunk * len(b))."""
    total = 0.0
    for i in range(0, len(a), chunk):
        total += cdist(a[i : i + chunk], b).sum()
    return total / (len(a) * len(b))


def energy_distance(x, y) -> float:
    """Energy distance D(X, Y) = sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|) between two point sets.

    x: (n, d) or (n,) points, y: (m, d) or (m,) (1-D input is read as d = 1), both finite, in the
    same units; d must agree. Returns D (float >= 0, in sqrt(units of x); for d = 1 equal to
    `scipy.stats.energy_distance(x, y)`). Cost O((n + m)²) distances: 20,000 points each take a
    few seconds.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    for name, a in (("x", x), ("y", y)):
        if a.ndim != 2 or len(a) == 0:
            raise ValueError(f"energy_distance: {name} has shape {a.shape}; allowed: (n, d) or (n,) with n >= 1")
        if not np.isfinite(a).all():
            raise ValueError(f"energy_distance: {name} holds non-finite values; allowed: finite numbers only")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"energy_distance: x has d = {x.shape[1]}, y has d = {y.shape[1]}; allowed: equal d")
    d2 = 2 * _mean_pairwise(x, y) - _mean_pairwise(x, x) - _mean_pairwise(y, y)
    return float(np.sqrt(max(d2, 0.0)))  # float rounding can leave -1e-17 for identical sets
