"""Plots, summaries, sanity checks, profiles, the threshold grid and the widget explorer.

Plotting and statistics are checked on synthetic tables whose answers are known by construction;
RateGrid and the explorer on a tiny real run.
"""

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from memnb import ExperimentConfig, chance_level, run_experiment
from memnb.experiment.results import RateGrid
from memnb.views import figures as plots
from memnb.workflows import profiles

GROUPS = ["inlier", "outlier", "duplicate", "all"]


def synthetic_table(
    values: dict, nulls: dict, epochs=(0, 1, 2, 3), repeats=3, criterion="paper", threshold=1.5, noise=0.0, seed=0
) -> pd.DataFrame:
    """Rows of one criterion/threshold: value[group](epoch) + repeat-specific noise; same for copied."""
    rng = np.random.default_rng(seed)
    sizes = {"inlier": 1000, "outlier": 20, "duplicate": 40, "all": 1060}
    rows = []
    for r in range(repeats):
        for e in epochs:
            for g in GROUPS:
                v = values[g](e) + noise * rng.standard_normal()
                rows.append(
                    dict(
                        repeat=r,
                        epoch=e,
                        group=g,
                        criterion=criterion,
                        threshold=threshold,
                        memorized=v,
                        memorized_null=nulls[g],
                        copied=v,
                        copied_null=nulls[g],
                        n_generated=1060,
                        n_group_points=sizes[g],
                    )
                )
    return pd.DataFrame(rows)


def flat(level):
    return lambda e: level


def test_curve_stats_mean_and_t_band():
    df = synthetic_table({g: flat(0.2) for g in GROUPS}, {g: 0.1 for g in GROUPS}, noise=0.02, repeats=5)
    st = plots.curve_stats(df, "memorized")
    for (g, e), rows in df.groupby(["group", "epoch"]):
        s = st[(st.group == g) & (st.epoch == e)].iloc[0]
        x = rows.memorized.to_numpy()
        half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        assert s["mean"] == pytest.approx(x.mean())
        assert s["hi"] == pytest.approx(min(1.0, x.mean() + half))
        assert s["lo"] == pytest.approx(max(0.0, x.mean() - half))
        assert s["null_mean"] == pytest.approx(0.1)
    # one repeat: no band
    one = plots.curve_stats(df[df.repeat == 0], "memorized")
    assert one.lo.isna().all() and one.hi.isna().all()


def test_band_is_clipped_to_shares():
    df = synthetic_table({g: flat(0.01) for g in GROUPS}, {g: 0.0 for g in GROUPS}, noise=0.05, repeats=3)
    df["memorized"] = df.memorized.clip(0, 1)
    st = plots.curve_stats(df, "memorized")
    assert (st.lo >= 0).all() and (st.hi <= 1).all()


def test_first_epoch_above_null():
    """memnb's one onset rule (per point: the memorized share over the group's share of the training set; an
    excess of 5 points at one-sided 5 % over repeats): +15 points of the inliers from epoch 2 and +1 point of
    the generated set on the 20 outliers (+53 points per outlier) from epoch 3 are established."""
    values = {
        "inlier": lambda e: 0.30 + 0.15 * (e >= 2),
        "outlier": lambda e: 0.01 * (e >= 3) + 0.02,
        "duplicate": flat(0.02),
        "all": lambda e: 0.30 + 0.15 * (e >= 2),
    }
    nulls = {"inlier": 0.30, "outlier": 0.02, "duplicate": 0.02, "all": 0.30}
    df = synthetic_table(values, nulls, noise=0.001)
    first = plots.first_epoch_above_null(df, "memorized")
    assert first == {"inlier": 2, "all": 2, "outlier": 3, "duplicate": None}
    s = plots.summary(df)
    assert list(s.group) == ["all", "inlier", "outlier", "duplicate"]
    assert s.set_index("group").loc["outlier", "first_epoch_memorized_above_null"] == 3
    assert pd.isna(s.set_index("group").loc["duplicate", "first_epoch_memorized_above_null"])
    assert s.set_index("group").loc["inlier", "memorized_%"] == pytest.approx(45.0, abs=0.1)
    text = plots.summary_text(df)
    assert "first_epoch" in text and "d_test" in text
    # one repeat: no onset is named, the summary says why
    one = df[df.repeat == 0]
    assert set(plots.first_epoch_above_null(one, "memorized").values()) == {None}
    assert "not enough repeats to tell" in plots.summary_text(one)


