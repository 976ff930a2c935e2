"""Approximate nearest neighbours with FAISS (IVF, HNSW), opt-in, and the measures of what they cost in accuracy.

memnb's searches are exact by default (memnb.metric.neighbors). For a large training set in high dimension
(N >= 10^4 points, d >= 64) an exact search costs N x d multiply-adds per query; an approximate index looks
at a fraction of the points instead:

- ``"ivf"``: FAISS `IndexIVFFlat`. k-means (FAISS's, seeded) splits the U points into `nlist` cells
  (default round(4 sqrt(U)), FAISS's rule of thumb); a query scans the points of the `nprobe` cells whose
  centroids are nearest. nprobe = nlist scans every point: an exact search (to float32 ranking).
- ``"hnsw"``: FAISS `IndexHNSWFlat`, a navigable small-world graph with `M` links per point, built with
  candidate lists of `efConstruction`; a query walks the graph with a candidate list of `efSearch`
  (raised to k when smaller, as hnswlib does: FAISS leaves rows short otherwise).

Both keep a float32 copy of the points inside FAISS; `data` itself is kept by reference (no float64 copy;
a float64 `data` is converted to float32 once, transiently, while the index is built). Only *which*
neighbours are found is approximate: the k distances returned are recomputed in float64 directly from the
rows, |q - x|, and re-sorted, so a found neighbour's distance is exact to float64 rounding (FAISS's float32
distances, squared, and formed as |q|^2 + |x|^2 - 2 q.x for large batches, are used for ranking only).
Rows FAISS leaves short of k neighbours (IVF: the probed cells hold fewer than k points) are searched again
with nprobe doubled until full (nprobe = nlist holds all U >= k points); for HNSW such rows (not seen with
efSearch >= k) go to the exact flat search of the index's own storage. `ApproximateIndex.widened` counts
them.

Determinism. IVF: the k-means seed is set (`seed`, default 0), so two builds of the same data on one machine
with one thread count give the same centroids and the same neighbours; FAISS's k-means and its query-to-cell
assignment use float32 BLAS products whose last bits may differ across CPUs or BLAS thread counts, which can
move a point to another cell (no guarantee there; `benchmarks/approximate_bench.py` checks 1 against 2
threads). HNSW: the levels come from FAISS's fixed-seed generator, but an insertion order across OpenMP
threads is not fixed, so the graph is built with one thread (`parallel_build=False`, the default:
deterministic, about the thread count times slower to build); `parallel_build=True` uses every thread and
two builds may differ. Searches of both are per query and deterministic for a fixed index.

recall_at_k and share_errors measure an approximate search against the exact one: the share of the exact
k nearest found, and the error it makes in each criterion's memorized share (memnb.metric.criteria).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..core.validate import check_bool, check_int, fail, invalid, shown
from .criteria import memorized_shares, names, ratio_from

KINDS = ("ivf", "hnsw")
# The names proposed for memnb.metric.neighbors.NeighbourSearch's backend argument, and their kind here.
BACKENDS = {"faiss-ivf": "ivf", "faiss-hnsw": "hnsw"}
PARAMS = {"ivf": ("nlist", "nprobe", "seed"), "hnsw": ("M", "efConstruction", "efSearch", "parallel_build")}
SEARCH_PARAM = {"ivf": "nprobe", "hnsw": "efSearch"}  # what set_search may change after the build
HNSW_DEFAULTS = {"M": 32, "efConstruction": 40, "efSearch": 64}
# Queries handed to FAISS at a time (their float32 copy: 50 MB at d = 3072), and the bound on one
# (queries x k x d) float64 block of the distance recomputation.
QUERY_CHUNK = 4096
RECOMPUTE_BYTES = 4 * 2**20  # blocks that stay in cache: about 2x faster than 64 MB ones (measured, 3072-D)


def default_nlist(n_points: int) -> int:
    """IVF cells for n_points points: round(4 sqrt(n)), within [1, n]."""
    return int(min(n_points, max(1, round(4 * math.sqrt(n_points)))))


def default_nprobe(nlist: int) -> int:
    """Cells probed per query unless given: nlist / 8 (at least 1), i.e. about 1/8 of the points scanned."""
    return max(1, round(nlist / 8))


def _points(name: str, x, d: int | None = None) -> np.ndarray:
    """`x` as a 2-D float32/float64 array of finite values (d columns when given), without a copy if it is one."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1 or (d is not None and a.shape[1] != d):
        want = f"(n, {d})" if d is not None else "(n, d) with n, d >= 1"
        fail(name, shown(f"an array of shape {a.shape}"), f"a 2-D array of shape {want}")
    if a.dtype not in (np.float32, np.float64):
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            fail(name, shown(f"an array of dtype {a.dtype}"), "real numbers")
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        fail(name, shown(f"an array with {int((~np.isfinite(a)).sum())} non-finite value(s)"), "finite values")
    return a


