"""Peers' conventions reproduced exactly: Bonnaire et al.'s fraction memorized (a top-2 search over the training
points as given: an exact duplicate is the second neighbour) and Meehan et al.'s Z_U with their 0.5 continuity
shift, each against a brute-force implementation of the peer's own code written here."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from memnb import Results
from memnb.core.registry import CRITERIA
from memnb.experiment.tabulate import location_ids, summarize, summary_at
from memnb.metric.copying import mann_whitney_z, mann_whitney_z_by_group
from memnb.metric.criteria import critical_ratio, is_memorized, memorized_shares
from memnb.metric.neighbors import nearest_neighbours
from memnb.metric.peers import BONNAIRE_FMEM, bonnaire_ratio, point_multiplicity

FIXTURES = Path(__file__).parent / "fixtures"


def bonnaire_brute_force(samples: np.ndarray, train: np.ndarray, gap_threshold: float = 1 / 3) -> np.ndarray:
    """compute_fmem.py's rule, by loops: the two smallest distances to every training point (duplicates kept),
    gap = d[0] / d[1], memorized iff gap < 1/3 (0/0 is NaN: not memorized)."""
    out = np.zeros(len(samples), bool)
    for i, s in enumerate(samples):
        d = sorted(float(np.sqrt(((s - t) ** 2).sum())) for t in train)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.float64(d[0]) / np.float64(d[1])
        out[i] = bool(gap < gap_threshold)
    return out


def fixed_sample(seed: int = 3):
    """200 unique training points + 20 exact duplicates of some of them; samples: exact and near copies of
    unique and of duplicated points, and fresh points."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-1, 1, (200, 2))
    dup_src = rng.choice(200, 20, replace=False)
    train = np.concatenate([base, base[dup_src]])
    unique_src = np.setdiff1d(np.arange(200), dup_src)[:40]
    samples = np.concatenate(
        [
            base[unique_src[:20]],  # exact copies of unique points
            base[dup_src[:10]],  # exact copies of duplicated points
            base[unique_src[20:]] + 1e-4 * rng.standard_normal((20, 2)),  # near copies of unique points
            base[dup_src[10:]] + 1e-4 * rng.standard_normal((10, 2)),  # near copies of duplicated points
            rng.uniform(-1, 1, (60, 2)),  # fresh
        ]
    )
    return train, samples, rng.uniform(-1, 1, (150, 2))


def test_bonnaire_fmem_equals_their_top2_rule_and_leaves_out_copies_of_duplicates():
    train, samples, test = fixed_sample()
    nb = nearest_neighbours(samples, train, test)
    locations = location_ids(train)
    fields = {"d1": nb.d1, "d2": nb.d2, "index": nb.index}
    theirs = bonnaire_brute_force(samples, train)
    with CRITERIA.added(BONNAIRE_FMEM):
        ours = is_memorized("bonnaire_fmem", bonnaire_ratio(fields, locations), 3.0)
    np.testing.assert_array_equal(ours, theirs)
    # the 20 exact and 20 near copies of unique points are memorized; none of the 20 copies of duplicated points
    assert theirs[:20].all() and theirs[30:50].all() and not theirs[20:30].any() and not theirs[50:60].any()
    memnb_train_only = is_memorized("train_only", critical_ratio("train_only", nb.d1, nb.d2, nb.d_test), 3.0)
    near_dup = point_multiplicity(nb.index, locations) > 1
    assert memnb_train_only[20:30].all() and memnb_train_only[50:60].all()  # memnb counts copies of duplicates
    np.testing.assert_array_equal(memnb_train_only & ~near_dup, theirs)  # the only difference


def test_bonnaire_fmem_through_summarize_as_a_registered_criterion():
    """Registered, it is tabulated like memnb's own (the same shares as the brute force), and refused without
    the locations it needs."""
    train, samples, test = fixed_sample(5)
    nb = nearest_neighbours(samples, train, test)
    groups = np.zeros(len(train), np.int8)
    groups[200:] = 2  # the duplicates' group
    arrays = {f: getattr(nb, f)[None] for f in ("d1", "d2", "index", "d_test", "d_mean50")}
    with CRITERIA.added(BONNAIRE_FMEM):
        s = summarize(arrays, groups[None], location_ids(train)[None], np.array([3.0]))
        share = summary_at(s, criterion="bonnaire_fmem", source="generated", threshold_index=0)
        with pytest.raises(ValueError, match="needs the training points' location ids"):
            critical_ratio("bonnaire_fmem", nb.d1, nb.d2, nb.d_test)
    assert share[0] == pytest.approx(bonnaire_brute_force(samples, train).mean())
    assert "bonnaire_fmem" not in CRITERIA  # not registered by default: stored runs keep memnb's three


