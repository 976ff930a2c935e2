"""Both exact backends against brute-force numpy distances (float64, full matrix)."""

import numpy as np
import pytest

from memnb.metric.neighbors import NeighbourSearch, nearest_neighbours


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


@pytest.mark.parametrize("backend", ["kdtree", "faiss"])
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
    a, b = (NeighbourSearch(train, test, k).query(q) for k in ("kdtree", "faiss"))
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_allclose(a.d_test, b.d_test, rtol=1e-4, atol=1e-6)


def test_unknown_backend():
    with pytest.raises(ValueError, match="annoy.*kdtree \\| faiss"):
        NeighbourSearch(np.zeros((3, 2)) + np.arange(3)[:, None], np.zeros((1, 2)), "annoy")


@pytest.mark.parametrize("backend", ["kdtree", "faiss"])
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
    for backend in ("kdtree", "faiss"):
        nb = nearest_neighbours(q, train, rng.normal(size=(4, 2)), backend)
        np.testing.assert_allclose(nb.d_mean50, brute_force_mean(q, train, 12), rtol=1e-5)