class ApproximateIndex:
    """An approximate k-nearest-neighbour index over `data` (U, d), searched by `search(queries, k)`.

    kind: "ivf" (params nlist = round(4 sqrt(U)), nprobe = nlist / 8, seed = 0) | "hnsw" (params M = 32,
    efConstruction = 40, efSearch = 64, raised to k at a search, parallel_build = False); see the module
    docstring for what they mean. `data` (float32 or float64, finite) is kept by reference: do not modify it
    while the index is in use. `params` holds the settings in use, `widened` counts the rows searched again.
    The HNSW build sets FAISS's process-wide OpenMP thread count to 1 for its duration.
    """

    def __init__(self, data: np.ndarray, kind: str, **params):
        if kind not in KINDS:
            fail("kind", kind, " | ".join(KINDS))
        unknown = sorted(set(params) - set(PARAMS[kind]))
        if unknown:
            fail(f"{kind} parameter {unknown[0]}", params[unknown[0]], "one of " + ", ".join(PARAMS[kind]))
        self.data = _points("data", data)
        self.kind = kind
        self.widened = 0
        n, d = self.data.shape
        if kind == "ivf":
            nlist = params.get("nlist")
            self.nlist = default_nlist(n) if nlist is None else check_int("nlist", nlist, 1, n)
            nprobe = params.get("nprobe")
            nprobe = default_nprobe(self.nlist) if nprobe is None else check_int("nprobe", nprobe, 1, self.nlist)
            self.params = {
                "nlist": self.nlist,
                "nprobe": nprobe,
                "seed": check_int("seed", params.get("seed", 0), 0, 2**31 - 1),
            }
        else:
            self.params = {p: check_int(p, params.get(p, v), 1) for p, v in HNSW_DEFAULTS.items()}
            if self.params["M"] < 2:
                fail("M", params["M"], "an integer >= 2 (links per point of the HNSW graph)")
            self.params["parallel_build"] = check_bool("parallel_build", params.get("parallel_build", False))
        self._index = self._build(np.ascontiguousarray(self.data, np.float32))

    def _build(self, x32: np.ndarray):
        import faiss

        d = x32.shape[1]
        if self.kind == "ivf":
            self._quantizer = faiss.IndexFlatL2(d)  # kept here: the IVF index does not own it
            index = faiss.IndexIVFFlat(self._quantizer, d, self.nlist, faiss.METRIC_L2)
            index.cp.seed = self.params["seed"]
            # nlist = 4 sqrt(U) leaves sqrt(U)/4 points per cell, below FAISS's 39 for U < 24,000; FAISS then
            # warns that the centroids are rough. That costs recall only, and the recall is what is measured.
            index.cp.min_points_per_centroid = 1
            index.train(x32)
            index.add(x32)
            return index
        index = faiss.IndexHNSWFlat(d, self.params["M"], faiss.METRIC_L2)
        index.hnsw.efConstruction = self.params["efConstruction"]
        threads = faiss.omp_get_max_threads()
        if not self.params["parallel_build"]:
            faiss.omp_set_num_threads(1)  # a fixed insertion order: the same graph at every build
        try:
            index.add(x32)
        finally:
            faiss.omp_set_num_threads(threads)
        return index

    def set_search(self, **params) -> None:
        """Change the search-time setting without rebuilding: nprobe (ivf: 1 to nlist) or efSearch (hnsw: >= 1)."""
        key = SEARCH_PARAM[self.kind]
        for p, v in params.items():
            if p != key:
                fail(f"{self.kind} search parameter {p}", v, key)
            self.params[key] = check_int(key, v, 1, self.nlist if self.kind == "ivf" else None)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) float64 distances |q - x|, ascending, exact for the neighbours found, and (n, k) int64 row
        indices into `data` of the (approximately) k nearest rows of each query (n, d)."""
        n_points, d = self.data.shape
        k = check_int("k", k, 1, n_points)
        q = _points("queries", queries, d)
        dist = np.empty((len(q), k), np.float64)
        idx = np.empty((len(q), k), np.int64)
        for s in range(0, len(q), QUERY_CHUNK):
            block = q[s : s + QUERY_CHUNK]
            idx[s : s + len(block)] = self._faiss_search(np.ascontiguousarray(block, np.float32), k)
            dist[s : s + len(block)], idx[s : s + len(block)] = exact_distances(
                self.data, block, idx[s : s + len(block)]
            )
        return dist, idx

    def _faiss_search(self, q32: np.ndarray, k: int) -> np.ndarray:
        """(n, k) indices of FAISS's k nearest (its ranking), with no -1 left (see the module docstring)."""
        import faiss

        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(self.params["efSearch"], k)
            _, i = self._index.search(q32, k)
            short = np.flatnonzero((i < 0).any(axis=1))
            if len(short):
                _, i[short] = faiss.downcast_index(self._index.storage).search(q32[short], k)
            self.widened += len(short)
            return i
        nprobe = self._index.nprobe = self.params["nprobe"]
        _, i = self._index.search(q32, k)
        short = np.flatnonzero((i < 0).any(axis=1))
        self.widened += len(short)
        try:
            while len(short):
                if nprobe == self.nlist:  # every point scanned and still short: cannot happen for k <= U
                    raise RuntimeError(f"FAISS IVF returned fewer than k = {k} neighbours with every cell probed")
                nprobe = min(self.nlist, 2 * nprobe)
                self._index.nprobe = nprobe
                _, i[short] = self._index.search(q32[short], k)
                short = short[(i[short] < 0).any(axis=1)]
        finally:
            self._index.nprobe = self.params["nprobe"]
        return i


