import re

import numpy as np
import pytest

from memnb import ExperimentConfig
from memnb.experiment.repeats import RepeatData
from memnb.metric.criteria import copied_shares, critical_ratio, is_memorized, memorized_shares
from memnb.metric.neighbors import nearest_neighbours
from memnb.metric.null import chance_level


def test_criteria_by_hand():
    d1 = np.array([1.0, 1.0, 2.0, 0.0, 1.0])
    d2 = np.array([3.0, 3.5, 2.5, 1.0, 1.0])
    dt = np.array([1.5, 1.4, 9.0, 0.3, 1.0])
    paper = critical_ratio("paper", d1, d2, dt)
    np.testing.assert_allclose(paper, [1.5, 1.4, 4.5, np.inf, 1.0])
    # d_test >= 1.5 d1: the boundary counts (the paper's "at least ratio times closer")
    assert is_memorized("paper", paper, 1.5).tolist() == [True, False, True, True, False]
    train = critical_ratio("train_only", d1, d2, dt)
    # d1/d2 < 1/3 is strict: d2 = 3 d1 is not memorized
    assert is_memorized("train_only", train, 3.0).tolist() == [False, True, False, True, False]
    with pytest.raises(ValueError, match="criterion 'knn'"):
        critical_ratio("knn", d1, d2, dt)


def test_relative_criterion_by_hand():
    d1 = np.array([0.1, 0.1, 0.5, 0.0])
    mean50 = np.array([1.0, 1.2, 1.0, 0.3])
    r = critical_ratio("relative", d1, d1, d1, mean50)
    np.testing.assert_allclose(r, [10.0, 12.0, 2.0, np.inf])
    # Carlini et al.: memorized iff d1 < alpha * mean; alpha = 0.1 <=> r > 10 (strict)
    assert is_memorized("relative", r, 10.0).tolist() == [False, True, False, True]
    assert is_memorized("relative", r, 2.0 - 1e-9).tolist() == [True, True, True, True]
    with pytest.raises(ValueError, match="needs the neighbour field 'd_mean50'"):
        critical_ratio("relative", d1, d1, d1)


@pytest.mark.parametrize("alpha,low,high", [(0.5, 0.99, 1.0), (0.1, 0.16, 0.24)])
def test_relative_criterion_chance_level_in_2d(alpha, low, high):
    """The docstrings' numbers, by brute-force geometry: fresh draws from a uniform square are
    flagged ~99.6% of the time at Carlini's alpha = 0.5, ~20% at memnb's default 0.1."""
    rng = np.random.default_rng(7)
    train, fresh = rng.uniform(size=(20000, 2)), rng.uniform(0.2, 0.8, size=(4000, 2))
    nb = nearest_neighbours(fresh, train, rng.uniform(size=(10, 2)))
    share = is_memorized("relative", critical_ratio("relative", nb.d1, nb.d2, nb.d_test, nb.d_mean50), 1 / alpha).mean()
    assert low <= share <= high


def test_memorized_shares_by_hand():
    r = np.array([2.0, 1.0, 3.0, 1.6, 0.5, 5.0])
    grp = np.array([0, 0, 1, 2, 2, 0])
    out = memorized_shares("paper", r, grp, [1.5, 4.0])
    # k=1.5: memorized samples 0 (g0), 2 (g1), 3 (g2), 5 (g0) of 6
    np.testing.assert_allclose(out[:, 0], [2 / 6, 1 / 6, 1 / 6, 4 / 6])
    np.testing.assert_allclose(out[:, 1], [1 / 6, 0, 0, 1 / 6])


def test_copied_shares_by_hand():
    # training points: 0,1 inlier; 2 outlier; 3 duplicate and 4 its exact copy (same location 3)
    point_location = np.array([0, 1, 2, 3, 3])
    point_group = np.array([0, 0, 1, 2, 2])
    r = np.array([2.0, 1.2, 1.8, 0.9])
    sample_location = np.array([0, 0, 3, 2])
    out = copied_shares("paper", r, sample_location, point_location, point_group, [1.5])
    # location 0 copied (r=2), location 3 copied (both duplicates), location 2 not (0.9)
    np.testing.assert_allclose(out[:, 0], [1 / 2, 0.0, 1.0, 3 / 5])