def test_bonnaire_fmem_of_a_stored_run_from_its_neighbours(tmp_path):
    """Results.rates_at from the stored neighbour arrays equals compute_fmem.py's rule on the stored samples, up to
    one sample per repeat and epoch (the stored samples are float16 roundings of the points that were searched)."""
    (old,) = list((FIXTURES / "old_run").iterdir())
    shutil.copytree(old, tmp_path / old.name)
    res = Results(tmp_path / old.name)
    train = res.data["train_points"]
    with CRITERIA.added(BONNAIRE_FMEM):
        rates = res.rates_at("bonnaire_fmem", 3.0)
    for e in res.evaluated_epochs:
        samples = res.epoch_arrays(e, ("samples",))["samples"].astype(np.float64)
        for r in range(res.config.n_repeats):
            want = bonnaire_brute_force(samples[r], train[r]).mean()
            got = rates[(rates.epoch == e) & (rates.repeat == r) & (rates.group == "all")].memorized.iloc[0]
            assert abs(got - want) <= 1.0 / samples.shape[1] + 1e-12


def meehan_zu_brute_force(test_d: np.ndarray, gen_d: np.ndarray) -> float:
    """data_copying_tests.py's Zu, by loops: U = #{gen > test} + 1/2 #{ties}, mean nm/2 - 0.5 (their continuity
    correction), sd sqrt(nm(n + m + 1)/12)."""
    n, m = len(test_d), len(gen_d)
    u = sum(1.0 if g > t else 0.5 if g == t else 0.0 for g in gen_d for t in test_d)
    return (u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12)


@pytest.mark.parametrize("n,m", [(10, 10), (37, 23), (200, 170)])
def test_zu_with_meehan_continuity_equals_their_code(n, m):
    rng = np.random.default_rng(n + m)
    test_d = rng.gamma(2.0, 1.0, n)
    gen_d = np.concatenate([rng.gamma(2.0, 0.8, m - 3), test_d[:3]])  # three ties
    theirs = meehan_zu_brute_force(test_d, gen_d)
    assert mann_whitney_z(test_d, gen_d, continuity=0.5) == pytest.approx(theirs, rel=1e-12, abs=1e-12)
    # their code takes U from scipy's mannwhitneyu(L(Q_m), L(P_n)): the statistic of the generated sample
    u = mannwhitneyu(gen_d, test_d, alternative="less").statistic
    assert (u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12) == pytest.approx(theirs, rel=1e-12)
    shift = 0.5 / np.sqrt(n * m * (n + m + 1) / 12)
    assert mann_whitney_z(test_d, gen_d) == pytest.approx(theirs - shift, rel=1e-12, abs=1e-12)
    z = mann_whitney_z_by_group(test_d, np.zeros(n, int), gen_d, np.zeros(m, int), 1, continuity=0.5)
    assert z[0] == pytest.approx(theirs) and z[1] == pytest.approx(theirs)


def test_zu_continuity_is_checked():
    with pytest.raises(ValueError, match="continuity = 'half' is invalid"):
        mann_whitney_z([1.0, 2.0], [1.5], continuity="half")
    with pytest.raises(ValueError, match="continuity = nan is invalid"):
        mann_whitney_z([1.0, 2.0], [1.5], continuity=float("nan"))


def test_memorized_shares_of_the_peer_criterion_by_group():
    train, samples, test = fixed_sample(11)
    nb = nearest_neighbours(samples, train, test)
    locations = location_ids(train)
    groups = np.where(np.arange(len(train)) >= 200, 2, 0)
    with CRITERIA.added(BONNAIRE_FMEM):
        r = bonnaire_ratio({"d1": nb.d1, "d2": nb.d2, "index": nb.index}, locations)
        out = memorized_shares("bonnaire_fmem", r, groups[nb.index], [3.0])
    assert out[2, 0] == 0.0  # nothing attributed to the duplicates' group: their nearest location is doubled