def exact_distances(data: np.ndarray, queries: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float64 distances |q - x| of each query (n, d) to its k rows data[idx] (idx (n, k) int), sorted
    ascending (stable), and idx in that order: (n, k) float64, (n, k) int64. Computed from the differences in
    blocks of at most RECOMPUTE_BYTES, not from |q|^2 + |x|^2 - 2 q.x (whose cancellation loses small distances)."""
    n, k = idx.shape
    d = queries.shape[1]
    dist = np.empty((n, k), np.float64)
    step = max(1, RECOMPUTE_BYTES // (8 * k * d))
    for s in range(0, n, step):
        diff = data[idx[s : s + step]].astype(np.float64)  # (c, k, d): the found rows
        diff -= np.asarray(queries[s : s + step], np.float64)[:, None, :]
        dist[s : s + step] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, 1), np.take_along_axis(np.asarray(idx, np.int64), order, 1)


# -- measures ---------------------------------------------------------------------------------------
def recall_at_k(approx_idx: np.ndarray, exact_idx: np.ndarray, k: int | None = None) -> float:
    """Recall@k: the mean over queries of |A_k ∩ E_k| / k, A_k and E_k the first k indices of each query's
    approximate and exact neighbours (as sets: the order within the k does not count).

    approx_idx: (n, ka) or (n,) int indices, nearest first; exact_idx: (n, ke) or (n,); k: at most
    min(ka, ke) (default that minimum). An index repeated within one query's k counts once. Exact ties in
    distance can make two correct searches disagree; for continuous data they do not occur.
    """
    a = np.asarray(approx_idx).reshape(len(approx_idx), -1)
    e = np.asarray(exact_idx).reshape(len(exact_idx), -1)
    if len(a) != len(e):
        fail("approx_idx", shown(f"{len(a)} rows"), f"as many rows as exact_idx ({len(e)})")
    kmax = min(a.shape[1], e.shape[1])
    k = kmax if k is None else check_int("k", k, 1, kmax)
    if len(a) == 0:
        raise invalid("approx_idx", shown("an empty array"), "at least one query")
    a, e = a[:, :k], e[:, :k]
    hits = sum(((a[:, [j]] == e) & (a[:, [j]] != a[:, :j]).all(axis=1, keepdims=True)).any(axis=1) for j in range(k))
    return float(np.mean(hits) / k)


def share_errors(
    exact: Mapping[str, np.ndarray],
    approx: Mapping[str, np.ndarray],
    point_group: np.ndarray | None = None,
    thresholds: Mapping[str, float] | None = None,
    n_groups: int = 3,
) -> dict[str, np.ndarray]:
    """Per criterion, (n_groups + 1,) absolute differences |share(approx) - share(exact)| of the memorized
    share of the generated samples (memnb.metric.criteria.memorized_shares) at the criterion's threshold;
    the last entry is all groups together.

    exact, approx: the neighbour fields of the same n samples (memnb.metric.neighbors.NEIGHBOUR_FIELDS: d1,
    d2, d_test, d_mean50 (n,) distances, index (n,) nearest training point); point_group: (N,) group code of
    every training point (a sample counts in the group of *its own search's* nearest point, so a wrong
    nearest point can move it between groups); None: one group. thresholds: {criterion: k}; None: memnb's
    default config (paper 1.5, train_only 3, relative 1/0.1 = 10).
    """
    if thresholds is None:
        from ..core.config import ExperimentConfig

        config = ExperimentConfig()
        thresholds = {c: config.own_threshold(c) for c in names()}
    if point_group is None:  # one group: every training point has code 0
        n_points = 1 + int(max(np.max(exact["index"]), np.max(approx["index"])))
        point_group, n_groups = np.zeros(n_points, np.int64), 1
    groups = np.asarray(point_group)
    out = {}
    for c in names():
        if c not in thresholds:
            fail(
                "thresholds",
                shown(f"a mapping without {c!r}"),
                "a threshold for every criterion: " + ", ".join(names()),
            )
        shares = [
            memorized_shares(c, ratio_from(c, nb), groups[np.asarray(nb["index"])], [thresholds[c]], n_groups)
            for nb in (exact, approx)
        ]
        out[c] = np.abs(shares[1] - shares[0])[:, 0]
    return out
