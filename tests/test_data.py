import numpy as np
import pytest
from sklearn.datasets import make_moons

from memnb.core.config import ExperimentConfig
from memnb.core.vocabulary import DUPLICATE, INLIER, OUTLIER
from memnb.data import make_base
from memnb.data.injection import make_test_set, make_training_set, sample_data_distribution
from memnb.data.toys import moons


def test_moons_is_tiny_diffusions_transform_of_make_moons():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    ours = moons(500, rng_a)
    raw, _ = make_moons(n_samples=500, noise=0.03, random_state=int(rng_b.integers(2**31 - 1)))
    np.testing.assert_allclose(ours[:, 0], (raw[:, 0] + 0.3) * 2 - 1)
    np.testing.assert_allclose(ours[:, 1], (raw[:, 1] + 0.3) * 3 - 1)


@pytest.mark.parametrize("name", ["moons", "circle", "line", "gmm"])
def test_datasets_are_pure_functions_of_n_and_rng(name):
    a = make_base(name, 300, np.random.default_rng(1))
    b = make_base(name, 300, np.random.default_rng(1))
    c = make_base(name, 300, np.random.default_rng(2))
    assert a.shape == (300, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("dataset", ["moons", "gmm"])
def test_outlier_cluster_sits_two_std_from_the_mean(dataset):
    c = ExperimentConfig(dataset=dataset, n_base=5000, n_outliers=400, n_duplicates=0, outlier_spread=0.05)
    for repeat in range(3):
        ts = make_training_set(c, repeat)
        base = ts.points[: c.n_base]
        outliers = ts.points[ts.groups == OUTLIER]
        # distance of the cluster's mean from the data mean, in per-axis standard deviations
        z = (outliers.mean(0) - base.mean(0)) / base.std(0)
        assert np.linalg.norm(z) == pytest.approx(2.0, abs=0.05)
        np.testing.assert_allclose(ts.cluster.centre, outliers.mean(0), atol=0.02)


def test_duplicates_are_exact_copies_and_both_copies_are_labelled():
    c = ExperimentConfig(n_base=1000, n_outliers=30, n_duplicates=50)
    ts = make_training_set(c, 0)
    assert ts.points.shape == (1080, 2)
    copies = ts.points[c.n_base + c.n_outliers :]
    src = ts.source[c.n_base + c.n_outliers :]
    assert len(np.unique(src)) == 50
    np.testing.assert_array_equal(copies, ts.points[src])
    assert (ts.groups[src] == DUPLICATE).all()
    assert ts.counts() == {"inlier": 950, "outlier": 30, "duplicate": 100}
    assert (ts.groups[: c.n_base][np.setdiff1d(np.arange(c.n_base), src)] == INLIER).all()


def test_duplicate_jitter_moves_copies():
    ts = make_training_set(ExperimentConfig(n_base=500, n_duplicates=20, n_outliers=0, duplicate_jitter=0.01), 0)
    copies, src = ts.points[500:], ts.source[500:]
    d = np.linalg.norm(copies - ts.points[src], axis=1)
    assert (d > 0).all() and d.max() < 0.2


def test_test_set_is_independent_and_sized():
    c = ExperimentConfig(n_base=800, n_test=300, n_outliers=0, n_duplicates=0)
    ts, test = make_training_set(c, 0), make_test_set(c, 0)
    assert test.shape == (300, 2)
    assert len(np.intersect1d(ts.points.view("f8,f8"), test.view("f8,f8"))) == 0
    assert make_test_set(c.replace(n_test=None), 0).shape == (800, 2)


def test_repeats_draw_different_data_and_same_repeat_is_reproducible():
    c = ExperimentConfig(n_base=500, n_outliers=10, n_duplicates=10)
    np.testing.assert_array_equal(make_training_set(c, 3).points, make_training_set(c, 3).points)
    assert not np.array_equal(make_training_set(c, 3).points, make_training_set(c, 4).points)


def test_null_draws_follow_training_proportions():
    c = ExperimentConfig(n_base=2000, n_outliers=500, n_duplicates=0)
    ts = make_training_set(c, 0)
    pts = sample_data_distribution(c, ts, 20000, np.random.default_rng(0))
    near_cluster = np.linalg.norm(pts - ts.cluster.centre, axis=1) < 5 * ts.cluster.std
    assert near_cluster.mean() == pytest.approx(500 / 2500, abs=0.01)


def test_matched_test_set_holds_outliers_and_near_duplicates_in_training_proportions():
    c = ExperimentConfig(n_base=2000, n_outliers=100, n_duplicates=60, test_set="matched")
    ts = make_training_set(c, 0)
    test = make_test_set(c, 0, ts)
    assert test.shape == (2160, 2)
    # the base part is exactly the paper's test set, drawn from the same TEST stream
    np.testing.assert_array_equal(test[:2000], make_test_set(c.replace(test_set="base"), 0))
    # fresh outlier-cluster draws: around the training cluster's centre with its spread, none equal to a training outlier
    out = test[2000:2100]
    assert np.linalg.norm(out.mean(0) - ts.cluster.centre) < 3 * ts.cluster.std
    assert out.std(0).mean() == pytest.approx(ts.cluster.std, rel=0.25)
    assert len(np.intersect1d(out.view("f8,f8"), ts.points.view("f8,f8"))) == 0
    # near-duplicates: exact copies (jitter 0) of 60 distinct held-out base points
    copies = test[2100:]
    matches = (copies[:, None, :] == test[None, :2000, :]).all(-1)
    assert (matches.sum(1) == 1).all() and len(np.unique(matches.argmax(1))) == 60
    # same result without passing the training set; another repeat draws other points
    np.testing.assert_array_equal(make_test_set(c, 0), test)
    assert not np.array_equal(make_test_set(c, 1)[2000:], test[2000:])


def test_matched_test_duplicates_carry_the_jitter():
    c = ExperimentConfig(n_base=500, n_outliers=0, n_duplicates=25, duplicate_jitter=0.01, test_set="matched")
    test = make_test_set(c, 0)
    d = np.sqrt(((test[500:, None, :] - test[None, :500, :]) ** 2).sum(-1)).min(1)
    assert test.shape == (525, 2) and (d > 0).all() and d.max() < 0.2
