"""How many samples the exact test needs: the share's binomial interval and a one-sided exact binomial power planner.

A share in memnb's table (``memorized``, ``memorized_null``) is a count k of memorized samples among n generated
(or null) points: k ~ Binomial(n, p). Drawing fewer samples than the training set (``n_generate`` below n_train)
makes generation proportionally cheaper and the share noisier; these pure functions say by how much.

- `binomial_interval(k, n)`: the Wilson score interval (Wilson 1927) or the Clopper-Pearson interval (Clopper &
  Pearson 1934; exact, conservative) of p; `share_interval(share, n)` the same from a share.
- `exact_power(n, p0, p1)`: the power of the one-sided exact binomial test of H0: p = p0 against p = p1 > p0 at
  level alpha: reject when K >= c(n), c(n) the smallest c with P(K >= c | p0) <= alpha (`critical_count`).
- `samples_needed(p0, delta)`: the smallest n whose exact power for p1 = p0 + delta reaches `power`;
  `detectable_excess(n, p0)`: the smallest delta that n samples detect at that power.

The null rate p0 is taken as known (a one-sample test). memnb's null is itself estimated from n_null fresh draws per
epoch, pooled over the evaluated epochs (memnb.analysis.stats): with few epochs it adds its own binomial variance.
The exact test's power is a sawtooth in n (c(n) is an integer), so an n slightly above `samples_needed` can have a
little less power than the target; `exact_power` says by how much.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from ..core.validate import check_int, check_real, fail

INTERVALS = ("wilson", "clopper_pearson")

__all__ = [
    "INTERVALS",
    "binomial_interval",
    "share_interval",
    "critical_count",
    "exact_power",
    "samples_needed",
    "detectable_excess",
]


def _counts(k, n) -> tuple[np.ndarray, np.ndarray]:
    k, n = np.broadcast_arrays(np.asarray(k), np.asarray(n))
    if not (np.issubdtype(k.dtype, np.integer) and np.issubdtype(n.dtype, np.integer)):
        fail("k, n", f"{k.dtype}, {n.dtype}", "integer counts (k memorized of n samples)")
    if k.size and (n.min() < 1 or k.min() < 0 or (k > n).any()):
        fail("k, n", f"k in [{k.min()}, {k.max()}], n in [{n.min()}, {n.max()}]", "integers with 0 <= k <= n, n >= 1")
    return k.astype(np.float64), n.astype(np.float64)


def binomial_interval(k, n, confidence: float = 0.95, method: str = "wilson") -> tuple[np.ndarray, np.ndarray]:
    """Two-sided interval (lo, hi) for p from k successes of n trials (arrays broadcast; float64 shares in [0, 1]).

    wilson: (k + z^2/2) / (n + z^2) -+ z / (n + z^2) sqrt(k (n - k) / n + z^2 / 4), z = Phi^-1(1 - a/2), a = 1 -
    confidence (the score test inverted; no continuity correction). clopper_pearson: lo = B^-1(a/2; k, n - k + 1),
    hi = B^-1(1 - a/2; k + 1, n - k), with lo = 0 at k = 0 and hi = 1 at k = n (coverage >= confidence).
    """
    conf = check_real("confidence", confidence, 0.0, 1.0, strict=True)
    if conf >= 1.0:
        fail("confidence", confidence, "a number > 0 and < 1")
    if method not in INTERVALS:
        fail("method", method, " | ".join(INTERVALS))
    k, n = _counts(k, n)
    a = 1.0 - conf
    if method == "wilson":
        z = special.ndtri(1.0 - a / 2)
        centre = (k + z * z / 2) / (n + z * z)
        half = z / (n + z * z) * np.sqrt(k * (n - k) / n + z * z / 4)
        # at k = 0 and k = n the ends are 0 and 1 exactly (the formula gives them up to rounding)
        return np.where(k > 0, centre - half, 0.0), np.where(k < n, centre + half, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, special.betaincinv(k, n - k + 1, a / 2), 0.0)
        hi = np.where(k < n, special.betaincinv(k + 1, n - k, 1.0 - a / 2), 1.0)
    return lo, hi


def share_interval(share, n, confidence: float = 0.95, method: str = "wilson") -> tuple[np.ndarray, np.ndarray]:
    """`binomial_interval` of a share (memorized samples / n, e.g. the table's ``memorized`` with ``n_generated``):
    k = round(share n)."""
    share = np.asarray(share, dtype=np.float64)
    n = np.asarray(n)
    if share.size and not (np.isfinite(share).all() and share.min() >= 0 and share.max() <= 1):
        fail("share", f"values in [{np.nanmin(share)}, {np.nanmax(share)}]", "shares in [0, 1]")
    return binomial_interval(np.rint(share * n).astype(np.int64), n.astype(np.int64), confidence, method)


def _check_rates(p0: float, alpha: float) -> tuple[float, float]:
    p0 = check_real("p0", p0, 0.0, 1.0, strict=True)
    if p0 >= 1.0:
        fail("p0", p0, "a null rate > 0 and < 1")
    alpha = check_real("alpha", alpha, 0.0, 0.5, strict=True)
    return p0, alpha


def critical_count(n, p0: float, alpha: float = 0.05) -> np.ndarray:
    """(same shape as n) int64: the smallest c with P(K >= c | n, p0) <= alpha, K ~ Binomial(n, p0); n + 1 when even
    K = n is not that rare (the test never rejects). n: integers >= 1."""
    p0, alpha = _check_rates(p0, alpha)
    n = np.asarray(n)
    if not np.issubdtype(n.dtype, np.integer) or (n.size and n.min() < 1):
        fail("n", n if n.size < 5 else f"an array in [{n.min()}, {n.max()}]", "integers >= 1")
    # isf(alpha) = the smallest k with P(K > k) <= alpha, so c = k + 1; then step c to be exact where rounding moved it
    c = np.minimum(stats.binom.isf(alpha, n, p0), n).astype(np.int64) + 1
    for _ in range(64):
        down = (c > 0) & (stats.binom.sf(c - 2, n, p0) <= alpha)  # c - 1 rejects at alpha too
        up = stats.binom.sf(c - 1, n, p0) > alpha  # c does not
        if not (down.any() or up.any()):
            break
        c = c - down + up
    return c


def exact_power(n, p0: float, p1: float, alpha: float = 0.05) -> np.ndarray:
    """P(K >= critical_count(n, p0, alpha) | K ~ Binomial(n, p1)): the one-sided exact test's power. Float64, n's shape."""
    p1 = check_real("p1", p1, 0.0, 1.0)
    c = critical_count(n, p0, alpha)
    return stats.binom.sf(c - 1, np.asarray(n), p1)


def samples_needed(p0: float, delta: float, power: float = 0.8, alpha: float = 0.05, n_max: int = 10**8) -> int:
    """The smallest n at which the one-sided exact binomial test at level alpha detects a rate p0 + delta with
    probability >= power (H0: p = p0). ValueError past n_max.

    Scans n upwards from 1 in blocks that start at the normal approximation's size
    ((z_a sqrt(p0 q0) + z_b sqrt(p1 q1)) / delta)^2, so the answer is the exact smallest n, not the approximation.
    """
    p0, alpha = _check_rates(p0, alpha)
    delta = check_real("delta", delta, 0.0, 1.0 - p0, strict=True)
    power = check_real("power", power, alpha, 1.0, strict=True)
    if power >= 1.0:
        fail("power", power, f"a number > alpha = {alpha} and < 1")
    n_max = check_int("n_max", n_max, 1)
    p1 = p0 + delta
    za, zb = special.ndtri(1 - alpha), special.ndtri(power)
    approx = ((za * math.sqrt(p0 * (1 - p0)) + zb * math.sqrt(p1 * (1 - p1))) / delta) ** 2
    lo, hi = 1, min(n_max, max(64, int(2 * approx) + 64))
    while True:
        n = np.arange(lo, hi + 1, dtype=np.int64)
        hit = np.flatnonzero(exact_power(n, p0, p1, alpha) >= power)
        if hit.size:
            return int(n[hit[0]])
        if hi >= n_max:
            fail("n_max", n_max, f"more samples: p0 = {p0}, delta = {delta} needs more than {n_max} at power {power}")
        lo, hi = hi + 1, min(n_max, 2 * hi)


def detectable_excess(n: int, p0: float, power: float = 0.8, alpha: float = 0.05, tol: float = 1e-9) -> float:
    """The smallest delta (to `tol`) with exact_power(n, p0, p0 + delta) >= power: the excess n samples detect.
    Power rises with p1 at a fixed critical count, so this bisects; 1 - p0 when not even p1 = 1 reaches it."""
    n = check_int("n", n, 1)
    p0, alpha = _check_rates(p0, alpha)
    power = check_real("power", power, alpha, 1.0, strict=True)
    c = int(critical_count(np.int64(n), p0, alpha))
    if c > n:
        return 1.0 - p0
    lo, hi = p0, 1.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if stats.binom.sf(c - 1, n, mid) >= power else (mid, hi)
    return hi - p0
