"""Statistics on stored results: when each group starts being memorized, with intervals and paired tests.

Pure functions on arrays and tidy frames; nothing here trains or searches. Here: signals, their
null-corrected excess and the timing of its rise. The intervals and tests over repeats are
memnb.analysis.inference (seeded, never global random state), the per-training-point copies
memnb.analysis.copies; both are importable from here too.

**Signals.** A *signal frame* has columns ``repeat``, ``epoch``, ``group``, ``signal``, ``null``:
for each repeat, evaluated epoch and group, a measure that grows with memorization, and the
same measure for fresh draws from the data distribution (its chance level). The *excess*
``signal - null`` is the null-corrected rate. `signal_frame` makes one from the results table
(``copied``, the share of a group's training points copied, or ``memorized`` divided by the
group's share of the training set: per-point rates, comparable between groups of any size;
or ``conditional``, the share of the samples that land next to the group, i.e. whose nearest
training point is in it, that are memorized: unlike the other two it does not fall when the
model simply rarely samples a region, e.g. an outlier cluster it has not learned) or
from Meehan et al.'s Z_U (as the effect size ``0.5 - U/(mn)``, which unlike Z_U does not grow with
the cell's size: a fixed margin on Z_U would flag the 20000-point inlier cell long before the
400-point outlier cell for the same shift).

**Pooled null.** The null draws are fresh draws from the data-generating process, compared with
the repeat's fixed training and test sets: their rates have the same distribution at every epoch.
With ``pool_null=True`` (the default) each repeat's and group's null is therefore the mean over
all evaluated epochs, which removes most of the null's sampling noise from the excess (a group
of 40 points has a per-epoch null that moves by ~0.1 from draw to draw).

**Noise.** A first crossing is biased by noise: a group of 20 points has a per-point rate that
moves by ~0.1 between evaluations, so it "crosses" a margin of 0.05 early by chance alone, while
20000 inliers do not. With ``z > 0`` a crossing counts only where the excess is also ``z``
standard errors above 0 (`excess_frame`'s ``se``: binomial, from the group's or cell's size; for
Z_U its own null sd). That removes chance crossings but makes small groups need a larger excess,
i.e. biases them towards *later* times; compare z = 0 and z > 0 before trusting a difference.

**Timing.** Per repeat and group: `onset_epoch`, the first evaluated epoch at which the excess
exceeds ``margin``; `half_level_epoch`, the first evaluated epoch at which the excess reaches half
of its final value (undefined when the final excess is not above ``margin``: the group was never
memorized). Undefined times are *censored*: `timing_table` fills them with one evaluation step
after the last evaluated epoch. Filling is conservative for the paired comparison: if only the
outliers are censored, their true time is later still and the true difference larger; if only
the other group is, the true difference is more negative; both censored gives 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.vocabulary import GROUPS, display_groups
from ..core.vocabulary import SIGNAL_VALUES as VALUES

# The statistics as one namespace: the intervals and tests over repeats (memnb.analysis.inference) and the
# per-training-point copies (memnb.analysis.copies) live in their own modules and are re-exported here.
from .copies import copy_matrix, first_copies, first_copy_epochs  # noqa: F401
from .inference import bootstrap_ci, cohens_dz, paired_permutation_test, rank_biserial  # noqa: F401

TIMED_GROUPS = GROUPS  # memnb's groups; a monitored run's own labels are timed too (every group but "all")
TIMINGS = ("onset", "half")


# -- timing of one curve ------------------------------------------------------------------------
def onset_epoch(epochs, excess, margin, se=0.0, z: float = 0.0, patience: int = 1) -> np.ndarray:
    """First evaluated epoch at which the excess over the null exceeds `margin` (NaN if never).

    The first-crossing rule: the figures' "first epoch above null" (memnb.analysis.curves) and the
    early-stopping callback (a streaming form, tested equal) use it. memnb's one onset rule, with a stated
    significance and a margin that does not grow as n shrinks, is `onset` (issue 25).
    epochs: (E,) increasing evaluated epochs; excess: (..., E) signal minus null, in the signal's
    units; margin: the same units (a number, or broadcast to excess). se (broadcast to excess): the
    excess's standard error under the null; with z > 0 a crossing counts only where also
    excess > z * se, so that a small group's noise does not pass for an early onset. patience: the
    crossing must hold at that many consecutive evaluations; the epoch returned is the last of them
    (when a callback would stop). Returns (...,) float epochs.
    """
    epochs = np.asarray(epochs, np.float64)
    excess = np.asarray(excess, np.float64)
    above = (excess > margin) & (excess > z * np.asarray(se, np.float64))  # NaN compares False: never counts
    if patience > 1:
        idx = np.arange(above.shape[-1])
        last_below = np.maximum.accumulate(np.where(above, -1, idx), axis=-1)  # latest evaluation not above
        above = idx - last_below >= patience
    first = np.argmax(above, axis=-1)
    return np.where(above.any(axis=-1), epochs[first], np.nan)


ONSET_SIGNIFICANCE = 0.05  # the one onset rule's level per curve (one-sided, Bonferroni over its evaluations: `onset`)
ONSET_MARGIN = 0.05  # its excess over the null, in the signal's units (a share: 5 points)


def onset(epochs, excess, se, margin=ONSET_MARGIN, significance: float = ONSET_SIGNIFICANCE):
    """(low, high): the one onset rule of memnb, an interval for the epoch at which the excess passes `margin`.

    The event timed is the same at every n (the true excess over the null passes a fixed `margin`); the noise
    only widens its interval, it does not move it (issue 25: a margin of z s.e. grows as n shrinks and delays
    small-n onsets). Per evaluation e, a one-sided test with z = Phi^-1(1 - significance / E) (Bonferroni over
    the curve's E evaluations: a curve that stays at its null is called memorized at some epoch with
    probability at most `significance`; 3.0 at 0.05 and E = 17):
      high = first evaluated epoch with excess[e] - margin >  z * se[e]   (significantly above the margin);
      low  = last evaluated epoch before high with excess[e] <= margin              (not above the margin).
    The onset lies in (low, high]: the noise makes high later where samples are few, and low, a point estimate
    below the margin, can only fall earlier for it, so the interval widens instead of moving (the calibration
    bench, memnb.analysis.simulate, measured a "significantly below" low end: it left small-n onsets without a
    lower bound and biased α up by 0.16-0.32). high NaN: never significantly above within the run
    (right-censored after low: "not memorized"; "not enough samples to tell" where the excess is above the
    margin at the end but not significantly). low NaN: above the margin from the first evaluation (left-censored).
    Curves are taken as non-decreasing in truth; a later dip below does not undo an onset.

    epochs: (E,) increasing; excess: (..., E) signal minus its (pooled) null; se: broadcast to excess, the
    excess's standard error at the margin (a share p of n samples: sqrt(p (1 - p) / n) at p = null + margin;
    NaN never passes); margin: number or broadcast (>= 0); significance in (0, 0.5). Returns two (...,)
    float arrays of epochs. `onset_epoch` (the first crossing of margin and z s.e.) stays for its callers.
    """
    from scipy.special import ndtri

    if not (isinstance(significance, (int, float)) and 0 < significance < 0.5):
        raise ValueError(f"significance = {significance!r} is invalid; allowed: a level in (0, 0.5)")
    epochs = np.asarray(epochs, np.float64)
    excess = np.asarray(excess, np.float64)
    if epochs.ndim != 1 or excess.shape[-1:] != epochs.shape:
        raise ValueError(f"excess has shape {excess.shape}; allowed: (..., E) with E = len(epochs) = {len(epochs)}")
    z = float(ndtri(1 - significance / excess.shape[-1]))
    dev = excess - np.asarray(margin, np.float64)
    se = np.broadcast_to(np.asarray(se, np.float64), excess.shape)
    above, below = dev > z * se, dev <= 0  # NaN compares False: an unknown point decides nothing
    idx = np.arange(excess.shape[-1])
    has_high = above.any(axis=-1)
    first = np.where(has_high, np.argmax(above, axis=-1), excess.shape[-1])
    before = below & (idx < first[..., None])
    last = np.max(np.where(before, idx, -1), axis=-1)
    high = np.where(has_high, epochs[np.minimum(first, len(epochs) - 1)], np.nan)
    low = np.where(last >= 0, epochs[np.maximum(last, 0)], np.nan)
    return low, high


def half_level_epoch(epochs, excess, margin: float, se=0.0, z: float = 0.0) -> np.ndarray:
    """First evaluated epoch at which the excess reaches half of its final value (the last epoch's).

    Same shapes and `se`, `z` as `onset_epoch`. NaN where the final excess is not above `margin`
    and z * se (never memorized, so "half of it" means nothing) or is undefined; with z > 0 the
    crossing itself must also be above z * se.
    """
    epochs = np.asarray(epochs, np.float64)
    excess = np.asarray(excess, np.float64)
    floor = z * np.broadcast_to(np.asarray(se, np.float64), excess.shape)
    final = excess[..., -1:]
    reached = (excess >= 0.5 * final) & (excess > floor)
    first = np.argmax(reached, axis=-1)
    ok = (final[..., 0] > margin) & (final[..., 0] > floor[..., -1]) & reached.any(axis=-1)
    return np.where(ok, epochs[first], np.nan)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): with the m finite p sorted, p_(1) <= ... <= p_(m),
    adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)); rejecting adj < alpha controls the family-wise error
    at alpha. pvalues: (m,) (NaN: not a test, left out of m and kept NaN). Returns (m,) in the input order."""
    p = np.asarray(pvalues, np.float64)
    if p.ndim != 1 or np.any(p[np.isfinite(p)] < 0) or np.any(p[np.isfinite(p)] > 1):
        raise ValueError(f"pvalues = {p!r} is invalid; allowed: a 1-d array of p-values in [0, 1] (NaN: no test)")
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def censor(times, censor_at: float) -> tuple[np.ndarray, np.ndarray]:
    """(times with NaN replaced by `censor_at`, (same shape) bool mask of the censored entries)."""
    times = np.asarray(times, np.float64)
    missing = np.isnan(times)
    return np.where(missing, censor_at, times), missing


# -- from stored results to signals ---------------------------------------------------------------
def signal_frame(
    table: pd.DataFrame, criterion: str, threshold: float, value: str = "copied", cells: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Signal frame (repeat, epoch, group, signal, null) of one criterion and threshold of a results table.

    table: `Results.table()` or `Results.rates_at(...)` rows. value ``copied``: the share of the
    group's training points copied by a memorized sample; ``memorized``: the share of the
    generated set memorized and attributed to the group, divided by the group's share of the
    training set (n_group_points / n_train), so that a group of 400 points and one of 20000 are on
    the same per-point scale; ``conditional``: the memorized share divided by the share of samples
    whose nearest training point is in the group (NaN where none is), which needs `cells`: rows
    repeat, epoch, group, n_generated, n_null of `Results.zu()` (samples per group's cell).
    Every group but ``all`` (memnb's inlier, outlier, duplicate, or a monitored run's own labels).
    """
    if value not in VALUES:
        raise ValueError(f"value {value!r} is unknown; allowed: {' | '.join(VALUES)}")
    t = table[(table.criterion == criterion) & np.isclose(table.threshold, threshold) & (table.group != "all")]
    if t.empty:
        raise ValueError(f"no rows for criterion {criterion!r} at threshold {threshold}")
    t = t[t.n_group_points > 0]
    n_points = t.n_group_points.to_numpy(np.float64)
    scale = np.ones(len(t))
    if value == "copied":
        sig, null, n = t.copied, t.copied_null, n_points
    elif value == "conditional":
        if cells is None:
            raise ValueError("value 'conditional' needs the samples per cell (cells=Results.zu())")
        n = t.merge(
            cells[["repeat", "epoch", "group", "n_generated", "n_null"]],
            how="left",
            on=["repeat", "epoch", "group"],
            suffixes=("", "_cell"),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            sig = n.memorized.to_numpy() * n.n_generated.to_numpy() / n.n_generated_cell.to_numpy()
            null = n.memorized_null.to_numpy() * n.n_generated.to_numpy() / n.n_null.to_numpy()
        sig, null = np.where(np.isfinite(sig), sig, np.nan), np.where(np.isfinite(null), null, np.nan)
        n = n.n_generated_cell.to_numpy(np.float64)  # the samples this share is of
    else:
        n_train = table[table.group == "all"].groupby("repeat").n_group_points.first().reindex(t.repeat).to_numpy()
        share = t.n_group_points.to_numpy() / n_train
        sig, null = t.memorized / share, t.memorized_null / share
        n, scale = t.n_generated.to_numpy(np.float64), 1 / share  # a share of all samples, rescaled
    return pd.DataFrame(
        {
            "repeat": t.repeat.to_numpy(),
            "epoch": t.epoch.to_numpy(),
            "group": t.group.to_numpy(),
            "signal": np.asarray(sig, np.float64),
            "null": np.asarray(null, np.float64),
            "n": n,
            "scale": scale,
        }
    ).sort_values(["repeat", "group", "epoch"], ignore_index=True)


def zu_effect(z_u, n_generated, n_test):
    """U / (mn) - 1/2 from Z_U and the two sample sizes: Meehan et al.'s Z_U as a size-free effect.

    z_u, n_generated (m), n_test (n): arrays of one shape. U / (mn) is the probability that a
    generated point lies farther from the training set than a test point (0.5: alike; below:
    copying). Inverts Z_U = (U - mn/2) / sqrt(mn(m + n + 1)/12).
    """
    z, m, n = (np.asarray(a, np.float64) for a in (z_u, n_generated, n_test))
    with np.errstate(invalid="ignore", divide="ignore"):
        return z * np.sqrt(m * n * (m + n + 1) / 12) / (m * n)


def zu_signal_frame(zu: pd.DataFrame) -> pd.DataFrame:
    """Signal frame of Meehan et al.'s data-copying test per cell (`Results.zu()` rows).

    signal = 1/2 - U/(mn) of the generated samples (grows as they copy), null = the same for the
    null draws; NaN where a cell holds no test point (the outlier cell of a "base" test set).
    """
    t = zu[zu.group != "all"]
    m, n = t.n_generated.to_numpy(np.float64), t.n_test.to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt((m + n + 1) / (12 * m * n))  # sd of U/(mn) when both samples share one distribution
    return pd.DataFrame(
        {
            "repeat": t.repeat.to_numpy(),
            "epoch": t.epoch.to_numpy(),
            "group": t.group.to_numpy(),
            "signal": -zu_effect(t.z_u, t.n_generated, t.n_test),
            "null": -zu_effect(t.z_u_null, t.n_null, t.n_test),
            "se": np.where(np.isfinite(se), se, np.nan),
        }
    ).sort_values(["repeat", "group", "epoch"], ignore_index=True)


def excess_frame(signals: pd.DataFrame, pool_null: bool = True) -> pd.DataFrame:
    """The signal frame plus ``excess`` = signal - null and ``se``, its standard error under the null.

    With `pool_null`, null is first replaced by its mean over epochs within each repeat and group
    (see the module docstring). se: a frame's own ``se`` column if it has one (Z_U), else the
    binomial one of a share of ``n`` items, rescaled by ``scale``: scale * sqrt(q (1 - q) / n)
    with q = null / scale (NaN where n = 0), else 0.
    """
    s = signals.copy()
    if pool_null:
        s["null"] = s.groupby(["repeat", "group"]).null.transform("mean")
    if "se" not in s:
        if "n" in s:
            q = (s.null / s.scale).clip(0, 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                s["se"] = np.where(s.n > 0, s.scale * np.sqrt(q * (1 - q) / s.n), np.nan)
        else:
            s["se"] = 0.0
    return s.assign(excess=s.signal - s.null)


def _curves(signals: pd.DataFrame, pool_null: bool = True) -> tuple[np.ndarray, list, list, np.ndarray, np.ndarray]:
    """(epochs (E,), repeats, groups, excess (R, G, E), se (R, G, E)) from a signal frame (NaN where absent)."""
    s = excess_frame(signals, pool_null)
    epochs = np.sort(s.epoch.unique())
    repeats = sorted(s.repeat.unique())
    groups = [g for g in display_groups(s.group.unique()) if g != "all"]
    index = pd.MultiIndex.from_product([repeats, groups], names=["repeat", "group"])

    def cube(col):
        c = s.pivot_table(index=["repeat", "group"], columns="epoch", values=col, dropna=False)
        return c.reindex(index).reindex(columns=epochs).to_numpy().reshape(len(repeats), len(groups), len(epochs))

    return epochs, repeats, groups, cube("excess"), cube("se")


def timing_table(signals: pd.DataFrame, margin: float, pool_null: bool = True, z: float = 0.0) -> pd.DataFrame:
    """Per repeat and group: onset and half-level epochs, raw (NaN = never) and censored.

    signals: a signal frame; pool_null: see the module docstring; z: a crossing counts only where
    the excess is also z standard errors above 0 (see onset_epoch; 0 = the margin alone).
    Columns: repeat, group, onset, half (NaN = undefined), onset_filled, half_filled (NaN
    replaced by `censor_at`), onset_censored, half_censored, censor_at (one evaluation step after
    the last evaluated epoch), final_excess. A group whose excess is NaN at
    every epoch (no test point in its cell) stays NaN, not censored.
    """
    epochs, repeats, groups, excess, se = _curves(signals, pool_null)
    step = float(epochs[-1] - epochs[-2]) if len(epochs) > 1 else 1.0
    censor_at = float(epochs[-1] + step)
    undefined = np.isnan(excess).all(axis=-1)
    se = np.nan_to_num(se, nan=np.inf) if z > 0 else np.zeros_like(excess)  # unknown noise never passes z > 0
    onset, half = onset_epoch(epochs, excess, margin, se, z), half_level_epoch(epochs, excess, margin, se, z)
    rows = []
    for i, r in enumerate(repeats):
        for j, g in enumerate(groups):
            row = {
                "repeat": r,
                "group": g,
                "onset": onset[i, j],
                "half": half[i, j],
                "censor_at": censor_at,
                "final_excess": excess[i, j, -1],
            }
            for name in TIMINGS:
                cens = bool(np.isnan(row[name]) and not undefined[i, j])
                row[f"{name}_censored"] = cens
                row[f"{name}_filled"] = censor_at if cens else row[name]
            rows.append(row)
    return pd.DataFrame(rows)


def null_corrected(
    signals: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 0, level: float = 0.95, pool_null: bool = True
) -> pd.DataFrame:
    """Observed minus null per epoch and group: mean over repeats with a bootstrap interval over repeats.

    Columns: epoch, group, excess (mean), low, high, signal, null (means), n_repeats. Each
    (epoch, group) uses its own generator seeded from seed + its row number, so the same call
    gives the same intervals. pool_null: see the module docstring.
    """
    s = excess_frame(signals, pool_null)
    rows = []
    for k, ((epoch, group), g) in enumerate(s.groupby(["epoch", "group"], sort=True)):
        est, lo, hi = bootstrap_ci(g.excess.to_numpy(), n_bootstrap, seed=seed + k, level=level)
        rows.append(
            {
                "epoch": epoch,
                "group": group,
                "excess": est,
                "low": lo,
                "high": hi,
                "signal": g.signal.mean(),
                "null": g.null.mean(),
                "n_repeats": int(g.excess.notna().sum()),
            }
        )
    return pd.DataFrame(rows)
