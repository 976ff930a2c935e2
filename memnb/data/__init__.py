"""Data: the dataset registry, the datasets, and the paper's injections.

A dataset is one `Dataset` record in `memnb.core.registry.DATASETS`: a name, its dimension d and
a pure function ``sample(n, rng) -> (n, d) float64``. Adding one is one module in this folder that
registers its record (every module here is imported with the package), plus its test.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.registry import DATASETS


@dataclass(frozen=True)
class Dataset:
    """One dataset.

    name; dim: its dimension d, or None when the config's `dim` field chooses it (within `dims`);
    sample(n, rng) -> (n, d) float64 fresh draws (with ``dim=None``: sample(n, rng, d)), or None for a
    real dataset without fresh draws, which has a fixed `pool` () -> (P, d) float64 instead (split per
    repeat into training, test and null parts: memnb.data.injection); description (one line);
    smooth: whether the data have a smooth full-dimensional density, for which the analytic chance level
    n/(n + k^d m) holds (memnb.metric.null); image_shape: (height, width) of a dataset of images
    (d = height * width, row-major), else None; dims: (lowest, highest) d allowed when dim is None.
    """

    name: str
    dim: int | None
    sample: Callable[..., np.ndarray] | None
    description: str = ""
    smooth: bool = True
    pool: Callable[[], np.ndarray] | None = None
    image_shape: tuple[int, int] | None = None
    dims: tuple[int, int] | None = None

    @property
    def fresh_draws(self) -> bool:
        """Whether the dataset can draw fresh points (the toys, gmm_d); a real pool cannot."""
        return self.sample is not None


def register(name: str, dim: int | None, description: str = "", smooth: bool = True, dims=None):
    """Decorator: register `sample(n, rng)` (or `sample(n, rng, d)` when dim is None) as dataset `name`."""

    def wrap(fn):
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        DATASETS.register(Dataset(name, dim, fn, doc, smooth, dims=dims))
        return fn

    return wrap


def make_base(name: str, n: int, rng: np.random.Generator, dim: int | None = None) -> np.ndarray:
    """(n, d) float64 fresh points of dataset `name` (dim: d, for datasets whose dimension the config sets)."""
    ds = DATASETS.get(name)
    if ds.sample is None:
        raise ValueError(f"dataset {name!r} has no fresh draws (a fixed pool of real data); see memnb.data.injection")
    return ds.sample(n, rng) if ds.dim is not None else ds.sample(n, rng, dim)


# every dataset module registers itself; the paper's toys first (the registry's order is the docs' and menus')
for _name in sorted((m.name for m in pkgutil.iter_modules(__path__)), key=lambda n: (n != "toys", n)):
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["Dataset", "register", "make_base", "DATASETS"]