def test_two_samples_of_300_against_a_zero_null_are_not_first_memorized():
    """The issue's case: with one repeat, outliers at 2 of 300 samples against a chance level of 0 at the last
    epoch were "first memorized above chance" before the inliers; now neither is named."""
    values = {g: flat(0.3) for g in GROUPS}
    values["outlier"] = lambda e: 2 / 300 * (e >= 3)
    nulls = {"inlier": 0.3, "outlier": 0.0, "duplicate": 0.3, "all": 0.3}
    df = synthetic_table(values, nulls, repeats=1).assign(n_generated=300)
    assert plots.first_epoch_above_null(df, "memorized")["outlier"] is None
    text = plots.summary_text(df)
    row = next(line for line in text.splitlines() if line.lstrip().startswith("outlier"))
    assert "not enough repeats to tell" in row


def test_each_figure_says_per_group_where_its_curve_stands_against_its_null():
    values = {
        "inlier": lambda e: 0.30 + 0.15 * (e >= 2),
        "outlier": flat(0.0),
        "duplicate": flat(0.02),
        "all": lambda e: 0.30 + 0.15 * (e >= 2),
    }
    nulls = {"inlier": 0.30, "outlier": 0.02, "duplicate": 0.02, "all": 0.30}
    df = synthetic_table(values, nulls, noise=0.001)
    plain = lambda fig: " ".join(re.sub("<[^>]+>", " ", fig.layout.title.text).split())  # noqa: E731
    title = plain(plots.paper_view(df))
    assert "inliers: rises above its null from epoch 2" in title
    assert "BELOW its null" in title and "on its null" in title
    assert "not enough repeats to tell" in plain(plots.paper_view(df[df.repeat == 0]))
    assert "BELOW" in plots.summary_text(df) or "below the null" in plots.summary_text(df)


def test_figure_structure_labels_and_values():
    df = synthetic_table({g: (lambda e, g=g: 0.1 + 0.01 * e) for g in GROUPS}, {g: 0.05 for g in GROUPS}, repeats=3)
    fig = plots.rates_figure(df, "memorized", title="Figure 9 [profile smoke]", chance=0.31)
    assert isinstance(fig, go.Figure)
    # per group: 3 repeats + band + mean + null; then the chance level
    assert len(fig.data) == 4 * (3 + 3) + 1
    means = [t for t in fig.data if t.legendgroup == "mean" and t.fill != "toself"]
    assert len(means) == 4
    np.testing.assert_allclose(means[0].y, [10, 11, 12, 13])  # percent
    nulls = [t for t in fig.data if t.legendgroup == "null"]
    assert all(t.line.dash == "dash" for t in nulls)
    assert [t.line.color for t in nulls] == [plots.GROUP_COLORS[g] for g in plots.GROUPS]
    chance = fig.data[-1]
    assert chance.y == (31.0, 31.0)
    assert "Figure 9" in fig.layout.title.text and "profile smoke" in fig.layout.title.text
    assert "%" in fig.layout.yaxis.title.text and "epoch" in fig.layout.xaxis3.title.text
    assert fig.layout.yaxis.ticksuffix == "%"
    assert [a.text.split(" (")[0] for a in fig.layout.annotations] == [
        "all groups",
        "inliers",
        "outliers",
        "near-duplicates",
    ]
    assert any(t.showlegend for t in fig.data)
    # repeats not shown are hidden, not removed (a widget updates traces in place)
    fig2 = plots.rates_figure(df, "copied", repeats=[1])
    assert len(fig2.data) == len(fig.data)
    assert [t.visible for t in fig2.data[:3]] == [False, True, False]
    assert fig2.data[-1].visible is False  # no chance level passed


