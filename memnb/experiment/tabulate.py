"""Tabulating one evaluated epoch: rates per criterion, source, value, group and threshold; Z_U per cell.

Pure functions on arrays (shapes in each docstring). The summary array of an epoch has the axes
`memnb.core.vocabulary.SUMMARY_AXES` = (repeat, criterion, source, value, group, threshold);
`summary_at` reads it by name instead of by position.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..core.registry import CRITERIA
from ..core.run_config import RunConfig
from ..core.vocabulary import GROUPS, SOURCE_PREFIX, SOURCES, VALUES
from ..metric.copying import mann_whitney_z_by_group
from ..metric.criteria import copied_shares, memorized_shares, ratio_from
from ..metric.neighbors import NEIGHBOUR_FIELDS, NeighbourSearch

TABLE_COLUMNS = [
    "repeat",
    "epoch",
    "group",
    "criterion",
    "threshold",
    "memorized",
    "memorized_null",
    "copied",
    "copied_null",
    "n_generated",
    "n_group_points",
]
ZU_COLUMNS = ["repeat", "epoch", "group", "z_u", "z_u_null", "n_generated", "n_null", "n_test"]


def summary_shape(n_repeats: int, n_thresholds: int, labels: Sequence[str] = GROUPS) -> tuple[int, ...]:
    """Shape of an epoch's summary: (R, criterion, source, value, group+all, K); labels: the run's groups."""
    return (n_repeats, len(CRITERIA), len(SOURCES), len(VALUES), len(labels) + 1, n_thresholds)


def summary_at(
    summary: np.ndarray,
    *,
    criterion: str,
    source: str = "generated",
    value: str = "memorized",
    group: str = "all",
    threshold_index: int | slice = slice(None),
    labels: Sequence[str] = GROUPS,
) -> np.ndarray:
    """The summary's entries at named coordinates: (R,) for one threshold index, (R, K') for a slice."""
    return summary[
        :,
        CRITERIA.names().index(criterion),
        SOURCES.index(source),
        VALUES.index(value),
        (*labels, "all").index(group),
        threshold_index,
    ]


def table_thresholds(config: RunConfig) -> np.ndarray:
    """The documented threshold grid (a monitored run's own) plus the config's own thresholds (ratio, train_ratio, 1/relative_alpha), sorted."""
    own = tuple(c.own_threshold(config) for c in CRITERIA)
    grid = tuple(config.thresholds)  # memnb's grid, or the one a monitored run chose
    return np.unique(np.array(grid + own, np.float64))


def location_ids(train_points: np.ndarray) -> np.ndarray:
    """(N,) id of each training point's distinct location (exact copies share one)."""
    return np.unique(train_points, axis=0, return_inverse=True)[1].reshape(-1)


def summarize(
    arrays: dict[str, np.ndarray],
    groups: np.ndarray,
    locations: np.ndarray,
    thresholds: np.ndarray,
    labels: Sequence[str] = GROUPS,
) -> np.ndarray:
    """Rates of one evaluated epoch.

    arrays: neighbour arrays (R, n) for the generated (``d1`` ...) and null (``null_d1`` ...) draws;
    groups, locations: (R, N). Returns the summary (R, criterion, source, value, group+all, K)
    (`summary_shape`; value 0 = memorized, share of generated set; 1 = copied, share of group's
    points). A criterion whose neighbour field is absent (``d_mean50`` in runs stored before the
    relative criterion existed) has NaN rates, and so has a source without arrays (a monitored run
    without a null set). labels: the run's group labels by code (memnb's three, or a monitored run's own).
    """
    R, G = groups.shape[0], len(labels)
    out = np.empty(summary_shape(R, len(thresholds), labels))
    mem, cop = VALUES.index("memorized"), VALUES.index("copied")
    for r in range(R):
        for s, source in enumerate(SOURCES):
            prefix = SOURCE_PREFIX[source]
            nb = {f: arrays[prefix + f][r] for f in NEIGHBOUR_FIELDS if prefix + f in arrays}
            if "index" not in nb:
                out[r, :, s] = np.nan
                continue
            idx = nb["index"]
            for c, crit in enumerate(CRITERIA):
                if crit.numerator not in nb:
                    out[r, c, s] = np.nan
                    continue
                ratio = ratio_from(crit.name, nb, locations[r])
                out[r, c, s, mem] = memorized_shares(crit.name, ratio, groups[r][idx], thresholds, G)
                out[r, c, s, cop] = copied_shares(
                    crit.name, ratio, locations[r][idx], locations[r], groups[r], thresholds, G
                )
    return out


def summary_rows(
    summary: np.ndarray,
    epoch: int,
    repeats: list[int],
    thresholds: np.ndarray,
    n_generated: int,
    group_sizes: np.ndarray,
    labels: Sequence[str] = GROUPS,
) -> pd.DataFrame:
    """Tidy rows from one epoch's `summary` (see summarize); group_sizes (R, group+all); labels: the run's groups."""
    R, C, _, _, G, K = summary.shape
    rr, cc, gg, kk = np.meshgrid(np.arange(R), np.arange(C), np.arange(G), np.arange(K), indexing="ij")
    rr, cc, gg, kk = (a.reshape(-1) for a in (rr, cc, gg, kk))
    gen, null = SOURCES.index("generated"), SOURCES.index("null")
    mem, cop = VALUES.index("memorized"), VALUES.index("copied")
    return pd.DataFrame(
        {
            "repeat": np.asarray(repeats)[rr],
            "epoch": epoch,
            "group": np.asarray((*labels, "all"))[gg],
            "criterion": np.asarray(CRITERIA.names())[cc],
            "threshold": thresholds[kk],
            "memorized": summary[rr, cc, gen, mem, gg, kk],
            "memorized_null": summary[rr, cc, null, mem, gg, kk],
            "copied": summary[rr, cc, gen, cop, gg, kk],
            "copied_null": summary[rr, cc, null, cop, gg, kk],
            "n_generated": n_generated,
            "n_group_points": group_sizes[rr, gg],
        }
    )


def group_sizes(groups: np.ndarray, labels: Sequence[str] = GROUPS) -> np.ndarray:
    """(R, group+all) number of training points per group; groups (R, N) codes into `labels`."""
    counts = np.stack([np.bincount(g.astype(np.int64), minlength=len(labels)) for g in groups])
    return np.concatenate([counts, counts.sum(1, keepdims=True)], axis=1)


def held_out_neighbours(
    train_points: np.ndarray, test_points: np.ndarray, groups: np.ndarray, backend: str = "kdtree"
) -> tuple[np.ndarray, np.ndarray]:
    """Per repeat, each test point's distance to its nearest training point and that point's group.

    train_points (R, N, d), test_points (R, m, d), groups (R, N). Returns (R, m) float32 distances
    (data units) and (R, m) group codes: L(P_n) and the cells of Meehan et al.'s test. Constant over
    a run, so computed once per repeat.
    """
    d, g = [], []
    for train, test, grp in zip(train_points, test_points, groups):
        nb = NeighbourSearch(train, test, backend).query(test)
        d.append(nb.d1)
        g.append(grp[nb.index])
    return np.stack(d), np.stack(g)


def data_copying(
    arrays: dict[str, np.ndarray],
    test_d: np.ndarray,
    test_group: np.ndarray,
    groups: np.ndarray,
    labels: Sequence[str] = GROUPS,
) -> tuple[np.ndarray, np.ndarray]:
    """Meehan et al.'s Z_U for one evaluated epoch, per repeat and cell (see metric.mann_whitney_z_by_group).

    arrays: ``d1``, ``index`` (R, n) and ``null_d1``, ``null_index``; test_d, test_group: (R, m)
    from held_out_neighbours; groups: (R, N). Returns Z_U (R, source, group+all) (source 0 generated,
    1 null) and counts (R, 3, group+all) int64 of generated, null and test points per cell. A source
    without arrays (a monitored run without a null set) has NaN Z_U and zero counts.
    """
    R, G = groups.shape[0], len(labels) + 1
    z, n = np.empty((R, len(SOURCES), G)), np.empty((R, 3, G), np.int64)
    for r in range(R):
        for s, source in enumerate(SOURCES):
            prefix = SOURCE_PREFIX[source]
            if prefix + "index" not in arrays:
                z[r, s], n[r, s] = np.nan, 0
                continue
            cell = groups[r][arrays[prefix + "index"][r]]
            z[r, s] = mann_whitney_z_by_group(test_d[r], test_group[r], arrays[prefix + "d1"][r], cell, G - 1)
            n[r, s] = _cell_counts(cell, G - 1)
        n[r, 2] = _cell_counts(test_group[r], G - 1)
    return z, n


def _cell_counts(cell: np.ndarray, n_groups: int) -> np.ndarray:
    counts = np.bincount(cell.astype(np.int64), minlength=n_groups)
    return np.append(counts, counts.sum())


def zu_rows(
    zu: np.ndarray, counts: np.ndarray, epoch: int, repeats: list[int], labels: Sequence[str] = GROUPS
) -> pd.DataFrame:
    """Tidy rows (ZU_COLUMNS) from one epoch's `zu` (R, source, group+all) and `counts` (R, 3, group+all)."""
    R, _, G = zu.shape
    rr, gg = np.meshgrid(np.arange(R), np.arange(G), indexing="ij")
    rr, gg = rr.reshape(-1), gg.reshape(-1)
    return pd.DataFrame(
        {
            "repeat": np.asarray(repeats)[rr],
            "epoch": epoch,
            "group": np.asarray((*labels, "all"))[gg],
            "z_u": zu[rr, 0, gg],
            "z_u_null": zu[rr, 1, gg],
            "n_generated": counts[rr, 0, gg],
            "n_null": counts[rr, 1, gg],
            "n_test": counts[rr, 2, gg],
        }
    )


def tables(epochs: dict[int, dict[str, np.ndarray]], config: RunConfig, group_sizes: np.ndarray):
    """(table, zu) of a run from its evaluated epochs' arrays: the one function that builds a run's tables.

    epochs: {epoch: arrays holding at least ``summary`` and ``zu``, ``zu_n``} (from memory while running, or read
    from the epoch files on a rebuild: the same rows either way); group_sizes (R, group+all). Table rows are sorted
    by repeat, epoch, criterion, group, threshold (TABLE_COLUMNS); Z_U rows by repeat, epoch, group (ZU_COLUMNS).
    """
    labels, thresholds = config.group_names, table_thresholds(config)
    repeats = list(range(config.n_repeats))
    rows = [
        summary_rows(a["summary"], e, repeats, thresholds, config.n_generate_points, group_sizes, labels)
        for e, a in sorted(epochs.items())
    ]
    zus = [zu_rows(a["zu"], a["zu_n"], e, repeats, labels) for e, a in sorted(epochs.items())]
    table = (
        pd.concat(rows, ignore_index=True).sort_values(
            ["repeat", "epoch", "criterion", "group", "threshold"], ignore_index=True
        )
        if rows
        else pd.DataFrame(columns=TABLE_COLUMNS)
    )
    zu = (
        pd.concat(zus, ignore_index=True).sort_values(["repeat", "epoch", "group"], ignore_index=True)
        if zus
        else pd.DataFrame(columns=ZU_COLUMNS)
    )
    return table, zu


def at_own_thresholds(table: pd.DataFrame, config: RunConfig) -> pd.DataFrame:
    """Per criterion at its own threshold (config.own_threshold) and group: the shares' means over repeats."""
    own = {crit.name: crit.own_threshold(config) for crit in CRITERIA}
    rows = table[np.isclose(table.threshold, table.criterion.map(own))]
    out = rows.groupby(["criterion", "group"], sort=False)[["memorized", "memorized_null", "copied", "copied_null"]]
    return out.mean().reset_index().assign(threshold=lambda d: d.criterion.map(own))
