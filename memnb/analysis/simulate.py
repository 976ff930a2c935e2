"""Simulated studies with a known law τ = c n^α, to measure the time-scale estimators' bias and coverage (issue 25).

Pure functions; all randomness from the `numpy.random.Generator` passed in. One *study* is what
memnb.workflows.questions measures in part 1: at each training-set size n, `n_repeats` repeats, each with its
own onset τ_i (steps) drawn from the log-normal law log τ_i = log c + α log n + σ ε_i; its memorized share
(train-only, all groups: a share of the n_generated = n generated samples, as memnb's runs draw) follows

    p(t) = q_n + h s((t - τ_i) / (ramp τ_i))   (ramp: s(u) = clip(u, 0, 1); step: s(u) = 1[u >= 0]),

q_n the null share (fresh draws, the laptop run's moons values by default), h the plateau excess; at every
evaluated epoch of the run's grid (`eval_grid`: `ExperimentConfig.eval_epochs`' linear or log schedule, the
run trained for `horizon_steps` optimizer steps of n // batch_size per epoch) the observed share is
Binomial(n, p(t)) / n and the null's Binomial(n, q_n) / n. τ beyond the horizon is censored by the run itself.

Estimators (`estimate`, one study): ``least_squares`` (memnb's first: `timescales.tau_mem`, margin 0.05 and
3 s.e., censored repeats dropped, `loglog_fit` and the stratified `bootstrap_exponent`), ``censored_old_rule``
(the same first crossings read as intervals (previous evaluation, crossing] and the censored ones kept, fitted
by `censored.fit_scaling`: isolates the threshold's share of the bias) and ``censored`` (the one onset rule
`stats.onset` with its fixed margin, `censored.fit_scaling`). `calibrate` runs many studies of one setting
and `coverage_table` summarises bias and coverage of the 95 % intervals.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from .censored import fit_scaling, intervals_from_epochs
from .timescales import bootstrap_exponent, loglog_fit, steps_per_epoch, tau_mem, tau_mem_interval

SHAPES = ("step", "ramp")
GRIDS = ("linear", "log")
ESTIMATORS = ("least_squares", "censored_old_rule", "censored")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One simulated design. Defaults: the laptop profile's part 1 (moons, 6 repeats, n = 76 to 614, 20,000
    steps, batch 32, 16 log-spaced evaluations), its null shares per n, onsets of median `tau_ref` steps at the
    smallest n, repeat-to-repeat scatter σ = `sigma` in log τ, a plateau `height` above the null."""

    alpha: float = 1.0
    shape: str = "ramp"
    grid: str = "log"
    sizes: tuple[int, ...] = (76, 154, 308, 614)
    null: tuple[float, ...] = (0.219, 0.135, 0.115, 0.112)  # the laptop run's moons null shares (docs/questions.md)
    n_repeats: int = 6
    tau_ref: float = 3000.0  # median onset (steps) at sizes[0]: c = tau_ref / sizes[0]**alpha
    sigma: float = 0.25
    height: float = 0.4
    ramp: float = 0.2  # ramp length as a share of τ
    horizon_steps: int = 20_000
    batch_size: int = 32
    n_evals: int = 16  # grid "log"
    eval_every: int = 25  # grid "linear" (epochs)

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"shape = {self.shape!r} is invalid; allowed: {' | '.join(SHAPES)}")
        if self.grid not in GRIDS:
            raise ValueError(f"grid = {self.grid!r} is invalid; allowed: {' | '.join(GRIDS)}")
        if len(self.null) != len(self.sizes):
            raise ValueError(f"null = {self.null!r} is invalid; allowed: one share per size of {self.sizes}")
        if not (0 < self.height and max(self.null) + self.height <= 1):
            raise ValueError(f"height = {self.height!r} is invalid; allowed: > 0 with null + height <= 1")


def eval_grid(epochs: int, schedule: str, n_evals: int | None = None, eval_every: int | None = None) -> np.ndarray:
    """(E,) evaluated epochs of a run of `epochs` epochs, as `ExperimentConfig.eval_epochs` lists them: 0, every
    `eval_every` and the end ("linear"), or 0, round(epochs^(i / (n_evals - 1))) for i < n_evals and the end
    ("log"), merged."""
    if schedule == "log":
        ep = {round(epochs ** (i / (n_evals - 1))) for i in range(n_evals)} if n_evals > 1 else {epochs}
        return np.array(sorted({0, *ep, epochs}), np.float64)
    return np.array(sorted({*range(0, epochs, eval_every), epochs}), np.float64)


def true_share(steps, tau, null: float, height: float, shape: str, ramp: float = 0.2) -> np.ndarray:
    """(K, E) expected memorized share at evaluated steps (E,) of repeats with onsets tau (K,) (see module)."""
    t, tau = np.asarray(steps, np.float64)[None, :], np.asarray(tau, np.float64)[:, None]
    u = (t - tau) / (ramp * tau) if shape == "ramp" else np.where(t >= tau, 1.0, -1.0)
    return null + height * np.clip(u, 0.0, 1.0)