def test_long_titles_wrap_inside_the_figure():
    """Plotly never wraps a title: memnb wraps each line at spaces and makes room for every line above the panels."""
    df = synthetic_table({g: flat(0.1) for g in GROUPS}, {g: 0.1 for g in GROUPS})
    config, reductions = profiles.apply_profile(profiles.figure_config(1), "smoke")
    title = profiles.figure_title(config, "smoke", 1, reductions)
    assert len(title.splitlines()[1]) > plots.TITLE_WRAP["second"]  # the reductions line is too long for one line
    fig = plots.rates_figure(df, "memorized", title=title)
    text = fig.layout.title.text
    lines = [re.sub(r"<[^>]+>", "", line) for line in text.split("<br>")]
    assert len(lines) == plots.title_lines(text) >= 5  # title, 2 lines of reductions, 2 of subtitle
    sizes = ["sub" if "11px" in line else "second" for line in text.split("<br>")]
    assert all(len(line) <= plots.TITLE_WRAP[size] for line, size in zip(lines[1:], sizes[1:])), lines
    assert not any(line.rstrip().endswith("→") or line.lstrip().startswith("→") for line in lines)  # "a → b" kept whole
    assert " ".join(lines).replace("\u00a0", " ").startswith(title.splitlines()[0])
    short = plots.rates_figure(df, "memorized", title="t")
    assert plots.title_lines(short.layout.title.text) >= 4  # t, what it shows, the criterion, where each group stands
    n_short = plots.title_lines(short.layout.title.text)
    assert fig.layout.margin.t - short.layout.margin.t == 20 * (len(lines) - n_short)
    assert (fig.layout.title.yanchor, fig.layout.title.yref) == ("top", "container")


def test_figure_refuses_mixed_settings():
    a = synthetic_table({g: flat(0.1) for g in GROUPS}, {g: 0.1 for g in GROUPS})
    b = a.assign(threshold=2.0)
    with pytest.raises(ValueError, match="one criterion at one threshold"):
        plots.rates_figure(pd.concat([a, b]))
    with pytest.raises(ValueError, match="value 'bogus' is unknown"):
        plots.rates_figure(a, "bogus")
    with pytest.raises(ValueError, match="threshold 7.0 is not tabulated"):
        plots.select(a, "paper", 7.0)


def test_views_and_html(tmp_path):
    c = ExperimentConfig(n_base=1000, n_outliers=20, n_duplicates=40)
    df = synthetic_table({g: flat(0.1) for g in GROUPS}, {g: 0.1 for g in GROUPS})
    p = plots.paper_view(df, c, title="t")
    assert p.data[-1].y[0] == pytest.approx(100 * chance_level(c.n_train, c.n_test_points, 1.5))
    g = plots.group_view(df, title="t")
    assert "copied" in g.layout.yaxis.title.text
    written = plots.export({"memorized": p, "copied": g}, tmp_path, "figX", title="t", images=False)
    assert [w.name for w in written] == ["figX.html"]
    page = written[0].read_text()
    # standalone: plotly.js inlined (megabytes), no script loaded from the network
    assert len(page) > 1_000_000 and page.count("<script") >= 2 and not re.search(r"<script[^>]*\bsrc=", page)


def _real_like_table(config, null_level):
    """A full table (both criteria, grid of thresholds) with every check satisfied, the null at `null_level`."""
    parts = []
    for crit in ("paper", "train_only"):
        for k in (1.5, 3.0):
            per_group = {"inlier": 0.28, "outlier": 0.01, "duplicate": 0.01}
            values = {g: flat(v) for g, v in per_group.items()}
            values["all"] = flat(sum(per_group.values()))
            nulls = {"inlier": null_level - 0.02, "outlier": 0.01, "duplicate": 0.01, "all": null_level}
            parts.append(
                synthetic_table(
                    values, nulls, epochs=config.eval_epochs, repeats=config.n_repeats, criterion=crit, threshold=k
                )
            )
    t = pd.concat(parts, ignore_index=True)
    sizes = {
        "inlier": config.n_base - config.n_duplicates,
        "outlier": config.n_outliers,
        "duplicate": 2 * config.n_duplicates,
        "all": config.n_train,
    }
    t["n_group_points"] = t.group.map(sizes)
    return t


