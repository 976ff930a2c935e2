"""memnb.metric.rows: distinct rows and exact look-up by hashed bits, against np.unique as the reference."""

import numpy as np
import pytest

from memnb.metric import rows as rows_module
from memnb.metric.neighbors import TrainingLocations
from memnb.metric.rows import RowIndex, distinct_rows


def _with_copies(rng, n, d, dtype, copies):
    x = rng.normal(size=(n, d)).astype(dtype)
    src, dst = rng.choice(n, size=(2, copies), replace=False)
    x[dst] = x[src]
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [50, rows_module.HASH_CHUNK + 37])  # one block, and hashing across chunk borders
def test_distinct_rows_agree_with_np_unique(dtype, n):
    rng = np.random.default_rng(n)
    x = _with_copies(rng, n, 6, dtype, copies=n // 5)
    x[1], x[2] = [0.0] * 6, [-0.0] * 6  # -0.0 equals 0.0
    got = distinct_rows(x)
    uniq, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
    assert len(got.first) == len(uniq)
    np.testing.assert_array_equal(got.first, np.sort(first))  # the same first occurrences, in index order
    # the same partition of the points: equal rows share a location id, different rows do not
    inverse = inverse.reshape(-1)
    np.testing.assert_array_equal(x[got.first[got.location]], x)
    assert (got.location[:, None] == got.location[None, :]).sum() == (inverse[:, None] == inverse[None, :]).sum()


def test_distinct_rows_survive_a_colliding_hash(monkeypatch):
    x = _with_copies(np.random.default_rng(3), 40, 4, np.float64, copies=8)
    want = distinct_rows(x)
    monkeypatch.setattr(rows_module, "row_hash", lambda r: np.zeros(len(r), np.uint64))
    got = distinct_rows(x)
    np.testing.assert_array_equal(got.first, want.first)
    np.testing.assert_array_equal(got.location, want.location)
    ix = RowIndex(x)  # one hash for every row: each query compared with the rows in turn
    np.testing.assert_array_equal(ix.find(x), want.first[want.location])
    np.testing.assert_array_equal(ix.find(x[:3] + 0.5), [-1, -1, -1])


def test_rows_equal_on_the_hashed_coordinates_only_stay_apart():
    """Beyond HASH_COORDS dimensions only a fixed spread of coordinates is hashed: rows that differ elsewhere
    share a hash and are told apart by the full comparison."""
    d = rows_module.HASH_COORDS + 44
    hashed = rows_module._coords(d)
    other = np.setdiff1d(np.arange(d), hashed)[0]
    x = np.zeros((6, d))
    x[1, other] = 1.0  # differs from row 0 outside the hashed coordinates only
    x[2] = x[0]
    x[3, other] = 2.0
    x[4] = x[1]
    x[5, hashed[0]] = 1.0
    got = distinct_rows(x)
    assert rows_module.row_hash(x[[0, 1, 3]]).tolist().count(rows_module.row_hash(x[:1])[0]) == 3
    np.testing.assert_array_equal(got.first, [0, 1, 3, 5])
    np.testing.assert_array_equal(got.location, [0, 1, 0, 2, 1, 3])
    np.testing.assert_array_equal(RowIndex(x).find(x[[4, 3, 2]]), [1, 3, 0])


def test_locations_of_distinct_float32_points_are_the_array_itself():
    x = np.random.default_rng(0).normal(size=(100, 32)).astype(np.float32)
    loc = TrainingLocations.of(x)
    assert loc.points is x  # no copy (and no float64 one) when every point is distinct
    x[7] = x[3]
    loc = TrainingLocations.of(x)
    assert loc.points.dtype == np.float32 and len(loc.points) == 99
    assert loc.location[7] == loc.location[3] and loc.first[loc.location[7]] == 3


def test_row_index_compares_float32_rows_with_float64_queries_exactly():
    x = np.random.default_rng(1).normal(size=(30, 5)).astype(np.float32)
    ix = RowIndex(x)
    q = x[[4, 9]].astype(np.float64)
    q[1, 2] = np.nextafter(q[1, 2], np.inf)  # one float64 step away: not a copy
    np.testing.assert_array_equal(ix.find(q), [4, -1])
