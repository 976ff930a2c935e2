"""Generation-free detectors inside run_experiment: stored per training and held-out point at every evaluated epoch,
read back through Results, equal to scoring the stored model again; and the validation against the exact test."""

import numpy as np
import pandas as pd
import pytest
import torch

import memnb
from memnb.core.vocabulary import DUPLICATE, INLIER, OUTLIER
from memnb.experiment.repeats import RepeatData
from memnb.experiment.store import read_checkpoint
from memnb.experiment.store.layout import CHECKPOINT
from memnb.metric.membership_scores import score_points
from memnb.models.ensemble import Ensemble

SMALL = dict(
    dataset="moons", n_base=60, n_outliers=6, n_duplicates=6, epochs=2, eval_every=1, n_repeats=2,
    hidden_size=16, hidden_layers=1, embedding_size=8, batch_size=16, test_set="matched", device="cpu",
)  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = memnb.ExperimentConfig(**SMALL, detectors=("sima", "pia", "loss"))
    return memnb.run_experiment(config, root=tmp_path_factory.mktemp("runs"), progress=False)


def test_every_evaluated_epoch_stores_the_scores_of_every_point(run):
    c = run.config
    for e in run.evaluated_epochs:
        a = run.epoch_arrays(e)
        assert list(a["detector_names"]) == ["sima", "pia", "loss"]
        assert a["detector_train"].shape == (2, 3, c.n_train) and a["detector_held"].shape == (2, 3, c.n_test_points)
        assert np.isfinite(a["detector_train"]).all() and np.isfinite(a["detector_held"]).all()
    codes = run.epoch_arrays(0)["detector_held_groups"][0]
    assert list(np.bincount(codes)) == [c.n_test_base, c.n_test_outliers, c.n_test_duplicates]
    assert codes[0] == INLIER and codes[c.n_test_base] == OUTLIER and codes[-1] == DUPLICATE
    assert run.manifest.get("detect_s", 0) > 0


def test_results_reads_the_decision_per_group_and_the_trajectories_per_point(run):
    g = run.detector_scores(q=0.1)
    assert len(g) == len(run.evaluated_epochs) * 2 * 3 * 3
    # the null rate is floor(q m) / m of each group's held-out points, by construction
    m = g.n_held.to_numpy()
    np.testing.assert_allclose(g.null, np.floor(0.1 * m) / m)
    p = run.detector_scores(q=0.1, per="point")
    assert set(p.set) == {"train", "held"} and len(p) == len(run.evaluated_epochs) * 2 * 3 * (
        run.config.n_train + run.config.n_test_points
    )
    share = p[p.set == "train"].groupby(["repeat", "epoch", "detector", "group"]).flagged.mean()
    mine = g.set_index(["repeat", "epoch", "detector", "group"]).share
    pd.testing.assert_series_equal(share.sort_index(), mine.loc[share.index].sort_index(), check_names=False)


