import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import assert_same_results

from memnb import CorruptRunError, ExperimentConfig, Results, run_experiment
from memnb.experiment.results import TABLE_COLUMNS
from memnb.experiment.store import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_table_schema_and_null_beside_every_number(tiny_config, tmp_path):
    res = run_experiment(tiny_config, root=tmp_path, progress=False)
    df = res.table()
    assert list(df.columns) == TABLE_COLUMNS
    assert set(df.group) == {"inlier", "outlier", "duplicate", "all"}
    assert set(df.criterion) == {"paper", "train_only", "relative"}
    assert sorted(df.epoch.unique()) == [0, 1, 2, 3]
    assert {1.5, 2.0, 3.0, 10.0} <= set(df.threshold)  # grid, ratio, train_ratio, 1/relative_alpha
    n_thr = df.threshold.nunique()
    assert len(df) == 2 * 4 * 4 * 3 * n_thr  # repeats x epochs x groups x criteria x thresholds
    assert df[["memorized", "memorized_null", "copied", "copied_null"]].notna().all().all()
    assert df[["memorized", "memorized_null", "copied", "copied_null"]].stack().between(0, 1).all()
    # the groups partition the generated set
    g = df.pivot_table(index=["repeat", "epoch", "criterion", "threshold"], columns="group", values="memorized")
    np.testing.assert_allclose(g[["inlier", "outlier", "duplicate"]].sum(axis=1), g["all"])
    # a self-describing directory: config beside the results, readable with pandas alone
    stored = json.loads((res.path / "config.json").read_text())
    assert ExperimentConfig.from_dict(stored) == tiny_config
    assert len(pd.read_parquet(res.path / "table.parquet")) == len(df)
    loss = pd.read_parquet(res.path / "loss.parquet")
    assert sorted(loss.epoch.unique()) == [1, 2, 3] and loss.repeat.nunique() == 2


def test_rates_at_any_threshold_equal_the_table(tiny_config, tmp_path):
    res = run_experiment(tiny_config, root=tmp_path, progress=False)
    tab = res.table()
    for crit, k in (("paper", 2.0), ("train_only", 3.0), ("relative", 10.0), ("relative", 2.0)):
        a = res.rates_at(crit, k).sort_values(["repeat", "epoch", "group"], ignore_index=True)
        b = tab[(tab.criterion == crit) & (tab.threshold == k)].sort_values(
            ["repeat", "epoch", "group"], ignore_index=True
        )
        pd.testing.assert_frame_equal(a, b[a.columns])
    # a threshold off the grid still works, and a higher ratio never memorizes more
    lo, hi = res.rates_at("paper", 1.7), res.rates_at("paper", 4.5)
    assert (hi.memorized.to_numpy() <= lo.memorized.to_numpy() + 1e-12).all()
    with pytest.raises(ValueError, match="criterion 'nearest'.*paper \\| train_only \\| relative"):
        res.rates_at("nearest", 2.0)
    with pytest.raises(ValueError, match="threshold = 0.5 is invalid"):
        res.rates_at("paper", 0.5)


def test_relative_rates_from_the_stored_distances(tiny_config, tmp_path):
    res = run_experiment(tiny_config, root=tmp_path, progress=False)
    tab = res.table()
    for e in res.evaluated_epochs:
        a = res.epoch_arrays(e)
        mean50 = a["d_mean50"].astype(np.float64)
        assert (mean50 >= a["d2"]).all()
        # alpha = 0.1: memorized iff d1 < 0.1 * mean of the 50 nearest, computed here directly
        share = (a["d1"] < 0.1 * mean50).mean(axis=1)
        rows = tab[(tab.criterion == "relative") & (tab.threshold == 10.0) & (tab.group == "all") & (tab.epoch == e)]
        np.testing.assert_allclose(rows.sort_values("repeat").memorized, share)