def simulate_study(s: Setting, rng: np.random.Generator) -> list[dict]:
    """One study: per size a dict n, steps_per_epoch, epochs (E,), tau (R,) true onsets in steps, memorized and
    null (R, E) observed shares of n samples each."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng = {rng!r} is invalid; allowed: a numpy.random.Generator")
    out = []
    log_c = math.log(s.tau_ref) - s.alpha * math.log(s.sizes[0])
    for n, q in zip(s.sizes, s.null):
        spe = steps_per_epoch(n, s.batch_size)
        epochs = eval_grid(math.ceil(s.horizon_steps / spe), s.grid, s.n_evals, s.eval_every)
        tau = np.exp(log_c + s.alpha * math.log(n) + s.sigma * rng.standard_normal(s.n_repeats))
        p = true_share(epochs * spe, tau, q, s.height, s.shape, s.ramp)
        mem = rng.binomial(n, p) / n
        null = rng.binomial(n, q, size=p.shape) / n
        out.append({"n": n, "steps_per_epoch": spe, "epochs": epochs, "tau": tau, "memorized": mem, "null": null})
    return out


def _previous(epochs: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The evaluated epoch before each `at` (0 where `at` is the first; NaN stays NaN)."""
    i = np.searchsorted(epochs, np.nan_to_num(at, nan=epochs[-1]))
    return np.where(np.isnan(at), np.nan, epochs[np.maximum(i - 1, 0)])


def estimate(study: list[dict], rng: np.random.Generator, n_bootstrap: int = 1000, level: float = 0.95) -> dict:
    """{estimator: (alpha, low, high)} of one study for every estimator of `ESTIMATORS` (see module)."""
    n_all, ls_tau, lo_old, hi_old, lo_new, hi_new = [], [], [], [], [], []
    for d in study:
        e, spe, n = d["epochs"], d["steps_per_epoch"], d["n"]
        first = tau_mem(e, d["memorized"], d["null"], n, 0.05, 3.0)  # memnb's first rule (margin 0.05, 3 s.e.)
        low, high = tau_mem_interval(e, d["memorized"], d["null"], n)
        n_all.append(np.full(len(first), n))
        ls_tau.append(first * spe)
        # old rule as intervals: (previous evaluation, crossing]; never crossed: after the last evaluation
        lo, hi = intervals_from_epochs(np.where(np.isnan(first), e[-1], _previous(e, first)), first, spe)
        lo_old.append(lo)
        hi_old.append(hi)
        lo, hi = intervals_from_epochs(low, high, spe)
        lo_new.append(lo)
        hi_new.append(hi)
    n_all, ls_tau = np.concatenate(n_all), np.concatenate(ls_tau)
    alpha, lo, hi, _ = bootstrap_exponent(n_all, ls_tau, rng, n_bootstrap, level)
    out = {"least_squares": (loglog_fit(n_all, ls_tau)[1] if math.isfinite(alpha) else math.nan, lo, hi)}
    for name, (l_, h_) in {"censored_old_rule": (lo_old, hi_old), "censored": (lo_new, hi_new)}.items():
        f = fit_scaling(n_all, np.concatenate(l_), np.concatenate(h_), level)
        out[name] = (f["alpha"], f["alpha_low"], f["alpha_high"])
    return out


def calibrate(s: Setting, n_studies: int, rng: np.random.Generator, n_bootstrap: int = 1000) -> pd.DataFrame:
    """One row per study and estimator: study, estimator, alpha (estimate), low, high, covered (low <= true
    alpha <= high), plus the setting's alpha, shape and grid."""
    rows = []
    for k in range(n_studies):
        for name, (a, lo, hi) in estimate(simulate_study(s, rng), rng, n_bootstrap).items():
            rows.append({"study": k, "estimator": name, "alpha_hat": a, "low": lo, "high": hi})
    t = pd.DataFrame(rows)
    t["covered"] = (t.low <= s.alpha) & (s.alpha <= t.high)  # NaN interval: not covered
    return t.assign(alpha=s.alpha, shape=s.shape, grid=s.grid)


def coverage_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per setting (alpha, shape, grid) and estimator: n_studies, bias (mean alpha_hat - alpha, over the finite
    estimates), median_bias, mean_alpha_hat, coverage (share of studies whose interval holds the true alpha),
    median_width (finite intervals), unbounded (share of studies with an infinite or NaN end)."""
    out = []
    for (alpha, shape, grid, est), t in rows.groupby(["alpha", "shape", "grid", "estimator"], sort=False):
        fin = t.alpha_hat[np.isfinite(t.alpha_hat)]
        width = (t.high - t.low)[np.isfinite(t.high - t.low)]
        out.append(
            {
                "alpha": alpha,
                "shape": shape,
                "grid": grid,
                "estimator": est,
                "n_studies": len(t),
                "bias": float(fin.mean() - alpha) if len(fin) else math.nan,
                "median_bias": float(fin.median() - alpha) if len(fin) else math.nan,
                "mean_alpha_hat": float(fin.mean()) if len(fin) else math.nan,
                "coverage": float(t.covered.mean()),
                "median_width": float(width.median()) if len(width) else math.nan,
                "unbounded": float((~np.isfinite(t.high - t.low)).mean()),
            }
        )
    return pd.DataFrame(out)
