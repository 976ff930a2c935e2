"""The null of a membership score and the per-group decision: pure functions on score arrays.

A training point counts as memorized (flagged) at an epoch when its score is strictly above the threshold of its
group, the (1 - q) quantile of the held-out points' scores of the same group: with the held-out scores sorted
descending, s_(1) >= ... >= s_(m), the threshold is s_(k+1) with k = floor(q m), so exactly k held-out points
(without ties) lie above it and the null rate of the held-out points is floor(q m) / m (= q when q m is an
integer) by construction. Groups are memnb's group codes (0 inlier, 1 outlier, 2 duplicate, or a monitored run's
own); the held-out set is the run's test points, whose "matched" set has held-out outliers and duplicates
(memnb.data.injection.make_test_set). A group with no held-out point has no threshold (NaN): its training points
are never flagged and its share is NaN.

Per group, beside the share flagged: the AUROC of training against held-out scores (Mann-Whitney, ties counted
half; 0.5 = no membership signal) and the TPR at 1 % FPR (the share of training points above the group's
(1 - 0.01) held-out quantile), the two numbers every membership paper reports.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..core.validate import fail

FPR = 0.01  # the false-positive rate at which the TPR is reported


def check_q(q) -> float:
    """q as a float in (0, 1); ValueError naming it otherwise."""
    if isinstance(q, bool) or not isinstance(q, (int, float, np.floating)) or not 0.0 < float(q) < 1.0:
        fail("q", q, "a false-positive rate in (0, 1)")
    return float(q)


def quantile_threshold(held: np.ndarray, q: float) -> float:
    """The (1 - q) threshold of held-out scores (m,): s_(k+1) of the descending order, k = floor(q m); NaN if
    m = 0. Exactly k held-out points (without ties) are strictly above it."""
    held = np.asarray(held, np.float64)
    held = held[np.isfinite(held)]
    if len(held) == 0:
        return float("nan")
    k = int(np.floor(check_q(q) * len(held)))
    return float(np.sort(held)[::-1][min(k, len(held) - 1)])


def group_thresholds(held: np.ndarray, held_groups: np.ndarray, q: float, n_groups: int) -> np.ndarray:
    """(G,) the (1 - q) threshold of each group's held-out scores (NaN for a group with none).

    held: (m,) held-out scores; held_groups: (m,) their group codes in 0..G-1."""
    held, held_groups = np.asarray(held), np.asarray(held_groups)
    return np.array([quantile_threshold(held[held_groups == g], q) for g in range(n_groups)])


def flagged(scores: np.ndarray, groups: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(n,) bool: score strictly above its group's threshold (never for a NaN threshold).

    scores: (n,); groups: (n,) codes indexing thresholds (G,)."""
    thr = np.asarray(thresholds, np.float64)[np.asarray(groups, np.int64)]
    with np.errstate(invalid="ignore"):
        return np.asarray(scores, np.float64) > thr  # NaN compares False


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + P(tie)/2 (Mann-Whitney U / (n_p n_n)); NaN if either is empty.

    positive: (n_p,) training scores; negative: (n_n,) held-out scores."""
    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))  # average ranks: a tie counts half
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def group_table(
    train: np.ndarray, train_groups: np.ndarray, held: np.ndarray, held_groups: np.ndarray, q: float, n_groups: int
) -> dict[str, np.ndarray]:
    """Per group g of one repeat and detector: every number of the decision, (G,) arrays.

    train: (N,) training scores, train_groups (N,); held: (m,), held_groups (m,). Returns threshold, share (the
    share of the group's training points flagged), null (the same share of its held-out points: floor(q m)/m),
    auroc, tpr (at FPR = 1 %), n_train, n_held.
    """
    train, train_groups = np.asarray(train, np.float64), np.asarray(train_groups, np.int64)
    held, held_groups = np.asarray(held, np.float64), np.asarray(held_groups, np.int64)
    thr = group_thresholds(held, held_groups, q, n_groups)
    thr1 = group_thresholds(held, held_groups, FPR, n_groups)
    out = {k: np.full(n_groups, np.nan) for k in ("threshold", "share", "null", "auroc", "tpr")}
    out["n_train"] = np.bincount(train_groups, minlength=n_groups)[:n_groups]
    out["n_held"] = np.bincount(held_groups, minlength=n_groups)[:n_groups]
    out["threshold"] = thr
    for g in range(n_groups):
        tr, he = train[train_groups == g], held[held_groups == g]
        if len(he) == 0 or len(tr) == 0:
            continue
        out["share"][g] = float(np.mean(tr > thr[g]))
        out["null"][g] = float(np.mean(he > thr[g]))
        out["auroc"][g] = auroc(tr, he)
        out["tpr"][g] = float(np.mean(tr > thr1[g]))
    return out


TABLE_FIELDS = ("threshold", "share", "null", "auroc", "tpr", "n_train", "n_held")


def group_tables(
    train: np.ndarray, train_groups: np.ndarray, held: np.ndarray, held_groups: np.ndarray, q: float, n_groups: int
) -> dict[str, np.ndarray]:
    """`group_table` of every repeat and detector at once: train (R, K, N), train_groups (R, N), held (R, K, m),
    held_groups (R, m) -> {field: (R, K, G)} for every field of TABLE_FIELDS."""
    train, held = np.asarray(train), np.asarray(held)
    R, K = train.shape[:2]
    out = {f: np.zeros((R, K, n_groups)) for f in TABLE_FIELDS}
    for r in range(R):
        for k in range(K):
            t = group_table(train[r, k], train_groups[r], held[r, k], held_groups[r], q, n_groups)
            for f in TABLE_FIELDS:
                out[f][r, k] = t[f]
    return out


def first_flagged(epochs, flags: np.ndarray) -> np.ndarray:
    """Per point the first evaluated epoch at which it is flagged (NaN if never).

    epochs: (E,); flags: (E, ..., N) bool. Returns (..., N) float."""
    epochs = np.asarray(epochs, np.float64)
    flags = np.asarray(flags, bool)
    return np.where(flags.any(axis=0), epochs[np.argmax(flags, axis=0)], np.nan)
