"""The exact backends against brute-force numpy distances (float64, full matrix) and each other; exact copies found
by identity; the neighbour benchmark's report."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from memnb.metric import neighbors
from memnb.metric import rows as rows_module
from memnb.metric.neighbors import NEIGHBOUR_FIELDS, RELATIVE_NEIGHBOURS, NeighbourSearch, nearest_neighbours


def brute_force(q, train, test):
    uniq, first = np.unique(train, axis=0, return_index=True)
    d = np.sqrt(((q[:, None, :] - uniq[None]) ** 2).sum(-1))
    order = np.argsort(d, axis=1)
    dt = np.sqrt(((q[:, None, :] - test[None]) ** 2).sum(-1)).min(1)
    rows = np.arange(len(q))
    return d[rows, order[:, 0]], d[rows, order[:, 1]], first[order[:, 0]], dt


def brute_force_mean(q, train, k):
    uniq = np.unique(train, axis=0)
    d = np.sort(np.sqrt(((q[:, None, :] - uniq[None]) ** 2).sum(-1)), axis=1)
    return d[:, :k].mean(1)


@pytest.fixture
def points():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(700, 2))
    train = np.concatenate([train, train[:40]])  # exact duplicates, as the injector makes
    test = rng.normal(size=(500, 2))
    q = np.concatenate([rng.normal(size=(300, 2)), train[:25] + 1e-3 * rng.normal(size=(25, 2))])
    return q, train, test


@pytest.mark.parametrize("backend", ["kdtree", "faiss", "torch"])
def test_backend_matches_brute_force(points, backend):
    q, train, test = points
    nb = nearest_neighbours(q, train, test, backend)
    d1, d2, idx, dt = brute_force(q, train, test)
    np.testing.assert_allclose(nb.d1, d1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(nb.d2, d2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(nb.d_test, dt, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(nb.index, idx)
    assert nb.d1.dtype == np.float32 and nb.index.dtype == np.int32


def test_faiss_distances_are_plain_not_squared():
    train = np.array([[0.0, 0.0], [10.0, 0.0]])
    test = np.array([[0.0, 5.0]])
    nb = nearest_neighbours(np.array([[3.0, 0.0]]), train, test, "faiss")
    assert nb.d1[0] == pytest.approx(3.0) and nb.d2[0] == pytest.approx(7.0)
    assert nb.d_test[0] == pytest.approx(np.hypot(3, 5), rel=1e-6)


def test_exact_copy_does_not_hide_its_original():
    train = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    nb = nearest_neighbours(np.array([[0.1, 0.0]]), train, np.array([[5.0, 5.0]]))
    assert nb.d2[0] == pytest.approx(0.9)  # second-nearest *distinct* location, not the copy at 0.1
    assert nb.index[0] == 0


def test_backends_agree(points):
    q, train, test = points
    a, b, c = (NeighbourSearch(train, test, k).query(q) for k in ("kdtree", "faiss", "torch"))
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_allclose(a.d_test, b.d_test, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(a.index, c.index)
    np.testing.assert_allclose(a.d_test, c.d_test, rtol=1e-6, atol=0)


def test_unknown_backend():
    with pytest.raises(ValueError, match="annoy.*kdtree \\| faiss \\| torch"):
        NeighbourSearch(np.zeros((3, 2)) + np.arange(3)[:, None], np.zeros((1, 2)), "annoy")


@pytest.mark.parametrize("backend", ["kdtree", "faiss", "torch"])
def test_mean_distance_to_50_nearest_matches_brute_force(points, backend):
    q, train, test = points
    nb = nearest_neighbours(q, train, test, backend)
    np.testing.assert_allclose(nb.d_mean50, brute_force_mean(q, train, 50), rtol=1e-4, atol=1e-6)
    assert nb.d_mean50.dtype == np.float32 and (nb.d_mean50 >= nb.d2).all()


def test_mean_distance_with_fewer_than_50_locations():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(12, 2))
    train = np.concatenate([train, train[:5]])  # 12 distinct locations
    q = rng.normal(size=(7, 2))
    for backend in ("kdtree", "faiss", "torch"):
        nb = nearest_neighbours(q, train, rng.normal(size=(4, 2)), backend)
        np.testing.assert_allclose(nb.d_mean50, brute_force_mean(q, train, 12), rtol=1e-5)


# -- the torch backend -----------------------------------------------------------------------------
def near_copies(d, seed=0):
    """Gaussian training points with exact duplicates, test points, and queries: fresh draws and near copies."""
    rng = np.random.default_rng(seed + d)
    train = rng.normal(size=(600, d))
    train = np.concatenate([train, train[:30]])
    test = rng.normal(size=(300, d))
    q = np.concatenate([rng.normal(size=(250, d)), train[:40] + 1e-3 * rng.normal(size=(40, d))])
    return q, train, test


@pytest.mark.parametrize("d", [2, 8, 64])
def test_torch_matches_the_kdtree(d):
    q, train, test = near_copies(d)
    kd, th = NeighbourSearch(train, test, "kdtree"), NeighbourSearch(train, test, "torch")
    for k in (2, RELATIVE_NEIGHBOURS):  # the raw float64 searches: the same neighbours, the same distances
        (dk, ik), (dt, it) = kd._search(kd._train, q, k), th._search(th._train, q, k)
        np.testing.assert_array_equal(it, ik)
        np.testing.assert_allclose(dt, dk, rtol=1e-6, atol=0)
        assert dt.dtype == np.float64
    a, b = kd.query(q), th.query(q)
    np.testing.assert_array_equal(b.index, a.index)
    for f in NEIGHBOUR_FIELDS:
        np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-6, atol=0)


def test_torch_chunks_give_the_same_result(monkeypatch):
    q, train, test = near_copies(8)
    whole = NeighbourSearch(train, test, "torch").query(q)
    monkeypatch.setattr(neighbors, "TORCH_CHUNK_BYTES", 8 * 630 * 7)  # 7 queries per chunk, a ragged last one
    s = NeighbourSearch(train, test, "torch")
    assert s._train.chunk(2) == 7
    chunked = s.query(q)
    for f in NEIGHBOUR_FIELDS:
        np.testing.assert_array_equal(getattr(chunked, f), getattr(whole, f))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("d", [2, 64])
def test_torch_on_cuda_matches_the_cpu(d):
    q, train, test = near_copies(d)
    cpu, gpu = (NeighbourSearch(train, test, "torch", device=dev) for dev in ("cpu", "cuda"))
    assert gpu._train.points.device.type == "cuda"
    (dc, ic), (dg, ig) = (
        cpu._search(cpu._train, q, RELATIVE_NEIGHBOURS),
        gpu._search(gpu._train, q, RELATIVE_NEIGHBOURS),
    )
    np.testing.assert_array_equal(ig, ic)
    np.testing.assert_allclose(dg, dc, rtol=1e-12, atol=0)
    a, b = cpu.query(q), gpu.query(q)
    np.testing.assert_array_equal(b.index, a.index)
    for f in NEIGHBOUR_FIELDS:
        np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-6, atol=0)


# -- exact copies by identity ----------------------------------------------------------------------
TILES = 11  # 200 distinct queries repeated: 2200 x 64 coordinates, past FAISS's switch to float32 BLAS products


def copies_case(kind, d=64, seed=0):
    """Training points with exact duplicates; 200 distinct queries: exact copies of training points (duplicated
    ones too), exact copies of test points, fresh draws. kind: "digits" (integers / 8 - 1, as the digits
    images), "large" (uniform floats of magnitude 1e3, where float32 squared distances lose precision) or
    "offset" (1e3 + N(0, 1) per coordinate: float32 noise near the distances themselves)."""
    rng = np.random.default_rng(seed)
    draw = {
        "digits": lambda n: rng.integers(0, 17, size=(n, d)) / 8.0 - 1.0,
        "large": lambda n: rng.uniform(-1e3, 1e3, size=(n, d)),
        "offset": lambda n: 1e3 + rng.normal(size=(n, d)),
    }[kind]
    base = draw(300)
    train = np.concatenate([base, base[:30], base[:10]])  # exact duplicates
    train = train[rng.permutation(len(train))]
    test = draw(200)
    q = np.concatenate([train[:60], base[:15], test[:25], draw(100)])
    is_train_copy = np.r_[np.ones(75, bool), np.zeros(125, bool)]
    is_test_copy = np.r_[np.zeros(75, bool), np.ones(25, bool), np.zeros(100, bool)]
    return q, train, test, is_train_copy, is_test_copy


@pytest.mark.parametrize("backend", ["kdtree", "faiss", "torch"])
@pytest.mark.parametrize("kind", ["digits", "large", "offset"])
def test_exact_copies_are_found_by_identity(backend, kind):
    q0, train, test, copy0, test_copy0 = copies_case(kind)
    q, copy, test_copy = np.tile(q0, (TILES, 1)), np.tile(copy0, TILES), np.tile(test_copy0, TILES)
    nb = nearest_neighbours(q, train, test, backend)
    assert (nb.d1[copy] == 0).all() and (nb.d1[~copy] > 0).all()
    assert (nb.d_test[test_copy] == 0).all() and (nb.d_test[~test_copy] > 0).all()
    d1, d2, idx, dt = (np.tile(a, TILES) for a in brute_force(q0, train, test))
    first = np.array([np.flatnonzero((train == row).all(1))[0] for row in q[copy]])
    np.testing.assert_array_equal(nb.index[copy], first)  # the location's first training point
    if (
        backend == "faiss" and kind == "offset"
    ):  # float32 squared norms of 6.4e7: distances quantised, only copies exact
        assert (nb.d2 > 0).all()
        return
    np.testing.assert_array_equal(nb.index, idx)
    np.testing.assert_allclose(nb.d2, d2, rtol=1e-5)  # the next *other* location, as the k-d tree gives
    np.testing.assert_allclose(nb.d1[~copy], d1[~copy], rtol=1e-5)
    np.testing.assert_allclose(nb.d_test, dt, rtol=1e-5)
    mean = np.tile(brute_force_mean(q0, train, 50), TILES)
    np.testing.assert_allclose(nb.d_mean50, mean, rtol=1e-5)


@pytest.mark.parametrize("kind", ["large", "offset"])
def test_identity_fixes_what_float32_faiss_misses(monkeypatch, kind):
    """FAISS's float32 products put exact copies at distances above 0; the identity look-up still gives d1 = 0,
    the copied location, and the backend's next other locations for d2 and the mean."""
    faiss = pytest.importorskip("faiss")
    monkeypatch.setattr(faiss.cvar, "distance_compute_blas_threshold", 1)  # BLAS products for any batch
    q, train, test, copy, _ = copies_case(kind)
    s = NeighbourSearch(train, test, "faiss")
    k = RELATIVE_NEIGHBOURS
    raw_d, raw_i = s._search(s._train, q, k)
    target = s._train_rows.find(q)
    assert (raw_d[copy, 0] > 0).any()  # the defect this guards against
    nb = s.query(q)
    assert (nb.d1[copy] == 0).all() and (nb.d1[~copy] > 0).all()
    np.testing.assert_array_equal(nb.index[copy], s.locations.first[target[copy]])
    for r in np.flatnonzero(copy):  # d2 and the mean: the backend's other neighbours, the copy itself left out
        others = raw_d[r][raw_i[r] != target[r]][: k - 1]
        assert nb.d2[r] == np.float32(others[0])
        assert nb.d_mean50[r] == np.float32(np.r_[0.0, others].mean())


