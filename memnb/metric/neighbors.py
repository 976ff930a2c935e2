"""Exact nearest neighbours of generated points among training and test points (plain Euclidean distances).

Three exact backends return the same neighbours:

- "kdtree": a scipy k-d tree, float64, and far faster in low dimension (the default up to d = 12,
  `NEIGHBOR_AUTO_MAX_DIM` in memnb.core.config; docs/performance.md measures the crossover);
- "faiss": FAISS `IndexFlatL2` (the paper's tool), a brute-force search in **float32**. It returns
  *squared* distances, square-rooted here. For a large batch (queries x d at or above
  `faiss.cvar.distance_compute_blas_threshold`, 128000 in FAISS 1.15: 2000 queries in 64-D, not
  memnb's 2-D searches) it computes them as |q|^2 + |x|^2 - 2 q.x with float32 BLAS products, so
  their absolute error is about 1e-6 of the squared norms (float32 rounding, 6e-8, over sums of d
  terms): distances small next to the points' norms are noise. Measured in 64-D: an exact copy of a
  unit-scale point came out at up to 0.009 instead of 0, of a point of magnitude 1e3 at up to 4.5;
  near copies can come out at exactly 0, and locations closer than that noise can swap ranks;
- "torch": a brute-force search with torch on `device` (cpu or cuda), in the points' own float dtype
  (float32 points stay float32, float64 stay float64): the same expansion for the squared distances
  of a chunk of queries to every location (chunks of at most `TORCH_CHUNK_BYTES` per matrix, so memory
  stays bounded), `torch.topk` for the k + `TORCH_SPARE` smallest, then those candidates' distances
  recomputed directly as |q - x| in float64 and the k nearest kept, so that they agree with the k-d
  tree's to float64 rounding and not only to the expansion's cancellation error. Queries given as a
  torch tensor are searched on their device (samples on the GPU stay there for the search).

Two approximate backends, opt-in and never the default, find *which* neighbours approximately (their
distances are exact for the neighbours found): "faiss-ivf" and "faiss-hnsw" (memnb.metric.approximate, whose
docstring and docs/approximate.md give their settings, recall and the share errors measured).

Exact copies are found by identity, not by a distance of 0: after any backend's search, a query
whose coordinates equal one of the training locations exactly (bit for bit in float64, with -0.0
taken as 0.0) gets d1 = 0, index = that location's first training point and d2 = the distance to
the nearest *other* location (the backend's); a query equal to a test point gets d_test = 0. The
rows are looked up through a 64-bit hash of their bits (memnb.metric.rows: vectorised, O(n d)) and the
candidates' coordinates compared in full. For the k-d tree this changes nothing (its distance to an exact
copy is already 0); for FAISS it removes the float32 error on copies, which is what makes a copy
a copy, but not elsewhere.

Training locations are de-duplicated before the search (by the same row hashes, in order of first occurrence; no
`np.unique(axis=0)` sort of the float array), so "the two nearest training points" are
the two nearest distinct locations: an exact copy never hides the point it copies, and d1/d2 stays
meaningful for duplicated points.

The same training search also returns `d_mean50`, the mean distance to the `RELATIVE_NEIGHBOURS`
(50) nearest distinct training locations, for the relative criterion of Carlini et al. (2023).
Asking the tree for 50 neighbours instead of 2 costs about 60 ms more per 20800 queries against
20800 training points (k-d tree, 2 workers), about 5x the 2-neighbour search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .approximate import BACKENDS as APPROXIMATE_KINDS
from .approximate import ApproximateIndex
from .rows import RowIndex, distinct_rows

# n of Carlini et al. (2023)'s relative criterion: d1 is compared with the mean distance to the n nearest.
RELATIVE_NEIGHBOURS = 50
# What a search returns per query point, in this order (the arrays of an epoch file, per source).
NEIGHBOUR_FIELDS = ("d1", "d2", "index", "d_test", "d_mean50")
EXACT = ("kdtree", "faiss", "torch")
APPROXIMATE = tuple(APPROXIMATE_KINDS)  # opt-in: FAISS IVF and HNSW (memnb.metric.approximate); never the default
BACKENDS = (*EXACT, *APPROXIMATE)
# The torch backend's bound on one chunk's (queries x locations) float64 matrix (and its gathered
# (queries x k x d) differences): about 256 MB each.
TORCH_CHUNK_BYTES = 256 * 2**20
# Candidates beyond k that the torch backend re-ranks in float64: neighbours that the expansion's rounding (float32:
# about 1e-6 of the squared norms) pushes just past the k-th still come back.
TORCH_SPARE = 16


@dataclass(frozen=True)
class Neighbours:
    """Per query point, shape (n,): distances d1 <= d2 to the two nearest distinct training
    locations, `index` of the nearest training point (first occurrence of that location), the
    distance `d_test` to the nearest test point, and `d_mean50`, the mean distance to the
    min(RELATIVE_NEIGHBOURS, U) nearest distinct training locations (d1 and d2 included; U = number
    of distinct locations). Distances in data units, float32."""

    d1: np.ndarray
    d2: np.ndarray
    index: np.ndarray
    d_test: np.ndarray
    d_mean50: np.ndarray


@dataclass(frozen=True)
class TrainingLocations:
    """Distinct training locations, in order of first occurrence: `points` (U, d) (the training array itself when
    every point is distinct, no copy), `first` (U,) index of each location's first training point, `location` (N,)
    location id of every training point, `hashes` (U,) the locations' row hashes (memnb.metric.rows)."""

    points: np.ndarray
    first: np.ndarray
    location: np.ndarray
    hashes: np.ndarray

    @classmethod
    def of(cls, train: np.ndarray) -> TrainingLocations:
        train = np.asarray(train)
        found = distinct_rows(train)  # hashed rows, not np.unique(axis=0): no sorted copy of the float array
        if len(found.first) < 2:
            raise ValueError(f"training set has {len(found.first)} distinct location(s); need at least 2")
        pts = train if len(found.first) == len(train) else train[found.first]
        return cls(points=pts, first=found.first, location=found.location, hashes=found.hashes)


