"""The 2-D toy datasets of the paper and of tiny-diffusion: pure functions of (n, rng), (n, 2) float64."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_moons

from . import register


@register("moons", dim=2)
def moons(n: int, rng: np.random.Generator) -> np.ndarray:
    """Two moons as tiny-diffusion makes them: make_moons(noise=0.03), x -> (x+0.3)*2-1, y -> (y+0.3)*3-1."""
    x, _ = make_moons(n_samples=n, noise=0.03, random_state=int(rng.integers(2**31 - 1)))
    x[:, 0] = (x[:, 0] + 0.3) * 2 - 1
    x[:, 1] = (x[:, 1] + 0.3) * 3 - 1
    return x


@register("circle", dim=2)
def circle(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit circle, uniform angle, radial Gaussian noise of std 0.03."""
    angle = rng.uniform(0.0, 2 * np.pi, n)
    radius = 1.0 + 0.03 * rng.standard_normal(n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


@register("line", dim=2)
def line(n: int, rng: np.random.Generator) -> np.ndarray:
    """Segment y = 0.5 x for x uniform in [-1, 1], with isotropic Gaussian noise of std 0.03."""
    x = rng.uniform(-1.0, 1.0, n)
    pts = np.stack([x, 0.5 * x], axis=1)
    return pts + 0.03 * rng.standard_normal((n, 2))


@register("gmm", dim=2)
def gmm(n: int, rng: np.random.Generator) -> np.ndarray:
    """Eight equal Gaussians (std 0.1) centred on a circle of radius 1.5."""
    k = rng.integers(0, 8, n)
    centres = 1.5 * np.stack([np.cos(2 * np.pi * np.arange(8) / 8), np.sin(2 * np.pi * np.arange(8) / 8)], axis=1)
    return centres[k] + 0.1 * rng.standard_normal((n, 2))