def test_data_copying_statistic_stored_per_epoch(tiny_config, tmp_path):
    from scipy.stats import mannwhitneyu

    from memnb.experiment.results import ZU_COLUMNS

    config = tiny_config.replace(test_set="matched")
    res = run_experiment(config, root=tmp_path, progress=False)
    zu = pd.read_parquet(res.path / "zu.parquet")
    assert list(zu.columns) == ZU_COLUMNS and len(zu) == 2 * 4 * 4  # repeats x epochs x cells
    pd.testing.assert_frame_equal(res.zu(), zu)
    # independent reference: brute-force test-to-train distances, scipy's U
    train, test = res.data["train_points"][1], res.data["test_points"][1]
    assert len(test) == config.n_test_points == 400 + 20 + 20
    d_test = np.sqrt(((test[:, None] - train[None]) ** 2).sum(-1)).min(1)
    gen = res.epoch_arrays(3)["d1"][1].astype(np.float64)
    u = mannwhitneyu(gen, d_test).statistic
    n, m = len(d_test), len(gen)
    row = zu[(zu.repeat == 1) & (zu.epoch == 3) & (zu.group == "all")].iloc[0]
    assert row.z_u == pytest.approx((u - n * m / 2) / np.sqrt(n * m * (n + m + 1) / 12), rel=1e-4)
    assert (row.n_test, row.n_generated) == (n, m)
    # the matched test set puts held-out points in the outlier cell; empty cells give NaN
    assert (zu[zu.group == "outlier"].n_test > 0).all()
    assert zu.z_u.isna().equals(zu.n_test.eq(0) | zu.n_generated.eq(0))


