"""memnb.Monitor's generation-free path: the detectors' scores from the user's eps, with samples or without any."""

import numpy as np
import pandas as pd
import pytest
from test_membership import ABAR, _memorizing

from memnb import Monitor, Results
from memnb.experiment.store import list_runs, stored_epochs, stored_score_epochs


def grid_data():
    rng = np.random.default_rng(4)
    grid = np.stack(np.meshgrid(np.arange(6), np.arange(6)), -1).reshape(-1, 2) * 2.0 - 5.0
    train = grid + 0.01 * rng.standard_normal(grid.shape)
    held = grid[(grid < 5).all(1)] + 1.0  # between the training points
    groups = np.zeros(len(train), int)
    groups[:4] = 1  # four "outliers", held-out points of their group below
    test_groups = np.zeros(len(held), int)
    test_groups[:3] = 1
    return train, groups, held, test_groups


def monitor(tmp_path, **kw):
    train, groups, held, test_groups = grid_data()
    return Monitor(train, groups, held, root=tmp_path, name="scores", detectors=("sima", "loss"),
                   test_groups=test_groups, progress=False, **kw)  # fmt: skip


def test_scores_without_samples_separate_a_memorizing_model(tmp_path):
    mon = monitor(tmp_path)
    eps = _memorizing(grid_data()[0])
    summary = mon.observe(0, eps=eps, alphas_cumprod=ABAR)
    inl = summary[summary.group == "inlier"]
    assert set(summary.detector) == {"sima", "loss"} and (inl.auroc == 1.0).all()
    assert stored_score_epochs(mon.path) == [0] and stored_epochs(mon.path) == []  # nothing sampled or searched
    res = mon.results()
    frame = res.detector_scores()
    assert set(frame.epoch) == {0} and set(frame.group) == {"inlier", "outlier", "duplicate"}  # memnb's labels
    got = frame[(frame.group == "inlier")].set_index("detector").auroc
    assert (got == 1.0).all()
    # discovery leaves it out (no table to show) but names it for what it is, and its advice opens the scores
    skipped = []
    assert list_runs(tmp_path, skipped) == [] and len(skipped) == 1
    assert "detector scores only (1 epoch scored without samples" in skipped[0]
    advice = skipped[0].split("open it with ")[1]
    assert advice == f"memnb.Results({str(mon.path)!r}).detector_scores()"
    opened = eval(advice, {"memnb": __import__("memnb")})  # the advice, followed as written
    pd.testing.assert_frame_equal(opened, frame)
    # the same epoch again is read back, not scored (eps is not called)
    again = mon.observe(0, eps=lambda x, t: (_ for _ in ()).throw(AssertionError("scored again")), alphas_cumprod=ABAR)
    np.testing.assert_allclose(again.auroc.to_numpy(), summary.auroc.to_numpy())


def test_scores_with_samples_go_into_the_epoch_file_and_a_reopened_monitor_keeps_both(tmp_path):
    train, groups, held, test_groups = grid_data()
    eps = _memorizing(train)
    mon = monitor(tmp_path)
    mon.observe(0, eps=eps, alphas_cumprod=ABAR)
    mon.observe(5, train[:10] + 0.0, eps=eps, alphas_cumprod=ABAR)  # ten copies: the exact test too
    assert mon.config.n_generate_points == 10  # fixed by the first samples
    res = Results(mon.path)
    assert res.evaluated_epochs == [5] and "detector_train" in res.epoch_arrays(5)
    assert sorted(set(res.detector_scores().epoch)) == [0, 5]
    paper = res.table().query("criterion == 'paper' and group == 'all' and threshold == 1.5")
    assert paper.memorized.iloc[0] == 1.0
    reopened = monitor(tmp_path)
    assert sorted(set(reopened.results().detector_scores().epoch)) == [0, 5]


def test_bad_detector_arguments_are_named(tmp_path):
    train, groups, held, test_groups = grid_data()
    eps = _memorizing(train)
    with pytest.raises(ValueError, match="detector"):
        Monitor(train, groups, held, root=tmp_path, name="a", detectors=("nope",))
    with pytest.raises(ValueError, match="test_groups"):
        Monitor(train, groups, held, root=tmp_path, name="b", detectors=("sima",), test_groups=test_groups[:-1])
    plain = Monitor(train, groups, held, root=tmp_path, name="c", progress=False)
    with pytest.raises(ValueError, match="detectors"):
        plain.observe(0, eps=eps, alphas_cumprod=ABAR)
    with pytest.raises(ValueError, match="samples"):
        plain.observe(0)
    mon = monitor(tmp_path)
    with pytest.raises(ValueError, match="alphas_cumprod"):
        mon.observe(0, eps=eps, alphas_cumprod=ABAR[::-1])
    with pytest.raises(ValueError, match="alphas_cumprod"):
        mon.observe(0, eps=eps)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
