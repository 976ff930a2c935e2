"""Packing (memnb.experiment.packed): configurations run as one larger ensemble give run_experiment's results."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from memnb.core.config import ExperimentConfig
from memnb.experiment.packed import pack_key, run_packed
from memnb.experiment.repeats import RepeatData
from memnb.experiment.runner import run_experiment
from memnb.models.ensemble import Ensemble, member_state, stack_states

TINY = dict(n_base=90, epochs=3, eval_every=1, n_repeats=2, device="cpu", neighbors="kdtree", batch_size=16)


def _configs():
    # same shapes (100 training points per repeat), different seeds, injections and thresholds
    return [
        ExperimentConfig(**TINY, seed=0, n_outliers=5, n_duplicates=5, ratio=1.5),
        ExperimentConfig(**TINY, seed=7, n_outliers=8, n_duplicates=2, ratio=2.0),
    ]


def _assert_same_run(a, b):
    for name in ("table.parquet", "zu.parquet", "loss.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a.path / name), pd.read_parquet(b.path / name), check_exact=True)
    assert a.evaluated_epochs == b.evaluated_epochs == [0, 1, 2, 3]
    for e in a.evaluated_epochs:
        x, y = a.epoch_arrays(e), b.epoch_arrays(e)
        assert sorted(x) == sorted(y)
        for k in x:
            assert np.array_equal(x[k], y[k], equal_nan=True), (e, k)
    for k, v in a.data.items():
        assert np.array_equal(v, b.data[k]), k
    assert json.loads((a.path / "config.json").read_text()) == json.loads((b.path / "config.json").read_text())


def test_packed_runs_equal_each_config_run_alone(tmp_path):
    configs = _configs()
    alone = [run_experiment(c, tmp_path / "alone", progress=False) for c in configs]
    packed = run_packed(configs, tmp_path / "packed")
    for a, b in zip(alone, packed):
        assert b.complete and b.path.name == a.path.name
        _assert_same_run(a, b)
        assert b.manifest["packed"]["members"] == 4 and len(b.manifest["packed"]["runs"]) == 2
    # the two configurations did draw different numbers (the comparison is not between copies of one run)
    assert not np.array_equal(packed[0].epoch_arrays(3)["samples"], packed[1].epoch_arrays(3)["samples"])
    # a complete packed run is loaded, not trained again
    before = (packed[0].path / "manifest.json").read_text()
    again = run_packed(configs, tmp_path / "packed")
    assert (again[0].path / "manifest.json").read_text() == before


def test_packed_run_resumes_from_checkpoints_written_alone(tmp_path):
    """Checkpoints hold one configuration's members only: runs begun alone finish packed, to the same numbers."""
    configs = [c.replace(epochs=4) for c in _configs()]
    alone = [run_experiment(c, tmp_path / "alone", progress=False) for c in configs]

    class StopAt2:  # stops both runs at epoch 2, leaving checkpoints there
        def reset(self):
            pass

        def __call__(self, epoch, arrays, context):
            return epoch >= 2

        def record(self):
            return {"name": "stop"}

    for c in configs:
        stopped = run_experiment(c, tmp_path / "packed", progress=False, callbacks=[StopAt2()])
        assert stopped.manifest["stopped_at_epoch"] == 2
    resumed = run_packed(configs, tmp_path / "packed")
    for a, b in zip(alone, resumed):
        pd.testing.assert_frame_equal(a.table(), b.table(), check_exact=True)
        pd.testing.assert_frame_equal(a.loss(), b.loss(), check_exact=True)


def test_configs_that_do_not_share_shapes_are_refused(tmp_path):
    a, b = _configs()
    c = b.replace(n_base=80)
    assert pack_key(a) == pack_key(b) != pack_key(c)
    with pytest.raises(ValueError, match="n_train"):
        run_packed([a, c], tmp_path)
    with pytest.raises(ValueError, match="distinct"):
        run_packed([a, a], tmp_path)


def test_member_states_stack_and_split_back():
    a, b = _configs()
    ea, eb = (Ensemble(c, RepeatData(c).train_points) for c in (a, b))
    for e in (ea, eb):
        e.train_epoch(0)
    both = stack_states([ea.state_dict(), eb.state_dict()], [0, 1, 0, 1])
    packed = Ensemble(a, np.concatenate([RepeatData(c).train_points for c in (a, b)]), [0, 1, 0, 1], [0, 0, 7, 7])
    packed.load_state_dict(both)
    for lo, e in ((0, ea), (2, eb)):
        part = member_state(packed.state_dict(), lo, lo + 2, [0, 1])
        for k, v in e.state_dict()["model"].items():
            assert torch.equal(part["model"][k], v)
        for i, s in e.state_dict()["optimizer"]["state"].items():
            for k, v in s.items():
                assert torch.equal(part["optimizer"]["state"][i][k], v), (i, k)
    # a packed ensemble's fresh members are the configurations' own initial weights
    fresh = Ensemble(a, np.concatenate([RepeatData(c).train_points for c in (a, b)]), [0, 1, 0, 1], [0, 0, 7, 7])
    alone_b = Ensemble(b, RepeatData(b).train_points)
    for p, q in zip(fresh.model.parameters(), alone_b.model.parameters()):
        assert torch.equal(p[2:], q)


def test_quick_packing_benchmark_writes_consistent_ratios(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "benchmarks/packing_bench.py", "--quick", "--out", str(tmp_path)],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=300,
    )
    r = json.loads((tmp_path / "packing-latest-quick.json").read_text())
    small, large = r["arms"]
    assert (small["members"], large["members"], small["graphs"]) == (2, 8, False)
    for arm in r["arms"]:
        assert arm["member_steps_per_s"] == pytest.approx(arm["members"] * arm["steps"] / arm["train_epoch_s"])
    s = r["summary"]
    assert s["train_packing_ratio_eager"] == pytest.approx(large["member_steps_per_s"] / small["member_steps_per_s"])
    assert s["generate_packing_ratio_eager"] == pytest.approx(
        large["member_samples_per_s"] / small["member_samples_per_s"]
    )
