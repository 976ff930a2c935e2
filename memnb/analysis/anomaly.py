"""Memorization-time anomaly detection (the paper's section 5.1), and the baselines it must beat.

The paper proposes: since outliers are memorized last, the training points a diffusion model
copies late are candidate outliers. memnb turns a run's stored dynamics into one anomaly score
per training point (higher = more anomalous) and measures, on runs with injected outliers, how
well each score recovers them (AUROC, average precision), beside scikit-learn's IsolationForest,
LocalOutlierFactor and a k-nearest-neighbour distance on the same training sets.

Memorization scores (from `copies.copy_matrix`: at every evaluated epoch, which training points a
memorized sample copies, under one criterion and threshold):

- ``first_copy`` (the paper's idea, taken literally; the default): the first evaluated epoch at
  which the point is copied; never copied = one evaluation step after the last evaluated epoch
  (later than any observed copy). Ties are many (evaluations are discrete): AUROC counts them as
  half, average precision as one block.
- ``copy_rarity``: 1 - the share of evaluated epochs at which the point is copied. It uses the
  whole trajectory rather than one crossing, so chance copies (the paper's criterion flags ~30%
  of a perfect generator's samples) average out instead of deciding the score.

Control: ``first_copy_null``, the ``first_copy`` score of the run's null draws (fresh data from
the data-generating process, searched against the same training and test sets at every
evaluation): what the score gives for a perfect generator, i.e. the part of its power that comes
from the geometry of the training and test sets and the criterion rather than from the model.

Labels: a point is positive iff it is an injected outlier (group 1); inliers and duplicates are
negatives. A score near AUROC 0.5 carries no information; below 0.5 it ranks outliers as *less*
anomalous (e.g. copied *earlier*).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.stats import rankdata
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from ..core.vocabulary import OUTLIER
from .copies import copy_matrix  # noqa: F401 (re-exported for users of the scores)
from .inference import bootstrap_ci

MEMORIZATION_SCORES = ("first_copy", "copy_rarity")
CONTROLS = ("first_copy_null",)
BASELINES = ("isolation_forest", "lof", "knn")
METHODS = MEMORIZATION_SCORES + CONTROLS + BASELINES
METHOD_LABELS = {
    "first_copy": "memorization: first copy",
    "copy_rarity": "memorization: copy rarity",
    "first_copy_null": "control: first copy by fresh data",
    "isolation_forest": "IsolationForest",
    "lof": "LocalOutlierFactor",
    "knn": "k-NN distance",
}


# -- scores -----------------------------------------------------------------------------------------
def memorization_score(epochs, copied, kind: str = "first_copy") -> np.ndarray:
    """Anomaly score per training point from its copy history (higher = more anomalous).

    epochs: (E,) increasing evaluated epochs; copied: (E, ..., N) bool, True where a memorized
    sample copies the point at that epoch. kind: ``first_copy`` (first copy epoch, in epochs;
    never = last epoch + one evaluation step) or ``copy_rarity`` (1 - share of the E evaluations
    at which it is copied, in [0, 1]). Returns (..., N) float64.
    """
    if kind not in MEMORIZATION_SCORES:
        raise ValueError(f"kind {kind!r} is unknown; allowed: {' | '.join(MEMORIZATION_SCORES)}")
    epochs = np.asarray(epochs, np.float64)
    copied = np.asarray(copied, bool)
    if epochs.ndim != 1 or len(epochs) == 0 or copied.shape[0] != len(epochs):
        raise ValueError(
            f"epochs {epochs.shape} and copied {copied.shape}: copied must be (E, ..., N) with E = len(epochs) >= 1"
        )
    if kind == "copy_rarity":
        return 1.0 - copied.mean(axis=0)
    step = epochs[-1] - epochs[-2] if len(epochs) > 1 else 1.0
    first = np.argmax(copied, axis=0)
    return np.where(copied.any(axis=0), epochs[first], epochs[-1] + step)


def knn_score(points, k: int = 5) -> np.ndarray:
    """Distance from each point to its k-th nearest *other* point (data units); points (N, d). Returns (N,)."""
    points = np.asarray(points, np.float64)
    if not (isinstance(k, int) and 1 <= k < len(points)):
        raise ValueError(f"k = {k!r} is invalid; allowed: an integer >= 1 and < the number of points {len(points)}")
    d, _ = cKDTree(points).query(points, k=k + 1)  # the first neighbour is the point itself
    return d[:, k]


def lof_score(points, n_neighbors: int = 20) -> np.ndarray:
    """LocalOutlierFactor's outlier factor (>1: sparser than its neighbours), points (N, d). Returns (N,)."""
    lof = LocalOutlierFactor(n_neighbors=min(n_neighbors, len(points) - 1))
    lof.fit(np.asarray(points, np.float64))
    return -lof.negative_outlier_factor_


