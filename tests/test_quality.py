"""Energy distance against scipy's 1-D implementation and a brute-force double loop in 2-D."""

import numpy as np
import pytest
from scipy.stats import energy_distance as scipy_energy

from memnb.analysis.quality import energy_distance


def brute_force(x, y):
    def mean_dist(a, b):
        return np.mean([[np.linalg.norm(p - q) for q in b] for p in a])

    return np.sqrt(2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y))


def test_one_dimension_matches_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 300), rng.normal(0.5, 2, 170)
    assert energy_distance(x, y) == pytest.approx(scipy_energy(x, y), rel=1e-10)
    assert energy_distance(x[:, None], y[:, None]) == pytest.approx(scipy_energy(x, y), rel=1e-10)


def test_two_dimensions_match_brute_force_and_chunking():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (60, 2)), rng.normal([1, 0], 1, (45, 2))
    assert energy_distance(x, y) == pytest.approx(brute_force(x, y), rel=1e-10)
    from memnb.analysis import quality

    assert quality._mean_pairwise(x, y, chunk=7) == pytest.approx(quality._mean_pairwise(x, y), rel=1e-12)


def test_properties():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (200, 2))
    assert energy_distance(x, x) == 0.0
    y = rng.normal(0, 1, (200, 2))
    assert energy_distance(x, y) == pytest.approx(energy_distance(y, x))
    # units: D^2 is a mean of distances, so scaling both sets by c scales D by sqrt(c)
    assert energy_distance(4 * x, 4 * y) == pytest.approx(2 * energy_distance(x, y))
    # a shifted set is farther than a fresh draw of the same distribution
    assert energy_distance(x, y + [1.0, 0.0]) > 3 * energy_distance(x, y)


@pytest.mark.parametrize(
    "x, y, words",
    [
        (np.zeros((0, 2)), np.zeros((3, 2)), "x has shape"),
        (np.zeros((3, 2)), np.zeros((3, 3)), "d = 2"),
        (np.array([[0.0, np.nan]]), np.zeros((3, 2)), "non-finite"),
    ],
)
def test_bad_input_fails_early(x, y, words):
    with pytest.raises(ValueError, match=words):
        energy_distance(x, y)