@pytest.mark.parametrize("backend", ["kdtree", "torch"])
def test_float64_backends_see_one_ulp(backend):
    """A copy moved by one ulp in one coordinate is not a copy: d1 > 0 and the copied point is its nearest."""
    q, train, test, copy, _ = copies_case("large")
    moved = q[copy].copy()
    moved[:, 7] = np.nextafter(moved[:, 7], np.inf)
    nb = nearest_neighbours(moved, train, test, backend)
    assert (nb.d1 > 0).all()
    np.testing.assert_array_equal(nb.index, nearest_neighbours(q[copy], train, test, backend).index)


def test_pin_copies_keeps_the_backends_other_neighbours_in_order():
    dist = np.array([[0.5, 1.0, 2.0, 3.0], [0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]])
    idx = np.array([[7, 3, 5, 9], [1, 2, 3, 4], [5, 6, 7, 8], [0, 1, 2, 3]])
    copy_of = np.array([5, 9, 5, -1])  # the copy found third; not found (the last neighbour drops); found first; none
    neighbors._pin_copies(dist, idx, copy_of)
    np.testing.assert_array_equal(idx, [[5, 7, 3, 9], [9, 1, 2, 3], [5, 6, 7, 8], [0, 1, 2, 3]])
    np.testing.assert_array_equal(dist, [[0, 0.5, 1, 3], [0, 0.1, 0.2, 0.3], [0, 1, 2, 3], [1, 2, 3, 4]])
    d1, i1 = np.array([[0.3], [0.2]]), np.array([[4], [2]])
    neighbors._pin_copies(d1, i1, np.array([-1, 6]))  # k = 1, as for the test points
    np.testing.assert_array_equal(d1[:, 0], [0.3, 0.0])
    np.testing.assert_array_equal(i1[:, 0], [4, 6])


