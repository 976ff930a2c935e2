"""Time scales of a run: when samples get good (τ_gen), when they start copying (τ_mem), and how τ_mem grows with n.

Pure functions on arrays and tidy frames (issue 17; Bonnaire et al. 2025, "Why diffusion models don't
memorize"). Randomness (the bootstrap) comes only from the `numpy.random.Generator` passed in.

- **τ_gen** (`tau_gen`): the first evaluated epoch at which the energy distance D between a repeat's
  samples and its held-out test points (memnb.analysis.quality, through
  `memnb.analysis.early_stopping.quality_by_epoch`) is below `factor` times the distance D_0 of as many
  fresh data draws to the same test points (a perfect generator; D_0 > 0 from finite samples alone).
- **τ_mem** (`tau_mem`): the first evaluated epoch at which the train-only memorized share (Bonnaire's
  d1/d2 < 1/3, `memnb.metric.criteria`'s ``train_only``, all groups together: the share of generated
  samples memorized) exceeds its null (fresh draws; stationary, so pooled over epochs as
  memnb.analysis.stats does) by `margin`, and by `z` binomial standard errors of a share of the
  n_generated samples: `stats.onset_epoch` (a first crossing; its z s.e. margin grows as n shrinks). The
  calibrated time is an interval: `tau_mem_interval`, memnb's one onset rule `stats.onset` (a fixed margin,
  Bonferroni-level significance), (low, high] per repeat.
- Both are converted to optimizer steps: epochs x `steps_per_epoch` = n_train // batch_size (memnb's
  trainer drops the last partial batch, memnb.models.train).
- A time that never comes within the horizon is NaN (*censored*: only known to be later than the last
  evaluated epoch); the fit leaves censored repeats out and says how many.

**Scaling** (`loglog_fit`, `bootstrap_exponent`): least squares of log τ_mem = a + α log n over every
timed repeat; the interval of α is a percentile bootstrap over repeats, stratified by n (each n keeps
its number of timed repeats). Biased (censored repeats dropped, n-dependent threshold, quantised onsets:
benchmarks/calibration_bench.py measures it); `scaling_table` puts the calibrated fit beside it
(`censored.fit_scaling` on the intervals, censored repeats kept). Bonnaire et al.'s law τ_mem ∝ n is α = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .censored import fit_scaling, intervals_from_epochs
from .stats import ONSET_MARGIN, ONSET_SIGNIFICANCE, onset, onset_epoch

DEPENDENCE = ("architecture", "training", "both", "neither")


# -- times on one curve -------------------------------------------------------------------------------
def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch: n_train // batch_size (the last partial batch is dropped)."""
    if n_train < batch_size or batch_size < 1:
        raise ValueError(f"batch_size = {batch_size!r} is invalid; allowed: 1 to n_train = {n_train}")
    return n_train // batch_size


def tau_gen(epochs, energy, reference, factor: float = 1.5) -> np.ndarray:
    """First evaluated epoch at which energy < factor * reference (NaN: never within the run).

    epochs: (E,) increasing; energy: (..., E) energy distance of the samples to held-out points;
    reference: (...,) or broadcast to energy, the same distance for fresh data draws; factor > 0.
    Returns (...,) float epochs. `stats.onset_epoch` with excess = factor * reference - energy, margin 0.
    """
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
        raise ValueError(f"factor = {factor!r} is invalid; allowed: a finite number > 0")
    energy = np.asarray(energy, np.float64)
    reference = np.asarray(reference, np.float64)
    if reference.ndim == energy.ndim - 1:
        reference = reference[..., None]
    return onset_epoch(epochs, factor * reference - energy, 0.0)


def tau_plateau(epochs, energy, tol: float = 0.1) -> np.ndarray:
    """First evaluated epoch at which energy < (1 + tol) * its lowest value over the run (NaN where all are NaN).

    A second, run-relative τ_gen for models that never come within a factor of fresh data's distance (the
    moons models: memnb's docs/applications.md): when the quality stops improving. energy: (..., E);
    tol >= 0. `stats.onset_epoch` with excess = (1 + tol) * min(energy) - energy, margin 0 (so tol = 0 finds
    no epoch: strictly below the minimum never happens).
    """
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol = {tol!r} is invalid; allowed: a finite number >= 0")
    energy = np.asarray(energy, np.float64)
    with np.errstate(invalid="ignore"):
        best = np.nanmin(np.where(np.isnan(energy).all(axis=-1, keepdims=True), np.inf, energy), axis=-1, keepdims=True)
    return onset_epoch(epochs, (1 + tol) * best - energy, 0.0)


