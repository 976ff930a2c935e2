"""memnb.core.resources: the memory and disk a run needs, estimated from its config before any work, and refused when
the machine does not have them."""

import shutil
from pathlib import Path

import pytest
import torch

from memnb import ExperimentConfig, run_experiment
from memnb.core import resources
from memnb.core.resources import Estimate, GiB, check_resources, estimate, parameter_count


@pytest.fixture
def sixteen_gib(monkeypatch):
    monkeypatch.setenv(resources.MEMORY_ENV, str(16 * GiB))


def _linear(values, xs):
    """Whether values grow linearly in xs: equal increments per unit of x (to 1e-9)."""
    slopes = [(b - a) / (xb - xa) for a, b, xa, xb in zip(values, values[1:], xs, xs[1:])]
    return slopes[0] > 0 and all(s == pytest.approx(slopes[0], rel=1e-9) for s in slopes)


def test_the_estimate_grows_linearly_in_n_base():
    sizes = [10**5, 2 * 10**5, 4 * 10**5]
    ests = [estimate(ExperimentConfig(n_base=n, n_outliers=0, n_duplicates=0)) for n in sizes]
    assert _linear([e.disk_bytes for e in ests], sizes)
    assert _linear([e.memory_bytes for e in ests], sizes)
    # the points dominate: a million of them per repeat is far beyond the default config's
    assert estimate(ExperimentConfig(n_base=10**6)).memory_bytes > 10 * estimate(ExperimentConfig()).memory_bytes


def test_the_disk_grows_linearly_in_the_evaluated_epochs():
    everies = [4, 2, 1]  # 26, 51, 101 evaluated epochs of 100
    configs = [ExperimentConfig(epochs=100, eval_every=k) for k in everies]
    evaluated = [len(c.eval_epochs) for c in configs]
    assert evaluated == [26, 51, 101] and [resources.evaluated_epochs(c) for c in configs] == evaluated
    ests = [estimate(c) for c in configs]
    assert _linear([e.disk_bytes for e in ests], evaluated)
    one_epoch_file = (ests[2].disk_bytes - ests[1].disk_bytes) / 50
    assert 8e6 < one_epoch_file < 1e7  # 10 repeats x 20800 samples: float16 (R, n, 2) + 10 (R, n) 4-byte arrays
    # and in the epochs themselves (the loss history), at a fixed number of evaluations
    epochs = [1000, 2000, 4000]
    assert _linear([estimate(ExperimentConfig(epochs=e, eval_every=e)).disk_bytes for e in epochs], epochs)


def test_the_evaluated_epochs_are_counted_without_listing_them():
    assert resources.evaluated_epochs(ExperimentConfig(epochs=10**9)) == 10**9 + 1
    assert resources.evaluated_epochs(ExperimentConfig(epochs=10, eval_every=3)) == len((0, 3, 6, 9, 10))
    log = ExperimentConfig(epochs=1000, eval_schedule="log", n_evals=20)
    assert resources.evaluated_epochs(log) == len(log.eval_epochs)
    assert resources.evaluated_epochs(ExperimentConfig(epochs=0)) == 1
    assert resources.evaluated_epochs(ExperimentConfig(epochs=100, eval_schedule="log", n_evals=10**9)) == 101


def test_the_estimate_matches_a_tiny_runs_folder(tiny_config, tmp_path):
    """Every disk term within a factor of 2 of the files it counts, and the whole folder too."""
    results = run_experiment(tiny_config, root=tmp_path, progress=False)
    folder = Path(results.path)
    sizes = {str(f.relative_to(folder)): f.stat().st_size for f in folder.rglob("*") if f.is_file()}
    actual = {
        "data.npz": sizes["data.npz"],
        "epochs": sum(s for name, s in sizes.items() if name.startswith("epochs")),
        "checkpoint.pt": sizes["checkpoint.pt"],
        "tables": sum(s for name, s in sizes.items() if name.endswith((".parquet", ".json"))),
    }
    assert sum(actual.values()) == sum(sizes.values())  # every file of the run is counted by one term
    est = estimate(tiny_config)
    terms = dict(est.disk_terms)
    assert set(terms) == set(actual)
    for name, size in actual.items():
        assert size / 2 <= terms[name] <= 2 * size, (name, terms[name], size)
    assert sum(sizes.values()) / 2 <= est.disk_bytes <= 2 * sum(sizes.values())
    assert est.disk_bytes == sum(terms.values())


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"hidden_size": 32, "hidden_layers": 2, "embedding_size": 16},
        {"dataset": "gmm_d", "dim": 16, "hidden_size": 24, "hidden_layers": 2, "embedding_size": 8},
        {"dataset": "digits", "n_base": 200, "n_outliers": 0, "n_duplicates": 0, "n_test": 200, "hidden_size": 8},
    ],
    ids=["tiny_diffusion", "tiny_diffusion-small", "residual_mlp", "unet"],
)
def test_parameter_counts_are_the_built_denoisers(kw):
    from memnb.models import make_denoiser

    config = ExperimentConfig(n_repeats=1, device="cpu", **kw)
    model = make_denoiser(config, [torch.Generator().manual_seed(0)])
    assert parameter_count(config)[0] == model.member_parameter_count(), config.denoiser


