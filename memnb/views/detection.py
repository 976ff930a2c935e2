"""Views of the generation-free detectors (memnb.analysis.detection): per-group curves with their null beside them,
next to the exact test's, and per-point score trajectories."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.vocabulary import group_color, group_name


def plot_detector_curves(groups: pd.DataFrame, exact: pd.DataFrame | None = None, value: str = "share"):
    """Plotly figure, one panel per detector: per group the mean over repeats of `value` ("share": training points
    flagged; "auroc"; "tpr") against epoch, solid, with its null dashed (the held-out share for "share", 0.5 for
    "auroc", 0.01 for "tpr"); with `exact` (a signal frame of the exact test: repeat, epoch, group, signal, null)
    a last panel of the exact test's share copied, its null dashed. groups: `Results.detector_scores()` rows."""
    detectors = list(dict.fromkeys(groups.detector))
    titles = [*detectors, *(["exact test (share copied)"] if exact is not None else [])]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, shared_yaxes=value == "share")
    labels = list(dict.fromkeys(groups.group))
    null = {"share": None, "auroc": 0.5, "tpr": 0.01}[value]
    for col, det in enumerate(detectors, start=1):
        g = groups[groups.detector == det].groupby(["group", "epoch"])[[value, "null"]].mean().reset_index()
        for label in labels:
            c = g[g.group == label]
            colour = group_color(label, labels)
            fig.add_trace(
                go.Scatter(x=c.epoch, y=c[value], mode="lines+markers", name=group_name(label), legendgroup=label,
                           showlegend=col == 1, line=dict(color=colour)),
                row=1, col=col,
            )  # fmt: skip
            ref = c["null"] if null is None else [null] * len(c)
            fig.add_trace(
                go.Scatter(x=c.epoch, y=ref, mode="lines", line=dict(color=colour, dash="dash"), legendgroup=label,
                           showlegend=False, hoverinfo="skip"),
                row=1, col=col,
            )  # fmt: skip
    if exact is not None:
        col = len(titles)
        e = exact.groupby(["group", "epoch"])[["signal", "null"]].mean().reset_index()
        for label in labels:
            c = e[e.group == label]
            colour = group_color(label, labels)
            fig.add_trace(
                go.Scatter(x=c.epoch, y=c.signal, mode="lines+markers", line=dict(color=colour), legendgroup=label,
                           showlegend=False),
                row=1, col=col,
            )  # fmt: skip
            fig.add_trace(
                go.Scatter(x=c.epoch, y=c["null"], mode="lines", line=dict(color=colour, dash="dash"),
                           legendgroup=label, showlegend=False, hoverinfo="skip"),
                row=1, col=col,
            )  # fmt: skip
    what = {"share": "share of training points flagged", "auroc": "AUROC train vs held-out", "tpr": "TPR at 1% FPR"}
    fig.update_layout(
        title=f"Generation-free detectors per group: {what[value]} (dashed: its null), mean over repeats",
        height=380,
        width=max(600, 300 * len(titles)),
    )
    fig.update_xaxes(title_text="epoch")
    return fig


def plot_trajectories(points: pd.DataFrame, detector: str, n_per_group: int = 20, repeat: int = 0):
    """Plotly figure: the score of `n_per_group` training points per group (the first of each) over epochs, for one
    detector and repeat, with each group's held-out points' median dashed. points: `Results.detector_scores(
    per="point")` rows."""
    p = points[(points.detector == detector) & (points.repeat == repeat)]
    labels = list(dict.fromkeys(p.group))
    fig = go.Figure()
    for label in labels:
        colour = group_color(label, labels)
        train = p[(p.set == "train") & (p.group == label)]
        for i, (_pt, c) in enumerate(train.groupby("point", sort=True)):
            if i >= n_per_group:
                break
            fig.add_trace(
                go.Scatter(x=c.epoch, y=c.score, mode="lines", line=dict(color=colour, width=1), opacity=0.5,
                           name=group_name(label), legendgroup=label, showlegend=i == 0),
            )  # fmt: skip
        held = p[(p.set == "held") & (p.group == label)].groupby("epoch").score.median()
        fig.add_trace(
            go.Scatter(x=held.index, y=held.to_numpy(), mode="lines", line=dict(color=colour, dash="dash", width=3),
                       name=f"{group_name(label)}: held-out median", legendgroup=label),
        )  # fmt: skip
    fig.update_layout(
        title=f"{detector}: per-point scores over epochs (larger = more member-like), repeat {repeat}",
        xaxis_title="epoch",
        yaxis_title="score",
        height=420,
    )
    return fig