def test_kdtree_results_unchanged_bit_for_bit():
    """The identity step changes nothing for the k-d tree: the same arrays as its plain search."""
    from scipy.spatial import cKDTree

    q, train, test, *_ = copies_case("large", d=2)
    q = np.concatenate([q, near_copies(2)[0]])
    nb = nearest_neighbours(q, train, test, "kdtree")
    loc = neighbors.TrainingLocations.of(train)
    d, i = cKDTree(loc.points).query(q, k=50, workers=-1)
    dt, _ = cKDTree(test).query(q, k=1, workers=-1)
    np.testing.assert_array_equal(nb.d1, d[:, 0].astype(np.float32))
    np.testing.assert_array_equal(nb.d2, d[:, 1].astype(np.float32))
    np.testing.assert_array_equal(nb.index, loc.first[i[:, 0]].astype(np.int32))
    np.testing.assert_array_equal(nb.d_test, dt.astype(np.float32))
    np.testing.assert_array_equal(nb.d_mean50, d.mean(axis=1).astype(np.float32))


def test_row_index_finds_first_equal_rows():
    rows = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [0.0, -5.0]])
    ix = neighbors.RowIndex(rows)
    q = np.array([[1.0, 2.0], [3.0, 4.0], [-0.0, -5.0], [1.0, np.nextafter(2.0, 3.0)], [9.0, 9.0], [np.nan, 2.0]])
    np.testing.assert_array_equal(ix.find(q), [0, 1, 3, -1, -1, -1])  # -0.0 equals 0.0, as in np.unique