def test_the_default_config_is_accepted(sixteen_gib, tmp_path):
    est = check_resources(ExperimentConfig(), tmp_path / "runs" / "new")
    assert isinstance(est, Estimate) and est == estimate(ExperimentConfig())
    assert 0.5 * GiB < est.memory_bytes < 4 * GiB and 1 * GiB < est.disk_bytes < 8 * GiB
    assert not (tmp_path / "runs").exists()  # nothing is written


@pytest.mark.parametrize(
    "kw,field",
    [({"n_base": 10**12}, "n_base"), ({"epochs": 10**9}, "epochs"), ({"n_repeats": 10**6}, "n_repeats")],
)
def test_a_run_beyond_the_memory_is_refused_naming_the_field(sixteen_gib, tmp_path, kw, field):
    config = ExperimentConfig(**kw)
    with pytest.raises(ValueError) as e:
        check_resources(config, tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"config field {field!r} = {kw[field]} is invalid; allowed: a value whose run fits in memory")
    assert f"needs about {estimate(config).memory_bytes / GiB:.2g} GiB of memory" in msg
    assert "this machine has 16 GiB available ($MEMNB_MEMORY_BYTES)" in msg


def test_the_largest_field_is_named_among_several(sixteen_gib, tmp_path):
    with pytest.raises(ValueError, match=r"^config field 'n_base' = 1000000000000 "):
        check_resources(ExperimentConfig(n_base=10**12, n_repeats=20, epochs=1000), tmp_path)


def test_a_run_beyond_the_free_disk_is_refused(monkeypatch, tmp_path, sixteen_gib):
    monkeypatch.setattr(resources, "free_disk", lambda folder: 1 << 20)
    config = ExperimentConfig(n_repeats=20)
    with pytest.raises(ValueError, match=r"^config field 'n_repeats' = 20 is invalid; .* of disk, .* has 0.00098 GiB"):
        check_resources(config, tmp_path / "run")
    with pytest.raises(ValueError, match=r"^config = moons-n20000-.* is invalid; allowed: a config whose run fits"):
        check_resources(ExperimentConfig(), tmp_path / "run")  # nothing to blame but the whole config
    # a run being resumed already holds its files: only the rest must fit
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "stored.bin", "wb") as f:
        f.truncate(estimate(config).disk_bytes)  # sparse: counts as its size, takes no space
    assert check_resources(config, run).disk_bytes == estimate(config).disk_bytes


def test_the_machine_is_read_without_the_override(monkeypatch, tmp_path):
    monkeypatch.delenv(resources.MEMORY_ENV, raising=False)
    have, source = resources.available_memory()
    assert have > 0 and source in ("MemAvailable", "available pages")
    assert resources.free_disk(tmp_path / "not" / "made" / "yet") > 0
    asked, usage = [], shutil.disk_usage
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda p: asked.append(p) or usage(p))
    resources.free_disk(tmp_path / "not" / "made" / "yet")
    assert asked == [tmp_path]  # the nearest existing parent of a run not made yet


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5e9"])
def test_a_bad_memory_override_is_refused(monkeypatch, tmp_path, value):
    monkeypatch.setenv(resources.MEMORY_ENV, value)
    with pytest.raises(ValueError, match=rf"^\$MEMNB_MEMORY_BYTES = '{value}' is invalid; allowed: an integer"):
        check_resources(ExperimentConfig(), tmp_path)


def test_only_an_experiment_config_is_estimated():
    with pytest.raises(ValueError, match=r"^config = dict is invalid; allowed: an ExperimentConfig"):
        estimate(ExperimentConfig().to_dict())


def test_the_estimate_is_quick_for_absurd_sizes():
    """No array and no list of epochs is built: a billion epochs of a trillion points is estimated at once."""
    import time

    t0 = time.perf_counter()
    est = estimate(ExperimentConfig(n_base=10**12, epochs=10**9))
    assert time.perf_counter() - t0 < 0.5 and est.memory_bytes > 10**15


def test_the_constants_copied_from_upper_layers_are_theirs():
    """core may not import metric or models: the sizes it copies from them are checked here."""
    from memnb.metric.neighbors import NEIGHBOUR_FIELDS, RELATIVE_NEIGHBOURS, TORCH_CHUNK_BYTES
    from memnb.models.sampling import CHUNK

    assert resources.RELATIVE_NEIGHBOURS == RELATIVE_NEIGHBOURS and resources.SAMPLE_CHUNK == CHUNK
    assert resources.TORCH_SEARCH_BYTES == 2 * TORCH_CHUNK_BYTES
    assert resources.EPOCH_ARRAY_COUNT == 1 + 2 * len(NEIGHBOUR_FIELDS) + 3  # samples, 2 sources, summary, zu, zu_n
