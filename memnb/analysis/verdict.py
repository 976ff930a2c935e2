"""The verdict on "outliers memorized last": one row per run x metric variant x timing statistic.

`timings` turns stored runs into per-repeat, per-group memorization times (see memnb.analysis.stats) under
several metric variants; `verdict_table` compares the outliers' times with the inliers' and the
duplicates' across repeats, and names the outcome by the rule `RULE`.
"""

from __future__ import annotations

import glob
import json
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import ExperimentConfig
from ..core.registry import CRITERIA
from ..core.storage import CorruptRunError
from ..core.vocabulary import SIGNAL_VALUES, group_color
from ..experiment.results import Results
from .stats import (
    TIMINGS,
    bootstrap_ci,
    cohens_dz,
    paired_permutation_test,
    rank_biserial,
    signal_frame,
    timing_table,
    zu_signal_frame,
)

VERDICTS = ("holds", "reversed", "inconclusive")
COMPARED = ("inlier", "duplicate")  # the outliers' times are compared with these groups'

RULE = """\
Verdict rule (one row = one run x metric variant x timing statistic).
For each repeat r and group g, T[r, g] is the first evaluated epoch at which g's null-corrected
rate (observed minus the null baseline, the null averaged over epochs) exceeds the margin
("onset"), or reaches half of its final value ("half"), counting only epochs where that excess is
also z standard errors above 0 (binomial, from the group's size; z = 0: the margin alone). A
group that never gets there is censored at one evaluation step after the last evaluated epoch
(conservative: it shrinks differences towards 0, never flips their sign).
For each comparison c in {inlier, duplicate}: D_c[r] = T[r, outlier] - T[r, c] (epochs; > 0 means
the outliers are memorized later). Reported: the mean of D_c over repeats, its percentile-bootstrap
interval over repeats (level 1 - alpha, seeded), and the two-sided exact paired sign-flip
permutation p-value (smallest attainable: 2 / 2^R, so R >= 6 repeats are needed for p < 0.05).
  holds        every available comparison has interval > 0 and p < alpha
               (outliers significantly later than inliers AND than duplicates);
  reversed     some comparison has interval < 0 and p < alpha
               (some group is memorized significantly LATER than the outliers);
  inconclusive otherwise (including too few repeats, or no comparison available).
Each row is its own test at level alpha; no correction across rows.
"""


@dataclass(frozen=True)
class Variant:
    """A metric variant: `criterion` in paper | train_only | relative at `threshold` (None: the
    run's own ratio, train_ratio or 1/relative_alpha), `value` (copied | memorized | conditional, see
    stats.signal_frame); or
    criterion "zu": Meehan et al.'s data-copying effect per cell (threshold and value unused)."""

    criterion: str
    threshold: float | None = None
    value: str = "copied"

    def resolve(self, config: ExperimentConfig) -> Variant:
        if self.criterion == "zu" or self.threshold is not None:
            return self
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion {self.criterion!r} is unknown; allowed: {' | '.join(CRITERIA.names())} | zu")
        return Variant(self.criterion, config.own_threshold(self.criterion), self.value)

    def label(self) -> str:
        if self.criterion == "zu":
            return "Meehan Z_U (1/2 - U/mn)"
        k = f"alpha={1 / self.threshold:.3g}" if self.criterion == "relative" else f"k={self.threshold:g}"
        return f"{self.criterion} {k} ({self.value})"


DEFAULT_VARIANTS = (
    Variant("paper"),
    Variant("paper", value="conditional"),
    Variant("train_only"),
    Variant("train_only", value="conditional"),
    Variant("relative"),
    Variant("relative", value="conditional"),
    Variant("zu"),
)


