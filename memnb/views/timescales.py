"""Figures of the open questions (issue 17): τ_mem and τ_gen against n, the model-versus-training heat map, and
quality against memorization. Plotly figures from the tidy tables of `memnb.workflows.questions`; nothing here
trains, searches or computes a statistic."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.verdict import COMPARED

DATASET_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _law(n, a: float, alpha: float, color: str, dash: str | None, name: str):
    """The line τ = exp(a) n^α over the range of n (20 log-spaced points)."""
    import plotly.graph_objects as go

    ns = np.geomspace(np.min(n), np.max(n), 20)
    return go.Scatter(
        x=ns, y=np.exp(a + alpha * np.log(ns)), mode="lines", line=dict(color=color, dash=dash), name=name
    )


def plot_scaling(times: pd.DataFrame, scaling: pd.DataFrame, gen_scaling: pd.DataFrame | None = None):
    """τ_mem (filled) and τ_gen (open) per repeat against the training-set size n, log-log, with the fit of
    log τ_mem = a + α log n (solid: least squares; dashed: the censored fit, where scaling has it) and Bonnaire
    et al.'s α = 1 through the same centre (dotted).

    times: `questions` part-1 rows (dataset, n, tau_mem, tau_gen, tau_mem_censored, horizon); censored τ_mem
    are drawn as triangles at the horizon (a lower bound). scaling: `timescales.scaling_table` rows.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (ds, t) in enumerate(times.groupby("dataset", sort=False, observed=True)):
        color = DATASET_COLORS[i % len(DATASET_COLORS)]
        timed, cens = t[~t.tau_mem_censored], t[t.tau_mem_censored]
        fig.add_trace(
            go.Scatter(x=timed.n, y=timed.tau_mem, mode="markers", name=f"{ds}: τ_mem", marker=dict(color=color))
        )
        if len(cens):
            fig.add_trace(
                go.Scatter(
                    x=cens.n,
                    y=cens.horizon,
                    mode="markers",
                    name=f"{ds}: no τ_mem within the horizon",
                    marker=dict(color=color, symbol="triangle-up-open", size=10),
                )
            )
        gen = t[~t.tau_gen_censored]
        fig.add_trace(
            go.Scatter(
                x=gen.n,
                y=gen.tau_gen,
                mode="markers",
                name=f"{ds}: τ_gen",
                marker=dict(color=color, symbol="circle-open"),
            )
        )
        row = scaling[scaling.dataset == ds]
        if len(row) and "alpha_censored" in row and np.isfinite(row.alpha_censored.iloc[0]):
            r = row.iloc[0]  # the calibrated fit (censored repeats kept: memnb.analysis.censored), issue 25
            fig.add_trace(
                _law(t.n, r.a_censored, r.alpha_censored, color, "dash", f"{ds}: censored fit α = "
                     f"{r.alpha_censored:.2f} [{r.alpha_censored_low:.2f}, {r.alpha_censored_high:.2f}]")
            )  # fmt: skip
        if len(row) and np.isfinite(row.alpha.iloc[0]):
            r = row.iloc[0]
            fig.add_trace(
                _law(timed.n, r.a, r.alpha, color, None, f"{ds}: least-squares fit α = {r.alpha:.2f} "
                     f"[{r.alpha_low:.2f}, {r.alpha_high:.2f}] (biased: issue 25)")
            )  # fmt: skip
            ns = np.geomspace(timed.n.min(), timed.n.max(), 20)  # Bonnaire's α = 1 over the same range
            centre_x, centre_y = np.log(timed.n).mean(), np.log(timed.tau_mem).mean()
            fig.add_trace(
                go.Scatter(
                    x=ns,
                    y=np.exp(centre_y + (np.log(ns) - centre_x)),
                    mode="lines",
                    line=dict(color=color, dash="dot"),
                    name=f"{ds}: α = 1 (Bonnaire et al.)",
                )
            )
    fig.update_xaxes(type="log", title_text="training-set size n")
    fig.update_yaxes(type="log", title_text="optimizer steps")
    fig.update_layout(title="Time to memorization τ_mem and to good samples τ_gen against n", height=450)
    return fig