def test_sanity_checks_pass_and_catch_wrong_results():
    c = ExperimentConfig(n_base=1000, n_outliers=20, n_duplicates=20, epochs=3, n_repeats=3)
    good = _real_like_table(c, plots.expected_null(c))
    assert plots.sanity_problems(good, c) == []
    assert "sanity checks passed" in plots.check_sanity(good, c)

    bad = good.copy()
    bad.loc[0, "copied"] = 1.2
    assert any("outside [0, 1]" in p for p in plots.sanity_problems(bad, c))
    assert any("groups present" in p for p in plots.sanity_problems(good[good.group != "outlier"], c))
    assert any("null level" in p for p in plots.sanity_problems(_real_like_table(c, 0.45), c))
    assert any("evaluated epochs" in p for p in plots.sanity_problems(good[good.epoch != 2], c))
    assert any("repeats" in p for p in plots.sanity_problems(good, c.replace(n_repeats=4)))
    odd = good.copy()
    odd.loc[(odd.group == "inlier"), "memorized"] += 0.01
    assert any("add up" in p for p in plots.sanity_problems(odd, c))
    with pytest.raises(AssertionError, match="outside"):
        plots.check_sanity(bad, c)


def test_sanity_names_a_share_below_its_null_a_quality_failure():
    """Not a wrong result (the checks pass) but not "not memorized yet" either: the report says so."""
    c = ExperimentConfig(n_base=1000, n_outliers=20, n_duplicates=20, epochs=3, n_repeats=3)
    good = _real_like_table(c, plots.expected_null(c))
    worse = good.copy()
    for g in ("inlier", "all"):  # a generator worse than the data: 2 % where fresh draws score the null
        worse.loc[worse.group == g, "memorized"] = 0.02 if g == "inlier" else 0.04
    assert plots.sanity_problems(worse, c) == []
    report = plots.check_sanity(worse, c)
    assert "sanity checks passed" in report and "inlier: 2.00% below its null" in report
    assert "a quality failure" in report and "not 'not memorized yet'" in report
    on = good.assign(memorized=good.memorized_null)  # exactly on its null: nothing to note
    assert "below its null" not in plots.check_sanity(on, c)


def test_expected_null_counts_the_outlier_cluster():
    c = ExperimentConfig(n_base=20000, n_outliers=400, n_duplicates=400)
    f = 400 / 20800
    assert plots.expected_null(c) == pytest.approx((1 - f) * chance_level(20000, 20000, 1.5) + f)
    assert plots.expected_null(c.replace(n_outliers=0)) == pytest.approx(chance_level(20000, 20000, 1.5))


