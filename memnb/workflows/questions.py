"""The paper's three open questions, measured (issue 17): `python -m memnb.workflows.questions --profile laptop`.

1. **Memorization time against n**: moons (and `gmm_d` at d = `dim`) at training-set sizes n, each trained
   for a horizon of optimizer steps and evaluated at log-spaced epochs (`eval_schedule="log"`); per repeat
   τ_gen and τ_mem (memnb.analysis.timescales), per group the train-only onset (memnb.analysis.verdict's
   `timings`), the fit log τ_mem = a + α log n with a bootstrap interval, the n above which nothing is
   memorized within the horizon, and the paired outlier-versus-inlier/duplicate comparison per n under
   the verdict rule (`verdict.RULE`), in steps.
2. **Model against training process**: at one n (`cells_n_base`), the model varied with the training
   fixed (width x depth) and the training varied with the model fixed (learning rate x batch size),
   every cell trained for the same number of optimizer steps; per cell the outlier - inlier and outlier -
   duplicate onset differences with intervals and the verdict, and τ_mem; then whether the verdict
   depends on the architecture, the training, both or neither (`timescales.dependence`).
3. **Quality against memorization**: for every run, the energy distance to held-out data (over the
   fresh-data level) against the memorized share minus its null, with τ_gen and τ_mem; the
   generalization window τ_mem - τ_gen per n.

Runs go through the sweep engine (`memnb.workflows.sweep.run_sweep`, serial executor by default), so
stored runs are reused and interrupted ones resumed. Every run: `test_set="matched"`, outliers and
near-duplicates each `injected_share` of the base points (at least 2), batch 32 unless varied, seed
`seed`, device auto (CUDA when there is one: its generators draw other numbers than the CPU's, so the same curves
within their intervals, not the same values, and other run names).

Profiles (memnb's vocabulary, `profiles.PROFILES`; ``full`` = ``paper``): ``paper`` = `FULL`, the issue's
grids (about half a day to a day of the project's 2-core machine; not run); ``laptop`` = `LAPTOP`, 15 runs,
measured 43 minutes on the shared 2-core machine and 32 minutes on it alone (the issue asked for about 15: see
docs/questions.md); ``smoke`` =
`SMOKE`, seconds (CI). `make figures` does not run this (too long).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.early_stopping import quality_by_epoch
from ..analysis.timescales import (
    dependence,
    memorized_curves,
    repeat_times,
    scaling_table,
    steps_per_epoch,
)
from ..analysis.verdict import Variant, compare_groups, timings
from ..core.config import ExperimentConfig
from ..experiment.results import Results
from ..experiment.runner import run_dir
from .profiles import PROFILES, check_profile, project_root, resolve_runs_root
from .sweep import run_sweep

__all__ = ["PROFILES", "FULL", "LAPTOP", "SMOKE", "apply_profile", "part1_configs", "cell_configs", "answer", "main"]

CRITERION = "train_only"  # Bonnaire et al.'s d1/d2 < 1/3 (the config's train_ratio = 3)

FULL: dict[str, Any] = dict(
    datasets=["moons", "gmm_d"],
    dim=8,
    sizes=[64, 128, 256, 512, 1024, 2048, 4096],  # base points; n = base + outliers + duplicates
    injected_share=0.1,
    n_repeats=6,
    horizon_steps=50_000,  # optimizer steps: max(horizon_steps, horizon_per_point * n)
    horizon_per_point=200,
    n_evals=24,
    cells_n_base=128,
    widths=[32, 64, 128, 256, 512],
    depths=[1, 2, 3, 6],
    learning_rates=[1e-4, 3e-4, 1e-3, 3e-3],
    batch_sizes=[8, 32, 128],
    factor=1.5,
    plateau_tol=0.1,
    margin=0.05,
    z=3.0,
    n_bootstrap=2000,
    alpha=0.05,
    seed=0,
)
LAPTOP: dict[str, Any] = dict(
    sizes=[64, 128, 256, 512],
    horizon_steps=20_000,
    horizon_per_point=0,
    n_evals=16,
    cells_n_base=64,
    widths=[32, 512],
    depths=[1, 3],
    learning_rates=[1e-3, 3e-3],
    batch_sizes=[8, 32],
)
SMOKE: dict[str, Any] = dict(
    datasets=["moons"],
    sizes=[40, 80],
    n_repeats=2,
    horizon_steps=300,
    horizon_per_point=0,
    n_evals=5,
    cells_n_base=40,
    widths=[16, 32],
    depths=[1],
    learning_rates=[1e-3],
    batch_sizes=[8, 32],
    n_bootstrap=100,
)
BATCH = 32  # batch size of every run whose batch size is not varied
MODEL_FIXED = dict(hidden_size=128, hidden_layers=3)  # tiny-diffusion's: the model of the training cells
TRAINING_FIXED = dict(learning_rate=1e-3, batch_size=BATCH)  # the training of the model cells


# -- parameters and profiles ------------------------------------------------------------------------------
def apply_profile(params: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
    """(parameters to run, {name: (given, reduced)}) for `profile`; params holds the keys of `FULL`.

    ``laptop`` and ``smoke`` replace each parameter that is at its `FULL` value by theirs (`LAPTOP`, `SMOKE`);
    a parameter set apart from `FULL` is kept (so ``-p sizes [64, 96]`` at the laptop profile runs those)."""
    profile = check_profile(profile)
    missing = sorted(set(FULL) - set(params))
    if missing:
        raise ValueError(f"parameters {missing} are missing; allowed: a mapping with keys {list(FULL)}")
    unknown = sorted(set(params) - set(FULL))
    if unknown:
        raise ValueError(f"parameters {unknown} are unknown; allowed: {list(FULL)}")
    out = {k: params[k] for k in FULL}
    for k, v in {"laptop": LAPTOP, "smoke": SMOKE}.get(profile, {}).items():
        if out[k] == FULL[k]:
            out[k] = v
    _check(out)
    return out, {k: (params[k], out[k]) for k in FULL if out[k] != params[k]}


def _check(p: Mapping[str, Any]) -> None:
    def fail(name, allowed):
        raise ValueError(f"{name} = {p[name]!r} is invalid; allowed: {allowed}")

    for name in ("sizes", "widths", "depths", "learning_rates", "batch_sizes", "datasets"):
        if isinstance(p[name], (str, bytes)) or not isinstance(p[name], Sequence) or len(p[name]) == 0:
            fail(name, "a non-empty list")
    for name, lo in (("n_repeats", 2), ("horizon_steps", 1), ("horizon_per_point", 0), ("n_evals", 2)):
        if not isinstance(p[name], int) or isinstance(p[name], bool) or p[name] < lo:
            fail(name, f"an integer >= {lo}")
    if not (0 <= p["injected_share"] < 0.5):
        fail("injected_share", "a share >= 0 and < 0.5 (of the base points, each for outliers and duplicates)")
    if not (isinstance(p["factor"], (int, float)) and p["factor"] > 0):
        fail("factor", "a number > 0")


def params_from(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of `FULL` as named in `namespace` (a notebook's globals()); a missing one is an error."""
    missing = [k for k in FULL if k not in namespace]
    if missing:
        raise ValueError(f"parameters {missing} are missing; allowed: a mapping with keys {list(FULL)}")
    return {k: namespace[k] for k in FULL}


