"""Per training point: which points a memorized sample copies at each evaluated epoch, and when first.

`copy_matrix` reads a stored run's per-sample distances (no search, no training); `first_copies` turns
it into one first-copy epoch per training point, for the generated samples and for the null draws
(what chance alone copies). The anomaly scores (memnb.analysis.anomaly) and the verdict's figures use them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metric.criteria import is_memorized, ratio_from
from ..metric.neighbors import NEIGHBOUR_FIELDS


def first_copy_epochs(epochs, copied) -> np.ndarray:
    """Per training point, the first evaluated epoch at which a memorized sample copies it (NaN if never).

    epochs: (E,); copied: (E, ..., N) bool, True where the point is copied at that epoch.
    Returns (..., N) float.
    """
    epochs = np.asarray(epochs, np.float64)
    copied = np.asarray(copied, bool)
    first = np.argmax(copied, axis=0)
    return np.where(copied.any(axis=0), epochs[first], np.nan)


def copy_matrix(results, criterion: str, threshold: float, epochs=None) -> tuple[np.ndarray, np.ndarray]:
    """Which training points a memorized sample copies, at every evaluated epoch.

    results: a `Results`; a point is copied at an epoch when a sample memorized under `criterion`
    at `threshold` has it (or an exact copy of it) as nearest training point. Returns
    (epochs (E,) int, copied (2, E, R, N) bool), source 0 the generated samples and 1 the null
    draws (fresh data: what chance alone copies).
    """
    epochs = results.evaluated_epochs if epochs is None else list(epochs)
    groups, locations = results.data["groups"], results.locations
    R, N = groups.shape
    copied = np.zeros((2, len(epochs), R, N), bool)
    for k, e in enumerate(epochs):
        arrays = results.epoch_arrays(e)
        for s, prefix in enumerate(("", "null_")):
            for r in range(R):
                ratio = ratio_from(
                    criterion,
                    {f: arrays[prefix + f][r] for f in NEIGHBOUR_FIELDS if prefix + f in arrays},
                    locations[r],
                )
                mem = is_memorized(criterion, ratio, threshold)
                hit = np.zeros(locations[r].max() + 1, bool)
                hit[locations[r][arrays[prefix + "index"][r][mem]]] = True
                copied[s, k, r] = hit[locations[r]]
    return np.asarray(epochs, np.int64), copied


def first_copies(results, criterion: str, threshold: float, epochs=None) -> pd.DataFrame:
    """Per repeat and training point, the first evaluated epoch at which a memorized sample copies it.

    results: a `Results`; "copied" as in `copy_matrix`. Columns: repeat, point (index in the
    training set), group, first_copy (generated samples; NaN = never), first_copy_null (the null
    draws: when chance alone first "copies" it).
    """
    epochs, copied = copy_matrix(results, criterion, threshold, epochs)
    groups = results.data["groups"]
    R, N = groups.shape
    first = [first_copy_epochs(epochs, copied[s]) for s in range(2)]
    rr, pp = np.meshgrid(np.arange(R), np.arange(N), indexing="ij")
    return pd.DataFrame(
        {
            "repeat": rr.reshape(-1),
            "point": pp.reshape(-1),
            "group": np.asarray(results.labels)[groups.reshape(-1).astype(np.int64)],
            "first_copy": first[0].reshape(-1),
            "first_copy_null": first[1].reshape(-1),
        }
    )
