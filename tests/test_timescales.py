"""τ_gen, τ_mem, the log-log law and its bootstrap (memnb.analysis.timescales) against direct computations."""

import math

import numpy as np
import pandas as pd
import pytest

from memnb.analysis import timescales as ts

EPOCHS = np.array([0, 1, 3, 10, 30, 100])


def test_tau_gen_is_the_first_epoch_below_factor_times_the_fresh_data_level():
    energy = np.array(
        [
            [1.0, 0.5, 0.2, 0.12, 0.11, 0.10],  # below 1.5 * 0.1 = 0.15 first at epoch 10
            [1.0, 0.14, 0.5, 0.12, 0.11, 0.10],  # a dip at epoch 1 counts: the first crossing
            [1.0, 0.9, 0.8, 0.7, 0.6, 0.16],  # never below 0.15: censored
            [1.0, 0.5, 0.375, 0.3, 0.3, 0.3],  # exactly at the level (1.5 * 0.25) is not below it
        ]
    )
    ref = np.array([0.1, 0.1, 0.1, 0.25])
    got = ts.tau_gen(EPOCHS, energy, ref, factor=1.5)
    np.testing.assert_array_equal(got, [10, 1, np.nan, 10])
    # a direct loop
    for r in range(4):
        below = [e for e, v in zip(EPOCHS, energy[r]) if v < 1.5 * ref[r]]
        assert (below[0] if below else None) == (None if np.isnan(got[r]) else got[r])
    assert ts.tau_gen(EPOCHS, energy, ref, factor=11.0)[2] == 0  # loose enough: already at init
    with pytest.raises(ValueError, match=r"factor = -1 is invalid; allowed: a finite number > 0"):
        ts.tau_gen(EPOCHS, energy, 0.1, factor=-1)


def test_tau_plateau_is_the_first_epoch_within_tol_of_the_runs_best():
    energy = np.array([[1.0, 0.8, 0.55, 0.52, 0.5, 0.6], [np.nan] * 6, [1.0, 0.5, 2.0, 2.0, 2.0, 2.0]])
    got = ts.tau_plateau(EPOCHS, energy, tol=0.1)  # < 0.55 first at epoch 10; the second row is unknown
    np.testing.assert_array_equal(got, [10, np.nan, 1])
    for r in (0, 2):
        best = energy[r].min()
        assert got[r] == next(e for e, v in zip(EPOCHS, energy[r]) if v < 1.1 * best)
    assert ts.tau_plateau(EPOCHS, energy, tol=1.0)[0] == 1  # < 1.0: epoch 1 (0.8)
    with pytest.raises(ValueError, match=r"tol = -0.1 is invalid"):
        ts.tau_plateau(EPOCHS, energy, tol=-0.1)


def test_tau_mem_pools_the_null_and_needs_the_margin_and_z_standard_errors():
    null = np.full((3, 6), 0.2)
    mem = np.array(
        [
            [0.2, 0.2, 0.3, 0.5, 0.8, 0.9],  # excess 0.1 at epoch 3 > 0.05 and > 3 * se
            [0.2, 0.2, 0.22, 0.24, 0.24, 0.24],  # excess at most 0.04 < margin 0.05: never
            [0.2, 0.2, 0.26, 0.3, 0.9, 0.9],  # excess 0.06 at epoch 3 passes the margin, but not 3 s.e. at n=200
        ]
    )
    n = np.array([10_000, 10_000, 200])
    got = ts.tau_mem(EPOCHS, mem, null, n, margin=0.05, z=3.0)
    se = np.sqrt(0.2 * 0.8 / n)
    assert 0.06 < 3 * se[2] < 0.1  # the third row's constructed case
    np.testing.assert_array_equal(got, [3, np.nan, 10])
    np.testing.assert_array_equal(ts.tau_mem(EPOCHS, mem, null, n, margin=0.05, z=0.0), [3, np.nan, 3])
    # the null is pooled over epochs: a noisy null that averages 0.2 gives the same times
    noisy = null + np.array([0.1, -0.1, 0.05, -0.05, 0.0, 0.0])
    np.testing.assert_array_equal(ts.tau_mem(EPOCHS, mem, noisy, n, margin=0.05, z=3.0), got)


def test_steps_per_epoch_drops_the_partial_batch():
    assert ts.steps_per_epoch(70, 32) == 2 and ts.steps_per_epoch(64, 32) == 2 and ts.steps_per_epoch(65, 8) == 8
    with pytest.raises(ValueError, match="batch_size = 100 is invalid"):
        ts.steps_per_epoch(70, 100)