def describe(config: ExperimentConfig) -> str:
    """Short text naming a configuration: dataset, sizes, training, repeats, test set (and the
    outlier cluster's distance and spread where they are not the paper's)."""
    if getattr(config, "kind", None) == "monitor":
        return (
            f"{config.model} on {config.dataset} {config.n_base}+{config.n_duplicates}dup+{config.n_outliers}out, "
            f"{len(config.eval_epochs)} epochs observed up to {config.epochs}, R={config.n_repeats}, monitored"
        )
    default = ExperimentConfig()
    extra = "".join(
        f", {name} {getattr(config, name):g}"
        for name in ("outlier_distance", "outlier_spread")
        if getattr(config, name) != getattr(default, name)
    )
    return (
        f"{config.dataset} {config.n_base}+{config.n_duplicates}dup+{config.n_outliers}out, "
        f"{config.epochs} ep/{config.eval_every}, R={config.n_repeats}, test={config.test_set}{extra}"
    )


def check_arguments(*, alpha=None, margin=None, margin_zu=None, z=None, n_bootstrap=None, value=None) -> None:
    """ValueError naming the argument, its value and what is allowed, for the verdict's settings (those given)."""

    def real(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)

    if alpha is not None and not (real(alpha) and 0 < alpha < 1):
        raise ValueError(f"alpha = {alpha!r} is invalid; allowed: a test level > 0 and < 1 (intervals at 1 - alpha)")
    for name, v in (("margin", margin), ("margin_zu", margin_zu), ("z", z)):
        if v is not None and not (real(v) and v >= 0):
            raise ValueError(f"{name} = {v!r} is invalid; allowed: a finite number >= 0")
    if n_bootstrap is not None and not (
        isinstance(n_bootstrap, numbers.Integral) and not isinstance(n_bootstrap, bool) and n_bootstrap >= 1
    ):
        raise ValueError(f"n_bootstrap = {n_bootstrap!r} is invalid; allowed: an integer >= 1")
    if value is not None and value not in SIGNAL_VALUES:
        raise ValueError(f"value = {value!r} is invalid; allowed: {' | '.join(SIGNAL_VALUES)}")


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _runs_root(runs_root) -> Path:
    root = Path(runs_root)
    if not root.is_dir():
        what = "a file" if root.exists() else "nothing"
        raise ValueError(
            f"runs_root = {str(runs_root)!r} is {what}; allowed: the folder holding memnb runs (default outputs/runs)"
        )
    return root


def _one_run(name, runs_root) -> Path:
    """A run directory from a path or a bare run name (looked up under runs_root)."""
    p = Path(name)
    if p.is_dir():
        return p
    if len(p.parts) == 1:
        candidate = _runs_root(runs_root) / p
        if candidate.is_dir():
            return candidate
        raise ValueError(
            f"run {str(name)!r} is not a directory here nor a run under runs_root = {str(runs_root)!r}; "
            "allowed: a run directory, a run name under runs_root, a glob pattern, a sweep, or None"
        )
    raise ValueError(
        f"run {str(name)!r} does not exist; allowed: a run directory, a run name under runs_root, "
        "a glob pattern, a sweep, or None (every run under runs_root)"
    )