def test_chance_level_formula_values():
    assert chance_level(20000, 20000, 1.5) == pytest.approx(1 / (1 + 2.25))
    assert chance_level(20000, 20000, 1.5) == pytest.approx(0.3077, abs=1e-4)  # 31 % at k = 1.5, d = 2, n = m
    assert chance_level(100, 300, 2.0, dim=1) == pytest.approx(100 / (100 + 2 * 300))
    assert chance_level(np.int64(500), np.int64(500), np.float32(1.5), np.int64(3)) == pytest.approx(1 / (1 + 1.5**3))
    assert chance_level(10, 10, 1) == 0.5  # k = 1: either set as likely to hold the nearest point
    assert chance_level(10, 0, 1.5) == 1.0  # no test point: every sample is nearer a training point
    assert chance_level(0, 10, 1.5) == 0.0
    assert chance_level(20000, 20000, 1.5, dim=4096) == 0.0  # 1.5**4096 is beyond float range: 0, no OverflowError
    assert chance_level(20000, 20000, 1.5, dim=1024) == pytest.approx(1.5**-1024)
    assert chance_level(20000, 20000, 1.01, dim=64) == pytest.approx(1 / (1 + 1.01**64))


@pytest.mark.parametrize(
    "args,name,allowed",
    [
        ((-1, 100, 1.5), "n_train", "an integer >= 0"),
        ((100, -1, 1.5), "n_test", "an integer >= 0"),
        ((10.5, 100, 1.5), "n_train", "an integer >= 0"),
        ((True, 100, 1.5), "n_train", "an integer >= 0"),
        ((0, 0, 1.5), "n_train + n_test", "a total > 0"),
        ((100, 100, 0.5), "ratio", "a finite number >= 1.0"),
        ((100, 100, float("nan")), "ratio", "a finite number >= 1.0"),
        ((100, 100, float("inf")), "ratio", "a finite number >= 1.0"),
        ((100, 100, "1.5"), "ratio", "a finite number >= 1.0"),
        ((100, 100, 1.5, 0), "dim", "an integer >= 1"),
        ((100, 100, 1.5, 2.5), "dim", "an integer >= 1"),
        ((100, 100, 1.5, float("nan")), "dim", "an integer >= 1"),
    ],
)
def test_chance_level_refuses_meaningless_arguments(args, name, allowed):
    with pytest.raises(ValueError, match=rf"^{re.escape(name)} = .* is invalid; allowed: {re.escape(allowed)}"):
        chance_level(*args)


@pytest.mark.parametrize("k,m", [(1.5, 20000), (2.0, 20000), (1.5, 10000)])
def test_perfect_generator_scores_the_chance_level(k, m):
    """Fresh draws from a smooth 2-D density score n/(n + k^2 m), computed by brute-force geometry here."""
    rng = np.random.default_rng(1)
    n = 20000
    train, test, fresh = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)), rng.normal(size=(20000, 2))
    nb = nearest_neighbours(fresh, train, test)
    share = is_memorized("paper", critical_ratio("paper", nb.d1, nb.d2, nb.d_test), k).mean()
    assert share == pytest.approx(chance_level(n, m, k), abs=0.012)


def test_null_baseline_of_a_run_matches_the_formula():
    c = ExperimentConfig(n_base=20000, n_outliers=0, n_duplicates=0, n_repeats=1, ratio=1.5, device="cpu")
    data = RepeatData(c)
    arrays = data.search(data.null_draws(epoch=0), "null_")
    r = critical_ratio("paper", arrays["null_d1"][0], arrays["null_d2"][0], arrays["null_d_test"][0])
    assert is_memorized("paper", r, 1.5).mean() == pytest.approx(chance_level(20000, 20000, 1.5), abs=0.012)
