"""The early-stopping study's figure (memnb.analysis.early_stopping): sample quality over training, and where
each callback would stop."""

from __future__ import annotations

import pandas as pd
import plotly.colors
import plotly.graph_objects as go


def plot_quality(quality: pd.DataFrame, evaluation: pd.DataFrame | None = None):
    """Plotly figure: energy distance to the test points over epochs (mean over repeats), one line per run,
    the fresh-data reference dashed; markers at each callback's stop epochs (per repeat) when `evaluation`
    (from `evaluate_runs`) is given. quality: `quality_by_epoch` frames concatenated with a ``run`` column."""
    fig = go.Figure()
    palette = plotly.colors.qualitative.Plotly
    for i, (run, g) in enumerate(quality.groupby("run", sort=False)):
        m = g.groupby("epoch")[["energy", "energy_reference"]].mean()
        colour = palette[i % len(palette)]
        fig.add_trace(
            go.Scatter(
                x=m.index, y=m.energy, name=run.rsplit("-r", 1)[0], mode="lines+markers", line=dict(color=colour)
            )
        )
        fig.add_trace(
            go.Scatter(
                x=m.index,
                y=m.energy_reference,
                mode="lines",
                showlegend=False,
                line=dict(dash="dash", color=colour),
                hoverinfo="skip",
            )
        )
    if evaluation is not None:
        symbols = ["triangle-down", "x", "diamond", "star"]
        for i, (cb, g) in enumerate(evaluation.dropna(subset=["stop_epoch"]).groupby("callback", sort=False)):
            fig.add_trace(
                go.Scatter(
                    x=g.stop_epoch,
                    y=g.energy_stop,
                    mode="markers",
                    name=f"stop: {cb}",
                    marker=dict(symbol=symbols[i % len(symbols)], size=9, color="black"),
                )
            )
    fig.update_layout(
        title="Sample quality over training: energy distance to held-out points (dashed: fresh data)",
        xaxis_title="epoch",
        yaxis_title="energy distance D",
        yaxis_type="log",
        height=450,
    )
    return fig