def find_runs(runs=None, runs_root: str | Path = "outputs/runs") -> list[Results]:
    """Results of `runs`: run directories or bare run names (looked up under `runs_root`; one, or a list), a
    glob pattern, a sweep (its output directory, or its ``table.parquet`` / ``runs.parquet``: the
    sweep's runs under the runs root its ``sweep.json`` names; see memnb.workflows.sweep), or None
    (every run under `runs_root`).

    Only directories with a config.json are runs; a requested name that is not one raises ValueError, as
    does a pattern or a root that finds no run. With runs=None, runs under the root that cannot be read
    are skipped with a warning naming each (the others are judged).
    """
    if runs is None:
        paths = sorted(p.parent for p in _runs_root(runs_root).glob("*/config.json"))
        if not paths:
            raise ValueError(
                f"runs_root = {str(runs_root)!r} holds no memnb run; run a figure notebook or "
                "memnb.run_experiment first, or pass runs="
            )
        found, skipped = [], []
        for p in paths:
            try:
                found.append(Results(p))
            except CorruptRunError as e:
                skipped.append(str(e))
        if skipped:
            warnings.warn(
                f"skipped {len(skipped)} unreadable run(s) under {runs_root}:\n  " + "\n  ".join(skipped), stacklevel=2
            )
        if not found:
            raise ValueError(f"runs_root = {str(runs_root)!r} holds no readable memnb run (skipped: {skipped})")
        return found
    if isinstance(runs, (str, Path)) and (Path(runs).suffix == ".parquet" or (Path(runs) / "sweep.json").is_file()):
        paths = sweep_runs(Path(runs), runs_root)
    elif isinstance(runs, (str, Path)) and _is_pattern(str(runs)):
        paths = sorted(Path(p) for p in glob.glob(str(runs)))
        if not paths:
            raise ValueError(f"runs = {str(runs)!r} matches no directory; allowed: a pattern matching run directories")
    elif isinstance(runs, (str, Path)):
        paths = [_one_run(runs, runs_root)]
    elif isinstance(runs, Iterable) and not isinstance(runs, (bytes, Mapping)):
        paths = [_one_run(p, runs_root) for p in runs]
        if not paths:
            raise ValueError("runs = [] is invalid; allowed: None (every run under runs_root) or at least one run")
    else:
        raise ValueError(
            f"runs = {runs!r} is invalid; allowed: None, a run directory or name, a list of them, a glob "
            "pattern or a sweep"
        )
    paths = list(dict.fromkeys(paths))  # a run named twice is judged once
    bad = [str(p) for p in paths if not (p / "config.json").exists()]
    if bad:
        raise ValueError(f"not memnb run directories (no config.json): {bad}")
    return [Results(p) for p in paths]


def sweep_runs(sweep: Path, runs_root: str | Path = "outputs/runs") -> list[Path]:
    """Run directories of a sweep: the ``run`` column of one of its parquet tables (its directory means its
    ``table.parquet``: the finished runs).

    Names resolve under the runs root recorded in the sweep's ``sweep.json`` when there is one, else `runs_root`."""
    if sweep.is_dir():
        sweep = sweep / "table.parquet"
    meta = sweep.parent / "sweep.json"
    names = pd.read_parquet(sweep, columns=["run"])["run"].astype(str).unique().tolist()
    root = Path(json.loads(meta.read_text())["runs_root"]) if meta.is_file() else Path(runs_root)
    return [root / n for n in names]


def run_signals(results: Results, variant: Variant) -> pd.DataFrame | None:
    """Signal frame of one run under one variant; None when the run cannot give it (e.g. no relative
    criterion stored, or an off-grid threshold, which is recomputed from the stored distances)."""
    v = variant.resolve(results.config)
    if v.criterion == "zu":
        return zu_signal_frame(results.zu())
    table = results.table()
    rows = table[(table.criterion == v.criterion) & np.isclose(table.threshold, v.threshold)]
    if rows.empty:
        rows = results.rates_at(v.criterion, v.threshold)
    if rows[["copied", "memorized"]].isna().all().all():
        return None  # the relative criterion of a run stored before d_mean50 existed
    return signal_frame(rows, v.criterion, v.threshold, v.value, results.zu() if v.value == "conditional" else None)


def timings(
    runs: Iterable[Results],
    variants=DEFAULT_VARIANTS,
    margin: float = 0.05,
    margin_zu: float = 0.05,
    pool_null: bool = True,
    z: float = 3.0,
) -> pd.DataFrame:
    """Per run, variant, repeat and group: onset and half-level epochs (see stats.timing_table).

    margin: on the per-point rates (copied share, or memorized share per point) minus their null;
    margin_zu: on Meehan's effect 1/2 - U/(mn) minus its null; z: see stats.timing_table. Extra
    columns: run, configuration, test_set, metric, margin, z.
    """
    check_arguments(margin=margin, margin_zu=margin_zu, z=z)
    frames = []
    for res in runs:
        for variant in variants:
            v = variant.resolve(res.config)
            sig = run_signals(res, v)
            if sig is None:
                continue
            m = margin_zu if v.criterion == "zu" else margin
            t = timing_table(sig, m, pool_null, z)
            t.insert(0, "metric", v.label())
            t.insert(0, "test_set", res.config.test_set)
            t.insert(0, "configuration", describe(res.config))
            t.insert(0, "run", res.path.name)
            t["margin"], t["z"] = m, z
            frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def decide(comparisons: dict[str, tuple[float, float, float]], alpha: float) -> str:
    """Verdict word from {group: (interval low, interval high, p)} under `RULE`."""
    avail = {g: c for g, c in comparisons.items() if not any(math.isnan(x) for x in c)}
    if not avail:
        return "inconclusive"
    if any(hi < 0 and p < alpha for lo, hi, p in avail.values()):
        return "reversed"
    if all(lo > 0 and p < alpha for lo, hi, p in avail.values()):
        return "holds"
    return "inconclusive"