def _pin_copies(dist: np.ndarray, idx: np.ndarray, copy_of: np.ndarray) -> None:
    """In place: rows whose query is exactly point copy_of (>= 0) of the searched set get that point
    first at distance 0, followed by the backend's other neighbours in their order (dropping the
    copy where the backend found it, else the last)."""
    rows = np.flatnonzero(copy_of >= 0)
    if not len(rows):
        return
    k = dist.shape[1]
    target = copy_of[rows]
    if k > 1:
        d, i = dist[rows], idx[rows]
        keep = i != target[:, None]
        keep[keep.all(axis=1), -1] = False  # the backend missed the copy: drop its k-th neighbour
        dist[rows, 1:] = d[keep].reshape(len(rows), k - 1)
        idx[rows, 1:] = i[keep].reshape(len(rows), k - 1)
    dist[rows, 0] = 0.0
    idx[rows, 0] = target


def _floats(a) -> np.ndarray:
    """`a` as a float32 or float64 numpy array, without copying one that already is."""
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _writable(a: np.ndarray) -> np.ndarray:
    """`a` contiguous and writable (torch refuses to share a read-only buffer, such as a broadcast view)."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


# -- backends ---------------------------------------------------------------------------------------
def _torch_device(device):
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class _TorchIndex:
    """Exact brute-force search with torch on one device (see the module docstring): the expansion in the data's
    own float dtype (float32 stays float32: no float64 copy of a large array), `TORCH_SPARE` more candidates than
    asked, those recomputed directly in float64 and the k nearest kept."""

    def __init__(self, data, device):
        import torch

        self.device = _torch_device(device)
        if isinstance(data, torch.Tensor):
            self.points = data.detach().to(self.device)
        else:
            self.points = torch.as_tensor(_writable(data), device=self.device)
        if self.points.dtype not in (torch.float32, torch.float64):
            self.points = self.points.to(torch.float64)
        self.sq_norms = self.points.square().sum(dim=1)

    def chunk(self, k: int) -> int:
        """Queries per chunk: the (chunk, n) distance matrix and the (chunk, k, d) float64 differences stay within
        TORCH_CHUNK_BYTES each."""
        n, d = self.points.shape
        return max(1, TORCH_CHUNK_BYTES // (8 * max(n, k * d)))

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries: (n, d) numpy or torch (on any device: moved to this index's, never through the CPU)."""
        import torch

        if isinstance(queries, torch.Tensor):
            q_all = queries.detach().to(self.device, self.points.dtype)
        else:
            q_all = torch.as_tensor(_writable(queries), device=self.device).to(self.points.dtype)
        n_points = len(self.points)
        spare = min(n_points, k + TORCH_SPARE)
        dist = np.empty((len(q_all), k), np.float64)
        idx = np.empty((len(q_all), k), np.int64)
        step = self.chunk(spare)
        with torch.no_grad():
            for s in range(0, len(q_all), step):
                q = q_all[s : s + step]
                sq = torch.addmm(self.sq_norms, q, self.points.T, alpha=-2.0)  # |x|^2 - 2 q.x
                sq += q.square().sum(dim=1, keepdim=True)
                i = torch.topk(sq, spare, dim=1, largest=False).indices if spare > 1 else sq.argmin(1, keepdim=True)
                del sq
                diff = q[:, None, :].double() - self.points[i].double()  # the candidates, directly, in float64
                d, order = torch.sort(diff.square_().sum(dim=2).sqrt_(), dim=1, stable=True)
                del diff
                dist[s : s + step] = d[:, :k].cpu().numpy()
                idx[s : s + step] = i.gather(1, order[:, :k]).cpu().numpy()
        return dist, idx


