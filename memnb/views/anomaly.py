"""The anomaly benchmark's figure (memnb.analysis.anomaly): AUROC and average precision of every method."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.anomaly import METHOD_LABELS

METHOD_COLORS = {
    "first_copy": "#d62728",
    "copy_rarity": "#ff7f0e",
    "first_copy_null": "#7f7f7f",
    "isolation_forest": "#1f77b4",
    "lof": "#2ca02c",
    "knn": "#9467bd",
}


def plot_benchmark(summary: pd.DataFrame):
    """Plotly figure: AUROC and AP (mean and interval over repeats) per dataset x outlier count, one colour per method."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("AUROC (0.5 = chance)", "average precision (dashes: chance)"))
    summary = summary.assign(cell=summary.dataset + ", " + summary.n_outliers.astype(str) + " outliers")
    for method, g in summary.groupby("method", sort=False):
        for col, metric in ((1, "auroc"), (2, "ap")):
            fig.add_trace(
                go.Scatter(
                    x=g.cell,
                    y=g[metric],
                    mode="markers",
                    name=METHOD_LABELS[method],
                    legendgroup=method,
                    showlegend=col == 1,
                    marker=dict(color=METHOD_COLORS[method], size=9),
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=g[f"{metric}_high"] - g[metric],
                        arrayminus=g[metric] - g[f"{metric}_low"],
                    ),
                ),
                row=1,
                col=col,
            )
    chance = summary.drop_duplicates("cell")
    fig.add_trace(
        go.Scatter(
            x=chance.cell,
            y=chance.chance_ap,
            mode="markers",
            name="chance",
            marker=dict(symbol="line-ew-open", size=24, color="black"),
        ),
        row=1,
        col=2,
    )
    fig.add_hline(y=0.5, line_dash="dash", line_color="grey", row=1, col=1)
    fig.update_layout(
        scattermode="group",
        height=430,
        title="Recovering injected outliers: mean over repeats, 95% bootstrap interval",
        yaxis_range=[0, 1.02],
        yaxis2_range=[0, 1.02],
    )
    return fig
