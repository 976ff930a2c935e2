"""memnb.Monitor: memnb's protocol on samples of a model memnb does not train, in run_experiment's format."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT, assert_same_results, run_notebook_smoke

import memnb
from memnb import ExperimentConfig, Monitor, Results, run_experiment
from memnb.analysis import stats, verdict
from memnb.core.monitor_config import MonitorConfig
from memnb.core.storage import CorruptRunError
from memnb.experiment.repeats import RepeatData
from memnb.models.ensemble import Ensemble
from memnb.monitor import epoch_of, main
from memnb.views import figures, images


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """A run of memnb's own ensemble, and the monitor fed that ensemble's samples epoch by epoch."""
    root = tmp_path_factory.mktemp("runs")
    cfg = ExperimentConfig(n_base=120, n_outliers=12, n_duplicates=12, epochs=3, n_repeats=2, device="cpu")
    res = run_experiment(cfg, root, progress=False)
    data = RepeatData(cfg)
    ensemble = Ensemble(cfg, data.train_points)
    mon = Monitor(
        data.train_points,
        data.groups,
        data.test_points,
        root=root,
        name="monitored",
        null=data.null_draws,  # fresh draws per epoch, from memnb's streams: the same as run_experiment's
        neighbors=cfg.neighbors,
    )
    loss = None
    for e in range(cfg.epochs + 1):  # run_experiment's loop: draw at the start of the epoch, then train it
        mon.observe(e, ensemble.generate(e), loss=loss)  # the loss of training epoch e-1 -> e, as run_experiment
        if e < cfg.epochs:
            loss = ensemble.train_epoch(e)
    return cfg, res, mon


def test_monitor_of_memnbs_own_ensemble_equals_run_experiment(own_run):
    cfg, res, mon = own_run
    got = Results(mon.path)
    assert got.complete and isinstance(got.config, MonitorConfig)
    assert got.evaluated_epochs == res.evaluated_epochs == list(cfg.eval_epochs)
    for e in res.evaluated_epochs:
        a, b = res.epoch_arrays(e), got.epoch_arrays(e)
        assert set(b) - set(a) == {"loss"}  # a monitored run commits its loss with the epoch
        b.pop("loss")
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"epoch {e} array {k}")
    assert_same_results(got, res)  # epochs, arrays, table and loss
    pd.testing.assert_frame_equal(got.zu(), res.zu())
    pd.testing.assert_frame_equal(got.assemble_table(), res.table())  # the epoch files say the same as the table
    for k in ("train_points", "groups", "test_points"):
        np.testing.assert_array_equal(got.data[k], res.data[k])
    got.verify(checksums=True)  # every file is what the manifest records


def test_views_statistics_and_verdict_read_a_monitored_run(own_run):
    cfg, res, mon = own_run
    got = mon.results()
    a, b = got.rates_at("train_only", 2.0), res.rates_at("train_only", 2.0)
    pd.testing.assert_frame_equal(a, b)
    table = got.table()
    view = figures.select(table, "paper", got.config.ratio)
    assert len(figures.paper_view(view, got.config).data) == len(figures.paper_view(view, cfg).data)
    figures.check_sanity(table, got.config)
    sig_a = stats.signal_frame(table, "paper", 1.5, "copied")
    sig_b = stats.signal_frame(res.table(), "paper", 1.5, "copied")
    pd.testing.assert_frame_equal(sig_a, sig_b)
    pd.testing.assert_frame_equal(stats.first_copies(got, "paper", 1.5), stats.first_copies(res, "paper", 1.5))
    assert "monitored" in verdict.runs_report([got])
    timing = verdict.timings([got])
    assert set(timing.group) >= {"inlier", "outlier", "duplicate"}


def test_observing_a_stored_epoch_is_a_no_op_unless_overwrite(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    mon = Monitor(train, np.zeros(50, int), test, root=tmp_path, name="m")
    calls = []

    def draw():
        calls.append(1)
        return rng.normal(size=(30, 3))

    first = mon.observe(0, draw)
    before = (tmp_path / "m" / "epochs" / "epoch_000000.npz").read_bytes()
    again = mon.observe(0, draw)
    assert len(calls) == 1  # not called: the epoch is stored
    pd.testing.assert_frame_equal(first, again)
    assert (tmp_path / "m" / "epochs" / "epoch_000000.npz").read_bytes() == before
    mon.observe(0, draw, overwrite=True)
    assert len(calls) == 2
    assert (tmp_path / "m" / "epochs" / "epoch_000000.npz").read_bytes() != before
    Results(tmp_path / "m").verify(checksums=True)
    # a new Monitor on the same data and folder continues the run
    mon2 = Monitor(train, np.zeros(50, int), test, root=tmp_path, name="m")
    assert mon2.epochs == [0]
    mon2.observe(0, draw)
    assert len(calls) == 2


def test_own_labels_no_null_torch_samples_and_loss(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.normal(size=(60, 5))
    labels = np.array(["common"] * 40 + ["rare"] * 15 + ["watermarked"] * 5)
    test = rng.normal(size=(50, 5))
    mon = Monitor(train, labels, test, root=tmp_path, name="own", model="my-edm")
    assert mon.labels == ("common", "rare", "watermarked")
    for e in (0, 10, 20):
        x = torch.tensor(rng.normal(size=(2, 40, 5)), dtype=torch.bfloat16)  # two seeds, bfloat16
        mon.observe(e, x, loss=[1.0 / (e + 1), 2.0 / (e + 1)])
    res = Results(tmp_path / "own")
    assert res.config.group_names == ("common", "rare", "watermarked") and res.config.n_repeats == 2
    assert res.config.epochs == 20 and res.config.eval_epochs == (0, 10, 20) and res.config.eval_every == 10
    table = res.table()
    assert set(table.group) == {"common", "rare", "watermarked", "all"}
    assert table.memorized_null.isna().all() and table.memorized.notna().all()
    assert res.zu().z_u_null.isna().all()
    sizes = table[table.epoch == 0].groupby("group").n_group_points.first().to_dict()
    assert sizes == {"common": 40, "rare": 15, "watermarked": 5, "all": 60}
    # the memorized shares add up, as for memnb's groups
    figures.check_sanity(table, res.config)
    view = figures.select(table, "paper", 1.5)
    fig = figures.paper_view(view, res.config)
    assert "no null baseline" in fig.layout.title.text
    titles = [a.text for a in fig.layout.annotations]
    assert any(t.startswith("rare (15 training points)") for t in titles)
    np.testing.assert_allclose(res.loss().query("epoch == 10").loss, [1 / 11, 2 / 11], rtol=1e-6)
    # the fast path agrees with the table at a table threshold
    grid = memnb.experiment.results.RateGrid(res)
    r = grid.rates("paper", 1.5).sort_values(["repeat", "epoch", "group"], ignore_index=True)
    t = view.sort_values(["repeat", "epoch", "group"], ignore_index=True)
    np.testing.assert_allclose(r.memorized, t.memorized, atol=1e-7)
    # the explorer: one panel per group, the user's labels included; its summary names them
    from memnb.views.widgets import Explorer

    ex = Explorer(res, progress=False)
    assert "my-edm" in ex.title and "5 watermarked" in ex.title
    ex.ratio.value = 2.0
    ex.criterion.value = "train_only"
    assert "watermarked" in ex.summary.value and "rare" in ex.summary.value
    assert {a.text.split(" (")[0] for a in ex.figure.layout.annotations} >= {"all groups", "common", "rare"}
    # and the bfloat16 samples were searched as the float32 values they hold
    stored = res.epoch_arrays(0)["samples"]
    assert stored.dtype == np.float16 and stored.shape == (2, 40, 5)


def test_a_killed_observe_loses_at_most_its_epoch(tmp_path, monkeypatch):
    """The epoch file is the observation's one commit: a kill before it loses that epoch, never its loss or another's."""
    import memnb.experiment.monitor as monitor_module

    rng = np.random.default_rng(2)
    train, test, null = rng.normal(size=(50, 2)), rng.normal(size=(40, 2)), rng.normal(size=(30, 2))
    mon = Monitor(train, np.zeros(50, int), test, root=tmp_path, name="k", null=null)
    mon.observe(0, rng.normal(size=(30, 2)), loss=0.7)
    mon.observe(1, rng.normal(size=(30, 2)), loss=0.6)  # no tables written: a kill from here on loses nothing
    real = monitor_module.write_epoch
    monkeypatch.setattr(monitor_module, "write_epoch", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        mon.observe(2, rng.normal(size=(30, 2)), loss=0.5)
    monkeypatch.setattr(monitor_module, "write_epoch", real)
    (tmp_path / "k" / "epochs" / ".epoch_000002.npz.x.tmp").write_bytes(b"half a file")  # a write cut short
    res = Results(tmp_path / "k")  # readable as it is, without reopening
    assert res.evaluated_epochs == [0, 1] and res.loss().loss.round(6).tolist() == [0.7, 0.6]
    again = Monitor(train, np.zeros(50, int), test, root=tmp_path, name="k", null=null)
    assert again.epochs == [0, 1]  # the complete epoch files are kept
    assert not list((tmp_path / "k").rglob("*.tmp"))
    again.observe(2, rng.normal(size=(30, 2)), loss=0.5)  # the lost epoch is observed again, not refused
    res = again.results()
    res.verify(checksums=True)
    assert res.evaluated_epochs == [0, 1, 2] and sorted(res.table().epoch.unique()) == [0, 1, 2]
    assert res.loss().loss.round(6).tolist() == [0.7, 0.6, 0.5]


def test_damaged_files_are_named_with_advice_that_works(tmp_path):
    rng = np.random.default_rng(8)
    train, test, null = rng.normal(size=(50, 2)), rng.normal(size=(40, 2)), rng.normal(size=(30, 2))
    mon = Monitor(train, np.zeros(50, int), test, root=tmp_path, name="d", null=null)
    for e in (0, 1):
        mon.observe(e, rng.normal(size=(30, 2)), loss=0.5)
    good = mon.results()
    table, zu, loss = good.table(), good.zu(), good.loss()
    run = tmp_path / "d"
    (run / "data.npz").write_bytes((run / "data.npz").read_bytes()[:100])  # truncated
    (run / "table.parquet").write_bytes(b"garbage")
    (run / "loss.parquet").unlink()
    with pytest.raises(CorruptRunError, match="Monitor"):
        Results(run)
    with pytest.warns(UserWarning, match="written again"):
        Monitor(train, np.zeros(50, int), test, root=tmp_path, name="d", null=null)  # the advice, followed
    res = Results(run)
    res.verify(checksums=True)
    pd.testing.assert_frame_equal(res.table(), table)
    pd.testing.assert_frame_equal(res.zu(), zu)
    pd.testing.assert_frame_equal(res.loss(), loss)  # every epoch's loss: it is in the epoch files
    np.testing.assert_array_equal(res.data["train_points"][0], train)
    # a flipped byte in an epoch file: named when read; reopening sets that epoch aside, keeps the other
    f = run / "epochs" / "epoch_000001.npz"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(CorruptRunError, match="sets epoch_000001.npz aside"):
        Results(run).epoch_arrays(1)
    with pytest.warns(UserWarning, match="set aside"):
        again = Monitor(train, np.zeros(50, int), test, root=tmp_path, name="d", null=null, verify=True)
    assert again.epochs == [0] and (run / ".damaged" / "epochs__epoch_000001.npz").exists()
    again.observe(1, rng.normal(size=(30, 2)), loss=0.5)
    again.results().verify(checksums=True)


def _snapshot(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


BAD_OBSERVE = [
    ("samples", lambda rng: rng.normal(size=30), "samples"),
    ("dimension", lambda rng: rng.normal(size=(30, 4)), "dimension"),
    ("nan", lambda rng: np.where(np.arange(90).reshape(30, 3) == 7, np.nan, 0.0), "finite"),
    ("repeats", lambda rng: rng.normal(size=(3, 30, 3)), "repeat"),
    ("n", lambda rng: rng.normal(size=(31, 3)), "samples per repeat"),
    ("huge", lambda rng: np.full((30, 3), 1e6), "float16"),
    ("strings", lambda rng: np.array([["a"] * 3] * 30), "real numbers"),
]


@pytest.mark.parametrize("case,make,message", BAD_OBSERVE, ids=[c[0] for c in BAD_OBSERVE])
def test_bad_samples_fail_before_anything_is_written(tmp_path, case, make, message):
    rng = np.random.default_rng(3)
    mon = Monitor(rng.normal(size=(50, 3)), np.zeros(50, int), rng.normal(size=(40, 3)), root=tmp_path, name="b")
    mon.observe(0, rng.normal(size=(30, 3)))
    before = _snapshot(tmp_path / "b")
    with pytest.raises(ValueError, match=message):
        mon.observe(1, make(rng))
    assert _snapshot(tmp_path / "b") == before
    assert mon.epochs == [0]


BAD_ARGS = [
    ("train_1d", dict(train=np.zeros(5)), "train"),
    ("train_nan", dict(train=np.full((50, 3), np.nan)), "train = .*finite"),
    ("test_dim", dict(test=np.zeros((40, 2))), "test's dimension"),
    ("groups_len", dict(groups=np.zeros(49, int)), "one group per training point"),
    ("groups_code", dict(groups=np.full(50, 3)), "groups = 3"),
    ("groups_label", dict(groups=np.array(["inlier"] * 49 + ["alien"]), labels=["inlier", "outlier"]), "alien"),
    ("labels_all", dict(groups=np.array(["all"] * 50)), "all"),
    ("null_dim", dict(null=np.zeros((10, 4))), "null's dimension"),
    ("criteria_name", dict(criteria={"papr": 2.0}), "papr"),
    ("criteria_k", dict(criteria={"paper": 0.5}), "criteria\\['paper'\\]"),
    ("thresholds", dict(thresholds=[0.5, 2.0]), "thresholds"),
    ("neighbors", dict(neighbors="annoy"), "neighbors"),
    ("name", dict(name="../escape"), "name"),
    ("image_shape", dict(image_shape=(2, 2)), "image_shape"),
    ("repeats", dict(repeats=0), "repeats"),
]


@pytest.mark.parametrize("case,changes,message", BAD_ARGS, ids=[c[0] for c in BAD_ARGS])
def test_bad_arguments_fail_naming_them_and_write_nothing(tmp_path, case, changes, message):
    rng = np.random.default_rng(4)
    args = dict(train=rng.normal(size=(50, 3)), groups=np.zeros(50, int), test=rng.normal(size=(40, 3)))
    args.update(changes)
    with pytest.raises(ValueError, match=message) as err:
        Monitor(root=tmp_path, **{"name": "x", **args})
    assert "allowed" in str(err.value)
    assert not any(tmp_path.iterdir())


def test_bad_epoch_and_loss_and_other_data_in_the_folder(tmp_path):
    rng = np.random.default_rng(5)
    train, test = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    mon = Monitor(train, np.zeros(50, int), test, root=tmp_path, name="e")
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="epoch"):
            mon.observe(bad, rng.normal(size=(30, 3)))
    with pytest.raises(ValueError, match="loss"):
        mon.observe(0, rng.normal(size=(30, 3)), loss=[1.0, 2.0])
    assert not (tmp_path / "e").exists()
    mon.observe(0, rng.normal(size=(30, 3)))
    before = _snapshot(tmp_path / "e")
    with pytest.raises(ValueError, match="other data"):
        Monitor(train + 1, np.zeros(50, int), test, root=tmp_path, name="e")
    with pytest.raises(ValueError, match="other data"):
        Monitor(train, np.zeros(50, int), test, root=tmp_path, name="e", criteria={"paper": 2.0})
    assert _snapshot(tmp_path / "e") == before
    cfg = ExperimentConfig(n_base=40, n_outliers=4, n_duplicates=4, epochs=1, n_repeats=1, device="cpu")
    own = run_experiment(cfg, tmp_path, progress=False)
    with pytest.raises(ValueError, match="run_experiment"):
        Monitor(train, np.zeros(50, int), test, root=tmp_path, name=own.path.name)


def test_image_runs_get_the_image_views(tmp_path):
    rng = np.random.default_rng(6)
    train = rng.uniform(-1, 1, size=(40, 16))
    mon = Monitor(train, np.zeros(40, int), rng.uniform(-1, 1, size=(30, 16)), root=tmp_path, name="img",
                  image_shape=(1, 4, 4))  # fmt: skip
    mon.observe(0, np.concatenate([train[:10], rng.uniform(-1, 1, size=(10, 16))]))  # ten exact copies
    res = mon.results()
    assert images.image_shape(res) == (4, 4)
    examples = images.memorized_examples(res, 0, per_group=20)
    assert len(examples["inlier"]) >= 10
    for ex in examples["inlier"]:
        if ex["d1"] == 0:
            np.testing.assert_array_equal(ex["sample"], ex["train"].astype(np.float16))
    images.memorized_grid(res, 0)


def test_command_line_on_files(tmp_path, capsys):
    rng = np.random.default_rng(7)
    train, test, null = rng.normal(size=(60, 4)), rng.normal(size=(50, 4)), rng.normal(size=(40, 4))
    groups = np.array([0] * 50 + [1] * 5 + [2] * 5)
    for name, a in dict(train=train, groups=groups, test=test, null=null).items():
        np.save(tmp_path / f"{name}.npy", a)
    (tmp_path / "samples").mkdir()
    drawn = {e: rng.normal(size=(40, 4)) for e in (0, 5, 10)}
    for e, x in drawn.items():
        np.save(tmp_path / "samples" / f"epoch_{e:04d}.npy", x)
    out = tmp_path / "runs" / "cli"
    args = [
        "--train", str(tmp_path / "train.npy"), "--groups", str(tmp_path / "groups.npy"),
        "--test", str(tmp_path / "test.npy"), "--null", str(tmp_path / "null.npy"),
        "--samples", str(tmp_path / "samples" / "epoch_*.npy"), "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "epoch 10: memorized" in printed and str(out) in printed
    by_api = Monitor(train, groups, test, root=tmp_path / "api", name="cli", null=null)
    for e, x in drawn.items():
        by_api.observe(e, x)
    pd.testing.assert_frame_equal(Results(out).table(), Results(tmp_path / "api" / "cli").table())
    pd.testing.assert_frame_equal(Results(out).zu(), Results(tmp_path / "api" / "cli").zu())
    assert main(args) == 0  # again: every epoch is stored, nothing is observed
    assert Results(out).evaluated_epochs == [0, 5, 10]
    with pytest.raises(SystemExit, match="matches no file"):
        main([*args[:-4], "--samples", str(tmp_path / "nothing_*.npy"), "--out", str(out)])
    with pytest.raises(SystemExit, match="--test"):
        main([*args[:4], "--test", str(tmp_path / "missing.npy"), *args[6:]])


def test_epoch_numbers_from_file_names():
    assert epoch_of("samples/epoch_0040.npy") == 40
    assert epoch_of("run3/step-12000_samples.npy") == 12000
    with pytest.raises(ValueError, match="epoch number"):
        epoch_of("samples/final.npy")


def test_monitor_config_round_trips_and_keeps_its_fingerprint(own_run):
    _, _, mon = own_run
    stored = json.loads((mon.path / "config.json").read_text())
    assert stored["kind"] == "monitor"
    c = MonitorConfig.from_dict(stored)
    assert c.to_dict() == stored and c.fingerprint() == mon.config.fingerprint()
    assert c.with_observed([0, 1]).fingerprint() == c.fingerprint()  # observed epochs are not part of it
    with pytest.raises(ValueError, match="unknown monitor config field"):
        MonitorConfig.from_dict({**stored, "ratoi": 2})


def test_diffusers_notebook_at_the_smoke_profile(tmp_path):
    pytest.importorskip("diffusers")
    text = run_notebook_smoke("bring_your_own_model.ipynb", tmp_path, interactive=False)
    assert "sanity checks passed" in text and "epoch 2: memorized" in text
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if not p.name.startswith("."))  # .locks aside
    (run,) = [p for p in runs if "-scores-" not in p.name]
    (scored,) = [p for p in runs if "-scores-" in p.name]  # the generation-free path: scores, no samples
    frame = Results(scored).detector_scores()
    assert sorted(set(frame.epoch)) == [0, 1, 2] and set(frame.detector) == {"sima", "loss"}
    assert "score (no samples)" in text
    res = Results(run)
    assert res.complete and res.evaluated_epochs == [0, 1, 2] and res.config.model == "diffusers UNet2DModel"
    assert res.config.dim == 64 and images.image_shape(res) == (8, 8)
    assert (ROOT / "notebooks" / "bring_your_own_model.ipynb").exists()