class NeighbourSearch:
    """Exact searches against one repeat's fixed training locations and test set, built once.

    train: (N, d) training points (duplicated locations allowed); test: (m, d); backend: kdtree |
    faiss | torch; device: where the torch backend computes (cpu | cuda | auto; ignored by the others).
    """

    def __init__(self, train: np.ndarray, test: np.ndarray, backend: str = "kdtree", device="cpu"):
        if backend not in BACKENDS:
            raise ValueError(f"neighbors backend {backend!r} is unknown; allowed: {' | '.join(BACKENDS)}")
        self.backend = backend
        self.device = device
        # float32 and float64 points are searched as given: no float64 copy of a float32 array (only the k-d tree,
        # a low-dimensional backend, works in float64)
        self.locations = TrainingLocations.of(_floats(train))
        test = _floats(test)
        self._train = self._build(self.locations.points)
        self._test = self._build(test)
        self._train_rows = RowIndex(self.locations.points, self.locations.hashes)
        self._test_rows = RowIndex(test)

    def _build(self, data: np.ndarray):
        if self.backend == "kdtree":
            from scipy.spatial import cKDTree

            return cKDTree(data)
        if self.backend == "torch":
            return _TorchIndex(data, self.device)
        if self.backend in APPROXIMATE:
            return ApproximateIndex(data, APPROXIMATE_KINDS[self.backend])
        import faiss

        index = faiss.IndexFlatL2(data.shape[1])
        index.add(np.ascontiguousarray(data, dtype=np.float32))
        return index

    def _search(self, index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) float64 distances, ascending, and (n, k) int64 indices of the backend's k nearest."""
        if self.backend == "kdtree":
            d, i = index.query(np.asarray(queries, np.float64), k=k, workers=-1)
            return d.reshape(len(queries), k), i.reshape(len(queries), k)
        if self.backend == "torch" or self.backend in APPROXIMATE:
            return index.search(queries, k)
        sq, i = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return np.sqrt(np.maximum(sq, 0.0)), i  # IndexFlatL2 returns squared L2 distances

    def query(self, queries) -> Neighbours:
        """Neighbours of `queries` (n, d): numpy, or (torch backend) a torch tensor on any device, searched there;
        only its copy for the identity look-up comes to the CPU."""
        if self.backend == "torch" and hasattr(queries, "detach"):
            q_search, q = queries, _floats(queries.detach().cpu().numpy())
        else:
            q_search = q = _floats(queries)
        k = max(2, min(RELATIVE_NEIGHBOURS, len(self.locations.points)))
        d_tr, i_tr = self._search(self._train, q_search, k)  # one search: d1, d2 and the k-neighbour mean
        d_te, i_te = self._search(self._test, q_search, 1)
        _pin_copies(d_tr, i_tr, self._train_rows.find(q))  # exact copies by identity, whatever the backend
        _pin_copies(d_te, i_te, self._test_rows.find(q))
        return Neighbours(
            d1=d_tr[:, 0].astype(np.float32),
            d2=d_tr[:, 1].astype(np.float32),
            index=self.locations.first[i_tr[:, 0]].astype(np.int32),
            d_test=d_te[:, 0].astype(np.float32),
            d_mean50=d_tr.mean(axis=1).astype(np.float32),
        )

    def nearest_training(self, queries) -> tuple[np.ndarray, np.ndarray]:
        """(n,) float32 distance to the nearest training location and (n,) int32 index of its first training point,
        of `queries` (n, d): `query`'s d1 and index alone, from a 1-nearest search (Z_U's test points need no more)."""
        q = _floats(queries)
        d, i = self._search(self._train, q, 1)
        _pin_copies(d, i, self._train_rows.find(q))
        return d[:, 0].astype(np.float32), self.locations.first[i[:, 0]].astype(np.int32)


def nearest_neighbours(
    queries: np.ndarray, train: np.ndarray, test: np.ndarray, backend: str = "kdtree", device="cpu"
) -> Neighbours:
    """Exact neighbours of `queries` (n, d) among training points (N, d) and test points (m, d)."""
    return NeighbourSearch(train, test, backend, device).query(queries)
