"""The share's binomial intervals against scipy.stats, the exact power planner against brute-force binomial sums."""

import math

import numpy as np
import pytest
from scipy import stats

from memnb.analysis.planning import (
    binomial_interval,
    critical_count,
    detectable_excess,
    exact_power,
    samples_needed,
    share_interval,
)

SCIPY_METHOD = {"wilson": "wilson", "clopper_pearson": "exact"}


def brute_tail(n, p, c):
    """P(K >= c), K ~ Binomial(n, p), summed term by term."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(c, n + 1))


def brute_critical(n, p0, alpha):
    return next(c for c in range(n + 2) if brute_tail(n, p0, c) <= alpha)


def brute_power(n, p0, p1, alpha):
    return brute_tail(n, p1, brute_critical(n, p0, alpha))


def brute_needed(p0, delta, power, alpha):
    return next(n for n in range(1, 10**5) if brute_power(n, p0, p0 + delta, alpha) >= power)


@pytest.mark.parametrize("method", ["wilson", "clopper_pearson"])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_intervals_match_scipy(method, confidence):
    cases = [(0, 1), (1, 1), (0, 20), (3, 20), (20, 20), (7, 400), (400, 20800), (20800, 20800), (1, 5000)]
    k = np.array([c[0] for c in cases])
    n = np.array([c[1] for c in cases])
    lo, hi = binomial_interval(k, n, confidence, method)
    for i, (kk, nn) in enumerate(cases):
        ref = stats.binomtest(kk, nn).proportion_ci(confidence_level=confidence, method=SCIPY_METHOD[method])
        assert lo[i] == pytest.approx(ref.low, abs=1e-12) and hi[i] == pytest.approx(ref.high, abs=1e-12)
    assert (lo <= k / n).all() and (k / n <= hi).all()


def test_interval_ends_at_zero_and_all_and_shares_round_to_counts():
    for method in ("wilson", "clopper_pearson"):
        lo, hi = binomial_interval([0, 100], 100, method=method)
        assert lo[0] == 0 and hi[1] == 1 and 0 < hi[0] < 0.05 and 0.95 < lo[1] < 1
    np.testing.assert_array_equal(share_interval([0.25, 0.5], 40), binomial_interval([10, 20], 40))


def test_wilson_coverage_is_near_nominal():
    """Its coverage, summed exactly over K ~ Binomial(n, p), is near 95 % (not a guarantee: Wilson is approximate)."""
    n = 200
    k = np.arange(n + 1)
    lo, hi = binomial_interval(k, np.full(n + 1, n))
    for p in (0.02, 0.1, 0.5):
        cover = stats.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum()
        assert 0.92 < cover < 0.98


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"k": 5, "n": 4}, r"k, n = .* is invalid; allowed: integers with 0 <= k <= n"),
        ({"k": 1.5, "n": 4}, r"allowed: integer counts"),
        ({"k": 1, "n": 4, "method": "agresti"}, r"method = 'agresti' is invalid; allowed: wilson \| clopper_pearson"),
        ({"k": 1, "n": 4, "confidence": 1.0}, r"confidence = 1.0 is invalid"),
    ],
)
def test_bad_interval_input_fails_naming_it(bad, message):
    with pytest.raises(ValueError, match=message):
        binomial_interval(**bad)


@pytest.mark.parametrize("p0, alpha", [(0.01, 0.05), (0.05, 0.05), (0.2, 0.01), (0.5, 0.1)])
def test_critical_count_and_power_equal_brute_force_sums(p0, alpha):
    n = np.arange(1, 120)
    c = critical_count(n, p0, alpha)
    assert c.tolist() == [brute_critical(int(m), p0, alpha) for m in n]
    pw = exact_power(n, p0, p0 + 0.1, alpha)
    np.testing.assert_allclose(pw, [brute_power(int(m), p0, p0 + 0.1, alpha) for m in n], rtol=1e-9, atol=1e-12)
    size = exact_power(n, p0, p0, alpha)  # at p1 = p0: the test's size, never above alpha
    assert (size <= alpha + 1e-12).all()


@pytest.mark.parametrize(
    "p0, delta, power, alpha",
    [
        (0.01, 0.04, 0.8, 0.05),
        (0.05, 0.1, 0.8, 0.05),
        (0.02, 0.03, 0.9, 0.05),
        (0.1, 0.15, 0.8, 0.01),
        (0.3, 0.2, 0.5, 0.1),
    ],
)
def test_samples_needed_is_the_smallest_n_by_brute_force(p0, delta, power, alpha):
    n = samples_needed(p0, delta, power, alpha)
    assert n == brute_needed(p0, delta, power, alpha)
    assert brute_power(n, p0, p0 + delta, alpha) >= power > brute_power(n - 1, p0, p0 + delta, alpha)


def test_samples_needed_scales_as_the_normal_approximation_for_small_rates():
    """Far from the sawtooth's scale (n in the thousands) the exact answer is within a few % of the normal one."""
    p0, delta = 0.005, 0.002
    p1 = p0 + delta
    approx = ((1.6448536 * math.sqrt(p0 * (1 - p0)) + 0.8416212 * math.sqrt(p1 * (1 - p1))) / delta) ** 2
    n = samples_needed(p0, delta)
    assert abs(n / approx - 1) < 0.1
    assert exact_power(np.array([n]), p0, p1)[0] >= 0.8


def test_detectable_excess_inverts_the_power():
    for n, p0 in ((200, 0.02), (2000, 0.01), (20800, 0.005)):
        d = detectable_excess(n, p0)
        assert exact_power(np.array([n]), p0, p0 + d)[0] >= 0.8 > exact_power(np.array([n]), p0, p0 + d - 1e-6)[0]
        assert samples_needed(p0, d) <= n
    assert detectable_excess(2, 0.5) == 0.5  # two samples never reject at 5 %: nothing is detectable


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"p0": 0.0, "delta": 0.1}, r"p0 = 0.0 is invalid"),
        ({"p0": 0.9, "delta": 0.2}, r"delta = 0.2 is invalid; allowed: a finite number > 0.0 and <= 0.09"),
        ({"p0": 0.1, "delta": 0.1, "power": 0.01}, r"power = 0.01 is invalid"),
        ({"p0": 0.1, "delta": 0.1, "alpha": 0.7}, r"alpha = 0.7 is invalid"),
        ({"p0": 0.001, "delta": 1e-4, "n_max": 1000}, r"n_max = 1000 is invalid; allowed: more samples"),
    ],
)
def test_bad_planner_input_fails_naming_it(kw, message):
    with pytest.raises(ValueError, match=message):
        samples_needed(**kw)
