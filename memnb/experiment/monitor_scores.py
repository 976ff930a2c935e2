"""memnb.Monitor's generation-free path: the membership scores of every training and held-out point from the
user's ε̂ (memnb.metric.membership_scores), with no samples drawn.

    monitor = memnb.Monitor(train, groups, test, detectors=("sima", "loss"), test_groups=test_groups)
    monitor.observe(epoch, eps=lambda x, t: unet(x.view(-1, 1, 8, 8), t).sample.view(len(x), -1),
                    alphas_cumprod=scheduler.alphas_cumprod)

The held-out points are the Monitor's test points; a training point counts as flagged when its score is beyond
the (1 - q) quantile of the held-out points' scores of its own group (memnb.metric.membership_null), so each
group's null rate is q by construction. The held-out points' groups are `test_groups` when given (codes or
labels, like `groups`), else the group of each one's nearest training point (found once by the exact search).
The noise of the detectors that need it is fixed per point and run (seeded from the data's SHA-256), so the
scores of one point are comparable across epochs. Observed with samples too, the scores go into that epoch's
file; observed with `eps` alone, into ``scores/epoch_XXXXXX.npz`` (memnb.experiment.store), and
`Results.detector_scores()` reads both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.validate import fail
from ..metric.membership_null import group_tables
from ..metric.membership_scores import DEFAULT_Q, STORED, score_points
from .monitor_inputs import as_numpy, group_codes

__all__ = ["check_test_groups", "score_epoch", "score_summary"]


def check_test_groups(test_groups, labels: tuple[str, ...], test: np.ndarray) -> np.ndarray | None:
    """(R or 1, m) codes of the held-out points' groups into `labels` (None: not given)."""
    if test_groups is None:
        return None
    codes, got = group_codes(test_groups, labels)
    if got != labels:
        fail("test_groups", list(got), f"codes or labels of the training groups {list(labels)}")
    if codes.shape[-1] != test.shape[1]:
        fail("test_groups", f"{codes.shape[-1]} groups", f"one group per test point ({test.shape[1]} of them)")
    return codes


def score_epoch(monitor, eps, alphas_cumprod, R: int, held_groups: np.ndarray) -> dict[str, np.ndarray]:
    """Every detector's scores of the training and test points of `monitor` and their per-group tables
    (memnb.metric.membership_scores.score_points; arrays (R, K, ...))."""
    c = monitor.config
    if not c.detectors:
        fail("eps", "given", "a Monitor built with detectors=(...) (names in memnb.core.registry.DETECTORS)")
    if alphas_cumprod is None:
        fail(
            "alphas_cumprod",
            None,
            "the (T,) cumulative products of the model's noise schedule (scheduler.alphas_cumprod)",
        )
    abar = as_numpy(alphas_cumprod, "alphas_cumprod").astype(np.float64).reshape(-1)
    if (
        abar.size < 2
        or not np.all(np.isfinite(abar))
        or not np.all((abar > 0) & (abar < 1))
        or np.any(np.diff(abar) > 0)
    ):
        fail("alphas_cumprod", f"{abar.size} values", "a non-increasing sequence of T >= 2 values in (0, 1)")
    train = np.broadcast_to(monitor._train, (R, *monitor._train.shape[1:]))
    test = np.broadcast_to(monitor._test, (R, *monitor._test.shape[1:]))
    codes = np.broadcast_to(monitor._codes, (R, monitor._codes.shape[1]))
    seed = int(c.data_sha256[:8], 16)  # the run's fixed noise: the same data, the same noise
    out = score_points(eps, abar, np.ascontiguousarray(train, np.float32), np.ascontiguousarray(test, np.float32),
                       codes, np.broadcast_to(held_groups, (R, test.shape[1])), c.detectors, seed,
                       n_groups=len(monitor.labels))  # fmt: skip
    out.pop("detector_seconds", None)  # wall time: not reproducible, not stored
    return out


def recomputed(stored: dict[str, np.ndarray], train_groups: np.ndarray, n_groups: int, q: float = DEFAULT_Q):
    """The per-group tables of stored scores again (memnb.metric.membership_null), as score_points returns them;
    train_groups: (R or 1, N) codes of the training points."""
    train, held = stored["detector_train"], stored["detector_held"]
    groups = np.broadcast_to(train_groups, (train.shape[0], train.shape[2])).astype(np.int64)
    tables = group_tables(train, groups, held, stored["detector_held_groups"].astype(np.int64), q, n_groups)
    return {**stored, **{f"detector_{f}": v for f, v in tables.items()}}


def stored_part(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: out[k] for k in STORED}


def score_summary(out: dict[str, np.ndarray], labels: tuple[str, ...], epoch: int) -> pd.DataFrame:
    """Per repeat, detector and group: the flagged share of the training points, the null (the held-out
    points' rate), AUROC and TPR at 1 % FPR of training against held-out points."""
    names = [str(n) for n in out["detector_names"]]
    R, K, G = out["detector_share"].shape
    rr, kk, gg = np.meshgrid(np.arange(R), np.arange(K), np.arange(G), indexing="ij")
    frame = {"repeat": rr.ravel(), "epoch": epoch, "detector": np.asarray(names)[kk.ravel()],
             "group": np.asarray(labels)[gg.ravel()]}  # fmt: skip
    for f in ("share", "null", "auroc", "tpr", "n_train", "n_held"):
        frame[f] = out[f"detector_{f}"].ravel()
    return pd.DataFrame(frame)
