"""Figures, summaries and sanity checks from the tidy results table: pure functions, no training, no files.

Input: rows of `Results.table()` or `Results.rates_at()` / `RateGrid.rates()` (columns repeat,
epoch, group, criterion, threshold, memorized, memorized_null, copied, copied_null, ...).
Figures and summaries take the rows of ONE criterion at ONE threshold (`select` picks them).

Conventions, stated once:

- Band: mean over repeats +- t(0.975, R-1) * sd / sqrt(R) (Student-t 95% interval of the mean,
  repeats as independent draws), clipped to [0, 1] (a share cannot leave it); no band with one
  repeat.
- Null baseline: the same metric for fresh draws of the data distribution (a perfect
  generator), mean over repeats, dashed, in the group's colour.
- "First epoch above null": the first evaluated epoch at which the mean over repeats of
  (value - null), paired by repeat, exceeds both `n_sem` (2) standard errors of that difference
  and `rel_margin` (10%) of the mean null level (and 0.01 percentage points, so that a zero null
  needs a real rise).
"""

from __future__ import annotations

import html
import os
import shutil
import textwrap
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from .metric import chance_level

GROUPS = ("all", "inlier", "outlier", "duplicate")
GROUP_NAMES = {"all": "all groups", "inlier": "inliers", "outlier": "outliers", "duplicate": "near-duplicates"}
GROUP_COLORS = {"all": "#333333", "inlier": "#1f77b4", "outlier": "#d62728", "duplicate": "#2ca02c"}
VALUES = ("memorized", "copied")
VALUE_AXIS = {
    "memorized": "memorized, % of generated set",
    "copied": "copied, % of group's points",
}
VALUE_TITLE = {
    "memorized": "Memorized samples per group, as a percentage of the generated set (the paper's view)",
    "copied": "Share of each group's training points that are copied (per-group view)",
}
CRITERION_TEXT = {
    "paper": "paper's criterion: d_test ≥ {k:g}·d_train",
    "train_only": "train-only criterion: d2 > {k:g}·d1 (d1/d2 < 1/{k:g})",
}
SUMMARY_COLUMNS = ["group", "n_points", "final_epoch", "memorized_%", "memorized_ci95_%", "memorized_null_%",
                   "copied_%", "copied_null_%", "first_epoch_memorized_above_null", "first_epoch_copied_above_null"]


# -- selection and statistics -------------------------------------------------------------------
def select(table: pd.DataFrame, criterion: str, threshold: float) -> pd.DataFrame:
    """The rows of one criterion at one threshold (a tabulated one; else use Results.rates_at)."""
    rows = table[table.criterion == criterion]
    if rows.empty:
        raise ValueError(f"criterion {criterion!r} not in the table; present: {sorted(table.criterion.unique())}")
    rows = rows[np.isclose(rows.threshold.to_numpy(np.float64), threshold, rtol=0, atol=1e-9)]
    if rows.empty:
        raise ValueError(f"threshold {threshold} is not tabulated for {criterion!r} (tabulated: "
                         f"{sorted(table[table.criterion == criterion].threshold.unique())}); use Results.rates_at")
    return rows.reset_index(drop=True)


def _one_setting(table: pd.DataFrame) -> tuple[str, float]:
    crit, thr = table.criterion.unique(), table.threshold.unique()
    if len(crit) != 1 or len(thr) != 1:
        raise ValueError(f"expected the rows of one criterion at one threshold, got criteria {list(crit)} and "
                         f"thresholds {list(thr)}; use plots.select(table, criterion, threshold)")
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


