"""The generation-free detectors validated against the exact test on the same run: onsets, ordering, per point.

A run with `detectors` holds, at every evaluated epoch, both the exact test (generated samples, their nearest
neighbours, the paper's criterion) and every detector's scores of every training and held-out point. Here, per
detector and group (inlier, outlier, duplicate):

- the onset: the detector's signal is the share of the group's training points flagged (score above the group's
  (1 - q) held-out quantile) with its null the held-out points' own share (floor(q m)/m) and its standard error
  sqrt(q (1 - q) (1/n + 1/m)) (the threshold is a quantile of m held-out points, not a known constant); the exact test's is the
  share of the group's training points copied by a memorized sample (criterion ``paper`` at the run's ratio, value
  ``copied``) with its null draws; both timed by the one rule of memnb.analysis.stats (`timing_table`: the first
  epoch whose excess over the null passes `margin` and z binomial standard errors), per repeat. Reported: the exact
  onset's mean and percentile-bootstrap interval over repeats, the detector's mean onset, their difference, and
  whether the detector's mean falls inside that interval;
- the ordering verdict (memnb.analysis.verdict.compare_groups: outliers later / earlier / inconclusive) of each;
- per training point: the Spearman correlation of the detector's first-flagged epoch with the exact test's
  first-copy epoch (memnb.analysis.copies.first_copies; never = censored one evaluation step after the run), and
  the AUROC of the detector's score at epoch e for "copied by epoch e", averaged over the epochs and repeats where
  both classes occur.

Membership is not copying: a detector measures whether the model treats a training point differently from a
held-out one of its group (it fits it), the exact test whether samples reproduce it. Where they disagree, that
difference is the finding, not an error of either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..metric.membership_null import auroc, first_flagged, group_thresholds
from ..metric.membership_scores import DEFAULT_Q, STORED
from .copies import first_copies
from .inference import bootstrap_ci
from .stats import timing_table
from .verdict import Variant, compare_groups, run_signals

MARGIN, Z = 0.05, 3.0  # the verdict's defaults (memnb.analysis.verdict.timings)
EXACT = Variant("paper", value="copied")  # the exact test compared with: the paper's criterion, share copied


def detector_signals(results, detector: str, q: float = DEFAULT_Q) -> pd.DataFrame:
    """Signal frame (repeat, epoch, group, signal, null, n, scale) of one detector: share of the group's training
    points flagged against the held-out points' share (memnb.analysis.stats.signal_frame's columns)."""
    g = results.detector_scores(q=q)
    if g.empty or detector not in set(g.detector):
        raise ValueError(
            f"detector {detector!r} is not stored in {results.path}; stored: {sorted(set(g.get('detector', [])))}"
        )
    g = g[(g.detector == detector) & (g.n_train > 0)]
    return pd.DataFrame(
        {
            "repeat": g.repeat.to_numpy(),
            "epoch": g.epoch.to_numpy(),
            "group": g.group.to_numpy(),
            "signal": g.share.to_numpy(np.float64),
            "null": g.null.to_numpy(np.float64),
            "n": g.n_train.to_numpy(np.float64),
            "scale": 1.0,
            "se": _null_se(q, g.n_train.to_numpy(np.float64), g.n_held.to_numpy(np.float64)),
        }
    ).sort_values(["repeat", "group", "epoch"], ignore_index=True)


def _null_se(q: float, n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Standard error of the share flagged under the null, sqrt(q (1 - q) (1/n + 1/m)): the n training points'
    binomial noise plus that of the threshold, itself a quantile of only m held-out points (a group of 20 held-out
    outliers moves its 95 % quantile as much as 20 training points move their share). NaN where m = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(q * (1 - q) * (1 / n + 1 / m))
    return np.where(np.isfinite(se), se, np.nan)


def exact_signals(results) -> pd.DataFrame:
    """The exact test's signal frame: the paper's criterion at the run's ratio, share of training points copied."""
    return run_signals(results, EXACT)


def onset_comparison(
    results, detector: str, q: float = DEFAULT_Q, margin: float = MARGIN, z: float = Z, seed: int = 0
) -> pd.DataFrame:
    """Per group: exact_onset (mean over repeats of the censored onsets), exact_low, exact_high (its bootstrap
    interval over repeats), detector_onset (mean), difference (detector - exact, epochs), inside (the detector's
    mean within the exact interval), and how many repeats each never crossed (censored)."""
    det = timing_table(detector_signals(results, detector, q), margin, True, z)
    ex = timing_table(exact_signals(results), margin, True, z)
    rows = []
    for group in [g for g in results.labels if g in set(det.group) and g in set(ex.group)]:
        d, e = det[det.group == group], ex[ex.group == group]
        est, lo, hi = bootstrap_ci(e.onset_filled.to_numpy(), 10_000, seed=seed)
        dm = float(np.nanmean(d.onset_filled)) if d.onset_filled.notna().any() else np.nan
        rows.append(
            {
                "group": group,
                "exact_onset": est,
                "exact_low": lo,
                "exact_high": hi,
                "detector_onset": dm,
                "difference": dm - est,
                "inside": bool(lo <= dm <= hi) if np.isfinite([dm, lo, hi]).all() else False,
                "exact_censored": int(e.onset_censored.sum()),
                "detector_censored": int(d.onset_censored.sum()),
            }
        )
    return pd.DataFrame(rows)


