"""Memorization-aware early stopping: a trainer callback that watches a memorization signal.

The paper (section 5.1) proposes to plant known outliers ("canaries") and stop training when
they start being copied, since "outliers are memorized last". `EarlyStopping` watches, at every
evaluated epoch, one null-corrected rate of the stored metric:

- ``group="outlier", value="copied"`` (the canary signal, default): the share of the planted
  outliers' training points that a memorized sample copies, minus the same share for fresh data
  draws (the null baseline: what a perfect generator "copies" by chance);
- ``group="all", value="memorized"`` (the overall signal): the share of all generated samples
  that is memorized, minus its null;
- any group of ``inlier | outlier | duplicate | all`` with ``copied | memorized``.

**Null.** The null draws have the same distribution at every epoch, so the callback's null is
the running mean of the null rates seen so far (this epoch included; never a future epoch), per
repeat; with ``null_corrected=False`` the raw rate is watched.

**Decision.** Per repeat the excess is compared with `threshold`; the ensemble's signal is the
mean excess over repeats (all repeats train as one ensemble, so they stop together). The
callback fires at the first evaluated epoch at which the signal has been above `threshold` at
`patience` consecutive evaluated epochs. With ``stop=True`` it asks the runner to stop there;
with ``stop=False`` it only records. Either way it records the epoch at which each repeat's own
excess crossed (a repeat trained alone would have stopped there), which is what a per-model
measurement needs.

The callback protocol itself is `memnb.core.callbacks`; `memnb.experiment.replay` feeds a stored run's
epochs to callbacks, so a run can be judged after the fact exactly as it would have been during training.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..core.callbacks import EpochContext, check_callbacks  # noqa: F401 (re-exported: the protocol's context)
from ..core.registry import CRITERIA
from ..core.run_config import RunConfig
from ..core.vocabulary import GROUP_LABELS, GROUPS, OUTLIER, VALUES
from ..experiment.replay import context_of, first_stop, replay  # noqa: F401 (re-exported for the study's users)
from ..experiment.runner import run_experiment
from ..experiment.samples import stored_samples
from ..experiment.tabulate import summarize, summary_at, summary_shape
from .inference import bootstrap_ci
from .quality import energy_distance


def _criterion_threshold(config: RunConfig, criterion: str, k: float | None) -> float:
    """The criterion's threshold: `k`, or the config's own (ratio, train_ratio, 1 / relative_alpha)."""
    if k is not None:
        return float(k)
    return config.own_threshold(criterion)


def epoch_rates(
    arrays: dict, context: EpochContext, criterion: str, k: float | None, group: str, value: str
) -> tuple[np.ndarray, np.ndarray]:
    """(observed (R,), null (R,)) rates in [0, 1] of one group at one evaluated epoch.

    Read from the epoch's stored ``summary`` (R, criterion, source, normalisation, group+all, K)
    when it holds the threshold, else recomputed from the stored distances (`results.summarize`).
    """
    kk = _criterion_threshold(context.config, criterion, k)
    s, thresholds = arrays.get("summary"), np.asarray(context.thresholds, np.float64)
    expected = summary_shape(len(context.groups), len(thresholds))[1:]
    hit = np.flatnonzero(np.isclose(thresholds, kk))
    if s is None or s.shape[1:] != expected or len(hit) == 0:
        s, j = summarize(arrays, context.groups, context.locations, np.array([kk])), 0
    else:
        j = int(hit[0])
    at = dict(criterion=criterion, value=value, group=group, threshold_index=j)
    return (
        summary_at(s, source="generated", **at).astype(np.float64),
        summary_at(s, source="null", **at).astype(np.float64),
    )


class EarlyStopping:
    """Stop (or record when one would stop) once a memorization signal crosses a threshold.

    group: ``inlier | outlier | duplicate | all`` (default ``outlier``: the planted canaries);
    value: ``copied`` (share of the group's points copied) or ``memorized`` (share of the generated
    set memorized and attributed to the group); criterion: ``paper | train_only | relative``;
    k: the criterion's threshold (None: the run's own, e.g. its ``ratio``); threshold: the
    signal level, a share in (-1, 1); patience: consecutive evaluated epochs above it (>= 1);
    null_corrected: subtract the running-mean null (see the module docstring); stop: ask the
    runner to stop (True) or only record (False).
    """

    def __init__(
        self,
        group: str = GROUPS[OUTLIER],
        value: str = "copied",
        criterion: str = "paper",
        k: float | None = None,
        threshold: float = 0.1,
        patience: int = 1,
        null_corrected: bool = True,
        stop: bool = True,
    ):
        def fail(name, v, allowed):
            raise ValueError(f"EarlyStopping field {name!r} = {v!r} is invalid; allowed: {allowed}")

        if group not in GROUP_LABELS:
            fail("group", group, " | ".join(GROUP_LABELS))
        if value not in VALUES:
            fail("value", value, " | ".join(VALUES))
        if criterion not in CRITERIA:
            fail("criterion", criterion, " | ".join(CRITERIA.names()))
        if k is not None and not (
            isinstance(k, (int, float)) and not isinstance(k, bool) and math.isfinite(k) and k > 1
        ):
            fail("k", k, "None (the run's own threshold) or a finite number > 1")
        if not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and -1 < threshold < 1):
            fail("threshold", threshold, "a number > -1 and < 1 (a share, or a difference of shares)")
        if not (isinstance(patience, int) and not isinstance(patience, bool) and patience >= 1):
            fail("patience", patience, "an integer >= 1")
        for name, flag in (("null_corrected", null_corrected), ("stop", stop)):
            if not isinstance(flag, bool):
                fail(name, flag, "True | False")
        self.group, self.value, self.criterion, self.k = group, value, criterion, k
        self.threshold, self.patience, self.null_corrected, self.stop = float(threshold), patience, null_corrected, stop
        self.reset()

    def settings(self) -> dict:
        return {
            "callback": "EarlyStopping",
            "group": self.group,
            "value": self.value,
            "criterion": self.criterion,
            "k": self.k,
            "threshold": self.threshold,
            "patience": self.patience,
            "null_corrected": self.null_corrected,
            "stop": self.stop,
        }

    def reset(self) -> None:
        self.history: list[dict] = []
        self.stop_epoch: int | None = None
        self.repeat_stop_epochs: list[int | None] | None = None
        self._null_sum: np.ndarray | None = None
        self._run = 0  # consecutive evaluations above threshold, ensemble signal
        self._repeat_run: np.ndarray | None = None

    def update(self, epoch: int, observed: np.ndarray, null: np.ndarray) -> bool:
        """Feed one evaluated epoch's per-repeat rates (R,) each; True when the callback fires (first time only).

        The pure decision rule, separate from reading arrays so that it can be driven by a scripted signal.
        """
        observed, null = np.asarray(observed, np.float64), np.asarray(null, np.float64)
        if self._null_sum is None:
            self._null_sum = np.zeros_like(null)
            self._repeat_run = np.zeros(len(observed), np.int64)
            self.repeat_stop_epochs = [None] * len(observed)
        self._null_sum = self._null_sum + null
        null_mean = self._null_sum / (len(self.history) + 1)
        excess = observed - null_mean if self.null_corrected else observed
        signal = float(np.mean(excess))
        self._repeat_run = np.where(excess > self.threshold, self._repeat_run + 1, 0)
        for r in np.flatnonzero(self._repeat_run >= self.patience):
            if self.repeat_stop_epochs[r] is None:
                self.repeat_stop_epochs[r] = int(epoch)
        self._run = self._run + 1 if signal > self.threshold else 0
        fires = self.stop_epoch is None and self._run >= self.patience
        if fires:
            self.stop_epoch = int(epoch)
        self.history.append(
            {
                "epoch": int(epoch),
                "signal": signal,
                "observed": observed.tolist(),
                "null": null_mean.tolist(),
                "excess": excess.tolist(),
            }
        )
        return fires

    def __call__(self, epoch: int, arrays: dict, context: EpochContext) -> bool:
        observed, null = epoch_rates(arrays, context, self.criterion, self.k, self.group, self.value)
        fires = self.update(epoch, observed, null)
        return fires and self.stop

    def record(self) -> dict:
        """Settings, the epoch at which it fired (None: never), each repeat's own crossing epoch, and the signal per epoch."""
        return {
            **self.settings(),
            "stop_epoch": self.stop_epoch,
            "repeat_stop_epochs": self.repeat_stop_epochs,
            "history": self.history,
        }


