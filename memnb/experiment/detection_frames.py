"""A run's stored membership scores as tidy frames: per group and epoch (the decision), or per point (trajectories).

What `Results.detector_scores` returns. The epoch files hold, for a config with `detectors`, the arrays of
memnb.metric.membership_scores.STORED (names in memnb.experiment.store.layout); the per-group decision is recomputed
here from the stored scores at any q (memnb.metric.membership_null), so no table file needs rewriting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.validate import fail
from ..metric.membership_null import TABLE_FIELDS, check_q, group_tables
from ..metric.membership_scores import DEFAULT_Q, STORED
from .store.files import read_scores
from .store.layout import stored_score_epochs

PER = ("group", "point")


def detector_frame(results, q: float = DEFAULT_Q, per: str = "group", epochs=None) -> pd.DataFrame:
    """The stored scores of run `results` (a Results) as a tidy frame; empty when the run stored none.

    per "group": one row per repeat x epoch x detector x group: threshold, share (training points flagged),
    null (held-out points flagged, floor(q m)/m), auroc, tpr (at 1 % FPR), n_train, n_held. per "point": one row
    per repeat x epoch x detector x point of the training (set "train") and held-out (set "held") points: point
    (its index in its set), group, score, flagged. epochs: evaluated epochs to read (None: all).
    """
    q = check_q(q)
    if per not in PER:
        fail("per", per, " | ".join(PER))
    labels = np.asarray(results.labels)
    G = len(labels)
    rows = []
    train_groups = None
    sampled = set(results.evaluated_epochs)
    scored = sorted(sampled | set(stored_score_epochs(results.path)))  # scores alone: a Monitor's eps= epochs
    for e in scored if epochs is None else list(epochs):
        a = results.epoch_arrays(e, STORED) if e in sampled else read_scores(results.path, e, results.advice)
        if "detector_train" not in a:
            continue
        if train_groups is None:
            train_groups = np.asarray(results.data["groups"], np.int64)
        names = [str(n) for n in a["detector_names"]]
        train, held, held_groups = a["detector_train"], a["detector_held"], a["detector_held_groups"].astype(np.int64)
        t = group_tables(train, train_groups, held, held_groups, q, G)
        R, K = train.shape[:2]
        if per == "group":
            rr, kk, gg = np.meshgrid(np.arange(R), np.arange(K), np.arange(G), indexing="ij")
            frame = {
                "repeat": rr.ravel(),
                "epoch": e,
                "detector": np.asarray(names)[kk.ravel()],
                "group": labels[gg.ravel()],
            }
            rows.append(pd.DataFrame({**frame, **{f: t[f].ravel() for f in TABLE_FIELDS}}))
            continue
        for part, scores, codes in (("train", train, train_groups), ("held", held, held_groups)):
            thr = np.take_along_axis(t["threshold"], codes[:, None, :], axis=2)  # (R, K, n): each point's group's
            with np.errstate(invalid="ignore"):
                flagged = scores > thr
            rr, kk, pp = np.meshgrid(np.arange(R), np.arange(K), np.arange(scores.shape[2]), indexing="ij")
            rows.append(
                pd.DataFrame(
                    {
                        "repeat": rr.ravel(),
                        "epoch": e,
                        "detector": np.asarray(names)[kk.ravel()],
                        "set": part,
                        "point": pp.ravel(),
                        "group": labels[np.broadcast_to(codes[:, None, :], scores.shape).ravel()],
                        "score": scores.ravel().astype(np.float64),
                        "flagged": flagged.ravel(),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
