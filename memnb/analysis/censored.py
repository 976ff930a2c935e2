"""Censored time scales: the law log τ = a + α log n fitted by maximum likelihood to onsets known only up to intervals.

Pure functions on arrays (issue 25). A repeat's onset is never seen exactly: it lies between two evaluated
steps (*interval-censored*, (low, high]); one that never comes within the run lies after its last informative
step (*right-censored*, high = inf); one already there at the first informative step lies before it
(*left-censored*, low = 0). The model is the log-normal accelerated-failure-time law

    log τ_i = a + α log n_i + σ ε_i,   ε_i ~ N(0, 1)   (one τ per repeat i of training-set size n_i),

whose likelihood is the probability of each repeat's interval (Klein & Moeschberger, "Survival analysis",
2003, eq. 3.5.1):

    L(a, α, σ) = Π_i [Φ((log high_i - μ_i) / σ) - Φ((log low_i - μ_i) / σ)],   μ_i = a + α log n_i,

with Φ(-inf) = 0, Φ(inf) = 1, and the density φ(z_i) / (σ τ_i) for an exact time (low = high). It is
maximised with scipy's optimiser over (a, α, log σ); the interval of α is the profile-likelihood one,
{α : 2 (ℓ_max - ℓ_p(α)) <= χ²_1(level)} (Wilks). Where the data cannot bound α (every size but one never
memorizes within the run), the interval runs to ±inf and says so. Dropping censored repeats and reading the
first evaluated step past a threshold as the onset (memnb.analysis.timescales' least-squares fit) biases α:
the calibration bench (benchmarks/calibration_bench.py, memnb.analysis.simulate) measures both.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize
from scipy.special import log_ndtr
from scipy.stats import chi2

ALPHA_BOUND = 10.0  # |α| beyond this is "not bounded by the data" (memorization times ∝ n^10 are off any grid)
LOG_SIGMA = (math.log(0.05), math.log(10.0))  # σ from 5 % to 10x: a floor, as σ -> 0 is the
# interval-censored likelihood's non-regular edge on coarse grids (every interval threaded by one line)


def _check(n, low, high) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, low, high = (np.asarray(v, np.float64) for v in (n, low, high))
    if not (n.ndim == 1 and n.shape == low.shape == high.shape):
        raise ValueError(f"n, low, high have shapes {n.shape}, {low.shape}, {high.shape}; allowed: one shape (K,)")
    if not np.all(np.isfinite(n) & (n > 0)):
        raise ValueError(f"n = {n[~(np.isfinite(n) & (n > 0))][:3]} is invalid; allowed: finite sizes > 0")
    bad = ~(np.isfinite(low) & (low >= 0) & (high >= low) & (high > 0) & ~np.isnan(high))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"interval {i} = ({low[i]}, {high[i]}] is invalid; allowed: 0 <= low <= high <= inf, high > 0")
    return n, low, high


def _terms(mu, sigma, log_lo, log_hi, exact) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K,) log P(log_lo < log τ <= log_hi) under N(mu, sigma²) (the log density of log τ where exact), and its
    derivatives in mu and in log sigma (for the optimiser's gradient)."""
    za, zb = (log_lo - mu) / sigma, (log_hi - mu) / sigma
    # log(Φ(zb) - Φ(za)) computed in the tail where both are small: upper tail when za > 0 (Φ(-za) - Φ(-zb))
    upper = za > 0
    big = np.where(upper, log_ndtr(-za), log_ndtr(zb))
    small = np.where(upper, log_ndtr(-zb), log_ndtr(za))
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        logp = big + np.log(-np.expm1(np.minimum(small - big, 0.0)))
        # dP/dmu = -(φ(zb) - φ(za)) / σ, dP/dlog σ = -(zb φ(zb) - za φ(za)); φ(±inf) = z φ(z) = 0
        ra = np.where(np.isfinite(za), np.exp(-0.5 * za**2 - half_log_2pi - logp), 0.0)
        rb = np.where(np.isfinite(zb), np.exp(-0.5 * zb**2 - half_log_2pi - logp), 0.0)
        g_mu = -(rb - ra) / sigma
        g_ls = -(np.where(np.isfinite(zb), zb, 0.0) * rb - np.where(np.isfinite(za), za, 0.0) * ra)
        # exact: the density of log τ (the Jacobian 1/τ is a constant of the data, left out: it moves no estimate)
        dens = -0.5 * za**2 - half_log_2pi - np.log(sigma)
    return (
        np.where(exact, dens, logp),
        np.where(exact, za / sigma, g_mu),
        np.where(exact, za**2 - 1, g_ls),
    )