def test_row_index_survives_hash_collisions(monkeypatch):
    """Should different rows share a hash, the exact bytes decide (every row hashed to 0 here)."""
    q, train, test, copy, test_copy = copies_case("digits", d=8)
    want = nearest_neighbours(q, train, test, "faiss")
    monkeypatch.setattr(rows_module, "row_hash", lambda rows: np.zeros(len(rows), np.uint64))
    s = NeighbourSearch(train, test, "faiss")
    assert len(set(s._train_rows._sorted.tolist())) == 1  # every row shares the one hash
    got = s.query(q)
    for f in NEIGHBOUR_FIELDS:
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f))
    assert (got.d1[copy] == 0).all() and (got.d_test[test_copy] == 0).all()


# -- the benchmark ---------------------------------------------------------------------------------
def test_quick_neighbour_benchmark_writes_a_consistent_report(tmp_path):
    """benchmarks/neighbors_bench.py --quick runs and its report follows from its timings (speed is not judged)."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "benchmarks/neighbors_bench.py", "--quick", "--out", str(tmp_path)],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    r = json.loads((tmp_path / "neighbors-latest-quick.json").read_text())
    dims = r["dims"]
    assert r["quick"] is True and {"kdtree", "faiss", "torch"} <= set(r["backends"]) and len(dims) >= 2
    assert set(r["timings"]) == set(r["backends"]) == set(r["speedup_vs_kdtree"])
    for b in r["backends"]:
        assert set(r["timings"][b]) == {str(d) for d in dims}
        for d in dims:
            t = r["timings"][b][str(d)]
            assert all(t[f"{k}_s"] > 0 for k in ("build", "query", "knn2"))
            assert t["same_index_as_kdtree"] == 1.0  # exact backends: the same neighbours
            for k in ("build", "query", "knn2"):
                want = r["timings"]["kdtree"][str(d)][f"{k}_s"] / t[f"{k}_s"]
                assert r["speedup_vs_kdtree"][b][str(d)][k] == pytest.approx(want)
    for b, cross in r["crossover"].items():  # lowest d from which the backend is faster at every larger d
        for k in ("query", "knn2"):
            faster = [r["timings"][b][str(d)][f"{k}_s"] < r["timings"]["kdtree"][str(d)][f"{k}_s"] for d in dims]
            tail = next((dims[i] for i in range(len(dims)) if all(faster[i:])), None)
            assert cross[k] == tail
