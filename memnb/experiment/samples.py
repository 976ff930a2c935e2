"""Which generated samples a run keeps, and the one way to read them back.

An epoch file always holds ``samples`` (R, k, d) float16: every sample (k = n, memnb's runs and a Monitor's
default, ``store_samples="all"``), a fixed subsample of k slots (``store_samples=k``: the same slots at every
epoch, listed in the file's ``sample_slots`` (k,)), or none (``store_samples="none"``: k = 0). The distances,
indices, tables and Z_U of *every* sample are kept in each mode: the shares, the verdict and `rates_at` read
them; only the per-sample views (images of samples, samples over epochs, a sample's energy distance) need the
points, and they say what is missing. Old runs have no ``sample_slots``: every sample is stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..core.monitor_config import check_store_samples

__all__ = ["StoredSamples", "stored_samples", "chosen_slots", "keep_samples", "missing_note"]


def chosen_slots(store_samples, n: int, seed_text: str) -> np.ndarray | None:
    """(k,) sorted sample slots kept at every epoch (None: all of them; empty: none). The k slots are drawn once,
    without replacement, from a generator seeded by `seed_text` (the run's data SHA-256): the same run, the
    same slots."""
    mode = check_store_samples(store_samples)
    if mode == "all" or (isinstance(mode, int) and mode >= n):
        return None
    if mode == "none":
        return np.zeros(0, np.int64)
    seed = int.from_bytes(hashlib.sha256(f"store_samples:{seed_text}".encode()).digest()[:8], "little")
    return np.sort(np.random.default_rng(seed).choice(n, size=mode, replace=False)).astype(np.int64)


def keep_samples(x: np.ndarray, slots: np.ndarray | None) -> dict[str, np.ndarray]:
    """The epoch file's sample arrays of samples `x` (R, n, d): ``samples`` float16 (R, k, d) and, unless every
    sample is kept, ``sample_slots`` (k,)."""
    if slots is None:
        return {"samples": x.astype(np.float16)}
    return {"samples": x[:, slots].astype(np.float16), "sample_slots": slots}


@dataclass(frozen=True)
class StoredSamples:
    """The samples stored at one epoch: `slots` (k,) their positions among the n samples (ascending), `points`
    (R, k, d) float64; `mode` "all", "none" or "subsample"; `n` the samples drawn per repeat."""

    slots: np.ndarray
    points: np.ndarray
    mode: str
    n: int

    def position(self) -> np.ndarray:
        """(n,) row of each sample slot in `points`, -1 where it is not stored."""
        pos = np.full(self.n, -1, np.int64)
        pos[self.slots] = np.arange(len(self.slots))
        return pos


def stored_samples(results, epoch: int) -> StoredSamples:
    """The samples that `results` (a memnb.Results) stored at evaluated `epoch` (see the module docstring)."""
    arrays = results.epoch_arrays(epoch, keys=("samples", "sample_slots", "d1"))
    n = int(arrays["d1"].shape[1])
    pts = np.asarray(arrays["samples"], np.float64)
    if "sample_slots" in arrays:
        slots = np.asarray(arrays["sample_slots"], np.int64)
        mode = "none" if len(slots) == 0 else "subsample"
    else:
        slots, mode = np.arange(n, dtype=np.int64), "all"
    return StoredSamples(slots=slots, points=pts, mode=mode, n=n)


def missing_note(stored: StoredSamples) -> str:
    """What a per-sample view lacks, in words ("" when every sample is stored)."""
    if stored.mode == "all":
        return ""
    if stored.mode == "none":
        return "samples not stored (store_samples='none'): distances and shares only"
    return f"{len(stored.slots)} of {stored.n} samples stored (store_samples={len(stored.slots)})"
