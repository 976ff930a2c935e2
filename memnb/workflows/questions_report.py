"""The open questions' answer (`Answer`, made by `questions.answer`) and how it reads: the readable tables of the
findings page, Markdown, plain sentences from the numbers, and every table and figure written to a folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .questions_grid import describe


# -- the answer, as measured by questions.answer --------------------------------------------------------------
@dataclasses.dataclass
class Answer:
    """Everything the three questions measured: tidy tables and plotly figures."""

    params: dict[str, Any]
    profile: str
    reductions: dict[str, tuple[Any, Any]]
    tables: dict[str, pd.DataFrame]
    dependence: str
    wall_s: float
    sweep_wall_s: float

    def figures(self) -> dict:
        from ..views.timescales import plot_cells, plot_quality_memorization, plot_scaling

        t = self.tables
        return {
            "scaling": plot_scaling(t["times"][t["times"].part == 1], t["scaling"]),
            "cells": plot_cells(t["cells"]),
            "quality": plot_quality_memorization(t["trajectories"], t["marks"]),
        }

    def text(self) -> str:
        return summary_text(self)


def _alpha(a: float, lo: float, hi: float) -> str:
    """α [low, high] with an unbounded end written as ±inf (the data do not bound it)."""
    if not np.isfinite(a):
        return "n/a"
    end = lambda v: f"{v:.2f}" if np.isfinite(v) else ("inf" if v > 0 else "-inf")  # noqa: E731
    return f"{a:.2f} [{end(lo)}, {end(hi)}]"


def _interval(row, key) -> str:
    if not np.isfinite(row[key]):
        return "n/a"
    return f"{row[key]:+.0f} [{row[key + '_low']:+.0f}, {row[key + '_high']:+.0f}]"


def _p(p: float) -> str:
    """A p-value as text: 3 decimals, or 2 significant digits below 0.001 (20 repeats reach 1e-5)."""
    return "n/a" if not np.isfinite(p) else f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def readable(a: Answer) -> dict[str, pd.DataFrame]:
    """The tables for the findings page: scaling, ordering per n, windows per n, the part-2 cells."""
    t = a.tables
    s = t["scaling"].copy()
    s["alpha [CI]"] = [_alpha(r.alpha, r.alpha_low, r.alpha_high) for r in s.itertuples()]
    if "alpha_censored" in s:  # the calibrated fit first (issue 25), the least-squares one beside it
        s["alpha censored [CI]"] = [
            _alpha(r.alpha_censored, r.alpha_censored_low, r.alpha_censored_high) for r in s.itertuples()
        ]
    else:
        s["alpha censored [CI]"] = "n/a"
    s = s.rename(columns={"alpha [CI]": "alpha least squares [CI]"})
    cols = ["dataset", "time", "alpha censored [CI]", "alpha least squares [CI]", "n_timed", "n_censored", "n_values"]
    scaling = s[cols + ["n_last", "n_off"]]
    scaling = scaling.assign(bonnaire_alpha_1_inside=s.bonnaire_linear_in_interval)

    def comparison(c: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        out = c[keys].copy()
        out["tau_mem median (cens.)"] = [
            f"{m:.0f} ({k}/{r})" if np.isfinite(m) else f"never ({k}/{r})"
            for m, k, r in zip(c.tau_mem_median, c.tau_mem_censored, c.n_repeats)
        ]
        for g in ("inl", "out", "dup"):
            out[f"onset {g} (cens.)"] = [
                f"{m:.0f} ({k})" if np.isfinite(m) else f"never ({k})"
                for m, k in zip(c[f"onset_{g}_median"], c[f"onset_{g}_censored"])
            ]
        out["out - inl [CI]"] = [_interval(r, "out_minus_inl") for _, r in c.iterrows()]
        fmt = _p
        out["p inl"] = c.p_inl.map(fmt)
        if "p_inl_holm" in c:  # the part-2 cells: Holm-adjusted over the cells (questions_stats.holm_cells)
            out["p inl (Holm)"] = c.p_inl_holm.map(fmt)
        out["out - dup [CI]"] = [_interval(r, "out_minus_dup") for _, r in c.iterrows()]
        out["p dup"] = c.p_dup.map(fmt)
        if "p_dup_holm" in c:
            out["p dup (Holm)"] = c.p_dup_holm.map(fmt)
        out["verdict"] = c.verdict
        if "verdict_holm" in c:
            out["verdict (Holm)"] = c.verdict_holm
        return out

    w = t["windows"].copy()
    windows = pd.DataFrame(
        {
            "dataset": w.dataset,
            "n": w.n,
            "horizon": w.horizon.astype(int),
            "tau_gen median": [
                f"{v:.0f} ({k})" if np.isfinite(v) else f"never ({k})"
                for v, k in zip(w.tau_gen_median, w.tau_gen_censored)
            ],
            "tau_mem median": [
                f"{v:.0f} ({k})" if np.isfinite(v) else f"never ({k})"
                for v, k in zip(w.tau_mem_median, w.tau_mem_censored)
            ],
            "window median": [
                f"{'≥ ' if k * 2 >= r else ''}{v:.0f} ({k})" if np.isfinite(v) else "n/a"
                for v, k, r in zip(w.window_median, w.window_censored, w.n_repeats)
            ],
            "tau_plateau median": w.tau_plateau_median.map(lambda v: f"{v:.0f}" if np.isfinite(v) else "n/a"),
            "plateau window median": [
                f"{'≥ ' if k * 2 >= r else ''}{v:.0f} ({k})" if np.isfinite(v) else "n/a"
                for v, k, r in zip(w.window_plateau_median, w.window_plateau_censored, w.n_repeats)
            ],
            "final memorized / null": [f"{m:.3f} / {q:.3f}" for m, q in zip(w.final_memorized, w.final_null)],
            "final D / D_fresh": w.final_energy_ratio.round(2),
        }
    )
    return {
        "scaling": scaling,
        "ordering": comparison(t["ordering"], ["dataset", "n"]),
        "windows": windows,
        "cells": comparison(t["cells"], ["factor", "hidden_size", "hidden_layers", "learning_rate", "batch_size"]),
    }


def markdown(frame: pd.DataFrame) -> str:
    """A frame as a GitHub Markdown table (pipes in cells escaped)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def summary_text(a: Answer) -> str:
    """Plain sentences from the numbers, one paragraph per question (the findings page quotes them)."""
    t = a.tables
    paras = []
    for r in t["scaling"][t["scaling"].time == "tau_mem"].itertuples():
        law = "inside" if r.bonnaire_linear_in_interval else "outside"
        off = (
            f"no repeat memorizes from n = {r.n_off:.0f} on"
            if np.isfinite(r.n_off)
            else "memorization is seen at every n"
        )
        cens = getattr(r, "alpha_censored", np.nan)
        if np.isfinite(cens):  # the calibrated estimate (memnb.analysis.censored); least squares for comparison
            fit = (
                f"alpha = {_alpha(cens, r.alpha_censored_low, r.alpha_censored_high)} (censored fit; least squares "
                f"{_alpha(r.alpha, r.alpha_low, r.alpha_high)}, biased); Bonnaire et al.'s alpha = 1 is {law} the interval"
            )
        elif np.isfinite(r.alpha):
            fit = f"alpha = {_alpha(r.alpha, r.alpha_low, r.alpha_high)}; Bonnaire et al.'s alpha = 1 is {law} the interval"
        else:
            fit = "no fit (fewer than two sizes with a timed repeat)"
        paras.append(f"Q1 {r.dataset}: {fit}, from {r.n_timed} timed repeats ({r.n_censored} censored); {off}.")
    o = t["ordering"]
    ov = "verdict_holm" if "verdict_holm" in o else "verdict"
    paras.append(
        f"Q1 ordering per n (Holm-adjusted p over the {len(o)} runs): "
        + "; ".join(f"{r.dataset} n={r.n}: {getattr(r, ov)}" for r in o.itertuples())
        + "."
    )
    c = t["cells"]
    v = "verdict_holm" if "verdict_holm" in c else "verdict"
    floor = (
        f" (with {int(c.n_repeats.min())} repeats the smallest Holm-adjusted p is {_p(c.min_p_holm.min())})"
        if len(c) and "min_p_holm" in c
        else ""
    )
    paras.append(
        f"Q2: verdicts (Holm-adjusted p over the {len(c)} cells) of the model cells {_counts(c[c.factor == 'model'][v])}, "
        f"of the training cells {_counts(c[c.factor == 'training'][v])}{floor}: the ordering depends on {a.dependence}."
    )
    w = t["windows"]

    def medians(column: str) -> str:  # "moons n=76: 2783; ..." with "(lower bound)" where most repeats are censored
        return "; ".join(
            f"{r.dataset} n={r.n}: {getattr(r, column + '_median'):.0f}"
            + (" (lower bound)" if getattr(r, column + "_censored") * 2 >= r.n_repeats else "")
            for r in w.itertuples()
            if np.isfinite(getattr(r, column + "_median"))
        )

    paras.append(
        f"Q3 window tau_mem - tau_gen (median steps): {medians('window')}; "
        f"tau_mem - tau_plateau: {medians('window_plateau')}."
    )
    return "\n".join(paras)


def _counts(verdicts: pd.Series) -> str:
    return ", ".join(f"{v} {int(k)}" for v, k in verdicts.value_counts().items()) or "none"


def write(a: Answer, out_dir: Path | str, images: bool = True) -> list[Path]:
    """Every table as CSV, the readable tables as one Markdown file, the figures as HTML (and PNG/SVG with
    Chromium) under out_dir."""
    from ..views.export import export

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in a.tables.items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    md = out / "tables.md"
    md.write_text(
        "\n\n".join(f"### {k}\n\n{markdown(v)}" for k, v in readable(a).items())
        + f"\n\n{summary_text(a)}\n\nwall {a.wall_s:.0f} s (sweep {a.sweep_wall_s:.0f} s)\n"
    )
    written.append(md)
    written += export(a.figures(), out, "questions", title=describe(a.profile, a.reductions, a.params), images=images)
    return written
