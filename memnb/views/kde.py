"""The KDE bandwidth sweep's figure (memnb.analysis.kde): what each criterion and Z_U report, from perfect
copying (bandwidth 0) to pure noise; a share below its null is marked as such (a quality failure)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .titles import title_html, title_lines, top_title

CRITERION_COLORS = {"paper": "#1f77b4", "train_only": "#2ca02c", "relative": "#9467bd", "bonnaire_fmem": "#8c564b"}
MARKERS = {"above": "circle", "on": "circle-open", "below": "x"}


def kde_figure(summary: pd.DataFrame, group: str = "all", title: str = "") -> go.Figure:
    """Two panels over the bandwidth (a category axis: 0 has no logarithm): left, each criterion's memorized
    share of the generated set (%) for `group` with the paper criterion's null dashed, each point marked by
    its standing (filled: above its null, open: on it, x: below it); right, Z_U of the samples and of the
    null draws, with the one-sided 5 % lines at +-1.645.

    summary: `memnb.analysis.kde.sweep_summary` rows.
    """
    s = summary[summary.group == group].sort_values("bandwidth")
    if s.empty:
        raise ValueError(f"group {group!r} not in the summary; present: {sorted(summary.group.unique())}")
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[f"memorized, % of generated set ({group})", "Meehan et al.'s Z_U"],
        horizontal_spacing=0.1,
    )
    for crit, d in s.groupby("criterion", sort=False):
        x = [f"{h:g}" for h in d.bandwidth]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=d["memorized_%"],
                mode="lines+markers",
                name=crit,
                line=dict(color=CRITERION_COLORS.get(crit, "#333333")),
                marker=dict(symbol=[MARKERS[a] for a in d.against], size=9),
                customdata=d[["null_%", "against"]].to_numpy(),
                hovertemplate=f"{crit}<br>bandwidth %{{x}}<br>%{{y:.2f}}% (null %{{customdata[0]:.2f}}%: "
                "%{customdata[1]})<extra></extra>",
            ),
            row=1,
            col=1,
        )
        if crit == "paper":
            fig.add_trace(
                go.Scatter(
                    x=x, y=d["null_%"], mode="lines", name="paper: null", line=dict(color="#1f77b4", dash="dash")
                ),
                row=1,
                col=1,
            )
    z = s[s.criterion == s.criterion.iloc[0]]
    x = [f"{h:g}" for h in z.bandwidth]
    fig.add_trace(go.Scatter(x=x, y=z.z_u, mode="lines+markers", name="Z_U", line=dict(color="#d62728")), row=1, col=2)
    fig.add_trace(
        go.Scatter(x=x, y=z.z_u_null, mode="lines", name="Z_U: null", line=dict(color="#d62728", dash="dash")),
        row=1,
        col=2,
    )
    for y in (-1.645, 1.645):
        fig.add_hline(y=y, line=dict(color="#777777", dash="dot", width=1), row=1, col=2)
    sub = (
        "A KDE sampler of the training set: a training point plus Gaussian noise of sd = bandwidth x the data's sd. "
        "Marker: filled = above its null, open = on it, x = BELOW it (a quality failure: worse than the data, "
        "not anti-memorization); one-sided exact tests at 5 %, counts pooled over repeats. Z_U << 0: copying, "
        ">> 0: underfitting."
    )
    text = title_html(title or "What each criterion and Z_U report, from perfect copying to pure noise", sub)
    fig.update_layout(
        title=top_title(text),
        width=1100,
        height=480,
        template="plotly_white",
        margin=dict(t=56 + 20 * title_lines(text), b=60, l=70, r=20),
        legend=dict(orientation="h", yanchor="top", y=-0.15, xanchor="left", x=0.0),
    )
    fig.update_xaxes(title_text="bandwidth (units of the data's sd)", type="category")
    fig.update_yaxes(title_text="memorized, %", ticksuffix="%", row=1, col=1)
    fig.update_yaxes(title_text="Z_U", row=1, col=2)
    return fig