def _log_prob(mu, sigma, log_lo, log_hi, exact) -> np.ndarray:
    return _terms(mu, sigma, log_lo, log_hi, exact)[0]


def loglik(a: float, alpha: float, sigma: float, n, low, high) -> float:
    """Log-likelihood of the log-normal law for onsets in (low, high] (steps; high = inf: right-censored).

    n, low, high: (K,) one interval per repeat (low = 0: left-censored; low = high: an exact time, its term the
    density of log τ). sigma > 0. See the module docstring for the formula.
    """
    n, low, high = _check(n, low, high)
    with np.errstate(divide="ignore"):
        log_lo, log_hi = np.log(low), np.log(high)
    return float(np.sum(_log_prob(a + alpha * np.log(n), sigma, log_lo, log_hi, low == high)))


def _start(x, log_lo, log_hi) -> tuple[float, float, float]:
    """Least squares on a point per interval (its log-midpoint; low for right-, high for left-censored)."""
    mid = np.where(
        np.isinf(log_hi), log_lo + math.log(2), np.where(np.isinf(log_lo), log_hi - math.log(2), (log_lo + log_hi) / 2)
    )
    if np.ptp(x) == 0:
        return float(mid.mean()), 0.0, 0.0
    alpha, a = np.polyfit(x, mid, 1)
    resid = mid - a - alpha * x
    return float(a), float(np.clip(alpha, -ALPHA_BOUND + 1, ALPHA_BOUND - 1)), float(np.log(max(resid.std(), 0.1)))


def _maximise(x, log_lo, log_hi, exact, start, alpha=None) -> tuple[float, np.ndarray]:
    """(max log-likelihood, (a, alpha, log sigma)) over all three, or over (a, log sigma) at a fixed alpha."""

    def nll(theta):
        a, al, ls = (theta[0], alpha, theta[1]) if alpha is not None else theta
        lp, g_mu, g_ls = _terms(a + al * x, math.exp(ls), log_lo, log_hi, exact)
        v = -np.sum(lp)
        if not np.isfinite(v):
            return 1e300, np.zeros(len(theta))
        grad = [-g_mu.sum(), -g_ls.sum()] if alpha is not None else [-g_mu.sum(), -(g_mu * x).sum(), -g_ls.sum()]
        return v, np.array(grad)

    bounds = [(None, None), LOG_SIGMA] if alpha is not None else [(None, None), (-ALPHA_BOUND, ALPHA_BOUND), LOG_SIGMA]
    x0 = [start[0], start[2]] if alpha is not None else list(start)
    best = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds, jac=True)
    if not best.success:  # a second opinion where the gradient-based search stalls (a flat, censored likelihood)
        r = optimize.minimize(lambda th: nll(th)[0], x0, method="Powell", bounds=bounds)
        best = r if r.fun < best.fun else best
    th = best.x if alpha is None else np.array([best.x[0], alpha, best.x[1]])
    return -float(best.fun), th