def horizon(params: Mapping[str, Any], n_train: int) -> int:
    """Optimizer steps of a part-1 run of n_train points: max(horizon_steps, horizon_per_point * n_train)."""
    return max(params["horizon_steps"], params["horizon_per_point"] * n_train)


def _config(params: Mapping[str, Any], dataset: str, n_base: int, steps: int, **changes: Any) -> ExperimentConfig:
    k = max(2, round(params["injected_share"] * n_base))
    n_train = n_base + 2 * k
    batch = changes.get("batch_size", BATCH)
    epochs = math.ceil(steps / steps_per_epoch(n_train, batch))
    return ExperimentConfig(
        dataset=dataset,
        dim=params["dim"] if dataset == "gmm_d" else None,
        n_base=n_base,
        n_outliers=k,
        n_duplicates=k,
        epochs=epochs,
        eval_schedule="log",
        n_evals=params["n_evals"],
        n_repeats=params["n_repeats"],
        seed=params["seed"],
        test_set="matched",
        **{"batch_size": BATCH, **changes},
    )


def _n_train(params: Mapping[str, Any], n_base: int) -> int:
    return n_base + 2 * max(2, round(params["injected_share"] * n_base))


def part1_configs(params: Mapping[str, Any]) -> list[ExperimentConfig]:
    """Part 1's runs: every dataset x size, trained for `horizon` steps."""
    return [
        _config(params, ds, nb, horizon(params, _n_train(params, nb)))
        for ds in params["datasets"]
        for nb in params["sizes"]
    ]


