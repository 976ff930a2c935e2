"""EarlyStopping on scripted signals, the runner's callbacks (stop, resume, crash), replay, the measurement, the notebook."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import assert_same_results, run_notebook_smoke

from memnb import ExperimentConfig, run_experiment
from memnb.analysis import early_stopping as es
from memnb.analysis.early_stopping import EarlyStopping, EpochContext, replay
from memnb.core.vocabulary import GROUP_LABELS
from memnb.experiment.tabulate import table_thresholds
from memnb.views.early_stopping import plot_quality

CONFIG = ExperimentConfig(
    n_base=120, n_outliers=8, n_duplicates=8, epochs=4, n_repeats=2, test_set="matched", device="cpu"
)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    return run_experiment(CONFIG, root=tmp_path_factory.mktemp("full"), progress=False)


class FireAt:
    """A scripted callback (the protocol without EarlyStopping): asks to stop at `epoch`, optionally crashes once."""

    def __init__(self, epoch, crash_at=None):
        self.epoch, self.crash_at = epoch, crash_at
        self.reset()

    def reset(self):
        self.seen = []

    def __call__(self, epoch, arrays, context):
        if epoch == self.crash_at:
            self.crash_at = None
            raise KeyboardInterrupt("simulated crash after the epoch's file was written")
        self.seen.append(epoch)
        return epoch == self.epoch

    def record(self):
        return {"callback": "FireAt", "epoch": self.epoch, "seen": list(self.seen)}


# -- the decision rule on scripted signals ---------------------------------------------------------------
def feed(cb, observed, null=None, epochs=None):
    observed = np.asarray(observed, float)
    observed = observed[:, None] if observed.ndim == 1 else observed
    null = np.zeros_like(observed) if null is None else np.asarray(null, float).reshape(observed.shape)
    epochs = range(0, 10 * len(observed), 10) if epochs is None else epochs
    fired = [e for e, o, n in zip(epochs, observed, null) if cb.update(e, o, n)]
    return fired


def test_stops_exactly_when_the_signal_crosses():
    cb = EarlyStopping(threshold=0.1)
    # equal to the threshold is not above it; the first value above it is at epoch 30
    assert feed(cb, [0.0, 0.05, 0.1, 0.1001, 0.5, 0.0]) == [30]
    assert cb.stop_epoch == 30 and cb.repeat_stop_epochs == [30]
    assert [h["epoch"] for h in cb.history] == [0, 10, 20, 30, 40, 50]  # it goes on recording after firing


def test_patience_needs_consecutive_evaluations():
    cb = EarlyStopping(threshold=0.1, patience=3)
    assert feed(cb, [0.2, 0.2, 0.0, 0.2, 0.2, 0.2, 0.2]) == [50]
    cb.reset()
    assert feed(cb, [0.2, 0.0] * 4) == [] and cb.stop_epoch is None


def test_null_is_the_running_mean_of_the_nulls_seen_so_far():
    cb = EarlyStopping(threshold=0.1)
    # nulls 0.3, 0.1, 0.2 -> running means 0.3, 0.2, 0.2; excess 0.0, 0.05, 0.15 -> fires at epoch 20
    assert feed(cb, [0.3, 0.25, 0.35], null=[0.3, 0.1, 0.2]) == [20]
    np.testing.assert_allclose([h["null"][0] for h in cb.history], [0.3, 0.2, 0.2])
    raw = EarlyStopping(threshold=0.1, null_corrected=False)
    assert feed(raw, [0.3, 0.25, 0.35], null=[0.3, 0.1, 0.2]) == [0]


def test_ensemble_signal_is_the_mean_over_repeats_and_each_repeat_is_recorded():
    cb = EarlyStopping(threshold=0.1)
    observed = [[0.0, 0.0], [0.3, 0.0], [0.3, 0.0], [0.3, 0.3]]  # mean 0, 0.15, ... -> fires at 10
    assert feed(cb, observed) == [10]
    assert cb.repeat_stop_epochs == [10, 30]


def test_call_reads_the_right_cell_of_the_epoch_summary():
    thresholds = table_thresholds(CONFIG)
    R, K = 2, len(thresholds)
    summary = np.zeros((R, 3, 2, 2, len(GROUP_LABELS), K))
    j = int(np.flatnonzero(np.isclose(thresholds, CONFIG.ratio))[0])
    g = GROUP_LABELS.index("outlier")
    summary[:, 0, 0, 1, g, j] = [0.4, 0.6]  # paper criterion, generated, copied, outlier, k = ratio
    summary[:, 0, 1, 1, g, j] = [0.1, 0.1]  # its null
    context = EpochContext(CONFIG, np.zeros((R, 3), np.int8), np.zeros((R, 3), np.int64), thresholds)
    cb = EarlyStopping(threshold=0.39)
    assert cb(0, {"summary": summary}, context) is True and cb.history[0]["signal"] == pytest.approx(0.4)
    record_only = EarlyStopping(threshold=0.39, stop=False)
    assert record_only(0, {"summary": summary}, context) is False and record_only.stop_epoch == 0


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"group": "outliers"}, "group"),
        ({"value": "share"}, "value"),
        ({"criterion": "carlini"}, "criterion"),
        ({"k": 1.0}, "k"),
        ({"threshold": 1.5}, "threshold"),
        ({"patience": 0}, "patience"),
        ({"stop": "yes"}, "stop"),
    ],
)
def test_bad_settings_fail_early_naming_the_field(kw, field):
    with pytest.raises(ValueError, match=f"field '{field}'"):
        EarlyStopping(**kw)


def test_a_callback_must_follow_the_protocol(tmp_path):
    with pytest.raises(TypeError, match="lacks"):
        run_experiment(CONFIG, root=tmp_path, progress=False, callbacks=[lambda e, a, c: False])


# -- the runner with callbacks ----------------------------------------------------------------------------
def test_a_stopped_run_is_marked_and_resumes_to_the_full_run(full_run, tmp_path):
    res = run_experiment(CONFIG, root=tmp_path, progress=False, callbacks=[FireAt(2)])
    m = res.manifest
    assert m["complete"] is False and m["stopped_at_epoch"] == 2 and res.stopped_at_epoch == 2 and not res.complete
    assert m["trained_epochs"] == 2 and m["callbacks"] == [{"callback": "FireAt", "epoch": 2, "seen": [0, 1, 2]}]
    assert json.loads((res.path / "callbacks.json").read_text())[0]["seen"] == [0, 1, 2]
    assert res.evaluated_epochs == [0, 1, 2]
    # a prefix of the full run, number for number
    full = full_run.table()
    pd.testing.assert_frame_equal(res.table(), full[full.epoch <= 2].reset_index(drop=True))
    # the same callbacks again: replayed, they stop at the same epoch; nothing trains
    again = run_experiment(CONFIG, root=tmp_path, progress=False, callbacks=[FireAt(2)])
    assert again.stopped_at_epoch == 2 and again.evaluated_epochs == [0, 1, 2] and again.manifest["train_s"] == 0.0
    # without callbacks it trains on, to exactly the numbers of a run never stopped
    done = run_experiment(CONFIG, root=tmp_path, progress=False)
    assert done.complete and done.stopped_at_epoch is None and done.manifest["previous_stop"]["stopped_at_epoch"] == 2
    assert not (done.path / "callbacks.json").exists()
    assert_same_results(done, full_run)


def test_early_stopping_stops_a_real_run_where_its_signal_crosses(full_run, tmp_path):
    # the signal the callback sees on the full run (record mode), then a threshold just below its epoch-2 value
    probe = EarlyStopping(group="inlier", value="copied", null_corrected=False, threshold=-0.5, stop=False)
    signal = {h["epoch"]: h["signal"] for h in replay(full_run, [probe])[0]["history"]}
    assert signal[2] > max(signal[0], signal[1]), "the inliers' copied share grows over the first epochs"
    threshold = (max(signal[0], signal[1]) + signal[2]) / 2
    cb = EarlyStopping(group="inlier", value="copied", null_corrected=False, threshold=threshold)
    res = run_experiment(CONFIG, root=tmp_path, progress=False, callbacks=[cb])
    assert res.stopped_at_epoch == 2 and cb.stop_epoch == 2
    assert res.manifest["callbacks"][0]["threshold"] == threshold
    # online and replayed decisions agree
    assert (
        replay(full_run, [EarlyStopping(group="inlier", value="copied", null_corrected=False, threshold=threshold)])[0][
            "stop_epoch"
        ]
        == 2
    )


def test_resume_after_a_crash_gives_the_callbacks_the_state_of_an_uninterrupted_run(full_run, tmp_path):
    record = EarlyStopping(group="all", value="memorized", threshold=0.0, stop=False)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(CONFIG, root=tmp_path, progress=False, callbacks=[FireAt(None, crash_at=2), record])
    assert not (tmp_path / CONFIG.run_name() / "manifest.json").exists()
    fresh = EarlyStopping(group="all", value="memorized", threshold=0.0, stop=False)
    res = run_experiment(CONFIG, root=tmp_path, progress=False, callbacks=[fresh])
    assert res.complete and res.stopped_at_epoch is None
    assert_same_results(res, full_run)
    uninterrupted = replay(full_run, [EarlyStopping(group="all", value="memorized", threshold=0.0, stop=False)])[0]
    assert json.loads((res.path / "callbacks.json").read_text())[0] == json.loads(json.dumps(uninterrupted))


def test_a_complete_run_is_returned_unchanged_with_a_warning(full_run):
    before = full_run.manifest
    with pytest.warns(UserWarning, match="would have stopped it at epoch 1"):
        res = run_experiment(CONFIG, root=full_run.path.parent, progress=False, callbacks=[FireAt(1)])
    assert res.complete and res.manifest == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_experiment(CONFIG, root=full_run.path.parent, progress=False, callbacks=[FireAt(99)])


# -- what stopping buys ------------------------------------------------------------------------------------
def test_evaluate_stopping_on_a_tiny_run(full_run):
    cbs = [
        EarlyStopping(group="inlier", value="copied", null_corrected=False, threshold=-0.5),
        EarlyStopping(group="outlier", threshold=0.99),
    ]
    quality = es.quality_runs([full_run])
    ev = es.evaluate_runs([full_run], cbs, quality=quality)
    assert len(ev) == 2 * CONFIG.n_repeats
    never, first = ev[ev.callback == es.label(cbs[1])], ev[ev.callback == es.label(cbs[0])]
    assert never.stop_epoch.isna().all() and (never.epochs_saved == 0).all()
    assert (never.energy_stop == never.energy_final).all() and (never.energy_change == 0).all()
    assert (never.avoided_inlier == 0).all()
    assert (first.stop_epoch == 0).all() and (first.epochs_saved == CONFIG.epochs).all()
    q0 = quality[(quality.epoch == 0)].set_index("repeat").energy
    np.testing.assert_allclose(first.energy_stop.to_numpy(), q0.to_numpy())
    assert {"excess_inlier_stop", "excess_outlier_final", "excess_duplicate_stop"} <= set(ev.columns)
    assert (quality.energy > 0).all() and (quality.energy_reference > 0).all()
    summary = es.stopping_summary(ev, n_bootstrap=200)
    assert list(summary.stopped) == [CONFIG.n_repeats, 0]
    text = es.format_summary(summary)
    assert text["stop epoch"].iloc[1] == "never"
    assert len(plot_quality(quality, ev).data) == 3
    with pytest.raises(ValueError, match="not complete"):
        es.evaluate_stopping(_partial(full_run), cbs)


def _partial(full_run):
    class Partial:
        complete = False
        path = full_run.path

    return Partial()


@pytest.mark.slow
def test_early_stopping_notebook_runs_with_papermill(tmp_path):
    text = run_notebook_smoke("early_stopping.ipynb", tmp_path, n_bootstrap=200)
    assert "NOT the full benchmark; reduced" in text and "'identical': True" in text and "epochs saved" in text


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_callback_fires_where_the_one_onset_rule_says(patience):
    """EarlyStopping (streaming) and stats.onset_epoch (on the whole curve) are one definition of the onset."""
    from memnb.analysis.stats import onset_epoch

    rng = np.random.default_rng(patience)
    epochs = np.arange(0, 40, 2)
    for _ in range(50):
        observed = rng.uniform(0, 0.3, size=(len(epochs), 3))
        cb = es.EarlyStopping(threshold=0.15, patience=patience)
        for e, obs in zip(epochs, observed):
            cb.update(int(e), obs, np.zeros(3))
        signal = observed.mean(axis=1)  # the callback's ensemble signal: mean excess over repeats (null 0)
        want = onset_epoch(epochs, signal, 0.15, patience=patience)
        assert (cb.stop_epoch is None and np.isnan(want)) or cb.stop_epoch == want
        per_repeat = onset_epoch(epochs, observed.T, 0.15, patience=patience)
        assert [np.nan if s is None else s for s in cb.repeat_stop_epochs] == pytest.approx(per_repeat, nan_ok=True)
