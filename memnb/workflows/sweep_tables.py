"""A sweep's tables: every finished run's rows with its config columns (`sweep_table`), and where each group ends
against its null per configuration (`grid_summary`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.curves import first_epoch_above_null, t_halfwidth
from ..core.config import CONFIG_FIELDS, ExperimentConfig
from ..core.registry import CRITERIA
from ..core.vocabulary import DISPLAY_GROUPS, VALUES
from ..experiment.results import TABLE_COLUMNS, Results
from ..experiment.runner import run_dir
from .sweep_grid import config_frame, run_status


def sweep_table(configs: Sequence[ExperimentConfig], root: Path | str | None = None) -> pd.DataFrame:
    """The tidy table of every finished run among `configs`: their ``table.parquet`` rows (repeat x
    epoch x group x criterion x threshold, see memnb.experiment.results) with ``run`` and every config field
    as columns. Unfinished runs are left out."""
    frames = []
    finished = [c for c in configs if run_status(c, root) == "complete"]
    for c in finished:
        t = Results(run_dir(c, root)).table()
        t.insert(0, "run", c.run_name())
        frames.append(t)
    if not frames:
        return pd.DataFrame(columns=["run", *CONFIG_FIELDS, *TABLE_COLUMNS])
    table = pd.concat(frames, ignore_index=True)
    table = config_frame(finished).merge(table, on="run", how="right", validate="one_to_many")
    for name in [
        c for c in table.columns if pd.api.types.is_string_dtype(table[c])
    ]:  # run, group, criterion, text fields
        table[name] = table[name].astype("category")
    return table[["run", *CONFIG_FIELDS, *TABLE_COLUMNS]]


def grid_summary(
    table: pd.DataFrame,
    grid_fields: Sequence[str],
    criterion: str = "paper",
    threshold: float | None = None,
    value: str = "copied",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per configuration x group: where each group ends, against its null, at the final epoch.

    table: `sweep_table` rows (config columns included). threshold None: each run's own (``ratio``,
    ``train_ratio`` or ``1/relative_alpha``). value: ``copied`` (share of the group's points) or
    ``memorized`` (share of the generated set). Columns: ``run``, the grid fields, ``group``,
    ``n_repeats``, ``final_epoch``, ``value_%`` and ``null_%`` (means over repeats), ``excess_pp``
    (mean over repeats of value - null, paired by repeat, percentage points) and ``excess_ci95_pp``
    (its Student-t half-width), ``first_epoch_above_null`` (plots.first_epoch_above_null; <NA>: never).
    """
    if value not in VALUES:
        raise ValueError(f"value = {value!r} is invalid; allowed: one of {VALUES}")
    missing = [f for f in grid_fields if f not in table.columns]
    if missing:
        raise ValueError(
            f"grid fields {missing} are not columns of the table; allowed: config fields {list(CONFIG_FIELDS)}"
        )
    rows = table[table.criterion == criterion]
    if rows.empty:
        raise ValueError(f"criterion = {criterion!r} is not in the table; present: {sorted(table.criterion.unique())}")
    own = (
        CRITERIA.get(criterion).own_threshold(rows) if threshold is None else float(threshold)
    )  # per row: each run's own
    rows = rows[np.isclose(rows.threshold.to_numpy(np.float64), np.asarray(own, np.float64), rtol=0, atol=1e-9)]
    out = []
    for run, r in rows.groupby("run", observed=True, sort=False):
        last = int(r.epoch.max())
        first = first_epoch_above_null(r, value)
        end = r[r.epoch == last]
        for group, g in end.groupby("group", observed=True, sort=False):
            diff = (g[value] - g[value + "_null"]).to_numpy(np.float64)
            out.append(
                {
                    "run": run,
                    **{f: g[f].iloc[0] for f in grid_fields},
                    "group": group,
                    "n_repeats": len(g),
                    "final_epoch": last,
                    "value_%": 100 * g[value].mean(),
                    "null_%": 100 * g[value + "_null"].mean(),
                    "excess_pp": 100 * diff.mean(),
                    "excess_ci95_pp": 100
                    * float(t_halfwidth(diff.std(ddof=1) if len(diff) > 1 else np.nan, len(diff), confidence)),
                    "first_epoch_above_null": first.get(str(group)),
                }
            )
    frame = pd.DataFrame(out)
    if not frame.empty:
        order = {g: i for i, g in enumerate(DISPLAY_GROUPS)}
        frame = frame.sort_values("group", key=lambda c: c.astype(str).map(order), kind="stable")
        frame = frame.sort_values(
            "run", key=lambda c: c.map({r: i for i, r in enumerate(dict.fromkeys(c))}), kind="stable"
        ).reset_index(drop=True)
        frame["first_epoch_above_null"] = frame["first_epoch_above_null"].astype("Int64")
    return frame
