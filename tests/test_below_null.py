"""Below the null is a result of its own: the exact below-the-null test, the one onset rule over repeats, each
group's standing, and the KDE bandwidth sweep on digits (copies at bandwidth 0, below the null at a large one)."""

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest

from memnb.analysis.against_null import below_null_p, mean_onset, standing, standing_line
from memnb.analysis.kde import kde_samples, kde_sweep, sweep_summary
from memnb.views.kde import kde_figure
from memnb.workflows.digits import DIGITS


def fisher_less_brute_force(x, n, y, n0):
    """P(X' <= x) for X' hypergeometric: x + y successes drawn into a sample of n out of n + n0 (by sums of
    binomial coefficients)."""
    k = x + y
    total = math.comb(n + n0, k)
    return sum(math.comb(n, i) * math.comb(n0, k - i) for i in range(max(0, k - n0), x + 1)) / total


@pytest.mark.parametrize("x,n,y,n0", [(5, 170, 8, 170), (0, 170, 8, 170), (50, 1700, 80, 1700), (3, 10, 0, 12)])
def test_below_null_p_is_the_exact_one_sided_test(x, n, y, n0):
    assert below_null_p(x, n, y, n0) == pytest.approx(fisher_less_brute_force(x, n, y, n0), rel=1e-9)
    # pooled over repeats: the sums
    assert below_null_p([x, 0], [n, 0], [y, 0], [n0, 0]) == pytest.approx(below_null_p(x, n, y, n0))
    assert math.isnan(below_null_p(0, 0, 1, 10))


def test_the_issues_numbers_one_repeat_and_ten():
    """2.9 % and 0 % against a 4.7 % null of 170: only 0 % is significantly below with one repeat of 170;
    2.9 % is with ten repeats' counts."""
    assert below_null_p(5, 170, 8, 170) > 0.05
    assert below_null_p(0, 170, 8, 170) < 0.01
    assert below_null_p(50, 1700, 80, 1700) < 0.01


def table(values, nulls, repeats=3, epochs=(0, 1, 2, 3), noise=0.0, n_generated=1060, seed=0):
    rng = np.random.default_rng(seed)
    sizes = {"inlier": 1000, "outlier": 20, "duplicate": 40, "all": 1060}
    rows = []
    for r in range(repeats):
        for e in epochs:
            for g, n in sizes.items():
                v = max(0.0, values[g](e) + noise * rng.standard_normal())
                rows.append(
                    dict(
                        repeat=r,
                        epoch=e,
                        group=g,
                        criterion="paper",
                        threshold=1.5,
                        memorized=v,
                        memorized_null=nulls[g],
                        copied=v,
                        copied_null=nulls[g],
                        n_generated=n_generated,
                        n_group_points=n,
                    )
                )
    return pd.DataFrame(rows)


VALUES = {
    "inlier": lambda e: 0.30 + 0.2 * (e >= 2),
    "outlier": lambda e: 0.0,
    "duplicate": lambda e: 0.02,
    "all": lambda e: 0.30 + 0.2 * (e >= 2),
}
NULLS = {"inlier": 0.30, "outlier": 0.02, "duplicate": 0.02, "all": 0.30}


def test_standing_names_above_on_below():
    st = standing(table(VALUES, NULLS, noise=0.002)).set_index("group")
    assert st.loc["inlier", "standing"] == "above" and st.loc["inlier", "onset"] == 2
    assert st.loc["outlier", "standing"] == "below" and st.loc["outlier", "p_below"] < 1e-6
    assert st.loc["duplicate", "standing"] == "on"
    line = standing_line(st.reset_index())
    assert "BELOW its null" in line and "not 'not memorized yet'" in line and "from epoch 2" in line


def test_one_repeat_is_not_enough_to_tell_an_onset_but_can_be_below():
    st = standing(table(VALUES, NULLS, repeats=1)).set_index("group")
    assert st.loc["inlier", "standing"] == "too few repeats" and np.isnan(st.loc["inlier", "onset"])
    assert "not enough repeats to tell" in st.loc["inlier", "text"]
    assert st.loc["outlier", "standing"] == "below"


def test_two_samples_of_300_against_a_null_of_0_are_not_an_onset():
    """The issue's case: outliers at 2 samples of 300, chance level 0; one repeat or two identical ones."""
    vals = dict(VALUES, outlier=lambda e: 2 / 300 * (e >= 3))
    nulls = dict(NULLS, outlier=0.0)
    st = standing(table(vals, nulls, repeats=1, n_generated=300)).set_index("group")
    assert st.loc["outlier", "standing"] == "too few repeats"
    two = table(vals, nulls, repeats=2, n_generated=300)
    two.loc[(two.repeat == 1) & (two.group == "outlier"), "memorized"] = 0.0  # 2 and 0 of 300: a spread
    st = standing(two).set_index("group")
    assert st.loc["outlier", "standing"] == "on"
    # ten repeats of 2 of 300 each, i.e. 20 of 3000 against 0: established
    st = standing(table(vals, nulls, repeats=10, n_generated=300)).set_index("group")
    assert st.loc["outlier", "standing"] == "above" and st.loc["outlier", "onset"] == 3