# -- what stopping buys: measured on a stored full-length run --------------------------------------------
def quality_by_epoch(results, seed: int = 0) -> pd.DataFrame:
    """Energy distance D (sqrt of data units, see memnb.analysis.quality) between each evaluated epoch's samples and the repeat's test points.

    results: a `Results`. Also, per repeat, the reference of a perfect generator: fresh draws from
    the data-generating process (as many as the samples, from `default_rng(seed + repeat)`) against
    the same test points. Columns: repeat, epoch, energy, energy_reference.
    """
    from ..data.injection import make_training_set, sample_data_distribution

    c, test = results.config, results.data["test_points"]
    rows = []
    for r in range(c.n_repeats):
        fresh = sample_data_distribution(
            c, make_training_set(c, r), c.n_generate_points, np.random.default_rng(seed + r)
        )
        ref = energy_distance(fresh, test[r])
        for e in results.evaluated_epochs:
            samples = stored_samples(results, e).points[r]  # the stored samples (a subsample, or none: NaN)
            energy = energy_distance(samples, test[r]) if len(samples) else float("nan")
            rows.append({"repeat": r, "epoch": e, "energy": energy, "energy_reference": ref})
    return pd.DataFrame(rows)


def label(cb) -> str:
    """Short text naming a callback's signal and threshold."""
    s = cb.settings()
    corr = " - null" if s["null_corrected"] else ""
    return f"{s['group']} {s['value']}{corr} > {s['threshold']:g} (x{s['patience']})"


