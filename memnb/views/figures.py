"""Figures and printed summaries from the tidy results table: pure functions, no training, no files.

Input: rows of `Results.table()` or `Results.rates_at()` / `RateGrid.rates()` (columns repeat,
epoch, group, criterion, threshold, memorized, memorized_null, copied, copied_null, ...).
Figures and summaries take the rows of ONE criterion at ONE threshold (`select` picks them).

Conventions (band, null baseline, "first epoch above null") are those of `memnb.analysis.curves`; where each
group's curve stands against its null (above it by the one onset rule, on it, below it, or not enough repeats
to tell) is `memnb.analysis.against_null`, said in every figure's subtitle and in the printed summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.against_null import standing_line, standing_or_none
from ..analysis.curves import (
    SUMMARY_COLUMNS,
    _one_setting,
    curve_stats,
    first_epoch_above_null,
    readable_summary,
    select,
    summary,
    t_halfwidth,
)
from ..analysis.sanity import check_sanity, sanity_problems  # noqa: F401 (the figure notebooks' checks)
from ..core.registry import CRITERIA
from ..core.vocabulary import DISPLAY_GROUPS, GROUP_COLORS, GROUP_NAMES, VALUES, display_groups, group_color, group_name
from ..metric.null import analytic_null, chance_level, expected_null  # noqa: F401
from .export import export, figures_html, find_browser  # noqa: F401 (the figure notebooks export through here)
from .summary import summary_text
from .titles import TITLE_WRAP, title_html, title_lines, top_title  # noqa: F401 (re-exported: the widgets' titles)

# The figure notebooks read everything through this module: the summaries, checks and export it re-exports.
__all__ = [
    "SUMMARY_COLUMNS",
    "select",
    "summary",
    "readable_summary",
    "curve_stats",
    "first_epoch_above_null",
    "t_halfwidth",
    "check_sanity",
    "sanity_problems",
    "chance_level",
    "expected_null",
    "export",
    "figures_html",
    "find_browser",
    "summary_text",
    "trace_specs",
    "subtitle",
    "title_html",
    "title_lines",
    "top_title",
    "TITLE_WRAP",
    "rates_figure",
    "paper_view",
    "group_view",
    "sweep_view",
    "VALUE_AXIS",
    "VALUE_TITLE",
    "GROUPS",
    "GROUP_NAMES",
    "GROUP_COLORS",
    "VALUES",
]
GROUPS = DISPLAY_GROUPS  # panel order
VALUE_AXIS = {
    "memorized": "memorized, % of generated set",
    "copied": "copied, % of group's points",
}
VALUE_TITLE = {
    "memorized": "Memorized samples per group, as a percentage of the generated set (the paper's view)",
    "copied": "Share of each group's training points that are copied (per-group view)",
}


# -- figures ------------------------------------------------------------------------------------
def _percent(v) -> list:
    return (100 * np.asarray(v, np.float64)).tolist()


def _subplot_titles(table: pd.DataFrame, groups: Sequence[str]) -> list[str]:
    sizes = table.groupby("group")["n_group_points"].first() if "n_group_points" in table else {}
    return [f"{group_name(g)} ({int(sizes[g])} training points)" if g in sizes else group_name(g) for g in groups]


def trace_specs(
    table: pd.DataFrame,
    value: str = "memorized",
    *,
    groups: Sequence[str] | None = None,
    repeats: Iterable[int] | None = None,
    all_repeats: Iterable[int] | None = None,
    chance: float | None = None,
    confidence: float = 0.95,
    epoch_range: tuple[int, int] | None = None,
) -> list[dict]:
    """The traces of `rates_figure` as dicts, in a fixed order for given (groups, all_repeats).

    Per group: one faint line per repeat in `all_repeats` (hidden unless in `repeats`), the band,
    the mean, the null mean; then the analytic chance level (on the 'all' panel; empty when None).
    A widget redraws by updating these in place.
    """
    if value not in VALUES:
        raise ValueError(f"value {value!r} is unknown; allowed: {' | '.join(VALUES)}")
    groups = display_groups(table.group.unique()) if groups is None else list(groups)
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
        color = group_color(g, groups)
        first = i == 0
        for j, r in enumerate(all_repeats):
            rows = by_group_repeat.get((g, r))
            x = rows.epoch.tolist() if rows is not None else []
            y = _percent(rows[value]) if rows is not None else []
            specs.append(
                dict(
                    type="scatter",
                    mode="lines",
                    x=x,
                    y=y,
                    name="individual repeats",
                    legendgroup="repeats",
                    showlegend=first and j == 0,
                    visible=r in shown,
                    line=dict(color=color, width=1),
                    opacity=0.3,
                    hoverinfo="skip",
                    **axis,
                )
            )
        s = st[st.group == g].sort_values("epoch")
        ok = np.isfinite(s.lo.to_numpy())
        ex = s.epoch.to_numpy()[ok].tolist()
        specs.append(
            dict(
                type="scatter",
                mode="lines",
                x=ex + ex[::-1],
                y=_percent(s.hi.to_numpy()[ok]) + _percent(s.lo.to_numpy()[ok])[::-1],
                fill="toself",
                fillcolor=_rgba(color, 0.2),
                line=dict(width=0, color=color),
                name=band_name,
                legendgroup="mean",
                showlegend=False,
                hoverinfo="skip",
                **axis,
            )
        )
        specs.append(
            dict(
                type="scatter",
                mode="lines+markers" if len(s) <= 30 else "lines",
                x=s.epoch.tolist(),
                y=_percent(s["mean"]),
                name=band_name,
                legendgroup="mean",
                showlegend=first,
                line=dict(color=color, width=2.5),
                marker=dict(size=5),
                hovertemplate=f"{group_name(g)}<br>epoch %{{x}}<br>mean %{{y:.3f}}%<extra></extra>",
                **axis,
            )
        )
        specs.append(
            dict(
                type="scatter",
                mode="lines",
                x=s.epoch.tolist(),
                y=_percent(s["null_mean"]),
                name="null baseline (a perfect generator: fresh draws, or held-out real data), mean",
                legendgroup="null",
                showlegend=first,
                line=dict(color=color, width=2, dash="dash"),
                hovertemplate=f"{group_name(g)} null<br>epoch %{{x}}<br>%{{y:.3f}}%<extra></extra>",
                **axis,
            )
        )
    i_all = list(groups).index("all") if "all" in groups else 0
    ax = dict(xaxis=f"x{i_all + 1 if i_all else ''}", yaxis=f"y{i_all + 1 if i_all else ''}")
    x_all = sorted(table.epoch.unique().tolist())
    cx = [x_all[0], x_all[-1]] if (chance is not None and x_all) else []
    specs.append(
        dict(
            type="scatter",
            mode="lines",
            x=cx,
            y=[100 * chance] * len(cx) if cx else [],
            name="analytic chance level n/(n+kᵈm)",
            legendgroup="chance",
            showlegend=bool(cx),
            visible=bool(cx),
            line=dict(color="#ff7f0e", width=1.5, dash="dot"),
            hovertemplate="analytic chance level %{y:.2f}%<extra></extra>",
            **ax,
        )
    )
    return specs


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def subtitle(table: pd.DataFrame, value: str, n_shown: int | None = None, n_null: int | None = None) -> str:
    """Three lines: what the figure shows; the criterion and how the curves are drawn; per group, whether its
    curve rises above its null by the one onset rule, sits on it, lies below it, or one repeat cannot tell
    (memnb.analysis.against_null; n_null: the null draws per repeat, config.n_null_points, None: n_generated)."""
    crit, thr = _one_setting(table)
    n = table.repeat.nunique() if n_shown is None else n_shown
    null = (
        "no null baseline (the run has no null set: pass null= to the Monitor)"
        if f"{value}_null" in table and table[f"{value}_null"].isna().all()
        else "dashed = null baseline"
    )
    head = f"{VALUE_TITLE[value]}.\n{CRITERIA.get(crit).text(thr)}; mean of {n} repeat(s) with 95% t-band, faint lines = repeats, {null}"
    st = standing_or_none(table, value, n_null)
    if st is None:
        return head
    names = {g: group_name(g) for g in st.group}
    return f"{head}\nAgainst the null (one onset rule: 5 points above it at 5 % over the curve, over repeats): {standing_line(st, names)}"


def rates_figure(
    table: pd.DataFrame,
    value: str = "memorized",
    *,
    title: str = "",
    groups: Sequence[str] | None = None,
    repeats: Iterable[int] | None = None,
    chance: float | None = None,
    confidence: float = 0.95,
    epoch_range: tuple[int, int] | None = None,
    width: int = 1100,
    height: int = 760,
    figure_class=go.Figure,
    n_null: int | None = None,
) -> go.Figure:
    """One panel per group (own y-axis, in %), rates over evaluated epochs: repeats, mean with band, null.

    table: the rows of one criterion at one threshold. value: 'memorized' (share of the
    generated set attributed to the group: the paper's view) or 'copied' (share of the group's
    training points copied). chance: the analytic null level drawn on the 'all' panel (pass it
    for the paper criterion and 'memorized'). n_null: the null draws per repeat (config.n_null_points), for the
    subtitle's below-the-null test (None: as many as generated samples, memnb's default).
    """
    _one_setting(table)
    groups = display_groups(table.group.unique()) if groups is None else list(groups)
    specs = trace_specs(
        table, value, groups=groups, repeats=repeats, chance=chance, confidence=confidence, epoch_range=epoch_range
    )
    rows = 2 if len(groups) > 2 else 1
    cols = int(np.ceil(len(groups) / rows))
    base = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=_subplot_titles(table, groups),
        shared_xaxes=True,
        horizontal_spacing=0.08,
        vertical_spacing=0.12,
    )
    fig = base
    fig.add_traces(specs)
    n_shown = len(set(table.repeat) if repeats is None else set(repeats))
    shown = table if repeats is None else table[table.repeat.isin(set(repeats))]
    text = title_html(title, subtitle(shown, value, n_shown, n_null))
    fig.update_layout(
        # anchored at the top (plotly centres a multi-line title in the margin, over the panels' titles)
        title=top_title(text),
        width=width,
        height=height,
        template="plotly_white",
        legend=dict(orientation="h", yanchor="top", y=-0.09, xanchor="left", x=0.0),
        # room for every title line and, below them, the panels' own titles
        margin=dict(t=56 + 20 * title_lines(text), b=95, l=70, r=20),
        hovermode="closest",
    )
    for i in range(len(groups)):
        r, c = i // cols + 1, i % cols + 1
        fig.update_xaxes(
            title_text="epoch (training epochs completed)" if r == rows else None, row=r, col=c, showticklabels=True
        )
        fig.update_yaxes(title_text=VALUE_AXIS[value], row=r, col=c, rangemode="tozero", ticksuffix="%")
    return fig if figure_class is go.Figure else figure_class(fig)


def paper_view(table: pd.DataFrame, config=None, title: str = "", **kw) -> go.Figure:
    """View 1: memorized samples per group, % of the generated set, with the analytic chance level."""
    crit, thr = _one_setting(table)
    chance = (
        chance_level(config.n_train, config.n_test_points, thr, config.dim)
        if (config is not None and crit == "paper" and analytic_null(config))
        else None
    )
    if config is not None:
        kw.setdefault("n_null", config.n_null_points)
    return rates_figure(table, "memorized", title=title, chance=chance, **kw)


def group_view(table: pd.DataFrame, title: str = "", **kw) -> go.Figure:
    """View 2: share of each group's training points copied."""
    return rates_figure(table, "copied", title=title, **kw)


