"""memnb.metric.approximate against independent references: a numpy brute force (float64, every pair), FAISS's
exact IndexFlatL2, python loops for the recall and the shares."""

import faiss
import numpy as np
import pytest

from memnb.metric.approximate import (
    KINDS,
    ApproximateIndex,
    default_nlist,
    recall_at_k,
    share_errors,
)

U, D, N_QUERY, N_TEST, K = 600, 24, 150, 300, 50
CRITERIA = {"paper", "train_only", "relative"}


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(7)
    train = rng.standard_normal((U, D))
    test = rng.standard_normal((N_TEST, D))
    # half the queries near copies of training points (the answer memnb looks for), half fresh draws
    near = train[rng.choice(U, N_QUERY // 2, replace=False)] + 0.01 * rng.standard_normal((N_QUERY // 2, D))
    queries = np.concatenate([near, rng.standard_normal((N_QUERY - N_QUERY // 2, D))])
    return train, test, queries


def brute_force(queries, data, k):
    """(n, k) float64 distances and indices of the k nearest rows, from every pairwise difference."""
    dist = np.sqrt(((queries[:, None, :] - data[None, :, :]) ** 2).sum(axis=2))
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, 1), order


def exhaustive(kind, n=U):
    """Settings that make the search exact: every IVF cell probed; an HNSW candidate list of every point."""
    return {"nprobe": default_nlist(n)} if kind == "ivf" else {"efSearch": n, "efConstruction": 200, "M": 16}


@pytest.mark.parametrize("kind", KINDS)
def test_exhaustive_settings_find_every_exact_neighbour(points, kind):
    train, _, queries = points
    dist, idx = ApproximateIndex(train, kind, **exhaustive(kind)).search(queries, K)
    ref_d, ref_i = brute_force(queries, train, K)
    assert dist.dtype == np.float64 and idx.dtype == np.int64 and dist.shape == idx.shape == (N_QUERY, K)
    assert recall_at_k(idx, ref_i) == 1.0
    np.testing.assert_array_equal(idx, ref_i)  # random data: no ties, so the same order too
    np.testing.assert_allclose(dist, ref_d, rtol=1e-9, atol=0)
    flat = faiss.IndexFlatL2(D)
    flat.add(train.astype(np.float32))
    _, flat_i = flat.search(queries.astype(np.float32), K)
    assert recall_at_k(idx, flat_i) == 1.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("params", [{}, {"nprobe": 1}, {"efSearch": 8, "M": 4}])
def test_found_distances_are_exact_float64(points, kind, params):
    train, _, queries = points
    params = {p: v for p, v in params.items() if (p == "nprobe") == (kind == "ivf")}
    dist, idx = ApproximateIndex(train.astype(np.float32), kind, **params).search(queries, K)
    t32 = train.astype(np.float32).astype(np.float64)  # the rows the index holds
    for i in range(0, N_QUERY, 7):
        assert len(set(idx[i])) == K and idx[i].min() >= 0
        ref = [np.sqrt(sum((queries[i, c] - t32[j, c]) ** 2 for c in range(D))) for j in idx[i]]
        np.testing.assert_allclose(dist[i], ref, rtol=1e-9, atol=0)
    assert (np.diff(dist, axis=1) >= 0).all()


def test_ivf_rows_short_of_k_are_widened(points):
    train, _, queries = points
    index = ApproximateIndex(train, "ivf", nprobe=1)  # ~6 points per cell, k = 50
    dist, idx = index.search(queries, K)
    assert index.widened == N_QUERY and (idx >= 0).all()
    exact = brute_force(queries, train, K)[1]
    assert 0.2 < recall_at_k(idx, exact) < 1  # approximate indeed, and not garbage
    half = N_QUERY // 2  # a near copy lies in the cell of the point it copies: found at nprobe = 1
    assert recall_at_k(idx[:half], exact[:half], 1) == 1.0
    assert index._index.nprobe == index.params["nprobe"] == 1  # the setting is restored


def test_copies_are_found_and_shares_identical_at_exhaustive_settings(points):
    train, test, queries = points
    group = np.arange(U) % 3
    exact = fields(*brute_force(queries, train, K), brute_force(queries, test, 1)[0])
    for kind in KINDS:
        approx = fields(
            *ApproximateIndex(train, kind, **exhaustive(kind)).search(queries, K),
            ApproximateIndex(test, kind, **exhaustive(kind, N_TEST)).search(queries, 1)[0],
        )
        err = share_errors(exact, approx, group)
        assert set(err) == {"paper", "train_only", "relative"}
        for c, e in err.items():
            assert e.shape == (4,) and (e == 0).all(), (kind, c, e)
    assert (exact["d1"][: N_QUERY // 2] < 0.1).all()  # the near copies' nearest point is the one copied


def fields(d_train, i_train, d_test):
    return {
        "d1": d_train[:, 0],
        "d2": d_train[:, 1],
        "index": i_train[:, 0],
        "d_test": d_test[:, 0],
        "d_mean50": d_train.mean(axis=1),
    }


def test_share_errors_against_a_loop():
    rng = np.random.default_rng(3)
    n, n_points = 400, 60
    group = rng.integers(0, 3, n_points)

    def draw():
        d1 = rng.uniform(0.1, 1.0, n)
        return {
            "d1": d1,
            "d2": d1 * rng.uniform(1, 5, n),
            "index": rng.integers(0, n_points, n),
            "d_test": d1 * rng.uniform(0.5, 2.5, n),
            "d_mean50": d1 * rng.uniform(1, 20, n),
        }

    a, b = draw(), draw()
    thresholds = {"paper": 1.5, "train_only": 3.0, "relative": 10.0}
    rules = {  # each criterion's rule, written out (memnb.metric.criteria's docstring)
        "paper": lambda nb, i: nb["d_test"][i] >= 1.5 * nb["d1"][i],
        "train_only": lambda nb, i: nb["d2"][i] > 3.0 * nb["d1"][i],
        "relative": lambda nb, i: nb["d1"][i] < nb["d_mean50"][i] / 10.0,
    }
    err = share_errors(a, b, group, thresholds)
    for c, rule in rules.items():
        shares = []
        for nb in (a, b):
            s = np.zeros(4)
            for i in range(n):
                if rule(nb, i):
                    s[group[nb["index"][i]]] += 1 / n
                    s[3] += 1 / n
            shares.append(s)
        np.testing.assert_allclose(err[c], np.abs(shares[1] - shares[0]), atol=1e-12)
        assert err[c][3] > 0
    assert share_errors(a, a, group, thresholds)["paper"].tolist() == [0, 0, 0, 0]
    one = share_errors(a, b)  # one group, memnb's default thresholds (the same ones)
    for c in rules:
        assert one[c][0] == one[c][1] == pytest.approx(err[c][3])


def test_recall_against_a_loop():
    rng = np.random.default_rng(5)
    exact = np.argsort(rng.random((40, 200)), axis=1)[:, :10]
    approx = np.where(rng.random((40, 10)) < 0.7, exact, rng.integers(0, 200, (40, 10)))
    approx[0, 1] = approx[0, 0]  # a repeated index counts once
    for k in (1, 2, 5, 10):
        loop = np.mean([len(set(approx[i, :k]) & set(exact[i, :k])) / k for i in range(40)])
        assert recall_at_k(approx, exact, k) == pytest.approx(loop)
    assert recall_at_k(exact[:, 0], exact) == 1.0 and recall_at_k(exact, exact[:, ::-1]) == 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_two_builds_give_the_same_neighbours(points, kind):
    train, _, queries = points
    a = ApproximateIndex(train, kind).search(queries, K)
    b = ApproximateIndex(train.copy(), kind).search(queries, K)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


def test_data_kept_by_reference(points):
    train = points[0]
    for data in (train, train.astype(np.float32)):
        assert ApproximateIndex(data, "hnsw").data is data


@pytest.mark.parametrize(
    "args, kwargs, named",
    [
        (("lsh",), {}, "kind = 'lsh'"),
        (("ivf",), {"nprobe": 0}, "nprobe = 0"),
        (("ivf",), {"nprobe": 10**6}, "nprobe = 1000000"),
        (("ivf",), {"nlist": U + 1}, f"nlist = {U + 1}"),
        (("ivf",), {"nlist": 2.5}, "nlist = 2.5"),
        (("ivf",), {"seed": -1}, "seed = -1"),
        (("ivf",), {"efSearch": 10}, "ivf parameter efSearch = 10"),
        (("hnsw",), {"M": 1}, "M = 1"),
        (("hnsw",), {"efSearch": 0}, "efSearch = 0"),
        (("hnsw",), {"efConstruction": "40"}, "efConstruction = '40'"),
        (("hnsw",), {"parallel_build": "no"}, "parallel_build = 'no'"),
        (("hnsw",), {"nprob": 3}, "hnsw parameter nprob = 3"),
    ],
)
def test_bad_parameters_fail_naming_them(points, args, kwargs, named):
    with pytest.raises(ValueError, match="allowed") as e:
        ApproximateIndex(points[0], *args, **kwargs)
    assert named in str(e.value)


def test_bad_arrays_and_k_fail_naming_them(points):
    train, _, queries = points
    bad = train.copy()
    bad[3, 4] = np.nan
    for data, named in ((bad, "data = an array with 1 non-finite"), (train[0], "data = an array of shape (24,)")):
        with pytest.raises(ValueError, match="allowed") as e:
            ApproximateIndex(data, "ivf")
        assert named in str(e.value)
    index = ApproximateIndex(train, "ivf")
    for q, k, named in ((queries, 0, "k = 0"), (queries, U + 1, f"k = {U + 1}"), (queries[:, :5], 2, "queries =")):
        with pytest.raises(ValueError, match="allowed") as e:
            index.search(q, k)
        assert named in str(e.value)


def test_set_search_changes_the_setting_without_rebuilding(points):
    train, _, queries = points
    index = ApproximateIndex(train, "ivf", nprobe=2)
    index.set_search(nprobe=default_nlist(U))
    np.testing.assert_array_equal(index.search(queries, K)[1], brute_force(queries, train, K)[1])
    for kwargs, named in (({"nprobe": 0}, "nprobe = 0"), ({"efSearch": 10}, "ivf search parameter efSearch = 10")):
        with pytest.raises(ValueError, match="allowed") as e:
            index.set_search(**kwargs)
        assert named in str(e.value)
    assert index.params["nprobe"] == default_nlist(U)


def test_hnsw_rows_short_of_k_go_to_the_exact_storage_search(points):
    """FAISS's HNSW leaves a row short (index -1) when its walk finds fewer than k points; such rows are searched
    exactly in the index's own storage. Simulated: a wrapper that blanks some of the real search's indices."""
    train, _, queries = points
    index = ApproximateIndex(train, "hnsw", M=4, efSearch=8)
    real = index._index

    class Short:
        hnsw, storage = real.hnsw, real.storage

        def search(self, q, k):
            d, i = real.search(q, k)
            i[::3, -5:] = -1  # every third row short of 5 neighbours
            return d, i

    index._index = Short()
    dist, idx = index.search(queries, K)
    ref_d, ref_i = brute_force(queries, train, K)
    assert index.widened == len(range(0, N_QUERY, 3))
    np.testing.assert_array_equal(idx[::3], ref_i[::3])  # the exact search's neighbours for the short rows
    np.testing.assert_allclose(dist[::3], ref_d[::3], rtol=1e-9)
    assert (idx >= 0).all()


def test_quick_benchmark_writes_a_consistent_report(tmp_path):
    """benchmarks/approximate_bench.py --quick runs end to end (make bench runs it); its ratios are its timings'."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "benchmarks/approximate_bench.py", "--quick", "--out", str(tmp_path)]
    subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "approximate-latest-quick.json").read_text())
    (row,) = report["rows"]
    assert row["known_answer"]["ok"] and row["ivf_thread_check"]["same_neighbours"] == 1.0
    exact_s = row["exact"]["rows"][0]["search_s"]
    for kind in ("ivf", "hnsw"):
        assert row[kind]["build_over_exact"] == pytest.approx(row[kind]["build_s"] / row["exact"]["build_s"])
        for s in row[kind]["rows"]:
            assert s["search_over_exact"] == pytest.approx(s["search_s"] / exact_s)
            for name in ("known", "graded"):
                assert 0 <= s[name]["recall_at_1"] <= 1 and set(s[name]["share_error"]) == CRITERIA
    assert row["hnsw"]["rows"][-1]["graded"]["recall_at_1"] == 1.0  # efSearch 200 on 600 points: exhaustive
