"""Curves of a results table over epochs: selection, means with Student-t bands, the first epoch above null, summaries.

Input: rows of `Results.table()` or `Results.rates_at()` / `RateGrid.rates()` (columns repeat,
epoch, group, criterion, threshold, memorized, memorized_null, copied, copied_null, ...), of ONE
criterion at ONE threshold (`select` picks them).

- Band: mean over repeats +- t(0.975, R-1) * sd / sqrt(R) (Student-t 95% interval of the mean,
  repeats as independent draws), clipped to [0, 1] (a share cannot leave it); no band with one repeat.
- "First epoch above null": memnb's one onset rule (`stats.onset`, on the mean over repeats:
  memnb.analysis.against_null.standing): the first evaluated epoch at which the excess over the pooled null
  (per point: memorized / the group's share, or copied) passes 5 points at 5 % over the curve (Bonferroni), the repeats'
  spread as its error; None where it never does, and with one repeat (not enough repeats to tell).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..core.vocabulary import VALUES, display_groups
from .against_null import standing

SUMMARY_COLUMNS = [
    "group",
    "n_points",
    "final_epoch",
    "memorized_%",
    "memorized_ci95_%",
    "memorized_null_%",
    "copied_%",
    "copied_null_%",
    "first_epoch_memorized_above_null",
    "first_epoch_copied_above_null",
]


def select(table: pd.DataFrame, criterion: str, threshold: float) -> pd.DataFrame:
    """The rows of one criterion at one threshold (a tabulated one; else use Results.rates_at)."""
    rows = table[table.criterion == criterion]
    if rows.empty:
        raise ValueError(f"criterion {criterion!r} not in the table; present: {sorted(table.criterion.unique())}")
    rows = rows[np.isclose(rows.threshold.to_numpy(np.float64), threshold, rtol=0, atol=1e-9)]
    if rows.empty:
        raise ValueError(
            f"threshold {threshold} is not tabulated for {criterion!r} (tabulated: "
            f"{sorted(table[table.criterion == criterion].threshold.unique())}); use Results.rates_at"
        )
    return rows.reset_index(drop=True)


def _one_setting(table: pd.DataFrame) -> tuple[str, float]:
    crit, thr = table.criterion.unique(), table.threshold.unique()
    if len(crit) != 1 or len(thr) != 1:
        raise ValueError(
            f"expected the rows of one criterion at one threshold, got criteria {list(crit)} and "
            f"thresholds {list(thr)}; use plots.select(table, criterion, threshold)"
        )
    return str(crit[0]), float(thr[0])


def t_halfwidth(sd: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> np.ndarray:
    """Half-width of the Student-t interval of a mean: t((1+c)/2, n-1) * sd / sqrt(n); NaN for n < 2."""
    n = np.asarray(n, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = stats.t.ppf((1 + confidence) / 2, np.where(n > 1, n - 1, np.nan))
        return q * np.asarray(sd, np.float64) / np.sqrt(n)


def curve_stats(table: pd.DataFrame, value: str = "memorized", confidence: float = 0.95) -> pd.DataFrame:
    """Per (group, epoch): n_repeats, mean, std, half (t half-width), lo, hi (the band), null_mean; shares in [0, 1]."""
    if value not in VALUES:
        raise ValueError(f"value {value!r} is unknown; allowed: {' | '.join(VALUES)}")
    g = table.groupby(["group", "epoch"], sort=True)
    out = g[value].agg(["count", "mean", "std"]).rename(columns={"count": "n_repeats"})
    out["null_mean"] = g[value + "_null"].mean()
    half = t_halfwidth(out["std"].to_numpy(), out["n_repeats"].to_numpy(), confidence)
    out["half"] = half
    out["lo"], out["hi"] = (out["mean"] - half).clip(lower=0.0), (out["mean"] + half).clip(upper=1.0)
    return out.reset_index()


def compare_curves(
    a: pd.DataFrame, b: pd.DataFrame, value: str = "memorized", confidence: float = 0.95
) -> pd.DataFrame:
    """Two runs' curves of one setting, group by group and epoch: does b's mean lie within a's, up to chance?

    a, b: rows of one criterion at one threshold (`select`) of two runs with independent repeats (e.g. the same
    config on the CPU and on CUDA, whose generators draw other numbers). Per (group, epoch) in both: the means,
    their difference b - a and Welch's interval of it, half = t(df) * sqrt(s_a^2/n_a + s_b^2/n_b) with the
    Welch-Satterthwaite df, and `within` = |b - a| <= half (NaN half, with fewer than two repeats or no
    spread in either run: within iff the means are equal). With equal curves `within` holds in about
    `confidence` of the cells.
    """
    if value not in VALUES:
        raise ValueError(f"value {value!r} is unknown; allowed: {' | '.join(VALUES)}")
    _one_setting(a), _one_setting(b)
    stats_ = [t.groupby(["group", "epoch"])[value].agg(["count", "mean", "var"]) for t in (a, b)]
    m = stats_[0].add_suffix("_a").join(stats_[1].add_suffix("_b"), how="inner")
    se2_a, se2_b = m.var_a / m.count_a, m.var_b / m.count_b
    se2 = se2_a + se2_b
    with np.errstate(invalid="ignore", divide="ignore"):
        df = se2**2 / (se2_a**2 / (m.count_a - 1) + se2_b**2 / (m.count_b - 1))
        half = stats.t.ppf((1 + confidence) / 2, df) * np.sqrt(se2)
    diff = m.mean_b - m.mean_a
    out = pd.DataFrame(
        {
            "mean_a": m.mean_a,
            "mean_b": m.mean_b,
            "diff": diff,
            "half": half,
            "within": np.where(np.isfinite(half) & (se2 > 0), np.abs(diff) <= half, np.isclose(diff, 0.0)),
            "n_a": m.count_a.astype(int),
            "n_b": m.count_b.astype(int),
        }
    )
    return out.reset_index()


def first_epoch_above_null(table: pd.DataFrame, value: str = "memorized") -> dict[str, int | None]:
    """{group: first evaluated epoch at which its curve rises above its null by the one onset rule, or None}.

    memnb.analysis.against_null.standing's onset (see the module docstring); None where the curve never rises
    significantly above its null, lies below it, or the table has one repeat (not enough repeats to tell).
    """
    st = standing(table, value)
    return {str(r.group): (None if np.isnan(r.onset) else int(r.onset)) for r in st.itertuples()}


def summary(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per group: final rates (mean over repeats, %), their nulls, and the first epoch above null."""
    _one_setting(table)
    last = int(table.epoch.max())
    mem, cop = curve_stats(table, "memorized", confidence), curve_stats(table, "copied", confidence)
    first_m, first_c = first_epoch_above_null(table, "memorized"), first_epoch_above_null(table, "copied")
    rows = []
    for group in display_groups(table.group.unique()):  # memnb's groups in the paper's order, then a user's own
        m = mem[(mem.group == group) & (mem.epoch == last)].iloc[0]
        c = cop[(cop.group == group) & (cop.epoch == last)].iloc[0]
        n_points = table.loc[table.group == group, "n_group_points"].iloc[0] if "n_group_points" in table else np.nan
        rows.append(
            {
                "group": group,
                "n_points": int(n_points),
                "final_epoch": last,
                "memorized_%": 100 * m["mean"],
                "memorized_ci95_%": 100 * m["half"],
                "memorized_null_%": 100 * m["null_mean"],
                "copied_%": 100 * c["mean"],
                "copied_null_%": 100 * c["null_mean"],
                "first_epoch_memorized_above_null": first_m.get(group),
                "first_epoch_copied_above_null": first_c.get(group),
            }
        )
    df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    for col in ("first_epoch_memorized_above_null", "first_epoch_copied_above_null"):
        df[col] = df[col].astype("Int64")  # None -> <NA>: never above
    df.attrs["n_repeats"] = int(table.repeat.nunique())  # one repeat: no onset can be established
    return df


def readable_summary(s: pd.DataFrame) -> pd.DataFrame:
    """`summary()` for display: a first epoch that never came reads "never", or "not enough repeats to tell"
    for a summary of one repeat (pandas shows a missing Int64 as "<NA>" whatever na_rep says)."""
    s = s.copy()
    first = [c for c in s.columns if c.startswith("first_epoch")]
    word = "not enough repeats to tell" if s.attrs.get("n_repeats") == 1 else "never"
    s[first] = s[first].astype(object).where(s[first].notna(), word)
    return s
