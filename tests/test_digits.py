"""Beyond the toy: d-dimensional data (gmm_d), real 64-D images (digits), the pool split with its held-out null,
watermarked outliers, image views, and the verdict on such runs."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from memnb import ExperimentConfig, run_experiment
from memnb.core.config import NEIGHBOR_AUTO_MAX_DIM
from memnb.core.registry import DATASETS
from memnb.core.vocabulary import DUPLICATE, INLIER, OUTLIER
from memnb.data.gmm_d import centres
from memnb.data.injection import make_test_set, make_training_set, pool_split, watermark_mask
from memnb.experiment.repeats import RepeatData
from memnb.views import figures, images
from memnb.workflows import digits

SMALL_DIGITS = dict(
    dataset="digits",
    n_base=80,
    n_outliers=6,
    n_duplicates=6,
    n_test=70,
    injection="watermark",
    test_set="matched",
    epochs=2,
    n_repeats=2,
    denoiser="residual_mlp",
    hidden_size=32,
    embedding_size=16,
    hidden_layers=1,
    batch_size=16,
    num_timesteps=20,
    beta_end=0.1,
    device="cpu",
)


def test_digits_is_sklearns_images_scaled_to_plus_minus_one():
    pool = DATASETS.get("digits").pool()
    raw = load_digits().data
    assert pool.shape == (1797, 64) and DATASETS.get("digits").image_shape == (8, 8)
    np.testing.assert_array_equal(pool, raw / 8.0 - 1.0)
    assert pool.min() == -1.0 and pool.max() == 1.0
    assert not DATASETS.get("digits").fresh_draws and not DATASETS.get("digits").smooth


def test_the_pool_split_is_disjoint_sized_and_seeded():
    c = ExperimentConfig(**SMALL_DIGITS)
    parts = pool_split(c, 0)
    sizes = {k: len(v) for k, v in parts.items()}
    assert sizes == c.pool_parts == {"train": 80, "test": 70, "null": c.n_null_points - c.n_null_outliers}
    every = np.concatenate(list(parts.values()))
    assert len(np.unique(every)) == len(every)  # disjoint
    again, other = pool_split(c, 0), pool_split(c, 1)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)  # same config, same split
    assert not np.array_equal(parts["train"], other["train"])  # each repeat its own split


def test_the_pool_size_is_validated_naming_the_fields():
    with pytest.raises(
        ValueError,
        match=r"'n_base' = 1500 is invalid; allowed: n_base \+ test base \+ null base = "
        r"1500 \+ 300 \+ \d+ = \d+ at most the 1797 points of dataset 'digits'",
    ):
        ExperimentConfig(dataset="digits", n_base=1500, n_outliers=0, n_duplicates=0, n_test=300)
    with pytest.raises(ValueError, match="'injection' = 'watermark' is invalid; allowed: cluster .*digits"):
        ExperimentConfig(dataset="moons", injection="watermark")
    with pytest.raises(ValueError, match=r"'dim' = 8 is invalid; allowed: None or 64"):
        ExperimentConfig(dataset="digits", dim=8, n_base=100, n_outliers=0, n_duplicates=0, n_test=100)


@pytest.mark.parametrize("pattern", ["corner", "stroke"])
def test_the_watermark_is_exactly_where_the_group_says(pattern):
    c = ExperimentConfig(**{**SMALL_DIGITS, "watermark": pattern})
    mask = watermark_mask(pattern, (8, 8))
    assert mask.sum() == (4 if pattern == "corner" else 8)
    ts = make_training_set(c, 0)
    pts, groups = ts.points, ts.groups
    stamped = (pts[:, mask] == 1.0).all(axis=1)
    assert (stamped == (groups == OUTLIER)).all()  # outliers carry it, and only they
    base = pts[: c.n_base]
    for o in pts[groups == OUTLIER]:  # each outlier is a copy of a base image, the pattern's pixels aside
        assert (np.abs(base[:, ~mask] - o[~mask]).max(axis=1) == 0).any()
    # the matched test set and the null part hold watermarked held-out images in training proportions
    test = make_test_set(c, 0, ts)
    assert (test[:, mask] == 1.0).all(axis=1).sum() == c.n_test_outliers > 0
    assert (ts.null[:, mask] == 1.0).all(axis=1).sum() == c.n_null_outliers > 0
    # and none of them is a training image
    train_rows = {r.tobytes() for r in pts}
    assert not any(r.tobytes() in train_rows for r in test[: c.n_test_base])
    assert not any(r.tobytes() in train_rows for r in ts.null)


def test_the_null_of_real_data_is_the_held_out_part_at_every_epoch():
    c = ExperimentConfig(**SMALL_DIGITS)
    data = RepeatData(c)
    a, b = data.null_draws(0), data.null_draws(5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], data.train_sets[0].null)
    assert a.shape == (2, c.n_null_points, 64)


@pytest.mark.parametrize("d", [2, 8, 64, 1024])
def test_gmm_d_in_d_dimensions(d):
    c = ExperimentConfig(dataset="gmm_d", dim=d, n_base=400, n_outliers=20, n_duplicates=10, n_repeats=1, epochs=1)
    ts = make_training_set(c, 0)
    assert ts.points.shape == (430, d) and c.neighbors == ("kdtree" if d <= NEIGHBOR_AUTO_MAX_DIM else "faiss")
    assert c.denoiser == ("tiny_diffusion" if d == 2 else "residual_mlp")
    assert centres(d).shape == (8, d) and np.allclose(np.linalg.norm(centres(d), axis=1), 1.5)
    np.testing.assert_array_equal(make_training_set(c, 0).points, ts.points)  # determinism
    # the outlier cluster: outlier_distance per-axis stds from the base mean, in a random unit direction of R^d
    base = ts.points[: c.n_base]
    u = (ts.cluster.centre - base.mean(0)) / (c.outlier_distance * base.std(0))
    assert np.linalg.norm(u) == pytest.approx(1.0)
    out = ts.points[ts.groups == OUTLIER]
    assert np.linalg.norm(out.mean(0) - ts.cluster.centre) < 5 * ts.cluster.std * np.sqrt(d / len(out))
    with pytest.raises(ValueError, match=r"'dim' = 1 is invalid; allowed: an integer from 2 to 1024"):
        ExperimentConfig(dataset="gmm_d", dim=1)


def test_the_analytic_null_is_printed_for_smooth_densities_only(tmp_path):
    res = run_experiment(ExperimentConfig(**SMALL_DIGITS), root=tmp_path, progress=False)
    view = figures.select(res.table(), "paper", res.config.ratio)
    assert "Analytic chance level" not in figures.summary_text(view, res.config)
    assert not any("chance" in (t.name or "") and t.x for t in figures.paper_view(view, res.config).data)
    assert "held-out real points" in figures.check_sanity(res.table(), res.config)
    g = ExperimentConfig(
        dataset="gmm_d",
        dim=8,
        n_base=200,
        n_outliers=10,
        n_duplicates=10,
        epochs=1,
        n_repeats=2,
        hidden_size=16,
        embedding_size=8,
        hidden_layers=1,
        device="cpu",
    )
    gres = run_experiment(g, root=tmp_path, progress=False)
    gview = figures.select(gres.table(), "paper", g.ratio)
    assert "n/(n + k^d m)" in figures.summary_text(gview, g)


def test_a_digits_run_end_to_end_with_image_views_and_the_verdict(tmp_path):
    from memnb.analysis.verdict import verdict

    res = run_experiment(ExperimentConfig(**SMALL_DIGITS), root=tmp_path, progress=False)
    arrays = res.epoch_arrays(2)
    assert arrays["samples"].shape == (2, 92, 64) and arrays["null_d1"].shape == (2, res.config.n_null_points)
    groups = res.data["groups"]
    assert {INLIER, OUTLIER, DUPLICATE} == set(np.unique(groups))
    # image views: one heatmap mosaic each, the right size
    grid = images.memorized_grid(res, 2, "paper", threshold=1.0)  # k = 1: many samples qualify
    assert len(grid.data) == 1 and grid.data[0].z.shape == (3 * 9 - 1, 4 * 3 * 9 - 1)
    ex = images.memorized_examples(res, 2, "paper", threshold=1.0)
    for rows in ex.values():
        for row in rows:  # the stored distances are those of the images shown
            assert np.linalg.norm(row["sample"] - row["train"]) == pytest.approx(row["d1"], rel=1e-3, abs=1e-3)
            assert np.linalg.norm(row["sample"] - row["test"]) == pytest.approx(row["d_test"], rel=1e-3, abs=1e-3)
    over = images.samples_over_epochs(res, n=5)
    assert over.data[0].z.shape == (3 * 9 - 1, 5 * 9 - 1)
    with pytest.raises(ValueError, match="dataset 'moons' is not images"):
        images.image_shape(type("R", (), {"config": ExperimentConfig()})())
    table, timing = verdict([res.path], n_bootstrap=200)
    assert len(timing) and set(table.verdict) <= {"holds", "reversed", "inconclusive", "below null"}


def test_the_digits_profiles():
    smoke, reduced = digits.apply_profile(digits.DIGITS, "smoke")
    assert smoke.n_repeats == 2 and smoke.epochs == 4 and "n_base" in reduced
    laptop, red = digits.apply_profile(digits.DIGITS, "laptop")
    assert laptop.n_repeats == 3 and laptop.epochs == digits.DIGITS.epochs and laptop.n_base == digits.DIGITS.n_base
    assert red == {"n_repeats": (10, 3)}
    # a field set apart from DIGITS is kept (the diffusers notebook's one repeat), the others take the profile's
    one, red = digits.apply_profile(digits.DIGITS.replace(n_repeats=1, seed=3), "smoke")
    assert one.n_repeats == 1 and one.seed == 3 and one.n_base == 60 and "n_repeats" not in red
    full, nothing = digits.apply_profile(digits.DIGITS, "paper")
    assert full == digits.DIGITS and nothing == {} and full.n_repeats == 10


def test_the_explorer_shows_the_image_browser_for_an_image_run(tmp_path):
    from memnb.views.widgets import RunBrowser

    res = run_experiment(ExperimentConfig(**SMALL_DIGITS), root=tmp_path, progress=False)
    browser = RunBrowser(tmp_path)
    explorer_box, image_box = browser.area.children
    assert image_box.slider.options == tuple(res.evaluated_epochs) and image_box.slider.value == 2
    before = image_box.figure.layout.title.text
    image_box.slider.value = 0  # the grid follows the slider
    assert "epoch 0" in image_box.figure.layout.title.text and before != image_box.figure.layout.title.text
    assert [v for _, v in image_box.criterion.options] == ["paper", "train_only", "relative"]
