"""The verdict's figures (memnb.analysis.verdict): per run, the null-corrected rates and the first copies
over epochs; per metric and run, each repeat's time to memorization per group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.against_null import BELOW_SIGNIFICANCE
from ..analysis.copies import first_copies
from ..analysis.runs import describe
from ..analysis.stats import null_corrected, signal_frame, zu_signal_frame
from ..analysis.verdict import Variant, below_null
from ..core.vocabulary import display_groups, group_color
from ..experiment.results import Results


def plot_null_corrected(
    results: Results,
    value: str = "copied",
    n_bootstrap: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    pool_null: bool = True,
):
    """Plotly figure of one run: observed minus null per group over epochs, mean over repeats with a
    bootstrap band over repeats; left the paper criterion at the run's ratio, right Meehan's effect."""
    c = results.config
    labels = c.group_names
    panels = [
        (f"paper k={c.ratio:g} ({value})", signal_frame(results.table(), "paper", c.ratio, value, results.zu())),
        ("Meehan 1/2 - U/mn", zu_signal_frame(results.zu())),
    ]
    fig = make_subplots(rows=1, cols=2, subplot_titles=[p[0] for p in panels])
    for col, (_, sig) in enumerate(panels, start=1):
        nc = null_corrected(sig, n_bootstrap, seed, level, pool_null)
        for g, d in nc.groupby("group"):
            d = d.dropna(subset=["excess"])
            fig.add_trace(
                go.Scatter(
                    x=np.r_[d.epoch, d.epoch[::-1]],
                    y=np.r_[d.high, d.low[::-1]],
                    fill="toself",
                    line=dict(width=0),
                    fillcolor=group_color(g, labels),
                    opacity=0.2,
                    showlegend=False,
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
            fig.add_trace(
                go.Scatter(x=d.epoch, y=d.excess, name=g, line=dict(color=group_color(g, labels)), showlegend=col == 1),
                row=1,
                col=col,
            )
        fig.add_hline(y=0, line=dict(color="grey", dash="dot"), row=1, col=col)
    below = {g: p for g, p in below_null(results, Variant("paper", value=value)).items() if p < BELOW_SIGNIFICANCE}
    note = (
        "; BELOW its null at the final epoch (a quality failure, not 'not memorized yet'): "
        + ", ".join(f"{g} (p = {p:.2g})" for g, p in below.items())
        if below
        else ""
    )
    fig.update_layout(
        title=f"{describe(c)}: observed minus null ({100 * level:.0f}% bootstrap band over repeats){note}", height=380
    )
    fig.update_xaxes(title_text="epoch")
    return fig


def plot_first_copies(results: Results, criterion: str = "paper", threshold: float | None = None):
    """Plotly figure of one run: share of each group's training points copied at least once by each
    epoch (solid: generated samples; dashed: the null draws, i.e. chance alone)."""
    c = results.config
    v = Variant(criterion, threshold).resolve(c)
    fc = first_copies(results, v.criterion, v.threshold)
    epochs = np.array(results.evaluated_epochs)
    fig = go.Figure()
    for g, d in fc.groupby("group"):
        for col, dash in (("first_copy", None), ("first_copy_null", "dash")):
            share = [(d[col] <= e).mean() for e in epochs]
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=share,
                    name=f"{g}{' (null)' if dash else ''}",
                    line=dict(color=group_color(g, c.group_names), dash=dash),
                )
            )
    fig.update_layout(
        title=f"{describe(c)}: share of points copied at least once ({v.label()})",
        xaxis_title="epoch",
        yaxis_title="share of the group's points",
        height=380,
    )
    return fig


def plot_timings(timing: pd.DataFrame, statistic: str = "onset"):
    """Plotly figure: per metric (rows) and run (columns), each repeat's time per group, with a box."""
    t = timing.copy()
    t["time"] = t[f"{statistic}_filled"]
    t["censored"] = np.where(t[f"{statistic}_censored"], "never (censored)", "observed")
    if "below_null" in t:  # not "not memorized yet": the generator is worse than the data there (issue 25)
        t["censored"] = np.where(t.below_null.astype(bool), "below its null (a quality failure)", t.censored)
    t["run"] = t["configuration"]
    groups = [g for g in display_groups(t.group.unique()) if g != "all"]
    fig = px.box(
        t,
        x="group",
        y="time",
        color="group",
        points="all",
        facet_row="metric",
        facet_col="run",
        hover_data=["repeat", "censored"],
        category_orders={"group": groups},
        color_discrete_map={g: group_color(g, groups) for g in groups},
        title=f"Time to memorization per group ({statistic}; censored = one step after the last epoch; "
        "hover: 'below its null' = a quality failure, not a late onset)",
        height=260 * max(1, t.metric.nunique()) + 120,
    )
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_yaxes(title_text="epoch", matches=None)
    return fig