def first_epoch_above_null(table: pd.DataFrame, value: str = "memorized", rel_margin: float = 0.1,
                           n_sem: float = 2.0) -> dict[str, int | None]:
    """{group: first evaluated epoch whose mean exceeds its null level (see the module docstring), or None}."""
    d = table.assign(diff=table[value] - table[value + "_null"])
    g = d.groupby(["group", "epoch"], sort=True)
    s = g["diff"].agg(["mean", "std", "count"])
    s["null"] = g[value + "_null"].mean()
    sem = (s["std"] / np.sqrt(s["count"])).fillna(0.0)
    s["above"] = (s["mean"] > n_sem * sem) & (s["mean"] > rel_margin * s["null"]) & (s["mean"] > 1e-4)
    out: dict[str, int | None] = {}
    for group, rows in s.groupby(level="group"):
        hits = rows.index.get_level_values("epoch")[rows["above"].to_numpy()]
        out[str(group)] = int(hits[0]) if len(hits) else None
    return out


def summary(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per group: final rates (mean over repeats, %), their nulls, and the first epoch above null."""
    _one_setting(table)
    last = int(table.epoch.max())
    mem, cop = curve_stats(table, "memorized", confidence), curve_stats(table, "copied", confidence)
    first_m, first_c = first_epoch_above_null(table, "memorized"), first_epoch_above_null(table, "copied")
    rows = []
    for group in [g for g in GROUPS if g in set(table.group)]:
        m = mem[(mem.group == group) & (mem.epoch == last)].iloc[0]
        c = cop[(cop.group == group) & (cop.epoch == last)].iloc[0]
        n_points = table.loc[table.group == group, "n_group_points"].iloc[0] if "n_group_points" in table else np.nan
        rows.append({
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
        })
    df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    for col in ("first_epoch_memorized_above_null", "first_epoch_copied_above_null"):
        df[col] = df[col].astype("Int64")  # None -> <NA>: never above
    return df


def readable_summary(s: pd.DataFrame) -> pd.DataFrame:
    """`summary()` for display: a first epoch that never came reads "never" (pandas shows a missing
    Int64 as "<NA>" whatever na_rep says)."""
    s = s.copy()
    first = [c for c in s.columns if c.startswith("first_epoch")]
    s[first] = s[first].astype(object).where(s[first].notna(), "never")
    return s


def summary_text(table: pd.DataFrame, config=None) -> str:
    """The printed summary: the setting, then `summary(table)` as text."""
    crit, thr = _one_setting(table)
    s = readable_summary(summary(table))
    n_rep = table.repeat.nunique()
    head = [f"{CRITERION_TEXT[crit].format(k=thr)}; mean over {n_rep} repeat(s) at the final epoch "
            f"{int(table.epoch.max())}; '_null' = the same metric for fresh draws of the data distribution."]
    if config is not None and crit == "paper":
        head.append(f"Analytic chance level n/(n + k^2 m) = {100 * chance_level(config.n_train, config.n_test_points, thr):.2f}% "
                    f"(all groups; {100 * expected_null(config, thr):.2f}% counting the outlier cluster, "
                    + ("which has no test points)." if config.n_test_outliers == 0 else "with its own test points).")
                    )
    head.append("first_epoch_*_above_null: first evaluated epoch where mean(value - null) > max(2 s.e., 10% of null); "
                "never = not within the run.")
    body = s.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
    return "\n".join(head) + "\n\n" + body


# -- sanity checks ------------------------------------------------------------------------------
def expected_null(config, threshold: float | None = None) -> float:
    """Null level of the paper criterion for the 'all' group, outlier cluster included.

    Fresh draws from the base distribution score n/(n + k^2 m) with n the distinct base locations
    (duplicates sit on base points) and m test points; draws from the outlier cluster (a share
    n_outliers / n_train) have no test point near them and are memorized almost surely.
    """
    k = config.ratio if threshold is None else threshold
    f = config.n_outliers / config.n_train
    n_test_base = getattr(config, "n_test_base", config.n_test_points)
    n_test_outliers = getattr(config, "n_test_outliers", 0)  # a "matched" test set holds outliers too
    outlier_level = chance_level(config.n_outliers, n_test_outliers, k) if (n_test_outliers and config.n_outliers) else 1.0
    return (1 - f) * chance_level(config.n_base, n_test_base, k) + f * outlier_level


def sanity_problems(table: pd.DataFrame, config, null_tolerance: float = 0.03) -> list[str]:
    """Everything wrong with a run's full table (empty list when it is sound).

    Checks: columns; every share within [0, 1] (copied may be NaN only for an empty group; a
    criterion the run could not compute at all is skipped); all four groups and the paper and
    train-only criteria present, every repeat at every evaluated epoch; the groups
    partition the memorized share; and the mean null level of the paper criterion ('all' group,
    config.ratio) within `null_tolerance` of `expected_null(config)` (also reported: the plain
    formula `chance_level(n_train, n_test, ratio)`, which ignores the outlier cluster).
    """
    problems: list[str] = []
    need = ["repeat", "epoch", "group", "criterion", "threshold", "memorized", "memorized_null", "copied",
            "copied_null", "n_group_points"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        return [f"columns missing: {missing}"]
    if table.empty:
        return ["the table is empty"]
    # a criterion a run could not compute (all NaN: e.g. 'relative' in runs stored before it existed) is skipped
    computed = table.groupby("criterion")["memorized"].transform(lambda v: v.notna().any()).to_numpy(bool)
    for col in ("memorized", "memorized_null", "copied", "copied_null"):
        v = table[col].to_numpy(np.float64)
        nan = np.isnan(v)
        if col.startswith("copied"):
            bad_nan = nan & computed & (table.n_group_points.to_numpy() > 0)
        else:
            bad_nan = nan & computed
        if bad_nan.any():
            problems.append(f"{col}: {int(bad_nan.sum())} NaN value(s) for non-empty groups")
        out = ~nan & ((v < 0) | (v > 1))
        if out.any():
            problems.append(f"{col}: {int(out.sum())} value(s) outside [0, 1] (e.g. {v[out][:3].tolist()})")
    groups = set(table.group)
    if groups != set(GROUPS):
        problems.append(f"groups present {sorted(groups)}; expected {sorted(GROUPS)}")
    expected_sizes = {"outlier": config.n_outliers, "all": config.n_train}
    for g, n in expected_sizes.items():
        got = table.loc[table.group == g, "n_group_points"].unique()
        if len(got) and set(got.tolist()) != {n}:
            problems.append(f"group {g!r} has {sorted(got.tolist())} training points; config says {n}")
    if not {"paper", "train_only"} <= set(table.criterion):
        problems.append(f"criteria present {sorted(set(table.criterion))}; expected at least ['paper', 'train_only']")
    epochs = sorted(table.epoch.unique().tolist())
    if epochs != list(config.eval_epochs):
        problems.append(f"evaluated epochs {epochs[:5]}... ({len(epochs)}) differ from the config's "
                        f"{list(config.eval_epochs)[:5]}... ({len(config.eval_epochs)})")
    repeats = sorted(table.repeat.unique().tolist())
    if repeats != list(range(config.n_repeats)):
        problems.append(f"repeats {repeats} differ from the config's {config.n_repeats}")
    counts = table.groupby(["criterion", "threshold", "group"]).size()
    if counts.nunique() > 1:
        problems.append("some (criterion, threshold, group) lack some repeat x epoch rows")
    part = table.pivot_table(index=["repeat", "epoch", "criterion", "threshold"], columns="group", values="memorized")
    if set(GROUPS) <= set(part.columns):
        gap = (part[["inlier", "outlier", "duplicate"]].sum(axis=1) - part["all"]).abs().max(skipna=True)
        if gap > 1e-6:
            problems.append(f"group shares do not add up to the 'all' share (max gap {gap:.2e})")
    paper = table[(table.criterion == "paper") & np.isclose(table.threshold, config.ratio) & (table.group == "all")]
    if paper.empty:
        problems.append(f"no rows for the paper criterion at ratio {config.ratio}")
    else:
        null = float(paper.memorized_null.mean())
        want = expected_null(config)
        if not abs(null - want) <= null_tolerance:
            problems.append(f"null level {100 * null:.2f}% of the paper criterion (all groups, ratio {config.ratio}) is "
                            f"more than {100 * null_tolerance:.0f} points from its analytic value {100 * want:.2f}% "
                            f"(plain formula n/(n+k^2 m): "
                            f"{100 * chance_level(config.n_train, config.n_test_points, config.ratio):.2f}%)")
    return problems


def check_sanity(table: pd.DataFrame, config, null_tolerance: float = 0.03) -> str:
    """Raise AssertionError listing every problem of `sanity_problems`; else return a one-line report."""
    problems = sanity_problems(table, config, null_tolerance)
    if problems:
        raise AssertionError("sanity checks failed:\n- " + "\n- ".join(problems))
    paper = table[(table.criterion == "paper") & np.isclose(table.threshold, config.ratio) & (table.group == "all")]
    return (f"sanity checks passed: {len(table)} rows, shares within [0, 1], 4 groups, {table.repeat.nunique()} repeats x "
            f"{table.epoch.nunique()} epochs; null level {100 * paper.memorized_null.mean():.2f}% vs analytic "
            f"{100 * expected_null(config):.2f}% (outlier-aware) / "
            f"{100 * chance_level(config.n_train, config.n_test_points, config.ratio):.2f}% (n/(n+k^2 m))")


# -- figures ------------------------------------------------------------------------------------
def _percent(v) -> list:
    return (100 * np.asarray(v, np.float64)).tolist()


def _subplot_titles(table: pd.DataFrame, groups: Sequence[str]) -> list[str]:
    sizes = table.groupby("group")["n_group_points"].first() if "n_group_points" in table else {}
    return [f"{GROUP_NAMES[g]} ({int(sizes[g])} training points)" if g in sizes else GROUP_NAMES[g] for g in groups]


def trace_specs(table: pd.DataFrame, value: str = "memorized", *, groups: Sequence[str] = GROUPS,
                repeats: Iterable[int] | None = None, all_repeats: Iterable[int] | None = None,
                chance: float | None = None, confidence: float = 0.95,
                epoch_range: tuple[int, int] | None = None) -> list[dict]:
    """The traces of `rates_figure` as dicts, in a fixed order for given (groups, all_repeats).

    Per group: one faint line per repeat in `all_repeats` (hidden unless in `repeats`), the band,
    the mean, the null mean; then the analytic chance level (on the 'all' panel; empty when None).
    A widget redraws by updating these in place.
    """
    if value not in VALUES:
        raise ValueError(f"value {value!r} is unknown; allowed: {' | '.join(VALUES)}")
    if epoch_range is not None:
        table = table[(table.epoch >= epoch_range[0]) & (table.epoch <= epoch_range[1])]
    all_repeats = sorted(table.repeat.unique().tolist()) if all_repeats is None else list(all_repeats)
    shown = set(all_repeats if repeats is None else repeats)
    chosen = table[table.repeat.isin(shown)]
    st = curve_stats(chosen, value, confidence) if not chosen.empty else curve_stats(table.iloc[:0], value)
    by_group_repeat = {k: v.sort_values("epoch") for k, v in table.groupby(["group", "repeat"])}
    specs: list[dict] = []
    band_name = f"mean over repeats, {int(round(100 * confidence))}% t-interval"
    for i, g in enumerate(groups):
        axis = dict(xaxis=f"x{i + 1 if i else ''}", yaxis=f"y{i + 1 if i else ''}")
        color = GROUP_COLORS[g]
        first = i == 0
        for j, r in enumerate(all_repeats):
            rows = by_group_repeat.get((g, r))
            x = rows.epoch.tolist() if rows is not None else []
            y = _percent(rows[value]) if rows is not None else []
            specs.append(dict(type="scatter", mode="lines", x=x, y=y, name="individual repeats",
                              legendgroup="repeats", showlegend=first and j == 0, visible=r in shown,
                              line=dict(color=color, width=1), opacity=0.3, hoverinfo="skip", **axis))
        s = st[st.group == g].sort_values("epoch")
        ok = np.isfinite(s.lo.to_numpy())
        ex = s.epoch.to_numpy()[ok].tolist()
        specs.append(dict(type="scatter", mode="lines", x=ex + ex[::-1],
                          y=_percent(s.hi.to_numpy()[ok]) + _percent(s.lo.to_numpy()[ok])[::-1],
                          fill="toself", fillcolor=_rgba(color, 0.2), line=dict(width=0, color=color),
                          name=band_name, legendgroup="mean", showlegend=False, hoverinfo="skip", **axis))
        specs.append(dict(type="scatter", mode="lines+markers" if len(s) <= 30 else "lines", x=s.epoch.tolist(),
                          y=_percent(s["mean"]), name=band_name, legendgroup="mean", showlegend=first,
                          line=dict(color=color, width=2.5), marker=dict(size=5),
                          hovertemplate=f"{GROUP_NAMES[g]}<br>epoch %{{x}}<br>mean %{{y:.3f}}%<extra></extra>", **axis))
        specs.append(dict(type="scatter", mode="lines", x=s.epoch.tolist(), y=_percent(s["null_mean"]),
                          name="null baseline (fresh draws of the data), mean", legendgroup="null", showlegend=first,
                          line=dict(color=color, width=2, dash="dash"),
                          hovertemplate=f"{GROUP_NAMES[g]} null<br>epoch %{{x}}<br>%{{y:.3f}}%<extra></extra>", **axis))
    i_all = list(groups).index("all") if "all" in groups else 0
    ax = dict(xaxis=f"x{i_all + 1 if i_all else ''}", yaxis=f"y{i_all + 1 if i_all else ''}")
    x_all = sorted(table.epoch.unique().tolist())
    cx = [x_all[0], x_all[-1]] if (chance is not None and x_all) else []
    specs.append(dict(type="scatter", mode="lines", x=cx, y=[100 * chance] * len(cx) if cx else [],
                      name="analytic chance level n/(n+k²m)", legendgroup="chance", showlegend=bool(cx),
                      visible=bool(cx), line=dict(color="#ff7f0e", width=1.5, dash="dot"),
                      hovertemplate="analytic chance level %{y:.2f}%<extra></extra>", **ax))
    return specs


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def subtitle(table: pd.DataFrame, value: str, n_shown: int | None = None) -> str:
    """Two lines: what the figure shows, then the criterion and how the curves are drawn."""
    crit, thr = _one_setting(table)
    n = table.repeat.nunique() if n_shown is None else n_shown
    return (f"{VALUE_TITLE[value]}.\n{CRITERION_TEXT[crit].format(k=thr)}; "
            f"mean of {n} repeat(s) with 95% t-band, faint lines = repeats, dashed = null baseline")


# Plotly never wraps a title: a longer line runs past the figure's right edge and is cut off.
# Characters per line that fit a 1000-px figure at each of the title's font sizes (15, 13, 11 px).
TITLE_WRAP = {"title": 110, "second": 130, "sub": 150}


def _wrap(line: str, width: int) -> list[str]:
    line = line.replace(" → ", "\u00a0→\u00a0")  # "100 → 10" stays on one line (textwrap never breaks at NBSP)
    return textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""]


def title_html(title: str, sub: str) -> str:
    """Plotly title text: the title's lines (the second and later ones smaller), then the subtitle's, smallest.

    Lines longer than `TITLE_WRAP` characters are wrapped at spaces; `title_lines` counts the result.
    """
    first, *rest = title.split("\n")
    lines = [html.escape(w, quote=False) for w in _wrap(first, TITLE_WRAP["title"])]
    lines += [f"<span style='font-size:13px'>{html.escape(w, quote=False)}</span>"
              for r in rest for w in _wrap(r, TITLE_WRAP["second"])]
    lines += [f"<span style='font-size:11px'>{html.escape(w, quote=False)}</span>"
              for r in sub.split("\n") for w in _wrap(r, TITLE_WRAP["sub"])]
    return "<br>".join(lines)


def title_lines(title_text: str) -> int:
    """Lines of a `title_html` text."""
    return title_text.count("<br>") + 1


def rates_figure(table: pd.DataFrame, value: str = "memorized", *, title: str = "", groups: Sequence[str] = GROUPS,
                 repeats: Iterable[int] | None = None, chance: float | None = None, confidence: float = 0.95,
                 epoch_range: tuple[int, int] | None = None, width: int = 1100, height: int = 760,
                 figure_class=go.Figure) -> go.Figure:
    """One panel per group (own y-axis, in %), rates over evaluated epochs: repeats, mean with band, null.

    table: the rows of one criterion at one threshold. value: 'memorized' (share of the
    generated set attributed to the group: the paper's view) or 'copied' (share of the group's
    training points copied). chance: the analytic null level drawn on the 'all' panel (pass it
    for the paper criterion and 'memorized').
    """
    _one_setting(table)
    specs = trace_specs(table, value, groups=groups, repeats=repeats, chance=chance, confidence=confidence,
                        epoch_range=epoch_range)
    rows = 2 if len(groups) > 2 else 1
    cols = int(np.ceil(len(groups) / rows))
    base = make_subplots(rows=rows, cols=cols, subplot_titles=_subplot_titles(table, groups), shared_xaxes=True,
                         horizontal_spacing=0.08, vertical_spacing=0.12)
    fig = base
    fig.add_traces(specs)
    n_shown = len(set(table.repeat) if repeats is None else set(repeats))
    text = title_html(title, subtitle(table, value, n_shown))
    fig.update_layout(
        # anchored at the top (plotly centres a multi-line title in the margin, over the panels' titles)
        title=dict(text=text, x=0.01, xanchor="left", y=1.0, yref="container", yanchor="top", pad=dict(t=26),
                   font=dict(size=15)),
        width=width, height=height, template="plotly_white",
        legend=dict(orientation="h", yanchor="top", y=-0.09, xanchor="left", x=0.0),
        # room for every title line and, below them, the panels' own titles
        margin=dict(t=56 + 20 * title_lines(text), b=95, l=70, r=20), hovermode="closest",
    )
    for i in range(len(groups)):
        r, c = i // cols + 1, i % cols + 1
        fig.update_xaxes(title_text="epoch (training epochs completed)" if r == rows else None, row=r, col=c,
                         showticklabels=True)
        fig.update_yaxes(title_text=VALUE_AXIS[value], row=r, col=c, rangemode="tozero", ticksuffix="%")
    return fig if figure_class is go.Figure else figure_class(fig)


def paper_view(table: pd.DataFrame, config=None, title: str = "", **kw) -> go.Figure:
    """View 1: memorized samples per group, % of the generated set, with the analytic chance level."""
    crit, thr = _one_setting(table)
    chance = chance_level(config.n_train, config.n_test_points, thr) if (config is not None and crit == "paper") else None
    return rates_figure(table, "memorized", title=title, chance=chance, **kw)


def group_view(table: pd.DataFrame, title: str = "", **kw) -> go.Figure:
    """View 2: share of each group's training points copied."""
    return rates_figure(table, "copied", title=title, **kw)


def sweep_view(summary: pd.DataFrame, grid_fields: Sequence[str], value: str = "copied", title: str = "",
               groups: Sequence[str] = GROUPS) -> go.Figure:
    """A sweep at a glance (`memnb.sweep.grid_summary` rows): per group (one panel each), every configuration's
    final excess over its null baseline (value - null, percentage points) with its 95% t-interval;
    the null baseline is the dashed zero line. x: the configuration, labelled by its grid values."""
    s = summary.copy()
    s["config"] = [" · ".join(f"{f}={row[f]}" for f in grid_fields) or str(row["run"]) for _, row in s.iterrows()]
    order = list(dict.fromkeys(s["config"]))
    present = [g for g in groups if g in set(s.group)]
    fig = make_subplots(rows=len(present), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[GROUP_NAMES[g] for g in present])
    for i, g in enumerate(present):
        rows = s[s.group == g].set_index("config").reindex(order)
        fig.add_trace(go.Scatter(
            x=order, y=rows["excess_pp"], mode="markers", marker=dict(size=9, color=GROUP_COLORS[g]), name=GROUP_NAMES[g],
            error_y=dict(type="data", array=rows["excess_ci95_pp"].fillna(0.0), visible=True),
            customdata=np.stack([rows["value_%"], rows["null_%"], rows["first_epoch_above_null"].astype(object)], axis=-1),
            hovertemplate="%{x}<br>excess %{y:.2f} pp (value %{customdata[0]:.2f}%, null %{customdata[1]:.2f}%)"
                          "<br>first epoch above null: %{customdata[2]}<extra>" + GROUP_NAMES[g] + "</extra>"),
            row=i + 1, col=1)
        fig.add_hline(y=0.0, line=dict(color="#777777", dash="dash", width=1.5), row=i + 1, col=1)
        fig.update_yaxes(title_text="excess, pp", row=i + 1, col=1)
    epochs = sorted(s.final_epoch.unique())
    sub = (f"{VALUE_AXIS[value]} minus its null baseline (fresh draws of the data; dashed line) at the final epoch "
           f"({', '.join(map(str, epochs))}); mean over repeats with 95% t-interval")
    text = title_html(title or "Sweep: where each group ends against its null", sub)
    fig.update_layout(title=dict(text=text, x=0.01, xanchor="left", y=1.0, yref="container", yanchor="top",
                                 pad=dict(t=26), font=dict(size=15)),
                      width=1100, height=180 + 230 * len(present), template="plotly_white", showlegend=False,
                      margin=dict(t=56 + 20 * title_lines(text), b=140, l=80, r=20))
    return fig


# -- export -------------------------------------------------------------------------------------
def find_browser() -> str | None:
    """A Chromium for kaleido: $BROWSER_PATH, else chromium/chrome on PATH, else None (never downloads one)."""
    env = os.environ.get("BROWSER_PATH")
    if env and os.access(env, os.X_OK):
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def figures_html(figures: Sequence[go.Figure], title: str, text: str = "") -> str:
    """One standalone HTML page (plotly.js inlined: no server, no network) with the figures and a text block."""
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0), config={"responsive": True})
             for i, f in enumerate(figures)]
    pre = f"<pre style='font-size:12px'>{html.escape(text)}</pre>" if text else ""
    heading = html.escape(title).replace("\n", "<br>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title.splitlines()[0] if title else '')}"
            f"</title></head><body style='font-family:sans-serif'><h2>{heading}</h2>{''.join(parts)}{pre}</body></html>\n")