def test_runs_stored_before_the_new_metrics_still_load(tiny_config, tmp_path):
    """Epoch files without d_mean50 and zu (older runs): relative rates are NaN, the rest unchanged,
    Z_U is recomputed from the stored d1 and index."""
    res = run_experiment(tiny_config, root=tmp_path, progress=False)
    table, zu = res.table(), res.zu()
    (res.path / "manifest.json").unlink()
    for e in res.evaluated_epochs:
        f = res.path / "epochs" / f"epoch_{e:06d}.npz"
        with np.load(f) as z:
            arrays = {k: z[k] for k in z.files if k not in ("d_mean50", "null_d_mean50", "zu", "zu_n")}
        arrays["summary"] = arrays["summary"][:, :2]  # only paper and train_only were tabulated
        np.savez(f, **arrays)
    old = Results(res.path)
    again = old.assemble_table()
    rel = again.criterion == "relative"
    assert again[rel][["memorized", "copied"]].isna().all().all()
    pd.testing.assert_frame_equal(
        again[~rel].reset_index(drop=True), table[table.criterion != "relative"].reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(old.zu(), zu, rtol=1e-6)
    assert old.rates_at("relative", 10.0).memorized.isna().all()


def test_same_config_same_numbers(tiny_config, tmp_path):
    a = run_experiment(tiny_config, root=tmp_path / "a", progress=False)
    b = run_experiment(tiny_config, root=tmp_path / "b", progress=False)
    assert_same_results(a, b)
    c = run_experiment(tiny_config.replace(seed=1), root=tmp_path / "a", progress=False)
    assert not np.array_equal(a.epoch_arrays(3)["d1"], c.epoch_arrays(3)["d1"])


def test_finished_config_loads_instead_of_training(tiny_config, tmp_path, monkeypatch):
    first = run_experiment(tiny_config, root=tmp_path, progress=False)
    import memnb.experiment.session

    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(memnb.experiment.session, "Ensemble", boom)
    again = run_experiment(tiny_config, root=tmp_path, progress=False)
    assert again.path == first.path and again.complete


def test_eval_every(tmp_path):
    c = ExperimentConfig(
        n_base=300, n_outliers=5, n_duplicates=5, epochs=5, eval_every=2, n_repeats=1, device="cpu", n_generate=100
    )
    res = run_experiment(c, root=tmp_path, progress=False)
    assert res.evaluated_epochs == [0, 2, 4, 5]
    assert res.epoch_arrays(2)["d1"].shape == (1, 100)
    assert res.epoch_arrays(2)["samples"].shape == (1, 100, 2)


KILL_CONFIG = dict(n_base=3000, n_outliers=30, n_duplicates=30, epochs=8, n_repeats=2, device="cpu")


def test_resume_after_a_real_kill_equals_an_uninterrupted_run(tmp_path):
    config = ExperimentConfig(**KILL_CONFIG)
    script = (
        f"import memnb; memnb.run_experiment(memnb.ExperimentConfig(**{KILL_CONFIG!r}), "
        f"root={str(tmp_path / 'killed')!r}, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    epochs_dir = tmp_path / "killed" / config.run_name() / "epochs"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if epochs_dir.exists() and len(list(epochs_dir.glob("epoch_*.npz"))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make KILL_CONFIG longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = Results(tmp_path / "killed" / config.run_name())
    assert not partial.complete and 3 <= len(partial.evaluated_epochs) < 9
    resumed = run_experiment(config, root=tmp_path / "killed", progress=False)
    assert resumed.manifest["resumed_from_epoch"] > 0
    straight = run_experiment(config, root=tmp_path / "straight", progress=False)
    assert_same_results(resumed, straight)


def test_directory_of_another_config_is_refused(tiny_config, tmp_path):
    res = run_experiment(tiny_config, root=tmp_path, progress=False)
    other = tiny_config.replace(ratio=2.0)
    (res.path / "config.json").write_text(json.dumps(other.to_dict()))
    # the folder's name and the manifest both name tiny_config: an edited config.json, written again
    with pytest.warns(UserWarning, match="not the config this run was written with"):
        assert run_experiment(tiny_config, root=tmp_path, progress=False).config == tiny_config
    (res.path / "config.json").write_text(json.dumps(other.to_dict()))
    (res.path / "manifest.json").unlink()  # nothing says which config wrote it: refused
    with pytest.raises(CorruptRunError, match="belongs to another config.*ratio"):
        run_experiment(tiny_config, root=tmp_path, progress=False)


def test_corrupt_files_give_clear_errors_and_are_recovered(tiny_config, tmp_path):
    res = run_experiment(tiny_config, root=tmp_path, progress=False)
    table = res.table()
    (res.path / "manifest.json").unlink()  # looks interrupted
    victim = res.path / "epochs" / "epoch_000002.npz"
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(CorruptRunError, match="epoch_000002.npz is unreadable.*recomputes that epoch alone"):
        Results(res.path).assemble_table()
    with pytest.warns(UserWarning, match="epoch 2 is evaluated again"):  # the advice, followed
        again = run_experiment(tiny_config, root=tmp_path, progress=False)
    pd.testing.assert_frame_equal(again.table(), table)
    victim.unlink()  # missing before the checkpoint: recomputed too
    pd.testing.assert_frame_equal(run_experiment(tiny_config, root=tmp_path, progress=False).table(), table)
    (res.path / "config.json").write_text("{not json")
    with pytest.raises(CorruptRunError, match="config.json is unreadable.*writes config.json again"):
        Results(res.path)
    with pytest.warns(UserWarning, match="written again"):
        pd.testing.assert_frame_equal(run_experiment(tiny_config, root=tmp_path, progress=False).table(), table)


def test_foreign_directory_is_refused(tiny_config, tmp_path):
    d = tmp_path / tiny_config.run_name()
    d.mkdir(parents=True)
    (d / "notes.txt").write_text("mine")
    with pytest.raises(CorruptRunError, match="without config.json"):
        run_experiment(tiny_config, root=tmp_path, progress=False)


def test_checkpoint_due_before_every_evaluation_at_the_end_and_on_time():
    from memnb.experiment.runner import checkpoint_due

    evals = {0, 3, 6, 7}
    assert [t for t in range(1, 8) if checkpoint_due(t, evals, 7, since_last_s=0.0)] == [3, 6, 7]
    assert checkpoint_due(4, evals, 7, since_last_s=61.0, every_s=60.0)
    assert not checkpoint_due(4, evals, 7, since_last_s=59.0, every_s=60.0)


def test_resume_retrains_epochs_after_the_last_checkpoint_to_the_same_numbers(tmp_path, monkeypatch):
    from memnb.models.ensemble import Ensemble

    c = ExperimentConfig(
        n_base=300, n_outliers=5, n_duplicates=5, epochs=7, eval_every=3, n_repeats=2, device="cpu", n_generate=200
    )
    real = Ensemble.train_epoch

    def crash_at_5(self, epoch):
        if epoch == 5:
            raise RuntimeError("simulated crash")
        return real(self, epoch)

    monkeypatch.setattr(Ensemble, "train_epoch", crash_at_5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_experiment(c, root=tmp_path / "crashed", progress=False)
    monkeypatch.setattr(Ensemble, "train_epoch", real)

    ckpt = read_checkpoint(tmp_path / "crashed" / c.run_name() / "checkpoint.pt")
    assert ckpt["trained_epochs"] == 3  # epochs 3 and 4 were trained but not checkpointed: they are trained again
    resumed = run_experiment(c, root=tmp_path / "crashed", progress=False)
    assert resumed.manifest["resumed_from_epoch"] == 3
    assert_same_results(resumed, run_experiment(c, root=tmp_path / "straight", progress=False))
