"""Each vocabulary once: adding a dataset, a criterion or a denoiser is one record, and the whole protocol
(config validation, training, sampling, search, tables, explorer) picks it up; dimension is data, not code."""

import numpy as np
import pytest
import torch

from memnb import ExperimentConfig, run_experiment
from memnb.core.registry import CRITERIA, DATASETS, DENOISERS, Registry
from memnb.data import Dataset
from memnb.metric.criteria import Criterion
from memnb.models import Denoiser

TINY = dict(
    n_base=120,
    n_outliers=6,
    n_duplicates=6,
    epochs=2,
    n_repeats=2,
    batch_size=16,
    device="cpu",
    hidden_size=16,
    embedding_size=8,
    hidden_layers=1,
)


def cube(n, rng):
    """Uniform points in the unit cube of 3-D space."""
    return rng.uniform(-1.0, 1.0, (n, 3))


class LinearEnsemble(torch.nn.Module):
    """R members, each eps = [x, t/T] W + b, weights (R, d+1, d): a denoiser for any d."""

    def __init__(self, n_members, dim, generators):
        super().__init__()
        self.n_members, self.dim = n_members, dim
        w = torch.stack([torch.randn(dim + 1, dim, generator=g) * 0.1 for g in generators])
        self.w = torch.nn.Parameter(w)
        self.b = torch.nn.Parameter(torch.zeros(n_members, 1, dim))

    def forward(self, x, t):
        h = torch.cat([x, t.to(x.dtype).unsqueeze(-1) / 50.0], dim=-1)
        return torch.baddbmm(self.b, h, self.w)


LINEAR = Denoiser("linear_test", dims=None, build=lambda c, gens, device: LinearEnsemble(len(gens), c.dim, gens))


def test_the_built_in_entries():
    assert DATASETS.names() == ("moons", "circle", "line", "gmm", "gmm_d", "digits")
    assert DENOISERS.names()[:2] == ("tiny_diffusion", "residual_mlp")
    assert CRITERIA.names() == ("paper", "train_only", "relative")
    assert [d.dim for d in DATASETS] == [2, 2, 2, 2, None, 64]


def test_unknown_names_fail_naming_the_field_and_what_is_allowed():
    with pytest.raises(
        ValueError,
        match=r"'dataset' = 'mnist' is invalid; allowed: moons \| circle \| line \| gmm \| "
        r"gmm_d \| digits",
    ):
        ExperimentConfig(dataset="mnist")
    with pytest.raises(ValueError, match=r"'denoiser' = 'unet2' is invalid; allowed: tiny_diffusion \| residual_mlp"):
        ExperimentConfig(denoiser="unet2")
    with pytest.raises(ValueError, match=r"criterion 'nope' is unknown; allowed: paper \| train_only \| relative"):
        CRITERIA.get("nope")


def test_a_registry_refuses_a_second_record_of_one_name():
    reg = Registry("thing", "memnb.core")
    reg.register(Dataset("a", 2, cube))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(Dataset("a", 3, cube))
    with reg.added(Dataset("b", 2, cube)):
        assert reg.names() == ("a", "b")
    assert reg.names() == ("a",)


def test_a_3d_dataset_and_a_new_denoiser_run_the_whole_protocol(tmp_path):
    """One record each: (R, N, 3) arrays through injection, training, sampling, null draws, search and tables."""
    with DATASETS.added(Dataset("cube_test", 3, cube)), DENOISERS.added(LINEAR):
        with pytest.raises(
            ValueError, match="'denoiser' = 'tiny_diffusion' is invalid; allowed: a denoiser for 3-dimensional data"
        ):
            ExperimentConfig(dataset="cube_test", denoiser="tiny_diffusion", **TINY)
        assert ExperimentConfig(dataset="cube_test", **TINY).denoiser == "residual_mlp"  # "auto" outside 2-D
        config = ExperimentConfig(dataset="cube_test", denoiser="linear_test", **TINY)
        assert config.dim == 3 and config.neighbors == "kdtree"  # "auto": the k-d tree up to d = 3
        res = run_experiment(config, root=tmp_path, progress=False)
        data = res.data
        assert data["train_points"].shape == (2, 132, 3) and data["test_points"].shape == (2, 120, 3)
        assert data["cluster_centre"].shape == (2, 3)
        # the outlier cluster sits outlier_distance per-axis stds from the base mean, in a random 3-D direction
        base = data["train_points"][0, :120]
        u = (data["cluster_centre"][0] - base.mean(0)) / (2.0 * base.std(0))
        assert np.linalg.norm(u) == pytest.approx(1.0)
        arrays = res.epoch_arrays(2)
        assert arrays["samples"].shape == (2, 132, 3) and np.isfinite(arrays["samples"]).all()
        # the stored d1 is the exact distance to the nearest training point, in 3-D
        s, train = arrays["samples"][0].astype(np.float64), data["train_points"][0]
        d = np.linalg.norm(s[:, None] - train[None], axis=-1).min(1)
        np.testing.assert_allclose(arrays["d1"][0], d, rtol=1e-3, atol=1e-3)  # samples are stored as float16
        assert set(res.table().criterion) == set(CRITERIA.names())


def test_a_new_criterion_is_one_record(tmp_path):
    """A criterion added to the registry appears in the table, with its own threshold, and in the explorer."""
    strict_paper = Criterion(
        "strict_paper_test",
        numerator="d_test",
        strict=True,
        threshold_field="ratio",
        rule="strict paper: d_test > {k:g}·d1",
        button="strict paper",
    )
    with CRITERIA.added(strict_paper):
        config = ExperimentConfig(**TINY)
        res = run_experiment(config, root=tmp_path, progress=False)
        table = res.table()
        new = table[table.criterion == "strict_paper_test"].reset_index(drop=True)
        paper = table[table.criterion == "paper"].reset_index(drop=True)
        assert len(new) == len(paper) > 0 and config.ratio in set(new.threshold)
        # continuous distances: '>' and '>=' differ only on ties, so the rates agree with the paper's
        np.testing.assert_allclose(new.memorized, paper.memorized)
        rates = res.rates_at("strict_paper_test", 1.7)
        np.testing.assert_allclose(rates.memorized, res.rates_at("paper", 1.7).memorized)
        from memnb.views.widgets import Explorer

        ex = Explorer(res, progress=False)
        assert ("strict paper", "strict_paper_test") in ex.criterion.options