def isolation_forest_score(points, seed: int, n_estimators: int = 100) -> np.ndarray:
    """IsolationForest's anomaly score (higher = shorter isolation paths), seeded; points (N, d). Returns (N,)."""
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(np.asarray(points, np.float64))
    return -forest.score_samples(np.asarray(points, np.float64))


# -- ranking quality ----------------------------------------------------------------------------------
def _check_labels(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(labels).astype(bool), np.asarray(scores, np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape}: allowed: two (N,) arrays")
    if y.all() or not y.any():
        raise ValueError("labels hold one class only; allowed: at least one positive and one negative")
    if not np.isfinite(s).all():
        raise ValueError("scores hold non-finite values; allowed: finite numbers")
    return y, s


def auroc(labels, scores) -> float:
    """Area under the ROC curve: P(score of a random positive > that of a random negative), ties counted 1/2.

    labels: (N,) bool or 0/1 (True = outlier); scores: (N,) finite, higher = more anomalous.
    Computed as the Mann-Whitney U statistic from average ranks. Returns a number in [0, 1].
    """
    y, s = _check_labels(labels, scores)
    ranks = rankdata(s)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(labels, scores) -> float:
    """Average precision: sum over distinct score levels t (descending) of (recall(t) - recall(t+)) * precision(t).

    Tied scores enter as one block (no interpolation), as in scikit-learn. labels, scores as in
    `auroc`. Returns a number in [0, 1]; its chance level is the share of positives.
    """
    y, s = _check_labels(labels, scores)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_level = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end index of each tied block
    tp = np.cumsum(y)[last_of_level]
    precision = tp / (last_of_level + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# -- the benchmark --------------------------------------------------------------------------------------
def score_run(
    results, criterion: str = "paper", threshold: float | None = None, k: int = 5, n_neighbors: int = 20, seed: int = 0
) -> pd.DataFrame:
    """AUROC and average precision of every method on every repeat of one stored run.

    results: a `Results` with injected outliers; criterion, threshold: the memorization
    criterion of the copy history (threshold None: the run's own, e.g. its ratio); k: the k-NN
    score's neighbour; n_neighbors: LOF's; seed: IsolationForest's random_state is seed + repeat.
    Scikit-learn and scipy are imported with this module, so no timing includes an import.
    Returns one row per repeat x method: run, dataset, n_base, n_outliers, repeat, method, auroc,
    ap, chance_ap (share of outliers), seconds (wall time of that score on that training set;
    memorization scores: reading and scoring the stored history, not the training).
    """
    c = results.config
    if c.n_outliers == 0:
        raise ValueError(f"run {results.path.name} has n_outliers = 0; allowed: a run with injected outliers")
    threshold = c.own_threshold(criterion) if threshold is None else threshold
    t0 = time.perf_counter()
    epochs, copied = copy_matrix(results, criterion, threshold)
    t_history = (time.perf_counter() - t0) / c.n_repeats
    points, groups = results.data["train_points"], results.data["groups"]
    rows = []
    for r in range(c.n_repeats):
        labels = groups[r] == OUTLIER
        for method in METHODS:
            t0 = time.perf_counter()
            if method in MEMORIZATION_SCORES:
                score = memorization_score(epochs, copied[0, :, r], method)
            elif method == "first_copy_null":
                score = memorization_score(epochs, copied[1, :, r], "first_copy")
            elif method == "knn":
                score = knn_score(points[r], k)
            elif method == "lof":
                score = lof_score(points[r], n_neighbors)
            else:
                score = isolation_forest_score(points[r], seed + r)
            seconds = time.perf_counter() - t0 + (0.0 if method in BASELINES else t_history)
            rows.append(
                {
                    "run": results.path.name,
                    "dataset": c.dataset,
                    "n_base": c.n_base,
                    "n_outliers": c.n_outliers,
                    "repeat": r,
                    "method": method,
                    "auroc": auroc(labels, score),
                    "ap": average_precision(labels, score),
                    "chance_ap": float(labels.mean()),
                    "seconds": seconds,
                }
            )
    return pd.DataFrame(rows)


def benchmark(runs, **kw) -> pd.DataFrame:
    """`score_run` of every run (Results), concatenated."""
    return pd.concat([score_run(r, **kw) for r in runs], ignore_index=True)


def benchmark_summary(
    scores: pd.DataFrame, n_bootstrap: int = 10_000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Mean over repeats and percentile-bootstrap interval of AUROC and AP per dataset x outlier count x method.

    Each cell's bootstrap draws from its own `numpy.random.default_rng(seed + cell number)`, so
    the same call gives the same intervals. Columns: dataset, n_outliers, method, n_repeats,
    auroc, auroc_low, auroc_high, ap, ap_low, ap_high, chance_ap, seconds (mean per training set).
    """
    rows = []
    order = {m: i for i, m in enumerate(METHODS)}
    cells = scores.groupby(["dataset", "n_outliers", "method"], sort=True)
    for i, ((dataset, n_out, method), g) in enumerate(cells):
        row = {"dataset": dataset, "n_outliers": n_out, "method": method, "n_repeats": len(g)}
        for j, metric in enumerate(("auroc", "ap")):
            est, lo, hi = bootstrap_ci(g[metric].to_numpy(), n_bootstrap, seed=seed + 2 * i + j, level=level)
            row.update({metric: est, f"{metric}_low": lo, f"{metric}_high": hi})
        row.update(chance_ap=g.chance_ap.mean(), seconds=g.seconds.mean())
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(
        ["dataset", "n_outliers", "method"], key=lambda s: s.map(order) if s.name == "method" else s, ignore_index=True
    )


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as text cells, 'mean [low, high]', one row per dataset x outliers x method."""

    def cell(row, m):
        return f"{row[m]:.3f} [{row[m + '_low']:.3f}, {row[m + '_high']:.3f}]"

    return pd.DataFrame(
        {
            "dataset": summary.dataset,
            "outliers": summary.n_outliers,
            "method": summary.method.map(METHOD_LABELS),
            "AUROC [95% CI]": summary.apply(cell, axis=1, m="auroc"),
            "AP [95% CI]": summary.apply(cell, axis=1, m="ap"),
            "AP chance": summary.chance_ap.map("{:.3f}".format),
        }
    )


def cost_table(runs, scores: pd.DataFrame) -> pd.DataFrame:
    """Seconds per training set: the diffusion run beside each method's scoring time.

    The diffusion run trains all repeats as one ensemble, so its times are divided by its repeats:
    ``diffusion_wall_s_per_set`` is the session's wall time (everything the user waits for: training,
    generating, measuring and writing every epoch's files and checkpoint), ``diffusion_compute_s_per_set``
    its training + generation + metric part. Both NaN when the manifest is missing or the run was resumed
    (its times would cover only the last session). Then one column per method: mean seconds per training set.
    """
    rows = []
    for res in runs:
        m, c = res.manifest, res.config
        partial = not m.get("complete") or m.get("resumed_from_epoch", 0) != 0
        compute = sum(m.get(k, 0.0) for k in ("train_s", "generate_s", "metric_s"))
        row = {
            "run": res.path.name,
            "dataset": c.dataset,
            "n_outliers": c.n_outliers,
            "epochs": c.epochs,
            "diffusion_wall_s_per_set": np.nan if partial else m.get("wall_s_this_session", np.nan) / c.n_repeats,
            "diffusion_compute_s_per_set": np.nan if partial else compute / c.n_repeats,
        }
        per = scores[scores.run == res.path.name].groupby("method").seconds.mean()
        row.update({f"{meth}_s": per.get(meth, np.nan) for meth in METHODS})
        rows.append(row)
    return pd.DataFrame(rows)