def test_the_stored_scores_are_the_final_model_scoring_the_points_again(run):
    c = run.config
    data = RepeatData(c)
    ens = Ensemble(c, data.train_points)
    ens.load_state_dict(read_checkpoint(run.path / CHECKPOINT, map_location="cpu")["ensemble"])
    with torch.no_grad():
        again = score_points(ens.model, ens.schedule.alphas_cumprod.numpy(), data.train_points, data.test_points,
                             data.groups, data.test_groups, c.detectors, c.seed, batched=True)  # fmt: skip
    stored = run.epoch_arrays(c.epochs)
    np.testing.assert_allclose(stored["detector_train"], again["detector_train"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stored["detector_held"], again["detector_held"], rtol=1e-4, atol=1e-6)


def test_a_config_without_detectors_stores_none_and_keeps_its_name(tmp_path):
    config = memnb.ExperimentConfig(**{**SMALL, "epochs": 1})
    assert (
        config.fingerprint()
        == memnb.ExperimentConfig.from_dict(
            {k: v for k, v in config.to_dict().items() if k != "detectors"}
        ).fingerprint()
    )
    res = memnb.run_experiment(config, root=tmp_path, progress=False)
    assert "detector_train" not in res.epoch_arrays(1) and res.detector_scores().empty
    with pytest.raises(ValueError, match="per = 'x' is invalid; allowed: group | point"):
        res.detector_scores(per="x")


# -- validation against the exact test --------------------------------------------------------------------------
def test_the_validation_table_has_every_detector_and_group(run):
    from memnb.analysis.detection import validation_table

    t = validation_table(run, q=0.1, z=0.0)
    assert set(t.detector) == {"sima", "pia", "loss"}
    assert set(t.group) == {"inlier", "outlier", "duplicate", "all"}
    assert set(t.verdict_detector) <= {"holds", "reversed", "inconclusive"}
    rows = t[t.group != "all"]
    assert rows.exact_onset.notna().all() and (rows.exact_low <= rows.exact_high).all()
    assert ((t.spearman.abs() <= 1) | t.spearman.isna()).all()


def test_first_flagged_points_match_a_loop_over_the_point_frame(run):
    from memnb.analysis.detection import point_agreement, score_matrix

    p = run.detector_scores(q=0.1, per="point")
    p = p[(p.set == "train") & (p.detector == "pia") & p.flagged]
    first = p.groupby(["repeat", "point"]).epoch.min()
    epochs, scores, flags = score_matrix(run, "pia", q=0.1)
    assert flags.any(axis=0).sum() == len(first)
    for (r, i), e in first.items():
        assert epochs[np.argmax(flags[:, r, i])] == e
    agree = point_agreement(run, "pia", q=0.1).set_index("group")
    assert agree.loc["all", "flagged"] == len(first) and agree.loc["all", "n_points"] == 2 * run.config.n_train


def test_the_views_draw_every_detector_and_group_with_its_null(run):
    from memnb.analysis.detection import exact_signals
    from memnb.views.detection import plot_detector_curves, plot_trajectories

    fig = plot_detector_curves(run.detector_scores(q=0.1), exact_signals(run))
    assert len(fig.data) == (3 + 1) * 3 * 2  # detectors + exact test, x groups, x (curve, null)
    assert [a.text for a in fig.layout.annotations] == ["sima", "pia", "loss", "exact test (share copied)"]
    traj = plot_trajectories(run.detector_scores(per="point"), "sima", n_per_group=2)
    assert len(traj.data) == 3 * (2 + 1)


def test_the_quick_benchmark_writes_its_report(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "benchmarks/detection_bench.py", "--quick", "--out", str(tmp_path)],
        cwd=root, check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = json.loads((tmp_path / "detection-latest-quick.json").read_text())
    arms = report["arms"]
    assert list(arms) == ["exact", "loss", "pia", "secmi", "sima", "lid"]
    assert arms["exact"]["speedup_vs_exact"] == 1.0 and arms["exact"]["calls_per_point"] == 50
    assert [arms[k]["calls_per_point"] for k in ("loss", "pia", "secmi", "sima", "lid")] == [5, 6, 11, 1, 3]
    assert all(a["median_s"] > 0 for a in arms.values())


def test_the_detector_signal_counts_the_threshold_noise(run):
    """The share flagged varies with the n training points and with the threshold, a quantile of m held-out points:
    its null standard error is sqrt(q (1 - q) (1/n + 1/m)) (here checked against the group sizes of the run)."""
    from memnb.analysis.detection import detector_signals

    s = detector_signals(run, "pia", q=0.1).merge(
        run.detector_scores(q=0.1).query("detector == 'pia'")[["repeat", "epoch", "group", "n_held"]]
    )
    np.testing.assert_allclose(s.se, np.sqrt(0.1 * 0.9 * (1 / s.n + 1 / s.n_held)))
    assert (s.n == s.group.map({"inlier": 60 - 6, "outlier": 6, "duplicate": 12})).all()


def test_the_workflow_profiles_are_the_digits_workflows():
    from memnb.workflows import detection as wf

    paper, none = wf.configuration("paper")
    laptop, reduced = wf.configuration("laptop")
    assert none == {} and paper.detectors == ("loss", "pia", "secmi", "sima", "lid") and paper.test_set == "matched"
    assert reduced == {"n_repeats": (10, 3)} and laptop.epochs == 600 and laptop.eval_every == 60
    assert wf.configuration("smoke")[0].epochs == 4


@pytest.mark.slow
def test_the_detection_notebook_runs_at_the_smoke_profile(tmp_path):
    from pathlib import Path

    import papermill as pm

    nb = Path(__file__).resolve().parents[1] / "notebooks" / "detection.ipynb"
    pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), parameters={"profile": "smoke", "runs_root": str(tmp_path)},
                        cwd=str(nb.parent), progress_bar=False)  # fmt: skip
    assert any((tmp_path).glob("digits-n60-*"))
