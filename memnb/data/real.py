"""Real data that runs offline: scikit-learn's 8x8 handwritten digits, shipped inside its wheel (no download).

`digits`: `sklearn.datasets.load_digits()`, 1797 images of 8x8 pixels with values 0-16, flattened row-major
to 64 coordinates and scaled to [-1, 1] (x / 8 - 1). A real dataset has no generator of fresh draws: each
repeat splits the pool once (its own random stream) into training, test and null parts
(memnb.data.injection.pool_split); the null baseline is the held-out null part.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..core.registry import DATASETS
from . import Dataset

DIGITS_SHAPE = (8, 8)


@cache
def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    pixels = load_digits().data.astype(np.float64)  # (1797, 64), 0..16
    out = pixels / 8.0 - 1.0
    out.setflags(write=False)
    return out


def digits_pool() -> np.ndarray:
    """(1797, 64) float64 digits in [-1, 1], row-major 8x8 (read-only; the same array every call)."""
    return _digits()


DATASETS.register(
    Dataset(
        "digits",
        64,
        None,
        "scikit-learn's 8x8 handwritten digits (1797 images), scaled to [-1, 1]",
        smooth=False,
        pool=digits_pool,
        image_shape=DIGITS_SHAPE,
    )
)