def compare_groups(
    timing: pd.DataFrame, statistic: str = "onset", n_bootstrap: int = 10_000, seed: int = 0, alpha: float = 0.05
) -> dict:
    """One verdict row from one run's and variant's timing table (stats.timing_table rows).

    For each group in COMPARED: mean outlier-minus-group difference of the censored times,
    bootstrap interval (level 1 - alpha), paired permutation p, Cohen's d_z, rank-biserial r, how
    many of the two groups' times were censored and in how many repeats both were defined
    (n_pairs); then `decide`. Also outliers_censored / outliers_timed: in how many repeats the
    outliers never crossed, of those where they could be timed: a `holds` with the outliers
    censored in most repeats says "not memorized within the run", not "memorized later".
    """
    check_arguments(alpha=alpha, n_bootstrap=n_bootstrap)
    if statistic not in TIMINGS:
        raise ValueError(f"timing statistic {statistic!r} is unknown; allowed: {' | '.join(TIMINGS)}")
    wide = timing.pivot(index="repeat", columns="group", values=f"{statistic}_filled")
    cens = timing.pivot(index="repeat", columns="group", values=f"{statistic}_censored")
    row: dict = {
        "timing": statistic,
        "n_repeats": len(wide),
        "outliers_censored": int(cens["outlier"].sum()) if "outlier" in cens else 0,
        "outliers_timed": int(wide["outlier"].notna().sum()) if "outlier" in wide else 0,
    }
    comparisons = {}
    for g in COMPARED:
        key = f"out_minus_{g[:3]}"
        diff = (wide["outlier"] - wide[g]).to_numpy(np.float64) if "outlier" in wide and g in wide else np.array([])
        pairs = int(np.sum(~np.isnan(diff)))  # repeats where both groups could be timed (a cell may hold no test point)
        if pairs == 0:
            est = lo = hi = p = dz = rb = math.nan
            n_cens = 0
        else:
            est, lo, hi = bootstrap_ci(diff, n_bootstrap, seed=seed, level=1 - alpha)
            p = paired_permutation_test(diff, seed=seed)
            dz, rb = cohens_dz(diff), rank_biserial(diff)
            n_cens = int(cens[["outlier", g]].to_numpy().sum())
        row.update(
            {
                key: est,
                f"{key}_low": lo,
                f"{key}_high": hi,
                f"p_{g[:3]}": p,
                f"d_z_{g[:3]}": dz,
                f"r_rb_{g[:3]}": rb,
                f"censored_{g[:3]}": n_cens,
                f"n_pairs_{g[:3]}": pairs,
            }
        )
        comparisons[g] = (lo, hi, p)
    ps = [c[2] for c in comparisons.values() if not math.isnan(c[2])]
    row["p_max"] = max(ps) if ps else math.nan  # the intersection-union p of "later than both"
    row["verdict"] = decide(comparisons, alpha)
    return row


