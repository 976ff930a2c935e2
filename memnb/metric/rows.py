"""Exact rows by identity: equal points found without sorting the float array (`np.unique(axis=0)` on 50,000 x
3072 floats sorts 150 M values lexicographically, and copies them).

Rows are compared as the values of their coordinates (a float32 row equals a float64 row holding the same
numbers), with -0.0 taken as 0.0, as `np.unique` and `==` do. A 64-bit hash of `HASH_COORDS` fixed coordinates
(all of them up to that dimension; beyond it, a fixed spread of that many) proposes candidates: equal rows have
equal hashes, and every candidate is then compared in full, so a hash shared by different rows (rows equal on
the hashed coordinates, or a true collision) costs a comparison, never a wrong answer. Hashing 256 of 3072
coordinates reads a twelfth of the array; arrays are hashed in blocks of `HASH_CHUNK` rows, so the float64
working copy stays small whatever N is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = ["row_hash", "RowIndex", "distinct_rows", "Distinct", "HASH_CHUNK", "HASH_COORDS"]

HASH_CHUNK = 16384  # rows hashed at a time: a (16384, 256) float64 working copy (32 MB)
HASH_COORDS = 256  # coordinates hashed per row (all of them up to this dimension)


@cache
def _coords(d: int) -> np.ndarray | None:
    """The hashed coordinates of a d-dimensional row (None: all), fixed: a seeded choice, sorted."""
    if d <= HASH_COORDS:
        return None
    return np.sort(np.random.default_rng(0xC0DE).choice(d, size=HASH_COORDS, replace=False))


@cache
def _multipliers(d: int) -> np.ndarray:
    """(d,) fixed odd 64-bit multipliers, one per hashed coordinate."""
    m = np.random.default_rng(0x5EED).integers(0, 2**64, size=d, dtype=np.uint64, endpoint=False)
    m |= np.uint64(1)
    m.setflags(write=False)
    return m


def _hash_block(rows: np.ndarray) -> np.ndarray:
    cols = _coords(rows.shape[1])
    picked = rows if cols is None else rows[:, cols]
    bits = np.add(np.asarray(picked, np.float64), 0.0).view(np.uint64)  # a new float64 array; -0.0 + 0.0 = 0.0
    bits *= _multipliers(bits.shape[1])  # wraps modulo 2^64
    bits ^= bits >> np.uint64(29)  # mixes the high bits down: a sign flip in two coordinates does not cancel
    bits *= np.uint64(0x94D049BB133111EB)
    return bits.sum(axis=1)


def row_hash(rows: np.ndarray) -> np.ndarray:
    """(n,) uint64 hash of each row of `rows` (n, d) (float32 or float64): equal rows, equal hashes."""
    rows = np.asarray(rows)
    if len(rows) <= HASH_CHUNK:
        return _hash_block(rows)
    return np.concatenate([_hash_block(rows[i : i + HASH_CHUNK]) for i in range(0, len(rows), HASH_CHUNK)])


def _equal_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) whether rows a[i] and b[i] are equal (finite points: no NaN)."""
    return (a == b).all(axis=1)


@dataclass(frozen=True)
class Distinct:
    """The distinct rows of an (N, d) array in order of first occurrence: `first` (U,) the index of each distinct
    row's first occurrence (ascending), `location` (N,) the distinct-row id of every row, `hashes` (U,) their
    hashes (what `RowIndex` is built from)."""

    first: np.ndarray
    location: np.ndarray
    hashes: np.ndarray


def distinct_rows(rows: np.ndarray) -> Distinct:
    """The distinct rows of `rows` (N, d) by value (see the module docstring): O(N HASH_COORDS) to hash, a sort of N
    hashes, and a full comparison of the rows that share a hash only."""
    rows = np.asarray(rows)
    h = row_hash(rows)
    order = np.argsort(h, kind="stable")  # equal hashes: the first occurrence first
    hs = h[order]
    start = np.empty(len(hs), bool)
    start[:1], start[1:] = True, hs[1:] != hs[:-1]
    run = np.cumsum(start) - 1  # per sorted position: its hash run
    lead_of = np.empty(len(rows), np.int64)  # per row: the first row equal to it
    lead_of[order] = order[start][run]
    shared = np.flatnonzero(np.bincount(run)[run] > 1)  # sorted positions in runs of two or more
    if len(shared):
        idx = order[shared]  # rows sharing a hash with another: grouped by their full values
        _, inverse = np.unique(rows[idx], axis=0, return_inverse=True)
        group = inverse.reshape(-1) + len(rows) * run[shared]  # equal values within one hash run
        first_in = {}
        for i, g in zip(idx.tolist(), group.tolist()):  # idx ascends within a run (stable sort)
            lead_of[i] = first_in.setdefault(g, i)
    first = np.flatnonzero(lead_of == np.arange(len(rows)))
    return Distinct(first=first, location=np.searchsorted(first, lead_of), hashes=h[first])


class RowIndex:
    """Exact look-up of rows by value: `find(q)` gives, per query row, the index of the first equal row
    (coordinates equal, -0.0 == 0.0), or -1. Rows are hashed, the hashes sorted, and each query compared in full
    with the rows of its hash (one, unless rows share a hash). `rows` is kept as given (no copy of a float32
    array); `hashes` (optional) are its `row_hash`, when known."""

    def __init__(self, rows: np.ndarray, hashes: np.ndarray | None = None):
        self.rows = np.asarray(rows)
        h = row_hash(self.rows) if hashes is None else hashes
        self._order = np.argsort(h, kind="stable")  # equal rows: the first one first
        self._sorted = h[self._order]

    def find(self, queries: np.ndarray) -> np.ndarray:
        q = np.asarray(queries)
        h = row_hash(q)
        lo = np.searchsorted(self._sorted, h, side="left")
        hi = np.searchsorted(self._sorted, h, side="right")
        out = np.full(len(q), -1, np.int64)
        live = np.flatnonzero(hi > lo)  # queries with candidates, compared one candidate at a time
        j = 0
        while len(live):
            ids = self._order[lo[live] + j]
            ok = _equal_rows(self.rows[ids], q[live])
            out[live[ok]] = ids[ok]
            j += 1
            live = live[~ok & (hi[live] > lo[live] + j)]
        return out