def ordering(results, detector: str, q: float = DEFAULT_Q, margin: float = MARGIN, z: float = Z, seed: int = 0) -> dict:
    """The ordering verdict ("holds": outliers later than both other groups, "reversed", "inconclusive") of the
    onsets, by the detector and by the exact test: {"detector": row, "exact": row} of verdict.compare_groups."""
    det = timing_table(detector_signals(results, detector, q), margin, True, z)
    ex = timing_table(exact_signals(results), margin, True, z)
    return {"detector": compare_groups(det, seed=seed), "exact": compare_groups(ex, seed=seed)}


def score_matrix(results, detector: str, q: float = DEFAULT_Q) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs (E,), scores (E, R, N), flags (E, R, N) bool) of one detector's training points: flagged above the
    group's (1 - q) held-out quantile at that epoch."""
    groups = np.asarray(results.data["groups"], np.int64)
    G = len(results.labels)
    epochs, scores, flags = [], [], []
    for e in results.evaluated_epochs:
        a = results.epoch_arrays(e, STORED)
        if "detector_train" not in a:
            continue
        k = [str(n) for n in a["detector_names"]].index(detector)
        s, h, hg = a["detector_train"][:, k], a["detector_held"][:, k], a["detector_held_groups"].astype(np.int64)
        thr = np.stack([group_thresholds(h[r], hg[r], q, G) for r in range(len(s))])  # (R, G)
        epochs.append(e)
        scores.append(s.astype(np.float64))
        flags.append(s > np.take_along_axis(thr, groups, axis=1))
    return np.asarray(epochs), np.stack(scores), np.stack(flags)


def point_agreement(results, detector: str, q: float = DEFAULT_Q, copies: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per group (and "all"): spearman (the detector's first-flagged epoch against the exact first-copy epoch, both
    censored one step after the last evaluation), auroc_copied (the score at e for "copied by e", mean over the
    epochs and repeats where both classes occur), n_points, flagged (ever), copied (ever).

    copies: `first_copies(results, "paper", ratio)` when already computed."""
    epochs, scores, flags = score_matrix(results, detector, q)
    if copies is None:
        copies = first_copies(results, EXACT.criterion, results.config.own_threshold(EXACT.criterion))
    R, N = scores.shape[1:]
    first_copy = copies.sort_values(["repeat", "point"]).first_copy.to_numpy().reshape(R, N)
    first_flag = first_flagged(epochs, flags)
    step = float(epochs[-1] - epochs[-2]) if len(epochs) > 1 else 1.0
    censor = float(epochs[-1]) + step
    groups = np.asarray(results.data["groups"], np.int64)
    rows = []
    for name, mask in [*((g, groups == i) for i, g in enumerate(results.labels)), ("all", np.ones_like(groups, bool))]:
        if not mask.any():
            continue
        a = np.where(np.isnan(first_flag), censor, first_flag)[mask]
        b = np.where(np.isnan(first_copy), censor, first_copy)[mask]
        rho = spearmanr(a, b).statistic if np.ptp(a) > 0 and np.ptp(b) > 0 else np.nan
        aucs = []
        for i, e in enumerate(epochs):
            for r in range(R):
                m = mask[r]
                copied = (first_copy[r] <= e)[m]
                if copied.any() and not copied.all():
                    aucs.append(auroc(scores[i, r][m][copied], scores[i, r][m][~copied]))
        rows.append(
            {
                "group": name,
                "spearman": float(rho),
                "auroc_copied": float(np.mean(aucs)) if aucs else np.nan,
                "n_points": int(mask.sum()),
                "flagged": int(np.isfinite(first_flag[mask]).sum()),
                "copied": int(np.isfinite(first_copy[mask]).sum()),
            }
        )
    return pd.DataFrame(rows)


def validation_table(
    results, detectors=None, q: float = DEFAULT_Q, margin: float = MARGIN, z: float = Z, seed: int = 0
) -> pd.DataFrame:
    """One row per detector x group: onset_comparison's columns, point_agreement's, and the ordering verdicts
    (verdict_detector, verdict_exact, same_verdict)."""
    detectors = list(results.config.detectors) if detectors is None else list(detectors)
    copies = first_copies(results, EXACT.criterion, results.config.own_threshold(EXACT.criterion))
    frames = []
    for det in detectors:
        on = onset_comparison(results, det, q, margin, z, seed)
        pts = point_agreement(results, det, q, copies)
        verdicts = ordering(results, det, q, margin, z, seed)
        t = on.merge(pts, on="group", how="outer")
        t.insert(0, "detector", det)
        t["verdict_detector"] = verdicts["detector"]["verdict"]
        t["verdict_exact"] = verdicts["exact"]["verdict"]
        t["same_verdict"] = t.verdict_detector == t.verdict_exact
        frames.append(t)
    return pd.concat(frames, ignore_index=True)
