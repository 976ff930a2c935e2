"""Each statistic of memnb.analysis.stats (and .inference, .copies) against a hand-computed case or an independent reference."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from memnb.analysis.copies import first_copy_epochs
from memnb.analysis.inference import bootstrap_ci, cohens_dz, paired_permutation_test, rank_biserial
from memnb.analysis.stats import (
    censor,
    half_level_epoch,
    null_corrected,
    onset_epoch,
    signal_frame,
    timing_table,
    zu_effect,
    zu_signal_frame,
)
from memnb.experiment.tabulate import TABLE_COLUMNS
from memnb.metric.copying import mann_whitney_z, mann_whitney_z_by_group

EPOCHS = np.array([0, 10, 20, 30])


def test_onset_epoch_by_hand():
    excess = np.array(
        [
            [0.00, 0.02, 0.06, 0.10],  # first above 0.05 at epoch 20
            [0.10, 0.00, 0.00, 0.00],  # above at once, then falls back: still epoch 0 (the first crossing)
            [0.00, 0.05, 0.05, 0.05],  # equal to the margin is not above it
            [np.nan, np.nan, 0.2, 0.3],
        ]
    )
    np.testing.assert_array_equal(onset_epoch(EPOCHS, excess, 0.05), [20, 0, np.nan, 20])


def test_half_level_epoch_by_hand():
    excess = np.array(
        [
            [0.0, 0.1, 0.3, 0.4],  # final 0.4, half 0.2 first reached at epoch 20
            [0.0, 0.25, 0.1, 0.4],  # non-monotone: first reach counts (epoch 10)
            [0.0, 0.3, 0.2, 0.04],  # final 0.04 <= margin: never memorized, undefined
            [-0.1, -0.2, 0.0, 0.1],  # half of 0.1 = 0.05 first reached at the last epoch
        ]
    )
    np.testing.assert_array_equal(half_level_epoch(EPOCHS, excess, 0.05), [20, 10, np.nan, 30])


def test_crossings_must_clear_z_standard_errors():
    excess = np.array([[0.00, 0.12, 0.20, 0.30]])
    se = np.array([[0.05, 0.05, 0.05, 0.05]])
    # z = 3: the excess must also exceed 0.15, first at epoch 20 (0.12 passes the margin only)
    assert onset_epoch(EPOCHS, excess, 0.05, se, z=3.0)[0] == 20
    assert onset_epoch(EPOCHS, excess, 0.05, se, z=0.0)[0] == 10
    # half of 0.3 = 0.15: reached at 20 either way; with z = 7 (0.35) the final value is not significant
    assert half_level_epoch(EPOCHS, excess, 0.05, se, z=3.0)[0] == 20
    assert math.isnan(half_level_epoch(EPOCHS, excess, 0.05, se, z=7.0)[0])


def test_excess_frame_standard_errors_by_hand():
    from memnb.analysis.stats import excess_frame

    s = pd.DataFrame(
        {
            "repeat": 0,
            "epoch": [0, 10],
            "group": "outlier",
            "signal": [0.3, 0.5],
            "null": [0.2, 0.3],
            "n": [25, 25],
            "scale": [1.0, 1.0],
        }
    )
    e = excess_frame(s)  # pooled null 0.25: se = sqrt(0.25 * 0.75 / 25)
    np.testing.assert_allclose(e.se, math.sqrt(0.25 * 0.75 / 25))
    np.testing.assert_allclose(e.excess, [0.05, 0.25])
    # a share of all samples rescaled by 1/w: se = (1/w) sqrt(q (1 - q) / n), q = null * w
    e = excess_frame(s.assign(n=1000, scale=10.0))
    np.testing.assert_allclose(e.se, 10 * math.sqrt(0.025 * 0.975 / 1000))
    assert excess_frame(s.drop(columns=["n", "scale"])).se.eq(0).all()


def test_first_copy_epochs_by_hand():
    copied = np.array([[0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]], bool)  # (E=3, N=4)
    np.testing.assert_array_equal(first_copy_epochs([0, 5, 10], copied), [5, 0, np.nan, 10])


def test_censor():
    filled, mask = censor([3.0, np.nan, 7.0], 40.0)
    np.testing.assert_array_equal(filled, [3, 40, 7])
    assert mask.tolist() == [False, True, False]


def test_bootstrap_ci_by_hand_and_reproducible():
    # x = (0, 1): a resample's mean is 0, 1/2 or 1 with probabilities 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% percentiles are 0 and 1
    est, lo, hi = bootstrap_ci([0.0, 1.0], n_bootstrap=4000, seed=3)
    assert (est, lo, hi) == (0.5, 0.0, 1.0)
    assert bootstrap_ci([2.0, 2.0, 2.0], seed=1) == (2.0, 2.0, 2.0)
    x = np.random.default_rng(0).normal(size=12)
    a, b, c = bootstrap_ci(x, 2000, seed=7), bootstrap_ci(x, 2000, seed=7), bootstrap_ci(x, 2000, seed=8)
    assert a == b and a != c
    assert a[1] < x.mean() < a[2]
    # NaN repeats are dropped; nothing left gives NaN
    assert bootstrap_ci([1.0, np.nan, 1.0])[0] == 1.0
    assert all(math.isnan(v) for v in bootstrap_ci([np.nan]))


def test_bootstrap_ci_leaves_global_rng_alone():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    bootstrap_ci(np.arange(10.0), 500, seed=0)
    assert np.random.random() == expected


def test_bootstrap_interval_covers_at_nominal_rate():
    """Independent check on the interval: over many normal samples of size 30 the 90% percentile
    interval of the mean covers the true mean close to 90% of the time."""
    rng = np.random.default_rng(11)
    hits = [bootstrap_ci(rng.normal(1.0, 1.0, 30), 500, seed=i, level=0.9)[1:] for i in range(300)]
    cover = np.mean([lo <= 1.0 <= hi for lo, hi in hits])
    assert 0.83 <= cover <= 0.95


def test_paired_permutation_test_by_hand():
    # (1, 2, 3): only the all-plus and all-minus patterns reach |mean| 2: p = 2/8
    assert paired_permutation_test([1.0, 2.0, 3.0]) == 0.25
    # (1, -1, 2, 3): sums +-1 +-1 +-2 +-3 with |sum| >= 5: 7 (1 way), 5 (2 ways), and their negatives: 6/16
    assert paired_permutation_test([1.0, -1.0, 2.0, 3.0]) == 0.375
    assert paired_permutation_test([0.0, 0.0, 0.0]) == 1.0
    # ten equal positive differences: 2/1024, the smallest attainable with 10 repeats
    assert paired_permutation_test(np.full(10, 5.0)) == pytest.approx(2 / 1024)
    assert paired_permutation_test([1.0, np.nan, 2.0, 3.0]) == 0.25


def test_paired_permutation_test_against_scipy_and_monte_carlo():
    rng = np.random.default_rng(2)
    d = rng.normal(0.4, 1.0, 12)
    ref = sps.permutation_test((d,), np.mean, permutation_type="samples", alternative="two-sided", n_resamples=np.inf)
    assert paired_permutation_test(d) == pytest.approx(ref.pvalue, abs=1e-12)
    # above exact_up_to: Monte Carlo from its own seed, reproducible and close to the exact value
    exact = paired_permutation_test(d, exact_up_to=16)
    mc = paired_permutation_test(d, n_permutations=20000, seed=5, exact_up_to=4)
    assert mc == paired_permutation_test(d, n_permutations=20000, seed=5, exact_up_to=4)
    assert mc == pytest.approx(exact, abs=0.01)


def test_effect_sizes_by_hand():
    assert cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)  # mean 2, sd 1
    assert cohens_dz([2.0, 2.0]) == math.inf and math.isnan(cohens_dz([0.0, 0.0]))
    # |d| ranks 1, 2, 3; W+ = 1 + 3, W- = 2: (4 - 2) / 6
    assert rank_biserial([1.0, -2.0, 3.0]) == pytest.approx(1 / 3)
    # zeros are dropped, ties share ranks: (2, -2, 0, 5): ranks 1.5, 1.5, 3 -> (4.5 - 1.5) / 6
    assert rank_biserial([2.0, -2.0, 0.0, 5.0]) == pytest.approx(0.5)
    assert rank_biserial([4.0, 1.0]) == 1.0
    # against scipy's Wilcoxon statistic: r = (W+ - W-) / (W+ + W-), W- = min(W+, W-) here
    d = np.array([0.5, -1.5, 2.0, 3.5, -0.2, 4.0])
    w_minus = sps.wilcoxon(d).statistic
    total = len(d) * (len(d) + 1) / 2
    assert rank_biserial(d) == pytest.approx((total - 2 * w_minus) / total)


def test_mann_whitney_z_by_hand():
    # test (1, 3), generated (2, 4): pairs with generated > test: (2,1), (4,1), (4,3): U = 3;
    # E U = 2, Var U = 2*2*5/12 = 5/3
    assert mann_whitney_z([1.0, 3.0], [2.0, 4.0]) == pytest.approx(1 / math.sqrt(5 / 3))
    # a tie counts one half: test (1, 2), generated (2,): U = 1 + 0.5
    assert mann_whitney_z([1.0, 2.0], [2.0]) == pytest.approx((1.5 - 1) / math.sqrt(2 * 4 / 12))
    assert math.isnan(mann_whitney_z([], [1.0]))


def test_mann_whitney_z_against_scipy():
    rng = np.random.default_rng(4)
    test = np.round(rng.exponential(1.0, 700), 2)  # rounding makes ties
    gen = np.round(rng.exponential(0.8, 500), 2)
    u = sps.mannwhitneyu(gen, test).statistic  # scipy's U of the first sample: #(gen > test) + ties / 2
    n, m = len(test), len(gen)
    assert mann_whitney_z(test, gen) == pytest.approx((u - n * m / 2) / math.sqrt(n * m * (n + m + 1) / 12))
    assert mann_whitney_z(test, gen) < -3  # generated closer to the training set: copying is negative
    # the cell-wise version: each group's points only, and all points last; an empty cell is NaN
    tg, gg = rng.integers(0, 2, n), rng.integers(0, 2, m)
    z = mann_whitney_z_by_group(test, tg, gen, gg)
    assert z[0] == pytest.approx(mann_whitney_z(test[tg == 0], gen[gg == 0]))
    assert z[1] == pytest.approx(mann_whitney_z(test[tg == 1], gen[gg == 1]))
    assert math.isnan(z[2]) and z[3] == pytest.approx(mann_whitney_z(test, gen))


def test_zu_effect_inverts_the_z_score():
    test, gen = np.array([1.0, 3.0, 5.0]), np.array([2.0, 4.0])
    u = 1 + 2  # 2 > 1; 4 > 1, 3
    assert zu_effect(mann_whitney_z(test, gen), 2, 3) == pytest.approx(u / 6 - 0.5)


def _table(rows):
    cols = TABLE_COLUMNS
    return pd.DataFrame(rows, columns=cols)


def test_signal_frame_values():
    rows = []
    for e in (0, 10):
        rows += [
            (0, e, "inlier", "paper", 1.5, 0.10 + e / 100, 0.2, 0.3, 0.25, 100, 80),
            (0, e, "outlier", "paper", 1.5, 0.02, 0.01, 0.5, 0.6, 100, 10),
            (0, e, "duplicate", "paper", 1.5, 0.03, 0.03, 0.2, 0.2, 100, 10),
            (0, e, "all", "paper", 1.5, 0.15, 0.24, 0.3, 0.3, 100, 100),
            (0, e, "outlier", "paper", 2.0, 0.9, 0.9, 0.9, 0.9, 100, 10),
        ]
    t = _table(rows)
    s = signal_frame(t, "paper", 1.5, "copied")
    assert set(s.group) == {"inlier", "outlier", "duplicate"} and len(s) == 6
    out = s[(s.group == "outlier") & (s.epoch == 10)].iloc[0]
    assert (out.signal, out.null) == (0.5, 0.6)
    m = signal_frame(t, "paper", 1.5, "memorized")  # divided by the group's share n_g / n_train
    out = m[(m.group == "outlier") & (m.epoch == 0)].iloc[0]
    assert out.signal == pytest.approx(0.02 / 0.1) and out.null == pytest.approx(0.01 / 0.1)
    inl = m[(m.group == "inlier") & (m.epoch == 10)].iloc[0]
    assert inl.signal == pytest.approx(0.2 / 0.8)
    # conditional: memorized share / share of samples whose nearest training point is in the group
    cells = pd.DataFrame(
        {
            "repeat": 0,
            "epoch": [0, 0, 0, 10, 10, 10],
            "group": ["inlier", "outlier", "duplicate"] * 2,
            "n_generated": [80, 5, 15, 80, 0, 20],
            "n_null": [78, 12, 10, 78, 12, 10],
        }
    )
    c = signal_frame(t, "paper", 1.5, "conditional", cells).set_index(["epoch", "group"])
    assert c.loc[(0, "outlier")].signal == pytest.approx(0.02 * 100 / 5)  # 2 of the 5 samples near outliers
    assert c.loc[(0, "outlier")].null == pytest.approx(0.01 * 100 / 12)
    assert c.loc[(10, "inlier")].signal == pytest.approx(0.2 * 100 / 80)
    assert math.isnan(c.loc[(10, "outlier")].signal)  # no sample near the outliers: undefined, not 0
    with pytest.raises(ValueError, match="needs the samples per cell"):
        signal_frame(t, "paper", 1.5, "conditional")
    with pytest.raises(ValueError, match="value 'shares'"):
        signal_frame(t, "paper", 1.5, "shares")
    with pytest.raises(ValueError, match="no rows"):
        signal_frame(t, "train_only", 3.0)


def _signals(curves: dict[str, list[list[float]]], epochs=(0, 10, 20, 30), null=0.1):
    rows = []
    for g, per_repeat in curves.items():
        for r, curve in enumerate(per_repeat):
            for e, v in zip(epochs, curve):
                rows.append((r, e, g, v, null))
    return pd.DataFrame(rows, columns=["repeat", "epoch", "group", "signal", "null"])


def test_timing_table_censors_never_memorized_groups():
    s = _signals(
        {
            "inlier": [[0.1, 0.2, 0.3, 0.4], [0.1, 0.1, 0.35, 0.5]],
            "outlier": [[0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.3]],
        }
    )
    t = timing_table(s, margin=0.05).set_index(["repeat", "group"])
    # excess = signal - 0.1; inlier repeat 0: 0, .1, .2, .3 -> onset 10; half of .3 first at 20
    assert t.loc[(0, "inlier"), ["onset", "half"]].tolist() == [10, 20]
    assert t.loc[(1, "inlier"), ["onset", "half"]].tolist() == [20, 20]
    # outlier repeat 0 never rises: both censored at one step past the end (40)
    row = t.loc[(0, "outlier")]
    assert math.isnan(row.onset) and row.onset_censored and row.onset_filled == 40 and row.half_filled == 40
    assert t.loc[(1, "outlier"), ["onset", "half"]].tolist() == [30, 30]
    assert not t.loc[(1, "outlier")].onset_censored


def test_pooled_null_is_the_mean_over_epochs():
    s = _signals({"inlier": [[0.1, 0.2, 0.3, 0.4]]}, null=0.1)
    s["null"] = [0.0, 0.2, 0.0, 0.2]  # the same process at every epoch: mean 0.1
    pooled = timing_table(s, 0.15).iloc[0]
    per_epoch = timing_table(s, 0.15, pool_null=False).iloc[0]
    # pooled excess 0, .1, .2, .3 -> onset 20; per epoch .1, 0, .3, .2 -> onset 20 too, but half
    # of the final .2 is first reached at epoch 0 per epoch, at 20 pooled (half of .3)
    assert (pooled.onset, pooled.half) == (20, 20)
    assert (per_epoch.onset, per_epoch.half) == (20, 0)
    nc = null_corrected(s, 200).set_index("epoch")
    np.testing.assert_allclose(nc.excess, [0.0, 0.1, 0.2, 0.3], atol=1e-12)
    np.testing.assert_allclose(nc.null, 0.1)


def test_timing_table_leaves_cells_without_data_undefined():
    s = _signals({"inlier": [[0.1, 0.3, 0.3, 0.3]], "outlier": [[np.nan] * 4]})
    t = timing_table(s, 0.05).set_index("group")
    assert math.isnan(t.loc["outlier", "onset_filled"]) and not t.loc["outlier", "onset_censored"]


def test_zu_signal_frame_sign_and_null():
    zu = pd.DataFrame(
        {
            "repeat": [0, 0],
            "epoch": [0, 0],
            "group": ["inlier", "all"],
            "z_u": [-2.0, -2.0],
            "z_u_null": [0.0, 0.0],
            "n_generated": [50, 60],
            "n_null": [50, 60],
            "n_test": [40, 40],
        }
    )
    s = zu_signal_frame(zu)
    assert list(s.group) == ["inlier"]
    assert s.signal.iloc[0] == pytest.approx(2.0 * math.sqrt(50 * 40 * 91 / 12) / (50 * 40)) and s.null.iloc[0] == 0


def test_null_corrected_mean_and_interval():
    s = _signals({"inlier": [[0.1, 0.2, 0.3, 0.4], [0.1, 0.4, 0.5, 0.6]]}, null=0.1)
    out = null_corrected(s, n_bootstrap=1000, seed=0).set_index("epoch")
    np.testing.assert_allclose(out.excess, [0.0, 0.2, 0.3, 0.4])
    # two repeats: the bootstrap means are the two values or their mean, so the interval is their range
    np.testing.assert_allclose(out.loc[10, ["low", "high"]].to_numpy(np.float64), [0.1, 0.3])
    pd.testing.assert_frame_equal(out, null_corrected(s, n_bootstrap=1000, seed=0).set_index("epoch"))


def test_compare_curves_is_welch_s_test_cell_by_cell():
    """within = |mean_b - mean_a| <= Welch's 95% half-width  <=>  scipy's Welch t-test p >= 0.05, in every cell."""
    from memnb.analysis.curves import compare_curves

    rng = np.random.default_rng(0)

    def table(shift, n_rep):
        rows = [
            dict(repeat=r, epoch=e, group=g, criterion="paper", threshold=1.5,
                 memorized=0.3 + (shift if g == "outlier" else 0.0) + 0.05 * rng.normal(), memorized_null=0.1)
            for r in range(n_rep) for e in range(40) for g in ("inlier", "outlier")
        ]  # fmt: skip
        return pd.DataFrame(rows)

    a, b = table(0.0, 6), table(0.0, 5)
    c = compare_curves(a, b)
    assert len(c) == 80 and 0.85 <= c.within.mean() <= 1.0  # equal curves: about 95% of the cells
    for row in c.itertuples():
        x = a[(a.group == row.group) & (a.epoch == row.epoch)].memorized
        y = b[(b.group == row.group) & (b.epoch == row.epoch)].memorized
        p = sps.ttest_ind(y, x, equal_var=False).pvalue
        assert row.within == (p >= 0.05) and row.diff == pytest.approx(y.mean() - x.mean())
    shifted = compare_curves(a, table(0.2, 5))  # the outliers' curve moved by 4 standard deviations
    assert not shifted[shifted.group == "outlier"].within.any()
    assert shifted[shifted.group == "inlier"].within.mean() >= 0.85
    same = compare_curves(a, a)
    assert same.within.all() and (same["diff"] == 0).all()
    with pytest.raises(ValueError, match="value"):
        compare_curves(a, b, "loss")


# -- the one onset rule and Holm's adjustment (issue 25) -----------------------------------------------------
def test_onset_interval_equals_a_loop():
    from scipy.stats import norm

    from memnb.analysis.stats import onset

    rng = np.random.default_rng(5)
    epochs = np.arange(0, 200, 10.0)
    excess = np.cumsum(rng.normal(0.01, 0.05, (30, len(epochs))), axis=1)
    se = rng.uniform(0.01, 0.05, (30, 1))
    low, high = onset(epochs, excess, se, margin=0.1, significance=0.05)
    z = norm.ppf(1 - 0.05 / len(epochs))  # Bonferroni over the curve's evaluations
    for i in range(30):
        hi = next((e for e, x in zip(epochs, excess[i]) if x - 0.1 > z * se[i, 0]), np.nan)
        lo = np.nan
        for e, x in zip(epochs, excess[i]):
            if not np.isnan(hi) and e >= hi:
                break
            if x <= 0.1:
                lo = e
        np.testing.assert_equal((low[i], high[i]), (lo, hi))


def test_onset_margin_does_not_grow_as_samples_shrink():
    from memnb.analysis.stats import onset

    epochs = np.arange(10.0)
    excess = np.where(epochs >= 4, 0.5, 0.0)  # a step at epoch 4, far above the margin
    for se in (0.005, 0.05):  # 100x fewer samples: the same interval (3, 4]
        assert onset(epochs, excess, se, 0.05) == (3.0, 4.0)
    low, high = onset(epochs, np.full(10, 0.06), 0.05, 0.05)  # above the margin, not significantly: censored
    assert np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError, match="significance"):
        onset(epochs, excess, 0.01, 0.05, significance=0.7)


def test_holm_equals_its_definition():
    from memnb.analysis.stats import holm

    rng = np.random.default_rng(2)
    for _ in range(20):
        p = rng.uniform(0, 0.2, 8)
        p[rng.integers(0, 8)] = np.nan
        got = holm(p)
        ok = [i for i in range(8) if not np.isnan(p[i])]
        order = sorted(ok, key=lambda i: p[i])
        m, running = len(order), 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p[i]))
            assert got[i] == pytest.approx(running)
        assert np.isnan(got[[i for i in range(8) if i not in ok]]).all()
    # eight cells at the sign-flip test's smallest p with 6 repeats: none below 0.05 after Holm
    assert holm(np.full(8, 2 / 64)).min() == pytest.approx(0.25)


@pytest.mark.parametrize("r", [3, 6, 16, 24, 30])
def test_smallest_p_is_what_the_sign_flip_test_returns_for_all_equal_signs(r):
    from memnb.analysis.inference import smallest_p

    # every difference positive and equal: only the observed pattern and its mirror are as extreme, so the
    # exact test returns 2 / 2^R and the drawn one (R > 16: another extreme pattern is drawn with chance
    # 100,000 x 2^(1 - R) < 0.012) 1 / 100,001
    got = paired_permutation_test(np.ones(r))
    assert got == pytest.approx(float(smallest_p(r)), rel=1e-12)