def _law(rng, sizes, repeats, a=1.0, alpha=0.8, noise=0.2):
    n = np.repeat(sizes, repeats).astype(float)
    tau = np.exp(a + alpha * np.log(n) + noise * rng.standard_normal(len(n)))
    return n, tau


def test_loglog_fit_matches_numpy_polyfit():
    n, tau = _law(np.random.default_rng(1), [64, 128, 256, 512, 1024], 5)
    a, alpha = ts.loglog_fit(n, tau)
    slope, intercept = np.polyfit(np.log(n), np.log(tau), 1)
    assert alpha == pytest.approx(slope, rel=1e-12) and a == pytest.approx(intercept, rel=1e-12)
    assert 0.6 < alpha < 1.0
    # censored (NaN) repeats are left out, exactly as if they were not there
    tau2 = tau.copy()
    tau2[[0, 7]] = np.nan
    keep = ~np.isnan(tau2)
    assert ts.loglog_fit(n, tau2)[1] == pytest.approx(np.polyfit(np.log(n[keep]), np.log(tau[keep]), 1)[0])
    assert all(math.isnan(v) for v in ts.loglog_fit([64, 64], [10, 20]))  # one n: no slope


def test_bootstrap_exponent_equals_a_direct_stratified_resampling_loop():
    n, tau = _law(np.random.default_rng(2), [64, 256, 1024], 6)
    tau[3] = np.nan  # a censored repeat at n = 64
    alpha, lo, hi, alphas = ts.bootstrap_exponent(n, tau, np.random.default_rng(7), n_bootstrap=300)
    # direct: same generator, same draw order (n increasing), np.polyfit on each resample
    rng = np.random.default_rng(7)
    draws = {}
    for s in (64, 256, 1024):
        ys = tau[(n == s) & ~np.isnan(tau)]
        draws[s] = ys[rng.integers(0, len(ys), size=(300, len(ys)))]
    direct = []
    for b in range(300):
        xs = np.concatenate([np.full(len(draws[s][b]), s) for s in draws])
        ys = np.concatenate([draws[s][b] for s in draws])
        direct.append(np.polyfit(np.log(xs), np.log(ys), 1)[0])
    np.testing.assert_allclose(alphas, direct, rtol=1e-10)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(direct, [2.5, 97.5])))
    assert alpha == pytest.approx(ts.loglog_fit(n, tau)[1]) and lo < alpha < hi
    # the same generator state gives the same interval; the global RNG is not used
    np.random.seed(0)
    again = ts.bootstrap_exponent(n, tau, np.random.default_rng(7), n_bootstrap=300)
    assert again[:3] == (alpha, lo, hi)
    with pytest.raises(TypeError, match="rng = 7 is invalid; allowed: a numpy.random.Generator"):
        ts.bootstrap_exponent(n, tau, 7)


def test_bootstrap_interval_covers_a_known_exponent():
    """Over many simulated studies the 95% interval holds the true alpha most of the time (a test that can fail)."""
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(60):
        n, tau = _law(rng, [64, 128, 256, 512, 1024], 5, alpha=1.0, noise=0.3)
        _, lo, hi, _ = ts.bootstrap_exponent(n, tau, rng, n_bootstrap=400)
        hits += lo <= 1.0 <= hi
    assert hits >= 48  # ~0.9-0.95 nominal for a percentile bootstrap at 5 repeats per n


def test_no_memorization_above_and_the_window():
    n = np.repeat([64, 128, 256, 512], 3)
    censored = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1], bool)
    assert ts.no_memorization_above(n, censored) == (256.0, 128.0)
    off, last = ts.no_memorization_above(n, np.zeros(12, bool))  # memorized at every n: no such n
    assert math.isnan(off) and last == 512.0
    off, last = ts.no_memorization_above(n, np.ones(12, bool))
    assert off == 64.0 and math.isnan(last)
    # a censored size below a memorizing one does not count as "no memorization above"
    off, last = ts.no_memorization_above(n, np.array([0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1], bool))
    assert (off, last) == (512.0, 256.0)
    w, c = ts.generalization_window([100, 200, np.nan], [1000, np.nan, 50], 5000)
    np.testing.assert_array_equal(w, [900, 4800, np.nan])
    np.testing.assert_array_equal(c, [False, True, False])


def test_dependence():
    assert ts.dependence(["holds", "holds"], ["inconclusive"] * 3) == "neither"
    assert ts.dependence(["holds", "reversed"], ["inconclusive"] * 3) == "architecture"
    assert ts.dependence(["holds"], ["holds", "inconclusive"]) == "training"
    assert ts.dependence(["holds", "inconclusive"], ["reversed", "inconclusive"]) == "both"