def verdict_table(timing: pd.DataFrame, n_bootstrap: int = 10_000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """One row per run x metric x timing statistic (columns of compare_groups plus run, configuration,
    test_set, metric), from the output of `timings`."""
    keys = ["run", "configuration", "test_set", "metric"]
    rows = []
    for key, t in timing.groupby(keys, sort=False):
        for statistic in TIMINGS:
            rows.append({**dict(zip(keys, key)), **compare_groups(t, statistic, n_bootstrap, seed, alpha)})
    return pd.DataFrame(rows)


def verdict(
    runs=None,
    runs_root: str | Path = "outputs/runs",
    variants=DEFAULT_VARIANTS,
    margin: float = 0.05,
    margin_zu: float = 0.05,
    n_bootstrap: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
    z: float = 3.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(verdict table, timing table) of `runs` (see find_runs), in one call; every argument checked before any work."""
    check_arguments(alpha=alpha, margin=margin, margin_zu=margin_zu, z=z, n_bootstrap=n_bootstrap)
    t = timings(find_runs(runs, runs_root), variants, margin, margin_zu, z=z)
    if t.empty:
        return pd.DataFrame(), t
    return verdict_table(t, n_bootstrap, seed, alpha), t


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The verdict table for reading: differences as 'mean [low, high]' epochs, p-values to 3 digits."""

    def interval(row, key):
        if math.isnan(row[key]):
            return "n/a"
        return f"{row[key]:+.1f} [{row[key + '_low']:+.1f}, {row[key + '_high']:+.1f}]"

    out = table[["configuration", "metric", "timing"]].copy()
    for g in ("inl", "dup"):
        out[f"outlier - {dict(inl='inlier', dup='duplicate')[g]} (epochs)"] = [
            interval(r, f"out_minus_{g}") for _, r in table.iterrows()
        ]
        out[f"p ({g})"] = table[f"p_{g}"].map(lambda p: "n/a" if math.isnan(p) else f"{p:.3f}")
    out["outliers never"] = [f"{c}/{n}" for c, n in zip(table.outliers_censored, table.outliers_timed)]
    out["verdict"] = table["verdict"]
    return out


def runs_report(found: list[Results], alpha: float = 0.05) -> str:
    """Text naming each run (configuration, complete or partial) and warning where its number of
    repeats cannot reach p < alpha."""
    lines = [f"{len(found)} run(s):"]
    for res in found:
        c = res.config
        state = "complete" if res.complete else f"PARTIAL ({len(res.evaluated_epochs)} epochs evaluated)"
        lines.append(f"  {res.path.name}: {describe(c)} [{state}]")
        floor = 2 / 2**c.n_repeats
        if floor >= alpha:
            lines.append(
                f"    only {c.n_repeats} repeat(s): the smallest attainable p is 2/2^{c.n_repeats} = "
                f"{floor:.3g} >= alpha = {alpha}, so this run can only be 'inconclusive'"
            )
    return "\n".join(lines)


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
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .stats import null_corrected

    c = results.config
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
                    fillcolor=group_color(g),
                    opacity=0.2,
                    showlegend=False,
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
            fig.add_trace(
                go.Scatter(x=d.epoch, y=d.excess, name=g, line=dict(color=group_color(g)), showlegend=col == 1),
                row=1,
                col=col,
            )
        fig.add_hline(y=0, line=dict(color="grey", dash="dot"), row=1, col=col)
    fig.update_layout(
        title=f"{describe(c)}: observed minus null ({100 * level:.0f}% bootstrap band over repeats)", height=380
    )
    fig.update_xaxes(title_text="epoch")
    return fig


def plot_first_copies(results: Results, criterion: str = "paper", threshold: float | None = None):
    """Plotly figure of one run: share of each group's training points copied at least once by each
    epoch (solid: generated samples; dashed: the null draws, i.e. chance alone)."""
    import plotly.graph_objects as go

    from .stats import first_copies

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
                    line=dict(color=group_color(g), dash=dash),
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
    import plotly.express as px

    t = timing.copy()
    t["time"] = t[f"{statistic}_filled"]
    t["censored"] = np.where(t[f"{statistic}_censored"], "never (censored)", "observed")
    t["run"] = t["configuration"]
    fig = px.box(
        t,
        x="group",
        y="time",
        color="group",
        points="all",
        facet_row="metric",
        facet_col="run",
        hover_data=["repeat", "censored"],
        category_orders={"group": ["inlier", "duplicate", "outlier"]},
        title=f"Time to memorization per group ({statistic}; censored = one step after the last epoch)",
        height=260 * max(1, t.metric.nunique()) + 120,
    )
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_yaxes(title_text="epoch", matches=None)
    return fig
