"""`gmm_d`: a Gaussian mixture in d dimensions (the config's `dim`, 2 to 1024), the synthetic family of
Bonnaire et al. 2025.

K = 8 equal components with centres 1.5 * u_k, u_k fixed unit vectors drawn once from
`numpy.random.default_rng(2025)` for each d (the same mixture in every run of that d), and isotropic
standard deviation 0.1 per coordinate. In 2-D it is a random-angle variant of `gmm`.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from . import register

COMPONENTS = 8
RADIUS = 1.5
STD = 0.1
CENTRES_SEED = 2025


@cache
def centres(d: int) -> np.ndarray:
    """(COMPONENTS, d) fixed component centres of the d-dimensional mixture."""
    u = np.random.default_rng(CENTRES_SEED + d).standard_normal((COMPONENTS, d))
    c = RADIUS * u / np.linalg.norm(u, axis=1, keepdims=True)
    c.setflags(write=False)
    return c


@register("gmm_d", dim=None, dims=(2, 1024))
def gmm_d(n: int, rng: np.random.Generator, d: int) -> np.ndarray:
    """Eight equal Gaussians (std 0.1 per coordinate) centred at radius 1.5 in fixed random directions of R^d."""
    k = rng.integers(0, COMPONENTS, n)
    return centres(d)[k] + STD * rng.standard_normal((n, d))