def evaluate_stopping(results, callbacks, seed: int = 0, quality: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per callback and repeat: where it would stop a full-length run and what that buys.

    results: a complete `Results` (trained to the end); callbacks: `EarlyStopping` objects, replayed in
    record mode on the stored epochs (each repeat stops at its own first crossing: a model trained
    alone); quality: `quality_by_epoch(results, seed)` (computed when None). Columns: callback,
    repeat, stop_epoch (NaN: never crossed, so no stop), final_epoch, epochs_saved (final - stop; 0
    when no stop), energy_stop, energy_final, energy_reference (energy distance D to the test points; at the stop epoch, at the
    end, and of fresh data draws), and for each group g of the run, excess_g_stop and excess_g_final:
    the share of g's points copied minus its null (mean over all epochs), under the callback's
    criterion and threshold, at the stop epoch (the final epoch when no stop) and at the end;
    energy_change = energy_stop - energy_final and avoided_g = excess_g_final - excess_g_stop (the
    memorization that stopping avoids), both paired within the repeat.
    """
    from .stats import excess_frame, signal_frame

    if not results.complete:
        raise ValueError(f"run {results.path.name} is not complete; allowed: a run trained to its last epoch")
    quality = quality_by_epoch(results, seed) if quality is None else quality
    q = quality.set_index(["repeat", "epoch"])
    c, final = results.config, results.config.epochs
    table = results.table()
    rows = []
    for cb in callbacks:
        cb_record = replay(results, [_record_only(cb)])[0]
        k = _criterion_threshold(c, cb.criterion, cb.k)
        ex = excess_frame(signal_frame(table, cb.criterion, k, "copied")).set_index(["repeat", "group", "epoch"]).excess
        for r, stop in enumerate(cb_record["repeat_stop_epochs"]):
            at = final if stop is None else stop
            row = {
                "callback": label(cb),
                "repeat": r,
                "stop_epoch": np.nan if stop is None else stop,
                "final_epoch": final,
                "epochs_saved": final - at,
                "energy_stop": q.loc[(r, at), "energy"],
                "energy_final": q.loc[(r, final), "energy"],
                "energy_reference": q.loc[(r, final), "energy_reference"],
            }
            row["energy_change"] = (
                row["energy_stop"] - row["energy_final"]
            )  # paired, per repeat: < 0 = better at the stop
            for g in sorted(set(ex.index.get_level_values("group"))):
                row[f"excess_{g}_stop"], row[f"excess_{g}_final"] = ex.loc[(r, g, at)], ex.loc[(r, g, final)]
                row[f"avoided_{g}"] = row[f"excess_{g}_final"] - row[f"excess_{g}_stop"]
            rows.append(row)
    return pd.DataFrame(rows)


def _record_only(cb: EarlyStopping) -> EarlyStopping:
    """A copy of `cb` that records without stopping (so a replay sees every epoch)."""
    return EarlyStopping(**{k: v for k, v in cb.settings().items() if k != "callback"} | {"stop": False})


def evaluate_runs(runs, callbacks, seed: int = 0, quality: pd.DataFrame | None = None) -> pd.DataFrame:
    """`evaluate_stopping` of every run (complete Results), with columns run, dataset, n_outliers first.

    quality: `quality_runs(runs, seed)` when already computed (else computed per run)."""
    frames = []
    for res in runs:
        q = None if quality is None else quality[quality.run == res.path.name]
        ev = evaluate_stopping(res, callbacks, seed, q)
        ev.insert(0, "n_outliers", res.config.n_outliers)
        ev.insert(0, "dataset", res.config.dataset)
        ev.insert(0, "run", res.path.name)
        frames.append(ev)
    return pd.concat(frames, ignore_index=True)


def stopping_summary(
    evaluation: pd.DataFrame, by=("callback",), n_bootstrap: int = 10_000, seed: int = 0
) -> pd.DataFrame:
    """Mean over repeats, with a percentile-bootstrap interval (own generator per cell), of the numeric
    columns of `evaluate_stopping` per `by` cell; plus stopped (repeats that crossed) and n_repeats.

    Means of a column with NaN (stop_epoch of repeats that never stopped) are over the others.
    """
    by = list(by)
    skip = set(by) | {"run", "dataset", "n_outliers", "repeat", "final_epoch"}
    cols = [c for c in evaluation.columns if c not in skip and pd.api.types.is_numeric_dtype(evaluation[c])]
    rows = []
    for i, (key, g) in enumerate(evaluation.groupby(by, sort=False)):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row.update(n_repeats=len(g), stopped=int(g.stop_epoch.notna().sum()), final_epoch=int(g.final_epoch.max()))
        for j, col in enumerate(cols):
            est, lo, hi = bootstrap_ci(g[col].to_numpy(), n_bootstrap, seed=seed + i * len(cols) + j)
            row.update({col: est, f"{col}_low": lo, f"{col}_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame, by=("callback",)) -> pd.DataFrame:
    """The summary as text: stopped repeats, stop epoch, epochs saved, energy distance at the stop and at the end
    (and of fresh data), and each group's copied excess at the stop and at the end, as 'mean [low, high]'."""

    def cell(col, digits=3):
        if col not in summary:
            return None
        return [
            ("never" if np.isnan(m) else f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]")
            for m, lo, hi in zip(summary[col], summary[f"{col}_low"], summary[f"{col}_high"])
        ]

    out = {k: summary[k] for k in by}
    out["stopped"] = [f"{s}/{n}" for s, n in zip(summary.stopped, summary.n_repeats)]
    out["stop epoch"] = cell("stop_epoch", 0)
    out["epochs saved"] = cell("epochs_saved", 0)
    out["energy at stop"] = cell("energy_stop")
    out["energy at end"] = cell("energy_final")
    out["energy stop - end"] = cell("energy_change")
    out["energy, fresh data"] = cell("energy_reference")
    groups = [c[len("excess_") : -len("_stop")] for c in summary if c.startswith("excess_") and c.endswith("_stop")]
    for g in groups:  # the run's own groups (config.group_names), as evaluate_stopping named them
        out[f"{g} excess at end"] = cell(f"excess_{g}_final")
        out[f"{g} avoided"] = cell(f"avoided_{g}")
    return pd.DataFrame(out)


def stopped_run(results, callback: EarlyStopping, root) -> dict:
    """Train `results`' config again with `callback` (stop=True) into `root` and compare with the full run.

    results: a complete `Results`; root: another runs folder (the full run's folder would be returned
    unchanged). Returns: stopped_at_epoch (None: never fired), complete, the stopped and the full
    run's wall seconds and compute seconds (training + generation + metric), from their manifests
    (None when a run was not trained in one session: a manifest times its last session only, so
    time a stopped run in an empty root), and identical: whether every table row the two runs share
    is equal (the stopped run is a prefix of the full one).
    """
    stopped = run_experiment(results.config, root=root, progress=False, callbacks=[callback])

    def seconds(m, wall):
        if m.get("resumed_from_epoch", 0) != 0:
            return None
        return round(
            m["wall_s_this_session"] if wall else sum(m.get(k, 0.0) for k in ("train_s", "generate_s", "metric_s")), 1
        )

    a, b = stopped.table(), results.table()
    b = b[b.epoch.isin(a.epoch.unique())].reset_index(drop=True)
    return {
        "run": results.path.name,
        "stopped_at_epoch": stopped.stopped_at_epoch,
        "complete": stopped.complete,
        "stopped_wall_s": seconds(stopped.manifest, True),
        "full_wall_s": seconds(results.manifest, True),
        "stopped_compute_s": seconds(stopped.manifest, False),
        "full_compute_s": seconds(results.manifest, False),
        "identical": bool(a.reset_index(drop=True).equals(b)),
    }


def quality_runs(runs, seed: int = 0) -> pd.DataFrame:
    """`quality_by_epoch` of every run, with a ``run`` column."""
    return pd.concat([quality_by_epoch(r, seed).assign(run=r.path.name) for r in runs], ignore_index=True)