def export(figures: dict[str, go.Figure], out_dir: Path | str, stem: str, title: str = "", text: str = "",
           images: bool = True) -> list[Path]:
    """Write `stem`.html (all figures, standalone) and, per figure `name`, `stem[_name]`.png and .svg.

    figures: {name: figure}; the first is written as `stem`.png/.svg, the others as
    `stem_name`.png/.svg. Images need Chromium (kaleido >= 1): without one, a warning is printed
    and only the HTML is written. Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    page = out / f"{stem}.html"
    page.write_text(figures_html(list(figures.values()), title or stem, text), encoding="utf-8")
    written.append(page)
    if not images:
        return written
    browser = find_browser()
    if browser is None:
        print(f"warning: no Chromium found (install it: bash scripts/install-chromium.sh); "
              f"skipping PNG/SVG export of {stem}, the HTML is written")
        return written
    os.environ.setdefault("BROWSER_PATH", browser)  # kaleido looks here first; it never downloads a browser
    import kaleido

    server = getattr(kaleido, "_global_server", None)
    started = server is not None and not server.is_running()
    if started:  # one Chromium for all images instead of one per image (seconds each)
        kaleido.start_sync_server(silence_warnings=True)
    try:
        for i, (name, fig) in enumerate(figures.items()):
            base = stem if i == 0 else f"{stem}_{name}"
            for ext, scale in (("png", 2), ("svg", 1)):
                path = out / f"{base}.{ext}"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "kopts ignored when using a server"
                    fig.write_image(path, scale=scale)
                written.append(path)
    finally:
        if started:
            kaleido.stop_sync_server(silence_warnings=True)
    return written