def test_mean_onset_is_a_t_test_per_evaluation():
    epochs = np.arange(4)
    excess = np.array([[0.0, 0.0, 0.20, 0.20], [0.0, 0.0, 0.10, 0.21], [0.0, 0.0, 0.30, 0.19]])
    se = np.full_like(excess, 1e-6)
    low, high = mean_onset(epochs, excess, se, margin=0.05, significance=0.05)
    # level 5 % / 4 evaluations: epoch 2: mean 0.2, sd 0.1, sem 0.0577, t(0.9875, 2) = 6.2: 0.15 < 0.36, not yet;
    # epoch 3: sd 0.01, 0.15 > 0.036, passes; low = epoch 1, the last at or below the margin
    assert high == 3 and low == 1


def test_kde_samples():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 3))
    copies = kde_samples(train, 20, 0.0, np.random.default_rng(1))
    assert all((train == c).all(axis=1).any() for c in copies)
    far = kde_samples(train, 20000, 2.0, np.random.default_rng(1))
    scale = np.sqrt(train.var(axis=0).mean())
    assert np.sqrt(far.var(axis=0).mean()) == pytest.approx(np.sqrt(1 + 4) * scale, rel=0.05)


def test_kde_sweep_on_digits_from_copies_to_below_the_null():
    config = dataclasses.replace(DIGITS, n_repeats=2)
    tab, zu = kde_sweep(config, bandwidths=(0.0, 0.6, 3.0))
    s = sweep_summary(tab, zu, config)
    a = s[s.group == "all"].set_index(["bandwidth", "criterion"])
    for crit in ("paper", "train_only", "relative"):
        assert a.loc[(0.0, crit), "memorized_%"] == 100.0 and a.loc[(0.0, crit), "against"] == "above"
    assert a.loc[(0.0, "paper"), "z_u"] < -3 and a.loc[(3.0, "paper"), "z_u"] > 3
    assert a.loc[(3.0, "paper"), "against"] == "below" and a.loc[(3.0, "paper"), "memorized_%"] == 0.0
    # Bonnaire's f_mem = memnb's train-only share without the samples next to a duplicated training point
    t = s[(s.criterion == "train_only") & (s.bandwidth == 0.0)].set_index("group")["memorized_%"]
    assert a.loc[(0.0, "bonnaire_fmem"), "memorized_%"] == pytest.approx(t["inlier"] + t["outlier"])
    assert t["duplicate"] > 0
    # Meehan's continuity shift: 0.5 / sd(U) on every 'all' row
    z = zu[zu.group == "all"]
    sd = np.sqrt(z.n_generated * z.n_test * (z.n_generated + z.n_test + 1) / 12)
    np.testing.assert_allclose(z.z_u_meehan - z.z_u, 0.5 / sd, rtol=1e-9)
    fig = kde_figure(s)
    assert len(fig.data) == 4 + 1 + 2 and "BELOW" in fig.layout.title.text
    with pytest.raises(ValueError, match="bandwidths"):
        kde_sweep(config, bandwidths=(-1.0,))


def test_standing_without_a_null_or_without_sizes():
    t = table(VALUES, NULLS)
    st = standing(t.assign(memorized_null=np.nan, copied_null=np.nan)).set_index("group")
    assert set(st.standing) == {"no null"} and st.p_below.isna().all()
    from memnb.analysis.against_null import standing_or_none

    assert standing_or_none(t.drop(columns="n_generated"), "memorized") is None
    assert standing_or_none(t.iloc[:0], "memorized") is None
    copied = standing(t, "copied").set_index("group")  # the group view: shares of the group's points
    # 0 of 20 points copied against a null of 0.4 points, thrice: too few points to be below (p = 0.5)
    assert copied.loc["outlier", "standing"] == "on" and copied.loc["inlier", "standing"] == "above"
    with pytest.raises(ValueError, match="value = 'share' is invalid"):
        standing(t, "share")
    with pytest.raises(ValueError, match="significance = 0.7 is invalid"):
        standing(t, significance=0.7)


def test_a_kde_model_below_its_null_is_named_so_by_verdict_sanity_and_figures(tmp_path):
    """End to end through memnb.Monitor: a 'model' that samples a KDE of the digits at 3 data sds (noise) for
    six observations; the verdict, the sanity report and the paper view say "below the null", never a time."""
    from memnb import Monitor
    from memnb.analysis.curves import select
    from memnb.analysis.verdict import Variant, verdict
    from memnb.experiment.repeats import RepeatData
    from memnb.views import figures

    data = RepeatData(dataclasses.replace(DIGITS, n_repeats=1))
    train, groups = data.train_points[0], data.groups[0]
    mon = Monitor(
        train,
        groups,
        data.test_points[0],
        null=data.null_draws(0)[0],
        root=tmp_path,
        name="kde",
        repeats=6,
        progress=False,
        dataset="digits",
    )
    for epoch in range(1, 7):
        rng = np.random.default_rng(epoch)
        mon.observe(epoch, np.stack([kde_samples(train, 170, 3.0, rng) for _ in range(6)]))
    res = mon.results()
    tab, tim = verdict([res.path], variants=[Variant("paper", value="copied"), Variant("zu")], n_bootstrap=200)
    assert set(tab.verdict) == {"below null"} and all("inlier" in b for b in tab.below_null)
    view = select(res.table(), "paper", res.config.ratio)
    assert "below the null, a quality failure" in figures.check_sanity(res.table(), res.config)
    title = " ".join(re.sub("<[^>]+>", " ", figures.paper_view(view, res.config).layout.title.text).split())
    assert "inliers: BELOW its null" in title
    assert "below the null" in figures.summary_text(view, res.config)
