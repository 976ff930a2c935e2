"""memnb.Monitor at a real model's scale, at a small size: which samples are stored (store_samples), a feature
space (features=), the search's memory budget, the torch search on the samples' device, and a reopening that
does not read data.npz back."""

import numpy as np
import pandas as pd
import pytest
import torch

from memnb import Monitor, Results
from memnb.analysis import stats, verdict
from memnb.experiment import monitor_recovery
from memnb.experiment.samples import stored_samples
from memnb.experiment.store.layout import epoch_file
from memnb.monitor import main
from memnb.views import figures, images
from memnb.views.widgets import Explorer

D, N, M = 64, 60, 50  # 8x8 "images"


def known_answer(seed=0, n=40):
    """Training, groups, test, null and, per epoch, samples of which the first half are exact copies of training
    points and the rest fresh draws: the paper criterion's share is 0.5 (copies), its null about 0."""
    rng = np.random.default_rng(seed)
    train = rng.uniform(-1, 1, size=(N, D)).astype(np.float32)
    groups = np.array([0] * 50 + [1] * 5 + [2] * 5)
    test, null = (rng.uniform(-1, 1, size=(k, D)).astype(np.float32) for k in (M, 40))

    def samples(epoch):
        g = np.random.default_rng(100 + epoch)
        return np.concatenate([train[g.choice(N, n // 2)], g.uniform(-1, 1, size=(n // 2, D)).astype(np.float32)])

    return train, groups, test, null, samples


def observed(tmp_path, name, epochs=(0, 5, 10), **kw):
    train, groups, test, null, samples = known_answer()
    mon = Monitor(train, groups, test, root=tmp_path, name=name, null=null, image_shape=(8, 8), progress=False, **kw)
    for e in epochs:
        mon.observe(e, samples(e), loss=1.0 / (e + 1))
    return mon, mon.results()


@pytest.fixture(scope="module")
def three_modes(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    return {mode: observed(root, f"m-{mode}", store_samples=mode)[1] for mode in ("all", "none", 7)}


def test_every_storage_mode_gives_the_same_tables(three_modes):
    full = three_modes["all"]
    assert full.table().query("criterion == 'paper' and group == 'all' and threshold == 1.5").memorized.eq(0.5).all()
    for mode in ("none", 7):
        res = three_modes[mode]
        pd.testing.assert_frame_equal(res.table(), full.table())
        pd.testing.assert_frame_equal(res.zu(), full.zu())
        pd.testing.assert_frame_equal(res.rates_at("train_only", 2.0), full.rates_at("train_only", 2.0))
        pd.testing.assert_frame_equal(res.loss(), full.loss())


def test_stored_samples_are_the_kept_slots_of_the_drawn_samples(three_modes):
    *_, samples = known_answer()
    x = samples(5).astype(np.float16).astype(np.float64)
    s_all = stored_samples(three_modes["all"], 5)
    assert s_all.mode == "all" and np.array_equal(s_all.points[0], x)
    s_none = stored_samples(three_modes["none"], 5)
    assert s_none.mode == "none" and s_none.points.shape == (1, 0, D) and (s_none.position() == -1).all()
    s_k = stored_samples(three_modes[7], 5)
    assert s_k.mode == "subsample" and len(s_k.slots) == 7 and np.array_equal(s_k.points[0], x[s_k.slots])
    assert np.array_equal(stored_samples(three_modes[7], 10).slots, s_k.slots)  # the same slots every epoch


def test_disk_per_observation_by_mode(three_modes):
    size = {m: epoch_file(r.path, 5).stat().st_size for m, r in three_modes.items()}
    assert size["none"] < size[7] < size["all"]
    # float16 samples are 2 bytes per coordinate: "all" holds 40 x D of them more than "none" (random values
    # compress little: at least half of them stay)
    assert size["all"] - size["none"] >= 40 * D * 2 / 2


@pytest.mark.parametrize("mode", ["none", 7])
def test_every_view_the_verdict_and_statistics_read_a_run_without_samples(three_modes, mode):
    res = three_modes[mode]
    table = res.table()
    view = figures.select(table, "paper", res.config.ratio)
    figures.paper_view(view, res.config)
    figures.check_sanity(table, res.config)
    stats.signal_frame(table, "paper", 1.5, "copied")
    stats.first_copies(res, "paper", 1.5)
    assert res.path.name in verdict.runs_report([res])
    grid = images.memorized_grid(res, 5)
    examples = images.memorized_examples(res, 5, per_group=20)
    if mode == "none":
        assert "not stored" in grid.layout.title.text
        assert examples["inlier"] and all(ex["sample"] is None and ex["train"] is not None for ex in examples["inlier"])
    else:
        kept = set(stored_samples(res, 5).slots.tolist())
        assert all(ex["index"] in kept and ex["sample"] is not None for g in examples.values() for ex in g)
    over = images.samples_over_epochs(res)
    assert ("not stored" in over.layout.title.text) == (mode == "none")
    Explorer(res)  # the explorer opens on it


def test_bad_store_samples_fails_before_anything_is_written(tmp_path):
    train, groups, test, *_ = known_answer()
    for bad in ("some", 0, -3, 2.5, True):
        with pytest.raises(ValueError, match="store_samples"):
            Monitor(train, groups, test, root=tmp_path, name="bad", store_samples=bad)
    assert not (tmp_path / "bad").exists()


def test_a_reopened_monitor_does_not_read_data_npz_back(tmp_path, monkeypatch):
    mon, first = observed(tmp_path, "reopen", epochs=(0,))
    train, groups, test, null, samples = known_answer()

    def no_read(*a, **k):
        raise AssertionError("data.npz read back")

    monkeypatch.setattr(monitor_recovery, "read_data", no_read)
    again = Monitor(train, groups, test, root=tmp_path, name="reopen", null=null, image_shape=(8, 8), progress=False)
    again.observe(5, samples(5))
    assert again.results().evaluated_epochs == [0, 5]


def test_features_random_projection_keeps_the_known_answer(tmp_path):
    proj = np.random.default_rng(9).normal(size=(D, 32)).astype(np.float32)
    mon, res = observed(tmp_path, "proj", features=lambda x: x @ proj, features_name="projection-32")
    paper = res.table().query("criterion == 'paper' and group == 'all' and threshold == 1.5")
    assert paper.memorized.round(3).eq(0.5).all()
    assert res.config.features == "projection-32" and res.config.feature_dim == 32 and res.config.dim == D
    # the raw samples are stored (the image views show pixels), the search ran in the features
    assert stored_samples(res, 0).points.shape[2] == D
    train, groups, test, null, _ = known_answer()
    with pytest.raises(ValueError, match="features"):  # another embedding on reopening: refused
        Monitor(train, groups, test, root=tmp_path, name="proj", null=null, image_shape=(8, 8),
                features=lambda x: x @ (2 * proj), features_name="projection-32")  # fmt: skip


def test_features_from_a_small_convolutional_encoder_trained_here(tmp_path):
    """A 2-layer conv encoder trained a few steps as an autoencoder on the training images: copies stay copies."""
    train, groups, test, null, samples = known_answer()
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * D, 12))  # fmt: skip
    dec = torch.nn.Linear(12, D)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-2)
    x = torch.as_tensor(train).reshape(-1, 1, 8, 8)
    first = None
    for _ in range(60):
        loss = ((dec(enc(x)) - x.reshape(len(x), -1)) ** 2).mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad(), loss.backward(), opt.step()
    assert float(loss.detach()) < first  # it learned something
    enc.eval()

    def embed(points):
        return enc(torch.as_tensor(np.array(points)).reshape(-1, 1, 8, 8))

    mon = Monitor(train, groups, test, root=tmp_path, name="cnn", null=null, features=embed, progress=False)
    for e in (0, 5):
        mon.observe(e, samples(e))
    res = mon.results()
    paper = res.table().query("criterion == 'paper' and group == 'all' and threshold == 1.5")
    assert (paper.memorized >= 0.5).all() and (paper.memorized_null < 0.2).all()
    arrays = res.epoch_arrays(0)
    assert (arrays["d1"][0, :20] == 0).all()  # the copies' features are the originals' (deterministic encoder)


@pytest.mark.parametrize("bad", [lambda x: x[:, :0], lambda x: x[:-1], lambda x: np.full((len(x), 3), np.nan)])
def test_a_bad_feature_callable_is_named(tmp_path, bad):
    train, groups, test, *_ = known_answer()
    with pytest.raises(ValueError, match=r"features\(train\)"):
        Monitor(train, groups, test, root=tmp_path, name="badf", features=bad)
    assert not (tmp_path / "badf").exists()


def test_a_small_search_memory_gives_the_same_neighbours(tmp_path):
    _, big = observed(tmp_path, "big", epochs=(0,), neighbors="torch")
    mon, small = observed(tmp_path, "small", epochs=(0,), neighbors="torch", search_memory=2**20)
    assert mon._searches.chunk < 4096
    a, b = big.epoch_arrays(0), small.epoch_arrays(0)
    for k in ("d1", "d2", "index", "d_test", "d_mean50", "summary"):
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(ValueError, match="search_memory"):
        observed(tmp_path, "tiny", epochs=(0,), search_memory=1000)


def _torch_samples_match(tmp_path, device):
    train, groups, test, null, samples = known_answer()
    ref, _ = observed(tmp_path, f"np-{device}", epochs=(0,), neighbors="torch", device=device)
    mon = Monitor(train, groups, test, root=tmp_path, name=f"t-{device}", null=null, neighbors="torch",
                  device=device, progress=False)  # fmt: skip
    mon.observe(0, torch.as_tensor(samples(0), device=device))
    assert mon._searches.on_device(torch.as_tensor(samples(0), device=device)) is not None
    a, b = Results(ref.path).epoch_arrays(0), mon.results().epoch_arrays(0)
    for k in ("samples", "d1", "d2", "index", "d_test", "summary"):
        np.testing.assert_array_equal(a[k], b[k])


def test_torch_samples_are_searched_where_they_lie(tmp_path):
    _torch_samples_match(tmp_path, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_samples_are_searched_on_the_gpu(tmp_path):
    _torch_samples_match(tmp_path, "cuda")


def test_command_line_store_samples_none(tmp_path, capsys):
    train, groups, test, null, samples = known_answer()
    for name, a in (("train", train), ("groups", groups), ("test", test), ("null", null)):
        np.save(tmp_path / f"{name}.npy", a)
    (tmp_path / "s").mkdir()
    for e in (0, 5):
        np.save(tmp_path / "s" / f"epoch_{e:04d}.npy", samples(e))
    args = [f"--{k}={tmp_path / (k + '.npy')}" for k in ("train", "groups", "test", "null")]
    main([*args, f"--samples={tmp_path / 's' / 'epoch_*.npy'}", f"--out={tmp_path / 'runs' / 'cli'}",
          "--store-samples=none", "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("epoch ") >= 2 and "memorized 50.00%" in out
    res = Results(tmp_path / "runs" / "cli")
    assert res.config.store_samples == "none" and stored_samples(res, 5).mode == "none"
    with pytest.raises(SystemExit):
        main([*args, f"--samples={tmp_path / 's' / 'epoch_*.npy'}", f"--out={tmp_path / 'runs' / 'x'}",
              "--store-samples=few"])  # fmt: skip
    assert "--store-samples" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["faiss-ivf", "faiss-hnsw"])
def test_approximate_search_is_opt_in_and_keeps_the_known_answer(tmp_path, backend):
    from memnb.core.config_checks import NEIGHBOR_BACKENDS
    from memnb.metric.neighbors import BACKENDS

    assert set(BACKENDS) == set(NEIGHBOR_BACKENDS)
    _, exact = observed(tmp_path, "exact", epochs=(0,), neighbors="faiss")
    _, approx = observed(tmp_path, backend, epochs=(0,), neighbors=backend)
    assert approx.config.neighbors == backend
    a, b = (r.table().query("threshold == 1.5") for r in (exact, approx))
    # at this size (60 training points) both indexes scan nearly everything: the same shares
    np.testing.assert_allclose(b.memorized.to_numpy(), a.memorized.to_numpy(), atol=0.05)
