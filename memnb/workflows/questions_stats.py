"""The open questions' statistics of one run (`analyse_run`: τ per repeat, onsets per group in steps, the paired
comparison, the trajectory and its τ marks) and the windows τ_mem - τ_gen per n (`window_table`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.early_stopping import quality_by_epoch
from ..analysis.inference import smallest_p
from ..analysis.stats import holm
from ..analysis.timescales import memorized_curves, repeat_times, steps_per_epoch
from ..analysis.verdict import VERDICTS, Variant, compare_groups, decide, timings
from ..core.config import ExperimentConfig
from ..experiment.results import Results
from .questions_grid import CRITERION

P_VERDICTS = tuple(v for v in VERDICTS if v != "below null")  # the verdicts `verdict.decide` reads from p


def _run_info(res: Results, factor: str) -> dict[str, Any]:
    c = res.config
    return {
        "run": res.path.name,
        "dataset": c.dataset,
        "n_base": c.n_base,
        "n": c.n_train,
        "factor": factor,
        "hidden_size": c.hidden_size,
        "hidden_layers": c.hidden_layers,
        "learning_rate": c.learning_rate,
        "batch_size": c.batch_size,
        "steps_per_epoch": steps_per_epoch(c.n_train, c.batch_size),
    }


def _in_steps(timing: pd.DataFrame, steps: int) -> pd.DataFrame:
    t = timing.copy()
    for col in ("onset", "half", "onset_filled", "half_filled", "censor_at"):
        t[col] = t[col] * steps
    return t


def analyse_run(res: Results, params: Mapping[str, Any], factor: str) -> dict[str, pd.DataFrame]:
    """One run's tables: per repeat times, per repeat and group onsets (steps), the paired comparison, the
    trajectory (means over repeats) and its τ marks."""
    info = _run_info(res, factor)
    steps = info["steps_per_epoch"]
    c = res.config
    curves = memorized_curves(res.table(), CRITERION, c.train_ratio)
    quality = quality_by_epoch(res, params["seed"])
    times = repeat_times(curves, quality, steps, params["factor"], params["margin"], params["z"], params["plateau_tol"])
    times = times.assign(**info)
    group = timings([res], (Variant(CRITERION),), margin=params["margin"], z=params["z"])
    group = _in_steps(group, steps)
    row = compare_groups(group, "onset", params["n_bootstrap"], params["seed"], params["alpha"])
    median_mem = times.tau_mem.median() if times.tau_mem.notna().any() else math.nan
    cmp = {
        **info,
        **row,
        "tau_mem_median": median_mem,
        "tau_mem_censored": int(times.tau_mem_censored.sum()),
        "tau_gen_median": times.tau_gen.median(),
    }
    for g in ("inlier", "outlier", "duplicate"):
        og = group[group.group == g]
        cmp[f"onset_{g[:3]}_median"] = og.onset.median() if og.onset.notna().any() else math.nan
        cmp[f"onset_{g[:3]}_censored"] = int(og.onset_censored.sum())
    q = quality.assign(energy_ratio=quality.energy / quality.energy_reference)
    pooled = curves.groupby("repeat").memorized_null.transform("mean")
    traj = curves.assign(excess=curves.memorized - pooled).merge(q, on=["repeat", "epoch"])
    mean = traj.groupby("epoch", as_index=False)[["energy_ratio", "excess"]].mean()
    label = f"{c.dataset} n={c.n_train}" if factor == "part1" else _cell_label(c)
    mean = mean.assign(run=info["run"], label=label, step=mean.epoch * steps, part=factor)
    marks = []
    for kind in ("tau_gen", "tau_plateau", "tau_mem"):
        med = (times[kind] / steps).median()
        if np.isfinite(med):
            k = int(np.argmin(np.abs(mean.epoch.to_numpy() - med)))
            marks.append(
                {"run": info["run"], "label": label, "kind": kind, **mean.iloc[k][["energy_ratio", "excess"]].to_dict()}
            )
    return {
        "times": times,
        "group_times": group.assign(**{k: info[k] for k in ("dataset", "n", "factor")}),
        "comparison": pd.DataFrame([cmp]),
        "trajectories": mean,
        "marks": pd.DataFrame(marks, columns=["run", "label", "kind", "energy_ratio", "excess"]),
    }


def _cell_label(c: ExperimentConfig) -> str:
    return f"w{c.hidden_size} d{c.hidden_layers} lr{c.learning_rate:g} b{c.batch_size}"


def window_table(times: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and n: medians over repeats of τ_gen, τ_mem and the window τ_mem - τ_gen (steps), with counts
    of censored repeats (a censored window is the lower bound horizon - τ_gen)."""
    rows = []
    for (ds, n), t in times.groupby(["dataset", "n"], sort=True):
        rows.append(
            {
                "dataset": ds,
                "n": n,
                "horizon": t.horizon.iloc[0],
                "n_repeats": len(t),
                "tau_gen_median": t.tau_gen.median(),
                "tau_gen_censored": int(t.tau_gen_censored.sum()),
                "tau_mem_median": t.tau_mem.median(),
                "tau_mem_censored": int(t.tau_mem_censored.sum()),
                "window_median": t.window.median(),
                "window_censored": int(t.window_censored.sum()),
                "tau_plateau_median": t.tau_plateau.median(),
                "window_plateau_median": t.window_plateau.median(),
                "window_plateau_censored": int(t.window_plateau_censored.sum()),
                "final_memorized": t.final_memorized.mean(),
                "final_null": t.final_null.mean(),
                "final_energy_ratio": t.final_energy_ratio.mean(),
            }
        )
    return pd.DataFrame(rows)


def holm_cells(cells: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """The part-2 cells (or part 1's runs) with Holm-adjusted p-values beside the raw ones and the verdict under them.

    cells: `analyse_run`'s comparison rows (one per cell or run). Holm over the rows, per comparison
    (outlier - inlier, outlier - duplicate: each a family of len(cells) tests): p_inl_holm, p_dup_holm; then
    verdict_holm = `verdict.decide` with the adjusted p where the raw verdict is one of `P_VERDICTS` (else the raw
    one: "below null" is not a p-value's verdict; the raw verdict stays in `verdict`). With R repeats
    the exact sign-flip test's smallest p is 2 / 2^R (0.031 at R = 6), so the smallest Holm-adjusted p is
    len(cells) * 2 / 2^R: no cell can be significant unless 2^R >= 2 len(cells) / alpha (R >= 9 for 8 cells
    at 0.05); min_p_holm says what the design allows (`inference.smallest_p`: with more than 16 repeats the
    test draws 100,000 sign patterns, so its floor is 1e-5, not 2 / 2^R).
    """
    c = cells.copy()
    for g in ("inl", "dup"):
        c[f"p_{g}_holm"] = holm(c[f"p_{g}"].to_numpy(np.float64)) if len(c) else []
    c["verdict_holm"] = [
        decide(
            {g: (r[f"out_minus_{g}_low"], r[f"out_minus_{g}_high"], r[f"p_{g}_holm"]) for g in ("inl", "dup")}, alpha
        )
        if r.verdict in P_VERDICTS
        else r.verdict  # a verdict not read from p-values (the verdict's "below null") stays as it is
        for _, r in c.iterrows()
    ]
    c["min_p_holm"] = np.minimum(1.0, len(c) * smallest_p(c.n_repeats.to_numpy(np.float64))) if len(c) else []
    return c
