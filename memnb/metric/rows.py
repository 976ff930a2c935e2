"""Exact rows by identity: a 64-bit hash of each row's bits, so that equal points are found without sorting the
float array (`np.unique(axis=0)` on 50,000 x 3072 floats sorts 150 M values lexicographically, and copies them).

Rows are compared as the float64 values of their coordinates (float32 rows are widened exactly), with -0.0
taken as 0.0, as `np.unique` and `==` do. A hash only proposes candidates: every candidate is compared in full,
and should two different rows ever share a hash (never seen; each build checks), exact row bytes decide.
Arrays are hashed in chunks of `HASH_CHUNK` rows, so the float64 working copy stays small whatever N is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = ["row_hash", "RowIndex", "distinct_rows", "Distinct", "HASH_CHUNK"]

HASH_CHUNK = 4096  # rows hashed at a time: a (4096, d) float64 working copy (100 MB at d = 3072)


@cache
def _multipliers(d: int) -> np.ndarray:
    """(d,) fixed odd 64-bit multipliers, one per coordinate, of the row hash."""
    m = np.random.default_rng(0x5EED).integers(0, 2**64, size=d, dtype=np.uint64, endpoint=False)
    m |= np.uint64(1)
    m.setflags(write=False)
    return m


def _hash_block(rows: np.ndarray) -> np.ndarray:
    bits = np.add(np.asarray(rows, np.float64), 0.0).view(np.uint64)  # a new float64 array; -0.0 + 0.0 = 0.0
    bits *= _multipliers(rows.shape[1])  # wraps modulo 2^64
    bits ^= bits >> np.uint64(29)
    bits *= np.uint64(0x94D049BB133111EB)
    return bits.sum(axis=1)


def row_hash(rows: np.ndarray) -> np.ndarray:
    """(n,) uint64 hash of each row of `rows` (n, d) (float32 or float64): equal rows, equal hashes."""
    rows = np.asarray(rows)
    if len(rows) <= HASH_CHUNK:
        return _hash_block(rows)
    return np.concatenate([_hash_block(rows[i : i + HASH_CHUNK]) for i in range(0, len(rows), HASH_CHUNK)])


def _row_bytes(rows: np.ndarray) -> list[bytes]:
    r = np.add(np.ascontiguousarray(rows, np.float64), 0.0)
    return r.view(np.dtype((np.void, r.shape[1] * 8))).ravel().tolist()


def _equal_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) whether rows a[i] and b[i] are equal (NaN equal to NaN; finite points never hold one)."""
    return ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)


@dataclass(frozen=True)
class Distinct:
    """The distinct rows of an (N, d) array in order of first occurrence: `first` (U,) the index of each distinct
    row's first occurrence (ascending), `location` (N,) the distinct-row id of every row, `hashes` (U,) their
    hashes (what `RowIndex` is built from)."""

    first: np.ndarray
    location: np.ndarray
    hashes: np.ndarray


def distinct_rows(rows: np.ndarray) -> Distinct:
    """The distinct rows of `rows` (N, d) by value (see the module docstring), in O(N d) plus a sort of N hashes."""
    rows = np.asarray(rows)
    h = row_hash(rows)
    order = np.argsort(h, kind="stable")  # equal hashes: the first occurrence first
    hs = h[order]
    start = np.empty(len(hs), bool)
    start[:1], start[1:] = True, hs[1:] != hs[:-1]
    leader = order[start][np.cumsum(start) - 1]  # per sorted position: the first row of its hash
    later = np.flatnonzero(~start)
    if len(later) and not _equal_rows(rows[order[later]], rows[leader[later]]).all():
        return _distinct_by_bytes(rows, h)  # a hash collision: exact bytes decide
    lead_of = np.empty(len(rows), np.int64)
    lead_of[order] = leader
    first = np.sort(order[start])
    return Distinct(first=first, location=np.searchsorted(first, lead_of), hashes=h[first])


def _distinct_by_bytes(rows: np.ndarray, h: np.ndarray) -> Distinct:
    seen: dict[bytes, int] = {}
    location = np.empty(len(rows), np.int64)
    first = []
    for i, key in enumerate(_row_bytes(rows)):
        j = seen.setdefault(key, len(first))
        if j == len(first):
            first.append(i)
        location[i] = j
    first_a = np.asarray(first, np.int64)
    return Distinct(first=first_a, location=location, hashes=h[first_a])


class RowIndex:
    """Exact look-up of rows by value: `find(q)` gives, per query row, the index of the first equal row
    (coordinates equal as float64, -0.0 == 0.0), or -1. Rows are hashed, the hashes sorted, and each query's
    candidate compared in full; should two different rows share a hash, a dict of row bytes is used instead.
    `rows` is kept as given (no copy of a float32 array); `hashes` (optional) are its `row_hash`, when known."""

    def __init__(self, rows: np.ndarray, hashes: np.ndarray | None = None):
        self.rows = np.asarray(rows)
        h = row_hash(self.rows) if hashes is None else hashes
        self._order = np.argsort(h, kind="stable")  # equal rows: the first one first
        self._sorted = h[self._order]
        self._bytes: dict[bytes, int] | None = None
        same = np.flatnonzero(self._sorted[1:] == self._sorted[:-1])
        if len(same) and not _equal_rows(self.rows[self._order[same]], self.rows[self._order[same + 1]]).all():
            self._bytes = {}  # a collision: fall back to exact bytes
            for i, key in enumerate(_row_bytes(self.rows)):
                self._bytes.setdefault(key, i)

    def find(self, queries: np.ndarray) -> np.ndarray:
        q = np.asarray(queries)
        if self._bytes is not None:
            return np.fromiter((self._bytes.get(k, -1) for k in _row_bytes(q)), np.int64, len(q))
        h = row_hash(q)
        pos = np.minimum(np.searchsorted(self._sorted, h), len(self._sorted) - 1)
        cand = np.flatnonzero(self._sorted[pos] == h)
        ids = self._order[pos[cand]]
        ok = _equal_rows(np.asarray(self.rows[ids], np.float64), np.asarray(q[cand], np.float64))
        out = np.full(len(q), -1, np.int64)
        out[cand[ok]] = ids[ok]
        return out
