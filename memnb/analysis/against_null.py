"""Where each group's curve stands against its null: above it (the one onset rule), on it, or below it.

Input: rows of `Results.table()` or `Results.rates_at()` of ONE criterion at ONE threshold (curves.select).
Per group (and the whole sample, ``all``) one of `STANDINGS`:

- ``above``: memorization is established by memnb's one onset rule (memnb.analysis.stats.onset: the excess
  over the pooled null passes ONSET_MARGIN, 5 points, significantly at some evaluated epoch, at the level
  ONSET_SIGNIFICANCE, 5 %, over the whole curve: Bonferroni over its E evaluations), applied to the mean over
  repeats with the repeats' spread as its error: a one-sided t-test per evaluation at 5 % / E (R - 1 degrees
  of freedom), its error never below the binomial one of the mean at p = null + margin (a z-test). `onset` is the
  first such epoch. Values on the per-point scale of the verdict
  (stats.signal_frame): ``memorized`` divided by the group's share of the training set, ``copied`` as is.
- ``below``: the group's share lies significantly below its null at the final epoch and never rose above it:
  the counts pooled over repeats, a one-sided exact test (Fisher's, conditional on the total) of the generated
  against the null counts at BELOW_SIGNIFICANCE (5 %). A quality failure: the generator is worse than the
  data (its samples land where neither the data nor copies of it do, e.g. a kernel density estimate at a
  large bandwidth), not anti-memorization and not "not memorized yet".
- ``on``: neither: the curve sits on its chance line within the run.
- ``too few repeats``: one repeat and not below: a single training run gives no spread to test an onset
  against ("not enough repeats to tell"; the below test needs none: it is about these samples).
- ``no null``: the run has no null set (a monitored run without one).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import ndtri

from ..core.validate import fail, is_real
from ..core.vocabulary import display_groups
from .stats import ONSET_MARGIN, ONSET_SIGNIFICANCE, onset, signal_frame

BELOW_SIGNIFICANCE = 0.05  # the one-sided level of the below-the-null test (one test per group, at the final epoch)
STANDINGS = ("above", "on", "below", "too few repeats", "no null")
STANDING_TEXT = {
    "above": "rises above its null from epoch {onset}",
    "on": "on its null (never significantly above)",
    "below": "BELOW its null (p = {p:.2g}): a quality failure, not 'not memorized yet'",
    "too few repeats": "not enough repeats to tell (1 repeat)",
    "no null": "no null set",
}


def below_null_p(x, n, y, n0) -> float:
    """One-sided p that the generated share lies below the null's: Fisher's exact test of the pooled counts.

    x, n: memorized (or copied) counts and totals of the generated side, y, n0: of the null side; numbers or
    arrays over repeats (summed). The 2 x 2 table [[X, N - X], [Y, N0 - Y]], alternative "less" (the odds of
    the generated side below the null's). NaN when a total is 0. Pooling repeats tests the mean share.
    """
    X, N, Y, N0 = (int(np.rint(np.nansum(np.asarray(a, np.float64)))) for a in (x, n, y, n0))
    if N <= 0 or N0 <= 0:
        return float("nan")
    return float(sps.fisher_exact([[X, N - X], [Y, N0 - Y]], alternative="less")[1])


def mean_onset(epochs, excess, se, margin=ONSET_MARGIN, significance=ONSET_SIGNIFICANCE):
    """(low, high) of the one onset rule on the mean over repeats (see the module docstring).

    epochs: (E,); excess: (R, E) each repeat's excess over its pooled null, se: (R, E) its binomial error at
    p = null + margin (NaN where unknown). The mean's error is max(sd / sqrt(R) * t(1 - a, R - 1) / z(1 - a),
    sqrt(sum se^2) / R), a = significance / E (`onset`'s Bonferroni level per evaluation): the repeats' spread,
    estimated, enters as a t-test at that level; the binomial error, known, as a floor of the z-test. R >= 2.
    """
    excess, se = np.asarray(excess, np.float64), np.asarray(se, np.float64)
    r = np.sum(~np.isnan(excess), axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (an epoch no repeat reached): NaN
        mean = np.nanmean(excess, axis=0)
        sem = np.nanstd(excess, axis=0, ddof=1) / np.sqrt(r)
        binom = np.sqrt(np.nansum(se**2, axis=0)) / r
        a = significance / len(np.asarray(epochs))  # stats.onset's level per evaluation (Bonferroni over E)
        scale = sps.t.ppf(1 - a, np.where(r > 1, r - 1, np.nan)) / ndtri(1 - a)
    return onset(epochs, mean, np.fmax(sem * scale, binom), margin, significance)


def _signals(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    """Signal frame of every group and of ``all`` (stats.signal_frame's columns, n and scale included)."""
    crit, thr = str(rows.criterion.iloc[0]), float(rows.threshold.iloc[0])
    parts = [signal_frame(rows, crit, thr, value)] if (rows.group != "all").any() else []
    a = rows[rows.group == "all"]
    if len(a):
        n = a.n_group_points if value == "copied" else a.n_generated
        parts.append(
            pd.DataFrame(
                {
                    "repeat": a.repeat.to_numpy(),
                    "epoch": a.epoch.to_numpy(),
                    "group": "all",
                    "signal": a[value].to_numpy(np.float64),
                    "null": a[f"{value}_null"].to_numpy(np.float64),
                    "n": n.to_numpy(np.float64),
                    "scale": 1.0,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _cube(s: pd.DataFrame, col: str, epochs: np.ndarray) -> np.ndarray:
    """(R, E) of column `col` of one group's signal rows, NaN where a repeat lacks an epoch."""
    return s.pivot_table(index="repeat", columns="epoch", values=col, dropna=False).reindex(columns=epochs).to_numpy()


def standing(
    rows: pd.DataFrame,
    value: str = "memorized",
    n_null: int | None = None,
    margin: float = ONSET_MARGIN,
    significance: float = ONSET_SIGNIFICANCE,
    below_significance: float = BELOW_SIGNIFICANCE,
) -> pd.DataFrame:
    """Per group: where its curve stands against its null (`STANDINGS`, see the module docstring).

    rows: one criterion at one threshold; value: ``memorized`` or ``copied``; n_null: null draws per repeat and
    evaluation (config.n_null_points; None: n_generated, memnb's default); margin, significance: the one onset
    rule's; below_significance: the below test's level. Columns: group, standing, onset (first epoch
    established; NaN otherwise), onset_low (the last epoch before it at or below the margin: stats.onset), p_below,
    final (the final epoch's mean value, a share), null (its mean null), n_repeats, text (`STANDING_TEXT`).
    """
    if value not in ("memorized", "copied"):
        fail("value", value, "memorized | copied")
    for name, v, hi in (("significance", significance, 0.5), ("below_significance", below_significance, 0.5)):
        if not (is_real(v) and 0 < v < hi):
            fail(name, v, f"a one-sided level in (0, {hi})")
    if not (is_real(margin) and margin >= 0):
        fail("margin", margin, "a number >= 0 (the excess over the null, in the value's units)")
    sig = _signals(rows, value)
    pooled = sig.groupby(["repeat", "group"]).null.transform("mean")  # the pooled null (stats.excess_frame)
    q = ((pooled + margin) / sig.scale).clip(0, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sig = sig.assign(
            excess=sig.signal - pooled, se=np.where(sig.n > 0, sig.scale * np.sqrt(q * (1 - q) / sig.n), np.nan)
        )
    epochs = np.sort(sig.epoch.unique())
    last = rows[rows.epoch == epochs[-1]]
    out = []
    for g in display_groups(sig.group.unique()):
        s = sig[sig.group == g]
        excess, se = (_cube(s, col, epochs) for col in ("excess", "se"))
        n_rep = int(np.sum(~np.isnan(excess).all(axis=1)))
        f = last[last.group == g]
        final, null = float(f[value].mean()), float(f[f"{value}_null"].mean())
        if value == "copied":
            n = f.n_group_points.to_numpy(np.float64)
            x, y, n0 = f.copied.to_numpy() * n, f.copied_null.to_numpy() * n, n
        else:
            n = f.n_generated.to_numpy(np.float64)
            n0 = n if n_null is None else np.full(len(f), float(n_null))
            x, y = f.memorized.to_numpy() * n, f.memorized_null.to_numpy() * n0
        p_below = below_null_p(x, n, y, n0) if np.isfinite(y).all() and len(f) else float("nan")
        low = high = float("nan")
        if n_rep >= 2:
            low, high = (float(v) for v in mean_onset(epochs, excess, se, margin, significance))
        if np.isnan(null):
            word = "no null"
        elif np.isfinite(high):
            word = "above"
        elif p_below < below_significance:
            word = "below"
        elif n_rep < 2:
            word = "too few repeats"
        else:
            word = "on"
        onset_text = "n/a" if np.isnan(high) else f"{int(high)}"
        out.append(
            {
                "group": g,
                "standing": word,
                "onset": high,
                "onset_low": low,
                "p_below": p_below,
                "final": final,
                "null": null,
                "n_repeats": n_rep,
                "text": STANDING_TEXT[word].format(onset=onset_text, p=p_below),
            }
        )
    return pd.DataFrame(out)


# the printed summary's word where no onset epoch is established (views.figures.summary_text)
SUMMARY_WORD = {
    "on": "never",
    "below": "below the null",
    "too few repeats": "not enough repeats to tell",
    "no null": "-",
}


def standing_or_none(rows: pd.DataFrame, value: str, n_null: int | None = None) -> pd.DataFrame | None:
    """`standing(rows, value, n_null)`, or None when the rows cannot give it (empty, or without the sizes
    n_group_points and n_generated that the tests need: e.g. a table assembled by hand)."""
    if rows.empty or not {"n_group_points", "n_generated"} <= set(rows.columns):
        return None
    return standing(rows, value, n_null)


def standing_line(st: pd.DataFrame, names=None) -> str:
    """One line per figure: each group's standing (`standing` rows), e.g. "inliers: rises above its null from
    epoch 300 · outliers: on its null ..."; names: {group: display name} (default: the group's label)."""
    names = names or {}
    return " · ".join(f"{names.get(r.group, r.group)}: {r.text}" for r in st.itertuples())