def cell_configs(params: Mapping[str, Any]) -> list[tuple[str, ExperimentConfig]]:
    """Part 2's runs as (factor, config): moons at `cells_n_base`, every width x depth with the training
    fixed ("model"), every learning rate x batch size with the model fixed ("training"), all trained for the
    part-1 horizon of that n (so the cell of the default model and training is the part-1 run, reused)."""
    nb = params["cells_n_base"]
    steps = horizon(params, _n_train(params, nb))
    cells = [
        ("model", _config(params, "moons", nb, steps, hidden_size=w, hidden_layers=d, **TRAINING_FIXED))
        for w in params["widths"]
        for d in params["depths"]
    ]
    cells += [
        ("training", _config(params, "moons", nb, steps, learning_rate=lr, batch_size=b, **MODEL_FIXED))
        for lr in params["learning_rates"]
        for b in params["batch_sizes"]
    ]
    return cells


def describe(profile: str, reductions: Mapping[str, tuple[Any, Any]], params: Mapping[str, Any]) -> str:
    """The lines printed first: the profile, what it reduced against the issue's grids, and the grids."""
    head = f"Questions: profile {profile!r} -- " + ("the issue's full grids" if not reductions else "reduced:")
    lines = [head] + [f"    {k:<17} {given!s:>28} -> {now!s}" for k, (given, now) in reductions.items()]
    p = params
    sizes = [_n_train(p, nb) for nb in p["sizes"]]
    lines.append(
        f"Part 1: {list(p['datasets'])} (gmm_d at d = {p['dim']}), base sizes {list(p['sizes'])} (n = {sizes}), "
        f"{p['n_repeats']} repeats, horizon max({p['horizon_steps']}, {p['horizon_per_point']} n) steps, "
        f"{p['n_evals']} log-spaced evaluations"
    )
    lines.append(
        f"Part 2: moons, base {p['cells_n_base']}; width {list(p['widths'])} x depth {list(p['depths'])} "
        f"(lr 1e-3, batch 32); lr {list(p['learning_rates'])} x batch {list(p['batch_sizes'])} (width 128, depth 3)"
    )
    lines.append(
        f"Statistics: train-only criterion (d1/d2 < 1/3); tau_gen: energy distance < {p['factor']} x fresh data; "
        f"tau_mem: excess > {p['margin']} and {p['z']} s.e.; {p['n_bootstrap']} bootstrap resamples, "
        f"alpha {p['alpha']}, seed {p['seed']}"
    )
    return "\n".join(lines)


# -- the answer -------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Answer:
    """Everything the three questions measured: tidy tables and plotly figures."""

    params: dict[str, Any]
    profile: str
    reductions: dict[str, tuple[Any, Any]]
    tables: dict[str, pd.DataFrame]
    dependence: str
    wall_s: float
    sweep_wall_s: float

    def figures(self) -> dict:
        from ..views.timescales import plot_cells, plot_quality_memorization, plot_scaling

        t = self.tables
        return {
            "scaling": plot_scaling(t["times"][t["times"].part == 1], t["scaling"]),
            "cells": plot_cells(t["cells"]),
            "quality": plot_quality_memorization(t["trajectories"], t["marks"]),
        }

    def text(self) -> str:
        return summary_text(self)


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


def answer(
    params: Mapping[str, Any] | None = None,
    profile: str = "laptop",
    runs_root: Path | str | None = None,
    executor: str = "serial",
    progress: bool = False,
) -> Answer:
    """Run (or reuse) the three grids of `params` (default `FULL`) at `profile` and compute every statistic."""
    t0 = time.perf_counter()
    params, reductions = apply_profile(dict(FULL if params is None else params), profile)
    root = resolve_runs_root(runs_root)
    p1 = part1_configs(params)
    cells = cell_configs(params)
    configs = list({c.fingerprint(): c for c in [*p1, *(c for _, c in cells)]}.values())
    sweep = run_sweep(configs, root, executor=executor, torch_threads=1, progress=progress)
    parts: list[tuple[str, ExperimentConfig]] = [("part1", c) for c in p1] + cells
    out: dict[str, list[pd.DataFrame]] = {}
    done: dict[str, dict[str, pd.DataFrame]] = {}
    for factor, c in parts:
        key = (factor, c.fingerprint())
        if key not in done:
            done[key] = analyse_run(Results(run_dir(c, root)), params, factor)
        for name, frame in done[key].items():
            out.setdefault(name, []).append(frame)
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in out.items()}
    times = tables["times"]
    times["part"] = np.where(times.factor == "part1", 1, 2)
    rng = np.random.default_rng(params["seed"])
    part1 = times[times.part == 1]
    tables["scaling"] = pd.concat(
        [
            scaling_table(part1, rng, params["n_bootstrap"], 1 - params["alpha"], time="tau_mem"),
            scaling_table(part1, rng, params["n_bootstrap"], 1 - params["alpha"], time="tau_gen"),
            scaling_table(part1, rng, params["n_bootstrap"], 1 - params["alpha"], time="tau_plateau"),
        ],
        ignore_index=True,
    )
    comp = tables.pop("comparison")
    tables["ordering"] = comp[comp.factor == "part1"].reset_index(drop=True)
    tables["cells"] = comp[comp.factor != "part1"].reset_index(drop=True)
    tables["windows"] = window_table(part1)
    tables["trajectories"] = tables["trajectories"]
    cells_t = tables["cells"]
    dep = dependence(cells_t[cells_t.factor == "model"].verdict, cells_t[cells_t.factor == "training"].verdict)
    return Answer(params, check_profile(profile), reductions, tables, dep, time.perf_counter() - t0, sweep.wall_s)


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


