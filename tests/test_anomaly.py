"""Memorization-time anomaly scores, the ranking measures against scikit-learn, the benchmark on a tiny run, and its notebook."""

import numpy as np
import pandas as pd
import pytest
from helpers import run_notebook_smoke
from sklearn.metrics import average_precision_score, roc_auc_score

from memnb import ExperimentConfig, run_experiment
from memnb.analysis import anomaly
from memnb.analysis.anomaly import auroc, average_precision, knn_score, memorization_score
from memnb.analysis.copies import first_copies
from memnb.views.anomaly import plot_benchmark


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    config = ExperimentConfig(
        n_base=120, n_outliers=8, n_duplicates=0, epochs=4, n_repeats=2, test_set="matched", device="cpu"
    )
    return run_experiment(config, root=tmp_path_factory.mktemp("runs"), progress=False)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_and_average_precision_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(400) < 0.08
    labels[:2] = [True, False]
    for scores in (rng.normal(size=400), rng.integers(0, 6, 400).astype(float), labels + rng.normal(0, 0.8, 400)):
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_ranking_measures_at_their_extremes():
    labels = np.array([0, 0, 0, 1, 1], bool)
    assert auroc(labels, [0, 1, 2, 3, 4]) == 1.0 and average_precision(labels, [0, 1, 2, 3, 4]) == 1.0
    assert auroc(labels, [4, 3, 2, 1, 0]) == 0.0
    assert auroc(labels, np.ones(5)) == 0.5 and average_precision(labels, np.ones(5)) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="one class"):
        auroc(np.zeros(5, bool), np.arange(5))
    with pytest.raises(ValueError, match="non-finite"):
        average_precision(labels, [0, 1, np.nan, 3, 4])


def test_memorization_scores_on_a_scripted_history():
    epochs = np.array([0, 10, 20, 30])
    # point 0 copied from epoch 10 on, point 1 only at 30, point 2 never, point 3 at every epoch
    copied = np.array([[0, 0, 0, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 0, 1]], bool)
    np.testing.assert_array_equal(memorization_score(epochs, copied, "first_copy"), [10, 30, 40, 0])
    np.testing.assert_array_equal(memorization_score(epochs, copied, "copy_rarity"), [0.25, 0.75, 1.0, 0.0])
    # extra leading axes (repeats) pass through
    assert memorization_score(epochs, np.stack([copied, copied], 1)).shape == (2, 4)
    with pytest.raises(ValueError, match="kind"):
        memorization_score(epochs, copied, "latest")
    with pytest.raises(ValueError, match="copied must be"):
        memorization_score(epochs[:3], copied)


def test_knn_score_against_brute_force_and_baselines_flag_a_far_point():
    rng = np.random.default_rng(0)
    pts = np.vstack([rng.normal(0, 1, (150, 2)), [[9.0, 9.0]]])
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    np.testing.assert_allclose(knn_score(pts, 5), np.sort(d, axis=1)[:, 5])
    for score in (knn_score(pts, 5), anomaly.lof_score(pts), anomaly.isolation_forest_score(pts, seed=0)):
        assert score.shape == (151,) and np.argmax(score) == 150
    np.testing.assert_array_equal(anomaly.isolation_forest_score(pts, 3), anomaly.isolation_forest_score(pts, 3))
    with pytest.raises(ValueError, match="k = 0"):
        knn_score(pts, 0)


def test_score_run_and_summary_on_a_tiny_run(tiny_run):
    scores = anomaly.score_run(tiny_run, seed=0)
    c = tiny_run.config
    assert len(scores) == c.n_repeats * len(anomaly.METHODS)
    assert scores.auroc.between(0, 1).all() and scores.ap.between(0, 1).all() and (scores.seconds > 0).all()
    assert scores.chance_ap.eq(c.n_outliers / c.n_train).all()
    # the first-copy score is stats.first_copies' epoch, never-copied points placed after the last evaluation
    fc = first_copies(tiny_run, "paper", c.ratio)
    epochs, copied = anomaly.copy_matrix(tiny_run, "paper", c.ratio)
    score = memorization_score(epochs, copied[0], "first_copy").reshape(-1)
    expected = fc.first_copy.fillna(epochs[-1] + (epochs[-1] - epochs[-2])).to_numpy()
    np.testing.assert_array_equal(score, expected)
    summary = anomaly.benchmark_summary(scores, n_bootstrap=300, seed=1)
    again = anomaly.benchmark_summary(scores, n_bootstrap=300, seed=1)
    pd.testing.assert_frame_equal(summary, again)  # its own seeded generators: same call, same intervals
    assert (summary.auroc_low <= summary.auroc + 1e-12).all() and (summary.auroc <= summary.auroc_high + 1e-12).all()
    assert list(summary.method) == list(anomaly.METHODS)
    text = anomaly.format_summary(summary)
    assert text["AUROC [95% CI]"].str.match(r"^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$").all()
    costs = anomaly.cost_table([tiny_run], scores)
    assert costs.diffusion_wall_s_per_set.iloc[0] >= costs.diffusion_compute_s_per_set.iloc[0] > 0
    assert costs.knn_s.iloc[0] > 0
    fig = plot_benchmark(summary)
    assert len(fig.data) == 2 * len(anomaly.METHODS) + 1


def test_a_run_without_outliers_is_refused(tmp_path):
    res = run_experiment(
        ExperimentConfig(n_base=60, n_outliers=0, n_duplicates=0, epochs=0, n_repeats=1, device="cpu"),
        root=tmp_path,
        progress=False,
    )
    with pytest.raises(ValueError, match="n_outliers = 0"):
        anomaly.score_run(res)


@pytest.mark.slow
def test_anomaly_notebook_runs_with_papermill(tmp_path):
    text = run_notebook_smoke("anomaly_detection.ipynb", tmp_path, n_bootstrap=200)
    assert "NOT the full benchmark; reduced" in text and "IsolationForest" in text and "AUROC [95% CI]" in text