def tau_mem(epochs, memorized, null, n_generated, margin: float = 0.05, z: float = 3.0) -> np.ndarray:
    """First evaluated epoch at which the memorized share exceeds its pooled null by `margin` and z s.e. (NaN: never).

    epochs: (E,); memorized, null: (..., E) shares of the n_generated samples (generated samples, and the
    fresh draws of the null); n_generated: (...,) or broadcast, samples per evaluation. The null is
    averaged over the E epochs (it is stationary); s.e. = sqrt(q (1 - q) / n_generated), q the pooled null.
    Returns (...,) float epochs (`stats.onset_epoch`).
    """
    memorized = np.asarray(memorized, np.float64)
    q = np.nanmean(np.asarray(null, np.float64), axis=-1, keepdims=True)
    n = np.asarray(n_generated, np.float64)
    if n.ndim == memorized.ndim - 1:
        n = n[..., None]
    se = np.sqrt(np.clip(q, 0, 1) * (1 - np.clip(q, 0, 1)) / n)
    return onset_epoch(epochs, memorized - q, margin, se, z)


def tau_mem_interval(
    epochs, memorized, null, n_generated, margin: float = ONSET_MARGIN, significance: float = ONSET_SIGNIFICANCE
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high): the interval (low, high] of epochs holding τ_mem by memnb's one onset rule (`stats.onset`).

    Same arrays as `tau_mem`; the event is the true memorized share passing null + margin, the same at every n.
    se of the excess at the margin: sqrt(p (1 - p) / n_generated + q (1 - q) / (n_generated E)), p = q + margin,
    q the null pooled over the E epochs (its own binomial error, E draws of n_generated). NaN low: left-censored;
    NaN high: right-censored after low (`censored.intervals_from_epochs` turns both into steps).
    """
    memorized = np.asarray(memorized, np.float64)
    q = np.clip(np.nanmean(np.asarray(null, np.float64), axis=-1, keepdims=True), 0, 1)
    n = np.asarray(n_generated, np.float64)
    if n.ndim == memorized.ndim - 1:
        n = n[..., None]
    p = np.clip(q + margin, 0, 1)
    se = np.sqrt(p * (1 - p) / n + q * (1 - q) / (n * memorized.shape[-1]))
    return onset(epochs, memorized - q, se, margin, significance)


# -- scaling with n ------------------------------------------------------------------------------------
def loglog_fit(n, tau) -> tuple[float, float]:
    """(a, alpha): least squares of log tau = a + alpha log n (natural logs) over the finite, positive pairs.

    n, tau: (K,) one pair per timed repeat. NaN, NaN when fewer than two distinct n remain.
    """
    x, y = np.asarray(n, np.float64), np.asarray(tau, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    if len(np.unique(lx)) < 2:
        return math.nan, math.nan
    dx = lx - lx.mean()
    alpha = float(np.sum(dx * (ly - ly.mean())) / np.sum(dx * dx))
    return float(ly.mean() - alpha * lx.mean()), alpha


def bootstrap_exponent(
    n, tau, rng: np.random.Generator, n_bootstrap: int = 2000, level: float = 0.95
) -> tuple[float, float, float, np.ndarray]:
    """(alpha, low, high, alphas (n_bootstrap,)): `loglog_fit`'s alpha and its percentile bootstrap interval.

    n, tau: (K,) one pair per repeat (NaN tau = censored, left out first). Resampling is stratified by n:
    for each distinct n in increasing order, its k timed repeats are drawn with replacement as
    ``rng.integers(0, k, size=(n_bootstrap, k))``; every resample is refitted. NaNs when fewer than two
    distinct n have a timed repeat.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng = {rng!r} is invalid; allowed: a numpy.random.Generator")
    x, y = np.asarray(n, np.float64), np.asarray(tau, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (y > 0)
    x, y = x[ok], y[ok]
    sizes = np.unique(x)
    if len(sizes) < 2:
        return math.nan, math.nan, math.nan, np.full(n_bootstrap, np.nan)
    lx_parts, ly_parts = [], []
    for s in sizes:
        ys = np.log(y[x == s])
        idx = rng.integers(0, len(ys), size=(n_bootstrap, len(ys)))
        lx_parts.append(np.full(idx.shape, np.log(s)))
        ly_parts.append(ys[idx])
    lx, ly = np.concatenate(lx_parts, axis=1), np.concatenate(ly_parts, axis=1)  # (B, K)
    dx = lx - lx.mean(axis=1, keepdims=True)
    alphas = np.sum(dx * (ly - ly.mean(axis=1, keepdims=True)), axis=1) / np.sum(dx * dx, axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(alphas, [tail, 100 - tail])
    return loglog_fit(x, y)[1], float(lo), float(hi), alphas


def no_memorization_above(n, censored) -> tuple[float, float]:
    """(n_off, n_last): n_off is the smallest n of the grid from which on (it and every larger n) τ_mem is
    censored in every repeat (NaN: memorization is seen at the largest n); n_last the largest n at which
    some repeat memorizes (NaN: none does).

    n: (K,) the n of each repeat; censored: (K,) bool, True where τ_mem never came within the horizon.
    """
    n, censored = np.asarray(n, np.float64), np.asarray(censored, bool)
    sizes = np.unique(n)
    all_censored = np.array([censored[n == s].all() for s in sizes])
    seen = sizes[~all_censored]
    n_last = float(seen.max()) if len(seen) else math.nan
    above = sizes[sizes > n_last] if len(seen) else sizes
    return (float(above.min()) if len(above) else math.nan), n_last


def generalization_window(tau_gen_steps, tau_mem_steps, horizon_steps) -> tuple[np.ndarray, np.ndarray]:
    """(window, censored): τ_mem - τ_gen per repeat, in steps; where τ_mem is censored (NaN) the window is the
    lower bound horizon - τ_gen and censored is True; NaN where τ_gen is NaN (never good samples)."""
    g = np.asarray(tau_gen_steps, np.float64)
    m = np.asarray(tau_mem_steps, np.float64)
    cens = np.isnan(m) & ~np.isnan(g)
    return np.where(cens, np.asarray(horizon_steps, np.float64) - g, m - g), cens


def dependence(model_verdicts, training_verdicts) -> str:
    """Whether the outlier ordering depends on the architecture, the training, both or neither.

    model_verdicts: the verdicts (holds | reversed | inconclusive) of the cells that vary the model with the
    training fixed; training_verdicts: those that vary the training. A factor "matters" when its cells do
    not all share one verdict.
    """
    m, t = len(set(model_verdicts)) > 1, len(set(training_verdicts)) > 1
    return DEPENDENCE[0] if m and not t else DEPENDENCE[1] if t and not m else DEPENDENCE[2] if m else DEPENDENCE[3]


# -- from stored runs ---------------------------------------------------------------------------------------
def memorized_curves(table: pd.DataFrame, criterion: str, threshold: float) -> pd.DataFrame:
    """Per repeat and epoch, all groups together: memorized, memorized_null, n_generated (a results table's rows)."""
    rows = table[(table.group == "all") & (table.criterion == criterion) & np.isclose(table.threshold, threshold)]
    if rows.empty:
        raise ValueError(f"no rows of group 'all' for criterion {criterion!r} at threshold {threshold}")
    cols = ["repeat", "epoch", "memorized", "memorized_null", "n_generated"]
    return rows[cols].sort_values(["repeat", "epoch"], ignore_index=True)


def repeat_times(
    curves: pd.DataFrame,
    quality: pd.DataFrame,
    steps: int,
    factor: float = 1.5,
    margin: float = 0.05,
    z: float = 3.0,
    plateau_tol: float = 0.1,
    significance: float = ONSET_SIGNIFICANCE,
) -> pd.DataFrame:
    """One row per repeat: tau_gen, tau_plateau and tau_mem in epochs and steps (NaN: censored), and the windows.

    curves: `memorized_curves` rows; quality: `quality_by_epoch` rows (repeat, epoch, energy,
    energy_reference) at the same epochs; steps: steps per epoch. Columns: repeat, tau_gen_epoch,
    tau_mem_epoch, tau_gen, tau_mem (steps), tau_gen_censored, tau_mem_censored, horizon (steps),
    window (steps; a lower bound where window_censored), tau_plateau (`tau_plateau`, steps), window_plateau
    (tau_mem - tau_plateau, same censoring), final_memorized, final_null, final_energy_ratio; and the intervals
    (low, high] in steps holding each time, for `censored.fit_scaling`: tau_mem_low, tau_mem_high by the one
    onset rule (`tau_mem_interval`: `margin`, `significance`; not the first crossing of tau_mem, whose z s.e.
    margin depends on n), tau_gen_low/high and tau_plateau_low/high (previous evaluation, first crossing]
    (their curves have no sampling noise to test); high = inf: right-censored.
    """
    mem = curves.pivot(index="repeat", columns="epoch", values="memorized")
    null = curves.pivot(index="repeat", columns="epoch", values="memorized_null")
    ngen = curves.groupby("repeat").n_generated.first().reindex(mem.index)
    energy = quality.pivot(index="repeat", columns="epoch", values="energy").reindex(
        index=mem.index, columns=mem.columns
    )
    ref = quality.groupby("repeat").energy_reference.first().reindex(mem.index)
    epochs = mem.columns.to_numpy(np.float64)
    t_mem = tau_mem(epochs, mem.to_numpy(), null.to_numpy(), ngen.to_numpy(), margin, z)
    t_gen = tau_gen(epochs, energy.to_numpy(), ref.to_numpy(), factor)
    t_plat = tau_plateau(epochs, energy.to_numpy(), plateau_tol)
    horizon = float(epochs[-1] * steps)
    intervals = dict(
        zip(
            ("tau_mem_low", "tau_mem_high"),
            intervals_from_epochs(
                *tau_mem_interval(epochs, mem.to_numpy(), null.to_numpy(), ngen.to_numpy(), margin, significance), steps
            ),
        )
    )
    for name, t in (("tau_gen", t_gen), ("tau_plateau", t_plat)):
        prev = np.where(np.isnan(t), epochs[-1], epochs[np.maximum(np.searchsorted(epochs, np.nan_to_num(t)) - 1, 0)])
        intervals[f"{name}_low"], intervals[f"{name}_high"] = intervals_from_epochs(prev, t, steps)
    window, wcens = generalization_window(t_gen * steps, t_mem * steps, horizon)
    wplat, pcens = generalization_window(t_plat * steps, t_mem * steps, horizon)
    return pd.DataFrame(
        {
            "repeat": mem.index.to_numpy(),
            "tau_gen_epoch": t_gen,
            "tau_mem_epoch": t_mem,
            "tau_gen": t_gen * steps,
            "tau_mem": t_mem * steps,
            "tau_gen_censored": np.isnan(t_gen),
            "tau_mem_censored": np.isnan(t_mem),
            "horizon": horizon,
            "window": window,
            "window_censored": wcens,
            "tau_plateau": t_plat * steps,
            "tau_plateau_censored": np.isnan(t_plat),
            "window_plateau": wplat,
            "window_plateau_censored": pcens,
            "final_memorized": mem.to_numpy()[:, -1],
            "final_null": null.to_numpy().mean(axis=1),
            "final_energy_ratio": energy.to_numpy()[:, -1] / ref.to_numpy(),
            **intervals,
        }
    )


def scaling_table(
    times: pd.DataFrame, rng: np.random.Generator, n_bootstrap: int = 2000, level: float = 0.95, time: str = "tau_mem"
) -> pd.DataFrame:
    """The log-log law of a time scale (`time`: tau_mem, or tau_gen) in n, per dataset: one row each.

    times: `repeat_times` rows with columns dataset and n (training-set size). Columns: dataset, time, a, alpha,
    alpha_low, alpha_high (least squares on first crossings, censored dropped: `bootstrap_exponent`, level;
    biased, issue 25), n_timed, n_censored, n_values (distinct n with a timed repeat), n_off and n_last
    (`no_memorization_above`), bonnaire_linear_in_interval_ls (α = 1 inside the least-squares interval); where
    times has the intervals ``{time}_low``, ``{time}_high``, the calibrated estimate (`censored.fit_scaling`,
    its profile interval at `level`): a_censored, alpha_censored, alpha_censored_low, alpha_censored_high,
    sigma_censored, n_right, n_uninformative, and bonnaire_linear_in_interval (α = 1 inside it; else the
    least-squares one).
    """
    rows = []
    for ds, t in times.groupby("dataset", sort=False, observed=True):
        cens = t[f"{time}_censored"].to_numpy(bool)
        a, _ = loglog_fit(t.n, t[time])
        alpha, lo, hi, _ = bootstrap_exponent(t.n.to_numpy(), t[time].to_numpy(), rng, n_bootstrap, level)
        n_off, n_last = no_memorization_above(t.n.to_numpy(), cens)
        ls_inside = bool(lo <= 1 <= hi) if not math.isnan(lo) else False
        fit = {}
        if f"{time}_low" in t:
            f = fit_scaling(t.n.to_numpy(np.float64), t[f"{time}_low"].to_numpy(), t[f"{time}_high"].to_numpy(), level)
            fit = {
                "a_censored": f["a"],
                "alpha_censored": f["alpha"],
                "alpha_censored_low": f["alpha_low"],
                "alpha_censored_high": f["alpha_high"],
                "sigma_censored": f["sigma"],
                "n_right": f["n_right"],
                "n_uninformative": f["n_uninformative"],
            }
        inside = (
            bool(fit["alpha_censored_low"] <= 1 <= fit["alpha_censored_high"])
            if fit and not math.isnan(fit["alpha_censored_low"])
            else (ls_inside if not fit else False)
        )
        rows.append(
            {
                "dataset": ds,
                "time": time,
                "a": a,
                "alpha": alpha,
                "alpha_low": lo,
                "alpha_high": hi,
                "n_timed": int((~cens).sum()),
                "n_censored": int(cens.sum()),
                "n_values": int(t.loc[~cens, "n"].nunique()),
                "n_off": n_off,
                "n_last": n_last,
                "bonnaire_linear_in_interval_ls": ls_inside,
                **fit,
                "bonnaire_linear_in_interval": inside,
            }
        )
    return pd.DataFrame(rows)
