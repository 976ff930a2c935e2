"""Rates at a grid of thresholds, for interactive controls: RateGrid from a run's stored distances, TableGrid from
its table (a tables-only copy has nothing else)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.registry import CRITERIA
from ..core.storage import CorruptRunError
from ..core.vocabulary import SOURCE_PREFIX, SOURCES, VALUES
from ..metric.neighbors import NEIGHBOUR_FIELDS
from .store.files import read_epoch
from .store.layout import epoch_file
from .tabulate import group_sizes, summarize, summary_shape, table_thresholds

__all__ = ["RateGrid", "TableGrid", "SLIDER_THRESHOLDS"]

# -- fast path for interactive thresholds ------------------------------------------------------
SLIDER_THRESHOLDS = np.round(np.arange(100, 501, 5) / 100, 2)  # 1.00, 1.05, ..., 5.00


def _grid_index(thresholds: np.ndarray, threshold: float, allowed: str) -> int:
    """Index of `threshold` in the sorted grid `thresholds` (to 1e-9); ValueError saying what is allowed otherwise."""
    k = int(np.argmin(np.abs(thresholds - threshold)))
    if not np.isclose(thresholds[k], threshold, rtol=0, atol=1e-9):
        raise ValueError(f"threshold {threshold} is not {allowed}")
    return k


class RateGrid:
    """A run's rates at a grid of thresholds, computed once from the stored distances; then read in milliseconds.

    `summarize` (the same code that writes the table) runs once per evaluated epoch for every
    threshold of the grid (default: 1.00 to 5.00 in steps of 0.05, plus the run's table
    thresholds); afterwards `rates(criterion, threshold)` only indexes an array, so an
    interactive control can redraw without reading files, searching or training. Values are
    stored as float32 (2e-8 off the table's float64 shares); memory is
    epochs x repeats x 32 x (thresholds) x 4 bytes (about 90 MB for a full paper run).
    """

    def __init__(self, results, thresholds=None, progress: bool = False):  # results: a memnb.Results
        results._per_sample("the rates at every threshold of a grid (RateGrid; TableGrid reads the table's)")
        self.results = results
        self.config = results.config
        grid = SLIDER_THRESHOLDS if thresholds is None else np.asarray(thresholds, np.float64)
        self.thresholds = np.unique(np.concatenate([grid, table_thresholds(self.config)]))
        self.epochs = np.array(results.evaluated_epochs, np.int64)
        self.repeats = np.arange(self.config.n_repeats)
        groups, locations = results.data["groups"], results.locations
        self.labels = labels = results.labels
        self.group_sizes = group_sizes(groups, labels)
        epochs = self.epochs
        if progress:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="rates at every threshold", unit="epoch")
        # a monitored run without a null set has no null arrays (its null rates are NaN)
        sources = [s for s in SOURCES if not (s == "null" and self.config.null == "none")]
        keys = [SOURCE_PREFIX[s] + k for s in sources for k in NEIGHBOUR_FIELDS]
        stack = []
        for e in epochs:
            f = epoch_file(results.path, int(e))
            results._check(f)
            arrays = read_epoch(results.path, int(e), results.advice, tuple(keys))  # not the samples: not needed
            missing = [k for k in keys if k not in arrays and not k.endswith("d_mean50")]
            if missing:
                raise CorruptRunError(f"{f} lacks arrays {missing}")
            stack.append(summarize(arrays, groups, locations, self.thresholds, labels).astype(np.float32))
        # (E, R, criterion, source, value, group+all, K): an epoch axis before the summary's axes
        self.summary = (
            np.stack(stack)
            if stack
            else np.zeros((0, *summary_shape(len(self.repeats), len(self.thresholds), labels)), np.float32)
        )

    def threshold_index(self, threshold: float) -> int:
        return _grid_index(
            self.thresholds,
            threshold,
            f"on this grid ({self.thresholds.min()} to {self.thresholds.max()}); use Results.rates_at for any other",
        )

    def rates(self, criterion: str, threshold: float) -> pd.DataFrame:
        """Same rows and columns as `Results.rates_at(criterion, threshold)`, sorted by repeat, epoch, group."""
        CRITERIA.get(criterion)  # a clear error for an unknown criterion
        c, k = CRITERIA.names().index(criterion), self.threshold_index(threshold)
        v = self.summary[:, :, c, :, :, :, k].astype(np.float64)  # (E, R, source, value, G)
        gen, null = SOURCES.index("generated"), SOURCES.index("null")
        mem, cop = VALUES.index("memorized"), VALUES.index("copied")
        E, R, G = v.shape[0], v.shape[1], v.shape[-1]
        rr, ee, gg = np.meshgrid(np.arange(R), np.arange(E), np.arange(G), indexing="ij")
        rr, ee, gg = rr.reshape(-1), ee.reshape(-1), gg.reshape(-1)
        return pd.DataFrame(
            {
                "repeat": self.repeats[rr],
                "epoch": self.epochs[ee],
                "group": np.asarray((*self.labels, "all"))[gg],
                "criterion": criterion,
                "threshold": float(self.thresholds[k]),
                "memorized": v[ee, rr, gen, mem, gg],
                "memorized_null": v[ee, rr, null, mem, gg],
                "copied": v[ee, rr, gen, cop, gg],
                "copied_null": v[ee, rr, null, cop, gg],
                "n_generated": self.config.n_generate_points,
                "n_group_points": self.group_sizes[rr, gg],
            }
        )


class TableGrid:
    """RateGrid's interface read from the stored table: its thresholds only (a tables-only run has nothing else).

    `rates(criterion, threshold)` gives the table's rows at one of the table's thresholds, with RateGrid's columns
    and order; `nearest(threshold)` the table threshold closest to any other.
    """

    def __init__(self, results):  # results: a memnb.Results
        self.results, self.config = results, results.config
        self.table = t = results.table()
        self.thresholds = np.unique(t.threshold.to_numpy(np.float64))
        self.epochs = np.unique(t.epoch.to_numpy(np.int64))
        self.repeats = np.unique(t.repeat.to_numpy(np.int64))

    def nearest(self, threshold: float) -> float:
        return float(self.thresholds[int(np.argmin(np.abs(self.thresholds - threshold)))])

    def threshold_index(self, threshold: float) -> int:
        return _grid_index(self.thresholds, threshold, f"one of the table's {self.thresholds.tolist()}")

    def rates(self, criterion: str, threshold: float) -> pd.DataFrame:
        CRITERIA.get(criterion)
        k = self.thresholds[self.threshold_index(threshold)]
        t = self.table
        rows = t[(t.criterion == criterion) & (t.threshold == k)]
        return rows.sort_values(["repeat", "epoch", "group"], ignore_index=True)
