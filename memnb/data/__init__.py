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
    """name; dim (d); sample(n, rng) -> (n, d) float64 points; description (one line, for docs and errors);
    smooth: whether the data have a smooth full-dimensional density, for which the analytic chance level
    n/(n + k^d m) holds (memnb.metric.null)."""

    name: str
    dim: int
    sample: Callable[[int, np.random.Generator], np.ndarray]
    description: str = ""
    smooth: bool = True


def register(name: str, dim: int, description: str = "", smooth: bool = True):
    """Decorator: register `sample(n, rng)` as dataset `name` of dimension `dim`."""

    def wrap(fn):
        DATASETS.register(Dataset(name, dim, fn, description or (fn.__doc__ or "").strip().split("\n")[0], smooth))
        return fn

    return wrap


def make_base(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, d) float64 points of dataset `name`."""
    return DATASETS.get(name).sample(n, rng)


for _module in pkgutil.iter_modules(__path__):  # every dataset module registers itself
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Dataset", "register", "make_base", "DATASETS"]