def sweep_view(
    summary: pd.DataFrame,
    grid_fields: Sequence[str],
    value: str = "copied",
    title: str = "",
    groups: Sequence[str] | None = None,
) -> go.Figure:
    """A sweep at a glance (`memnb.workflows.sweep.grid_summary` rows): per group (one panel each), every configuration's
    final excess over its null baseline (value - null, percentage points) with its 95% t-interval;
    the null baseline is the dashed zero line. x: the configuration, labelled by its grid values."""
    s = summary.copy()
    s["config"] = [" · ".join(f"{f}={row[f]}" for f in grid_fields) or str(row["run"]) for _, row in s.iterrows()]
    order = list(dict.fromkeys(s["config"]))
    groups = display_groups(s.group.unique()) if groups is None else groups
    present = [g for g in groups if g in set(s.group)]
    fig = make_subplots(
        rows=len(present),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[group_name(g) for g in present],
    )
    for i, g in enumerate(present):
        rows = s[s.group == g].set_index("config").reindex(order)
        fig.add_trace(
            go.Scatter(
                x=order,
                y=rows["excess_pp"],
                mode="markers",
                marker=dict(size=9, color=group_color(g, present)),
                name=group_name(g),
                error_y=dict(type="data", array=rows["excess_ci95_pp"].fillna(0.0), visible=True),
                customdata=np.stack(
                    [rows["value_%"], rows["null_%"], rows["first_epoch_above_null"].astype(object)], axis=-1
                ),
                hovertemplate="%{x}<br>excess %{y:.2f} pp (value %{customdata[0]:.2f}%, null %{customdata[1]:.2f}%)"
                "<br>first epoch above null: %{customdata[2]}<extra>" + group_name(g) + "</extra>",
            ),
            row=i + 1,
            col=1,
        )
        fig.add_hline(y=0.0, line=dict(color="#777777", dash="dash", width=1.5), row=i + 1, col=1)
        fig.update_yaxes(title_text="excess, pp", row=i + 1, col=1)
    epochs = sorted(s.final_epoch.unique())
    sub = (
        f"{VALUE_AXIS[value]} minus its null baseline (fresh draws of the data; dashed line) at the final epoch "
        f"({', '.join(map(str, epochs))}); mean over repeats with 95% t-interval"
    )
    text = title_html(title or "Sweep: where each group ends against its null", sub)
    fig.update_layout(
        title=top_title(text),
        width=1100,
        height=180 + 230 * len(present),
        template="plotly_white",
        showlegend=False,
        margin=dict(t=56 + 20 * title_lines(text), b=140, l=80, r=20),
    )
    return fig