def test_repeat_times_from_tidy_frames():
    rows, q = [], []
    for r, onset in enumerate([3, None]):
        for e in EPOCHS:
            m = 0.9 if onset is not None and e >= onset else 0.2
            rows.append({"repeat": r, "epoch": e, "memorized": m, "memorized_null": 0.2, "n_generated": 1000})
            q.append({"repeat": r, "epoch": e, "energy": 1.0 / (1 + e), "energy_reference": 0.05})
    t = ts.repeat_times(pd.DataFrame(rows), pd.DataFrame(q), steps=4, factor=1.5)
    # energy 1/(1+e) < 0.075 first at e = 30 (1/31 = 0.032; 1/11 = 0.091)
    np.testing.assert_array_equal(t.tau_gen_epoch, [30, 30])
    np.testing.assert_array_equal(t.tau_mem, [12, np.nan])
    assert t.tau_mem_censored.tolist() == [False, True] and t.horizon.tolist() == [400, 400]
    np.testing.assert_array_equal(t.window, [12 - 120, 400 - 120])
    # the lowest energy is 1/101 at epoch 100; within 10% of it (< 0.0109) only at epoch 100
    np.testing.assert_array_equal(t.tau_plateau, [400, 400])
    np.testing.assert_array_equal(t.window_plateau, [12 - 400, 0])
    # the one onset rule's intervals (steps): jump at epoch 3 of a share of 1000 -> (1, 3] epochs; never: after 100
    np.testing.assert_array_equal(t.tau_mem_low, [4, 400])
    np.testing.assert_array_equal(t.tau_mem_high, [12, np.inf])
    np.testing.assert_array_equal(t.tau_gen_low, [40, 40])
    np.testing.assert_array_equal(t.tau_gen_high, [120, 120])
    times = pd.DataFrame({"dataset": "moons", "n": np.repeat([64, 128, 256], 4)})
    rng = np.random.default_rng(0)
    times["tau_mem"] = times.n * np.exp(0.1 * rng.standard_normal(12))
    times["tau_mem_censored"] = False
    s = ts.scaling_table(times, np.random.default_rng(0), n_bootstrap=200)
    assert s.alpha.iloc[0] == pytest.approx(np.polyfit(np.log(times.n), np.log(times.tau_mem), 1)[0])
    row = s.iloc[0]
    assert row.bonnaire_linear_in_interval == (row.alpha_low <= 1 <= row.alpha_high)  # no intervals: least squares
    assert row.alpha_low < row.alpha < row.alpha_high and row.n_timed == 12 and math.isnan(row.n_off)
    times["tau_mem"] = np.sqrt(times.n) * np.exp(0.01 * rng.standard_normal(12))  # alpha = 0.5, tight
    times.loc[times.n == 256, "tau_mem_censored"] = True
    times.loc[times.n == 256, "tau_mem"] = np.nan
    row = ts.scaling_table(times, np.random.default_rng(0), n_bootstrap=200).iloc[0]
    assert not row.bonnaire_linear_in_interval and row.alpha == pytest.approx(0.5, abs=0.05)
    assert (row.n_timed, row.n_censored, row.n_values, row.n_off, row.n_last) == (8, 4, 2, 256.0, 128.0)


def test_scaling_table_adds_the_censored_fit():
    rng = np.random.default_rng(4)
    times = pd.DataFrame({"dataset": "moons", "n": np.repeat([64.0, 128, 256, 512], 6)})
    tau = 20 * times.n * np.exp(0.2 * rng.standard_normal(24))
    grid = np.geomspace(100, 8000, 12)
    i = np.searchsorted(grid, tau)
    times["tau_mem_low"] = np.where(i > 0, grid[np.maximum(i - 1, 0)], 0.0)
    times["tau_mem_high"] = np.where(i < len(grid), grid[np.minimum(i, len(grid) - 1)], np.inf)
    times["tau_mem_censored"] = i == len(grid)
    times["tau_mem"] = np.where(times.tau_mem_censored, np.nan, times.tau_mem_high)
    row = ts.scaling_table(times, np.random.default_rng(0), n_bootstrap=100).iloc[0]
    from memnb.analysis.censored import fit_scaling

    f = fit_scaling(times.n.to_numpy(), times.tau_mem_low.to_numpy(), times.tau_mem_high.to_numpy())
    assert row.alpha_censored == f["alpha"] and row.alpha_censored_low == f["alpha_low"]
    assert row.n_right == int(times.tau_mem_censored.sum()) and row.n_right > 0
    assert row.bonnaire_linear_in_interval == (f["alpha_low"] <= 1 <= f["alpha_high"])