def plot_cells(cells: pd.DataFrame, value: str = "out_minus_inl"):
    """Heat maps of the outlier − inlier (or − duplicate: value ``out_minus_dup``) onset difference, in steps:
    left the model cells (width x depth, training fixed), right the training cells (learning rate x batch
    size, model fixed); each cell's text is the mean difference and its verdict (`verdict_holm`, the verdict under
    Holm-adjusted p, where the table has it) with its repeats."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = [
        ("model", "hidden_size", "hidden_layers", "width", "depth"),
        ("training", "learning_rate", "batch_size", "learning rate", "batch size"),
    ]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["model varied, training fixed", "training varied, model fixed"])
    vcol = "verdict_holm" if "verdict_holm" in cells else "verdict"  # Holm-adjusted over the cells (issue 25)
    lim = np.nanmax(np.abs(cells[value].to_numpy(np.float64))) if cells[value].notna().any() else 1.0
    lim = lim if lim > 0 else 1.0
    for col, (factor, xf, yf, xt, yt) in enumerate(panels, start=1):
        c = cells[cells.factor == factor]
        if c.empty:
            continue
        xs, ys = sorted(c[xf].unique()), sorted(c[yf].unique())
        z = np.full((len(ys), len(xs)), np.nan)
        text = np.full((len(ys), len(xs)), "", dtype=object)
        for _, r in c.iterrows():
            i, j = ys.index(r[yf]), xs.index(r[xf])
            z[i, j] = r[value]
            verdict = f"{r[vcol]} ({int(r.n_repeats)} rep.)" if "n_repeats" in r else r[vcol]
            text[i, j] = f"{r[value]:+.0f}<br>{verdict}" if np.isfinite(r[value]) else verdict
        fig.add_trace(
            go.Heatmap(
                x=[f"{x:g}" for x in xs],
                y=[f"{y:g}" for y in ys],
                z=z,
                text=text,
                texttemplate="%{text}",
                zmin=-lim,
                zmax=lim,
                colorscale="RdBu",
                colorbar=dict(title="steps"),
                showscale=col == 2,
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=xt, type="category", row=1, col=col)
        fig.update_yaxes(title_text=yt, type="category", row=1, col=col)
    what = {f"out_minus_{g[:3]}": g for g in COMPARED}[value]  # the verdict's column names its group
    fig.update_layout(
        title=f"Outlier − {what} time to memorization (train-only, steps; > 0: outliers later) and the verdict"
        + ("<br><sup>verdicts under Holm-adjusted p over the cells</sup>" if vcol == "verdict_holm" else ""),
        height=420,
    )
    return fig


def plot_quality_memorization(trajectories: pd.DataFrame, marks: pd.DataFrame):
    """Quality against memorization: per run (mean over repeats) the energy distance to held-out data over the
    fresh-data level (x, log) against the train-only memorized share minus its null (y), the optimizer step
    as colour; τ_gen (x), the quality plateau (open circle) and τ_mem (diamond) of each run marked at the
    evaluated epoch nearest their median.

    trajectories: rows run, label, step, energy_ratio, excess (one per run x evaluated epoch, means over
    repeats); marks: rows run, label, kind (tau_gen | tau_plateau | tau_mem), energy_ratio, excess.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    steps = trajectories.step.to_numpy(np.float64)
    cmin, cmax = (
        np.log10(max(1.0, np.nanmin(steps[steps > 0]) if (steps > 0).any() else 1.0)),
        np.log10(max(10.0, np.nanmax(steps))),
    )
    for i, (_run, t) in enumerate(trajectories.groupby("run", sort=False)):
        t = t.sort_values("step")
        fig.add_trace(
            go.Scatter(
                x=t.energy_ratio,
                y=t.excess,
                mode="lines+markers",
                name=str(t.label.iloc[0]),
                line=dict(color="rgba(120,120,120,0.5)", width=1),
                marker=dict(
                    color=np.log10(np.maximum(t.step, 1)),
                    colorscale="Viridis",
                    cmin=cmin,
                    cmax=cmax,
                    size=6,
                    colorbar=dict(title="log10 step") if i == 0 else None,
                    showscale=i == 0,
                ),
                hovertext=[f"{t.label.iloc[0]}: step {s:.0f}" for s in t.step],
            )
        )
    names = {"tau_gen": "τ_gen (median)", "tau_plateau": "quality plateau (median)", "tau_mem": "τ_mem (median)"}
    for kind, symbol in (("tau_gen", "x"), ("tau_plateau", "circle-open"), ("tau_mem", "diamond")):
        m = marks[marks.kind == kind]
        if len(m):
            fig.add_trace(
                go.Scatter(
                    x=m.energy_ratio,
                    y=m.excess,
                    mode="markers",
                    name=names[kind],
                    marker=dict(symbol=symbol, size=11, color="black"),
                    hovertext=m.label,
                )
            )
    fig.update_xaxes(type="log", title_text="energy distance to held-out data / fresh-data level")
    fig.update_yaxes(title_text="train-only memorized share − null")
    fig.update_layout(
        title="Quality against memorization over training (one curve per run)",
        height=640,
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
    )
    return fig
