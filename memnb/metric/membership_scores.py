"""Every registered detector's scores of given training and held-out points, and their per-group tables, in one call.

`score_points` is what an evaluated epoch of `run_experiment` and `memnb.Monitor.observe` call: given an ε̂
callable, the schedule's ᾱ, the training points (R, N, d) and held-out points (R, m, d) with their group codes,
it scores every point with each named detector (memnb.metric.membership) and decides per group against the
held-out points' quantile (memnb.metric.membership_null). The noise of the detectors that need it is fixed per
point: drawn from the run's generators (stream DETECT of memnb.core.seeding, epoch 0) for every repeat, so the
same point gets the same noise at every epoch and its scores are comparable across epochs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..core.registry import DETECTORS
from ..core.seeding import Stream, numpy_rng
from ..core.validate import fail
from .membership_null import TABLE_FIELDS, check_q, group_tables

CHUNK = 4096  # points per member scored at once (memory: a few activations of this many points)
STORED = ("detector_names", "detector_train", "detector_held", "detector_held_groups")  # what an epoch file keeps
DEFAULT_Q = 0.05  # the null's false-positive rate: a training point is flagged above its group's 95 % held-out


def fixed_noise(seed: int, repeat: int, k: int, n_train: int, n_held: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(k, n_train, d) and (k, n_held, d) float32 standard normals of one repeat, the same at every epoch
    (stream DETECT, epoch 0): training points' first, then the held-out points'."""
    rng = numpy_rng(seed, repeat, Stream.DETECT)
    return (
        rng.standard_normal((k, n_train, d), dtype=np.float32),
        rng.standard_normal((k, n_held, d), dtype=np.float32),
    )


def _as_members(eps, R: int, batched: bool) -> Callable:
    """One callable on (R, n, d): `eps` itself when `batched` (member axis first, as memnb's ensembles), else a
    single model's (n, d) callable applied to every repeat's points, or a sequence of R of them, one per repeat."""
    if batched:
        if not callable(eps):
            fail("eps", eps, "with batched=True one callable eps(x (R, n, d), t (R, n)) -> (R, n, d)")
        return eps
    models = [eps] * R if callable(eps) else list(eps)
    if len(models) != R or not all(callable(m) for m in models):
        fail("eps", eps, f"a callable eps(x, t) -> (n, d), or {R} of them (one per repeat)")
    return lambda x, t: torch.stack([m(x[r], t[r]) for r, m in enumerate(models)])


def _score_all(record, eps, abar, x: torch.Tensor, noise: np.ndarray | None, chunk: int) -> np.ndarray:
    """(R, n) scores of x (R, n, d) by one detector, `chunk` points at a time (noise (R, K, n, d) or None)."""
    ts = record.timesteps(abar)
    out = np.empty(x.shape[:2], np.float64)
    for lo in range(0, x.shape[1], chunk):
        hi = min(lo + chunk, x.shape[1])
        nz = None
        if noise is not None:
            nz = torch.as_tensor(noise[:, :, lo:hi], device=x.device).transpose(0, 1)  # (K, R, n, d)
        out[:, lo:hi] = record.score(eps, abar, x[:, lo:hi], ts, nz)
    return out


def score_points(
    eps,
    alphas_cumprod,
    train,
    held_out,
    train_groups,
    held_groups,
    detectors: Sequence[str],
    seed: int,
    q: float = DEFAULT_Q,
    n_groups: int | None = None,
    repeats: Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    chunk: int = CHUNK,
    batched: bool = False,
) -> dict[str, np.ndarray]:
    """Scores of every training and held-out point by every detector, and the per-group decision.

    eps: ε̂ callable eps(x (n, d), t (n,) int64) -> (n, d), applied to every repeat's points, or R of them (one
    per repeat), or with `batched` one callable on (R, n, d) and (R, n) (memnb's ensembles); alphas_cumprod: (T,) ᾱ_t of the
    schedule; train (R, N, d), held_out (R, m, d) numpy or torch; train_groups (R, N), held_groups (R, m) group
    codes 0..G-1 (G = n_groups, default max + 1); detectors: names in DETECTORS; seed: the run's seed (the fixed
    noise of repeat r comes from (seed, repeats[r])); q: the null's rate (memnb.metric.membership_null);
    repeats: the repeat index of each member (default 0..R-1); device: where the points go.

    Returns numpy arrays: detector_names (K,) str; detector_train (R, K, N) and detector_held (R, K, m) float32
    scores (larger = more member-like); detector_held_groups (R, m) int8; per group detector_<field> (R, K, G) for
    field in threshold, share, null, auroc, tpr, n_train, n_held; detector_seconds (K,) wall time per detector.
    """
    names = [DETECTORS.get(n).name for n in detectors]  # unknown names fail here, naming the allowed ones
    if not names:
        fail("detectors", detectors, f"at least one of {' | '.join(DETECTORS.names())}")
    q = check_q(q)
    abar = np.asarray(torch.as_tensor(alphas_cumprod).detach().cpu().double().numpy())
    train = torch.as_tensor(np.asarray(train), dtype=torch.float32, device=device)
    held = torch.as_tensor(np.asarray(held_out), dtype=torch.float32, device=device)
    train_groups, held_groups = np.asarray(train_groups, np.int64), np.asarray(held_groups, np.int64)
    if train.ndim != 3 or held.ndim != 3 or held.shape[0] != train.shape[0] or held.shape[2] != train.shape[2]:
        fail("held_out", tuple(held.shape), f"(R, m, d) beside train (R, N, d) = {tuple(train.shape)}")
    R, N, d = train.shape
    m = held.shape[1]
    if train_groups.shape != (R, N) or held_groups.shape != (R, m):
        fail("groups", (train_groups.shape, held_groups.shape), f"(R, N) = {(R, N)} and (R, m) = {(R, m)}")
    G = int(max(train_groups.max(initial=0), held_groups.max(initial=0)) + 1) if n_groups is None else int(n_groups)
    repeats = list(range(R)) if repeats is None else [int(r) for r in repeats]
    members = _as_members(eps, R, batched)
    scores_train = np.empty((R, len(names), N), np.float32)
    scores_held = np.empty((R, len(names), m), np.float32)
    seconds = np.zeros(len(names))
    for k, name in enumerate(names):
        record = DETECTORS.get(name)
        t0 = time.perf_counter()
        noise_t = noise_h = None
        if record.noise:
            K = len(record.timesteps(abar))
            drawn = [fixed_noise(seed, r, K, N, m, d) for r in repeats]
            noise_t, noise_h = np.stack([a for a, _ in drawn]), np.stack([b for _, b in drawn])
        scores_train[:, k] = _score_all(record, members, abar, train, noise_t, chunk)
        scores_held[:, k] = _score_all(record, members, abar, held, noise_h, chunk)
        seconds[k] = time.perf_counter() - t0
    tables = group_tables(scores_train, train_groups, scores_held, held_groups, q, G)
    return {
        "detector_names": np.array(names),
        "detector_train": scores_train,
        "detector_held": scores_held,
        "detector_held_groups": held_groups.astype(np.int8),
        **{f"detector_{f}": tables[f] for f in TABLE_FIELDS},
        "detector_seconds": seconds,
    }


def calls_per_point(name: str, alphas_cumprod, d: int) -> int:
    """Network evaluations per scored point of detector `name` on the schedule ᾱ (a backward pass counted as one)."""
    record = DETECTORS.get(name)
    return record.calls(d, len(record.timesteps(np.asarray(alphas_cumprod, np.float64))))