# -- reading ------------------------------------------------------------------------------------------------
def _interval(row, key) -> str:
    if not np.isfinite(row[key]):
        return "n/a"
    return f"{row[key]:+.0f} [{row[key + '_low']:+.0f}, {row[key + '_high']:+.0f}]"


def readable(a: Answer) -> dict[str, pd.DataFrame]:
    """The tables for the findings page: scaling, ordering per n, windows per n, the part-2 cells."""
    t = a.tables
    s = t["scaling"].copy()
    s["alpha [CI]"] = [
        f"{r.alpha:.2f} [{r.alpha_low:.2f}, {r.alpha_high:.2f}]" if np.isfinite(r.alpha) else "n/a"
        for r in s.itertuples()
    ]
    scaling = s[["dataset", "time", "alpha [CI]", "n_timed", "n_censored", "n_values", "n_last", "n_off"]]
    scaling = scaling.assign(bonnaire_alpha_1_inside=s.bonnaire_linear_in_interval)

    def comparison(c: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        out = c[keys].copy()
        out["tau_mem median (cens.)"] = [
            f"{m:.0f} ({k}/{r})" if np.isfinite(m) else f"never ({k}/{r})"
            for m, k, r in zip(c.tau_mem_median, c.tau_mem_censored, c.n_repeats)
        ]
        for g in ("inl", "out", "dup"):
            out[f"onset {g} (cens.)"] = [
                f"{m:.0f} ({k})" if np.isfinite(m) else f"never ({k})"
                for m, k in zip(c[f"onset_{g}_median"], c[f"onset_{g}_censored"])
            ]
        out["out - inl [CI]"] = [_interval(r, "out_minus_inl") for _, r in c.iterrows()]
        out["p inl"] = c.p_inl.map(lambda p: "n/a" if not np.isfinite(p) else f"{p:.3f}")
        out["out - dup [CI]"] = [_interval(r, "out_minus_dup") for _, r in c.iterrows()]
        out["p dup"] = c.p_dup.map(lambda p: "n/a" if not np.isfinite(p) else f"{p:.3f}")
        out["verdict"] = c.verdict
        return out

    w = t["windows"].copy()
    windows = pd.DataFrame(
        {
            "dataset": w.dataset,
            "n": w.n,
            "horizon": w.horizon.astype(int),
            "tau_gen median": [
                f"{v:.0f} ({k})" if np.isfinite(v) else f"never ({k})"
                for v, k in zip(w.tau_gen_median, w.tau_gen_censored)
            ],
            "tau_mem median": [
                f"{v:.0f} ({k})" if np.isfinite(v) else f"never ({k})"
                for v, k in zip(w.tau_mem_median, w.tau_mem_censored)
            ],
            "window median": [
                f"{'≥ ' if k * 2 >= r else ''}{v:.0f} ({k})" if np.isfinite(v) else "n/a"
                for v, k, r in zip(w.window_median, w.window_censored, w.n_repeats)
            ],
            "tau_plateau median": w.tau_plateau_median.map(lambda v: f"{v:.0f}" if np.isfinite(v) else "n/a"),
            "plateau window median": [
                f"{'≥ ' if k * 2 >= r else ''}{v:.0f} ({k})" if np.isfinite(v) else "n/a"
                for v, k, r in zip(w.window_plateau_median, w.window_plateau_censored, w.n_repeats)
            ],
            "final memorized / null": [f"{m:.3f} / {q:.3f}" for m, q in zip(w.final_memorized, w.final_null)],
            "final D / D_fresh": w.final_energy_ratio.round(2),
        }
    )
    return {
        "scaling": scaling,
        "ordering": comparison(t["ordering"], ["dataset", "n"]),
        "windows": windows,
        "cells": comparison(t["cells"], ["factor", "hidden_size", "hidden_layers", "learning_rate", "batch_size"]),
    }


def markdown(frame: pd.DataFrame) -> str:
    """A frame as a GitHub Markdown table (pipes in cells escaped)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def summary_text(a: Answer) -> str:
    """Plain sentences from the numbers, one paragraph per question (the findings page quotes them)."""
    t = a.tables
    paras = []
    for r in t["scaling"][t["scaling"].time == "tau_mem"].itertuples():
        law = "inside" if r.bonnaire_linear_in_interval else "outside"
        off = (
            f"no repeat memorizes from n = {r.n_off:.0f} on"
            if np.isfinite(r.n_off)
            else "memorization is seen at every n"
        )
        fit = (
            f"alpha = {r.alpha:.2f} [{r.alpha_low:.2f}, {r.alpha_high:.2f}]; Bonnaire et al.'s alpha = 1 is {law} the interval"
            if np.isfinite(r.alpha)
            else "no fit (fewer than two sizes with a timed repeat)"
        )
        paras.append(f"Q1 {r.dataset}: {fit}, from {r.n_timed} timed repeats ({r.n_censored} censored); {off}.")
    o = t["ordering"]
    paras.append("Q1 ordering per n: " + "; ".join(f"{r.dataset} n={r.n}: {r.verdict}" for r in o.itertuples()) + ".")
    c = t["cells"]
    paras.append(
        f"Q2: verdicts of the model cells {_counts(c[c.factor == 'model'].verdict)}, of the training "
        f"cells {_counts(c[c.factor == 'training'].verdict)}: the ordering depends on {a.dependence}."
    )
    w = t["windows"]

    def medians(column: str) -> str:  # "moons n=76: 2783; ..." with "(lower bound)" where most repeats are censored
        return "; ".join(
            f"{r.dataset} n={r.n}: {getattr(r, column + '_median'):.0f}"
            + (" (lower bound)" if getattr(r, column + "_censored") * 2 >= r.n_repeats else "")
            for r in w.itertuples()
            if np.isfinite(getattr(r, column + "_median"))
        )

    paras.append(
        f"Q3 window tau_mem - tau_gen (median steps): {medians('window')}; "
        f"tau_mem - tau_plateau: {medians('window_plateau')}."
    )
    return "\n".join(paras)


def _counts(verdicts: pd.Series) -> str:
    return ", ".join(f"{v} {int(k)}" for v, k in verdicts.value_counts().items()) or "none"


def write(a: Answer, out_dir: Path | str, images: bool = True) -> list[Path]:
    """Every table as CSV, the readable tables as one Markdown file, the figures as HTML (and PNG/SVG with
    Chromium) under out_dir."""
    from ..views.export import export

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in a.tables.items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    md = out / "tables.md"
    md.write_text(
        "\n\n".join(f"### {k}\n\n{markdown(v)}" for k, v in readable(a).items())
        + f"\n\n{summary_text(a)}\n\nwall {a.wall_s:.0f} s (sweep {a.sweep_wall_s:.0f} s)\n"
    )
    written.append(md)
    written += export(a.figures(), out, "questions", title=describe(a.profile, a.reductions, a.params), images=images)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memnb.workflows.questions", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="laptop", help="paper (= full) | laptop | smoke")
    parser.add_argument("--runs-root", default=None, help="where runs live (default: $MEMNB_RUNS, else outputs/runs)")
    parser.add_argument("--out-dir", default=None, help="tables and figures (default: outputs/questions/<profile>)")
    parser.add_argument("--no-images", action="store_true", help="HTML only, no PNG/SVG")
    args = parser.parse_args(argv)
    try:
        profile = check_profile(args.profile)
    except ValueError as e:
        parser.error(str(e))
    params, reductions = apply_profile(FULL, profile)
    print(describe(profile, reductions, params), flush=True)
    a = answer(FULL, profile, args.runs_root, progress=True)
    out = Path(args.out_dir) if args.out_dir else project_root() / "outputs" / "questions" / profile
    for path in write(a, out, images=not args.no_images):
        print(path)
    print(summary_text(a))
    print(f"wall {a.wall_s:.0f} s (sweep {a.sweep_wall_s:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