# -- profiles -----------------------------------------------------------------------------------
def test_figure_configs_are_the_papers():
    expect = {1: (20000, 400, 400, 400), 2: (20000, 200, 200, 800), 3: (10000, 100, 100, 800), 4: (10000, 100, 100, 10)}
    for n, (base, dup, out, epochs) in expect.items():
        c = profiles.figure_config(n)
        assert (c.n_base, c.n_duplicates, c.n_outliers, c.epochs) == (base, dup, out, epochs)
        assert (c.dataset, c.ratio, c.n_repeats, c.eval_every) == ("moons", 1.5, 10, 1)
    with pytest.raises(ValueError, match=r"figure 5 is unknown; allowed: 1 \| 2 \| 3 \| 4"):
        profiles.figure_config(5)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_profiles(n):
    paper = profiles.figure_config(n)
    same, none = profiles.apply_profile(paper, "paper")
    assert same == paper and none == {}
    laptop, red = profiles.apply_profile(paper, "laptop")
    # same data, sizes and injections; fewer repeats / epochs / evaluations, each listed
    for f in ("dataset", "n_base", "n_outliers", "n_duplicates", "ratio", "n_generate", "n_test"):
        assert getattr(laptop, f) == getattr(paper, f)
    assert set(red) <= {"n_repeats", "epochs", "eval_every"}
    for f, (a, b) in red.items():
        assert getattr(paper, f) == a and getattr(laptop, f) == b
    assert laptop.n_repeats <= profiles.LAPTOP_REPEATS
    assert len(laptop.eval_epochs) <= profiles.LAPTOP_EVALS + 2
    steps = laptop.epochs * (laptop.n_train // laptop.batch_size)
    assert steps <= profiles.LAPTOP_TRAIN_STEPS
    smoke, sred = profiles.apply_profile(paper, "smoke")
    assert smoke.n_base <= profiles.SMOKE_BASE and smoke.epochs <= profiles.SMOKE_EPOCHS and smoke.n_repeats <= 2
    assert smoke.n_outliers >= 10 and smoke.n_duplicates >= 10
    text = profiles.describe_profile("smoke", sred, smoke, n, paper)
    assert "NOT the paper's protocol" in text and "n_base" in text and f"Figure {n}" in text
    assert "nothing reduced" in profiles.describe_profile("paper", none, paper, n, paper)


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match=r"profile 'fast' is unknown; allowed: paper \| laptop \| smoke"):
        profiles.apply_profile(profiles.figure_config(1), "fast")


def test_describe_names_parameters_set_apart_from_the_paper():
    given = profiles.figure_config(2).replace(seed=3)
    cfg, red = profiles.apply_profile(given, "paper")
    assert "seed 0 -> 3" in profiles.describe_profile("paper", red, cfg, 2, given)


def test_config_from_namespace_and_runs_root(monkeypatch, tmp_path, capsys):
    ns = profiles.figure_config(3).to_dict() | {"profile": "laptop", "n_repeats": 4}
    assert profiles.config_from(ns) == profiles.figure_config(3).replace(n_repeats=4)
    del ns["seed"]
    assert profiles.config_from(ns, profiles.figure_config(3)).seed == 0
    assert "seed" in capsys.readouterr().out
    monkeypatch.setenv("MEMNB_RUNS", str(tmp_path))
    assert profiles.resolve_runs_root(None) == tmp_path
    assert profiles.resolve_runs_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("MEMNB_RUNS", "")
    assert profiles.resolve_runs_root(None) == profiles.project_root() / "outputs" / "runs"


# -- threshold grid and explorer on a real run --------------------------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    c = ExperimentConfig(n_base=600, n_outliers=20, n_duplicates=20, epochs=3, n_repeats=3, device="cpu")
    return run_experiment(c, root=tmp_path_factory.mktemp("runs"), progress=False)


def test_rate_grid_equals_rates_at(small_run):
    grid = RateGrid(small_run)
    assert grid.thresholds[0] == 1.0 and grid.thresholds[-1] >= 5.0
    for crit, k in (("paper", 1.5), ("paper", 2.35), ("train_only", 3.0), ("train_only", 1.05)):
        a = grid.rates(crit, k).sort_values(["repeat", "epoch", "group"], ignore_index=True)
        b = small_run.rates_at(crit, k).sort_values(["repeat", "epoch", "group"], ignore_index=True)
        pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="not on this grid"):
        grid.rates("paper", 1.234)


def test_every_criterion_has_its_text_in_figures_and_summaries(small_run):
    """The relative criterion had no entry in the figures' criterion texts (KeyError): every registered one has."""
    from memnb.core.registry import CRITERIA

    table = small_run.table()
    for crit in CRITERIA:
        k = small_run.config.own_threshold(crit.name)
        view = plots.select(table, crit.name, k)
        assert crit.text(k) in plots.summary_text(view, small_run.config)
        for fig in (plots.paper_view(view, small_run.config), plots.group_view(view)):
            assert crit.text(k).split(":")[0] in fig.layout.title.text