def fit_scaling(n, low, high, level: float = 0.95) -> dict:
    """Maximum-likelihood fit of log τ = a + α log n to interval-censored onsets, with α's profile interval.

    n, low, high: (K,) one repeat each, onsets in (low, high] in steps (high = inf: right-censored; low = 0:
    left-censored). level: of the profile-likelihood interval. Returns a dict: a, alpha, sigma, loglik,
    alpha_low, alpha_high (-inf / inf where the data do not bound α within ±ALPHA_BOUND), bounded (both
    ends finite), n_uninformative ((0, inf): left out), n_interval, n_right, n_left, n_sizes_seen (distinct n
    with a repeat not right-censored).
    NaNs where fewer than two distinct n or no repeat is seen (no law to fit).
    """
    if not (isinstance(level, float) and 0 < level < 1):
        raise ValueError(f"level = {level!r} is invalid; allowed: a float in (0, 1)")
    n, low, high = _check(n, low, high)
    none = (low == 0) & np.isinf(high)  # (0, inf): a repeat the onset rule could not place (its term is log 1)
    n, low, high = n[~none], low[~none], high[~none]
    right, left = np.isinf(high), (low == 0) & np.isfinite(high)
    out = {
        "n_uninformative": int(none.sum()),
        "n_interval": int((~right & ~left).sum()),
        "n_right": int(right.sum()),
        "n_left": int(left.sum()),
        "n_sizes_seen": int(len(np.unique(n[~right]))),
    }
    nan = dict.fromkeys(("a", "alpha", "sigma", "loglik", "alpha_low", "alpha_high"), math.nan)
    if len(np.unique(n)) < 2 or out["n_sizes_seen"] == 0:
        return {**nan, "bounded": False, **out}
    x = np.log(n)
    with np.errstate(divide="ignore"):
        log_lo, log_hi = np.log(low), np.log(high)
    exact = low == high
    start = _start(x, log_lo, log_hi)
    lmax, th = _maximise(x, log_lo, log_hi, exact, start)
    cut = lmax - chi2.ppf(level, 1) / 2

    def gap(al):  # > 0 inside the interval
        return _maximise(x, log_lo, log_hi, exact, th, alpha=al)[0] - cut

    ends = []
    for sign in (-1, 1):
        step, inner, end = 0.05, th[1], None
        while end is None:
            outer = float(np.clip(th[1] + sign * step, -ALPHA_BOUND, ALPHA_BOUND))
            if not np.isfinite(lmax) or lmax < -1e299:  # no parameter gives the data a positive probability
                raise ValueError(f"the intervals admit no log-normal law (log-likelihood {lmax}); check their ends")
            if gap(outer) < 0:
                end = optimize.brentq(gap, min(inner, outer), max(inner, outer), xtol=1e-4)
            elif abs(outer) >= ALPHA_BOUND:
                end = sign * math.inf
            inner, step = outer, step * 2
        ends.append(float(end))
    return {
        "a": float(th[0]),
        "alpha": float(th[1]),
        "sigma": float(math.exp(th[2])),
        "loglik": lmax,
        "alpha_low": ends[0],
        "alpha_high": ends[1],
        "bounded": bool(np.isfinite(ends).all()),
        **out,
    }


def intervals_from_epochs(low_epoch, high_epoch, steps_per_epoch) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) in steps from an onset rule's epochs (`stats.onset`): NaN low -> 0 (left-censored), NaN high ->
    inf (right-censored after low; (0, inf), no information, where low is NaN too: nothing was decided). An onset
    at epoch 0 (the untrained model called memorized: a false positive of the rule) is no information either.

    low_epoch, high_epoch, steps_per_epoch: (K,) or broadcast.
    """
    lo, hi = np.asarray(low_epoch, np.float64), np.asarray(high_epoch, np.float64)
    steps = np.asarray(steps_per_epoch, np.float64)
    none = np.isnan(hi) | (hi <= 0)
    return np.where(np.isnan(lo) | none & (hi <= 0), 0.0, lo * steps), np.where(none, math.inf, hi * steps)