def test_sanity_on_a_real_run(small_run):
    assert plots.sanity_problems(small_run.table(), small_run.config) == []


def test_explorer_redraws_fast_from_stored_arrays(small_run, monkeypatch):
    from memnb.views import widgets

    ex = widgets.Explorer(small_run, progress=False)
    assert isinstance(ex.figure, go.FigureWidget)

    def boom(*a, **k):
        raise AssertionError("searched again")

    monkeypatch.setattr(type(small_run), "epoch_arrays", boom)  # redraws must not read epoch files
    before = [list(t.y) for t in ex.figure.data]
    ex.ratio.value = 2.5
    after = [list(t.y) for t in ex.figure.data]
    assert before != after and ex.last_redraw_s < 1.0
    mean_all = next(t for t in ex.figure.data if t.legendgroup == "mean" and t.fill != "toself")
    want = small_run.table().query("criterion == 'paper' and threshold == 2.5 and group == 'all'")
    np.testing.assert_allclose(mean_all.y, 100 * want.groupby("epoch").memorized.mean().to_numpy(), atol=1e-4)
    ex.criterion.value = "train_only"
    assert ex.ratio.value == small_run.config.train_ratio and "d2 &gt; 3" in ex.figure.layout.title.text
    ex.normalisation.value = "copied"
    assert "copied" in ex.figure.layout.yaxis.title.text
    ex.repeats.value = (0, 2)
    assert [t.visible for t in ex.figure.data[:3]] == [True, False, True]
    ex.epoch_range.value = (1, 3)
    assert min(mean_all.x) == 1
    timings = []
    for k in (1.0, 1.55, 3.3, 5.0):
        ex.ratio.value = k
        timings.append(ex.last_redraw_s)
    assert max(timings) < 1.0, timings
    # the widget shows the controls, the figure and the summary; one criterion button per registered criterion
    import ipywidgets as W

    from memnb.core.registry import CRITERIA

    top, figure, _, summary = ex.widget.children
    assert isinstance(ex.widget, W.VBox) and figure is ex.figure and summary is ex.summary
    assert ex.criterion in top.children and ex.ratio in top.children
    assert [v for _, v in ex.criterion.options] == list(CRITERIA.names()) == ["paper", "train_only", "relative"]
    ex.criterion.value = "relative"  # its own threshold is 1/relative_alpha = 10, off the 1-5 slider grid
    assert ex.ratio.value == 10.0 and "relative criterion" in ex.figure.layout.title.text


def test_run_browser(small_run):
    from memnb.views import widgets

    root = small_run.path.parent
    assert widgets.list_runs(root) == [small_run.path]
    b = widgets.RunBrowser(root)
    assert b.dropdown.value == small_run.path.name and b.explorer is not None
    # the configuration sits beside the controls; the figure gets the full width below them
    top, figure, *_ = b.area.children[0].children
    assert figure is b.explorer.figure and "n_base" in top.children[1].value
    assert "n_base" in widgets.config_html(small_run)
    with pytest.raises(ValueError, match="not under"):
        widgets.RunBrowser(root, run="nope")
    with pytest.raises(ValueError, match="no runs under"):
        widgets.RunBrowser(root / "empty")


def test_readable_summary_says_never_instead_of_na():
    s = pd.DataFrame(
        {"group": ["all", "outlier"], "first_epoch_memorized_above_null": pd.array([2, None], dtype="Int64")}
    )
    out = plots.readable_summary(s)
    assert out["first_epoch_memorized_above_null"].tolist() == [2, "never"]
    s.attrs["n_repeats"] = 1  # what summary() records: with one repeat "never" would not be the truth
    assert plots.readable_summary(s)["first_epoch_memorized_above_null"].tolist() == [2, "not enough repeats to tell"]
    s.attrs.clear()
    assert "<NA>" not in out.to_html() and pd.isna(s.iloc[1, 1])  # the input is left alone
