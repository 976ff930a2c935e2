"""Device selection, and (where a GPU exists) CUDA against the CPU on the same seeds."""

import numpy as np
import pytest
import torch

from memnb.core.config import ExperimentConfig
from memnb.core.device import resolve_device
from memnb.experiment.repeats import RepeatData
from memnb.models.ensemble import Ensemble

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_auto_picks_cuda_only_when_available():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_gpu_fails_early_naming_the_field():
    with pytest.raises(ValueError, match="'device' = 'cuda'"):
        resolve_device("cuda")


@needs_cuda
def test_cuda_ensemble_matches_cpu_on_the_same_seeds():
    kw = dict(n_base=400, n_outliers=10, n_duplicates=10, n_repeats=2, epochs=1)
    data = RepeatData(ExperimentConfig(device="cpu", **kw)).train_points
    cpu, gpu = (
        Ensemble(ExperimentConfig(device="cpu", **kw), data),
        Ensemble(ExperimentConfig(device="cuda", **kw), data),
    )
    for a, b in zip(cpu.model.parameters(), gpu.model.parameters()):  # same initial weights on every device
        assert torch.equal(a, b.cpu())
    x, t = torch.randn(2, 64, 2), torch.randint(0, 50, (2, 64))
    assert torch.allclose(cpu.model(x, t), gpu.model(x.cuda(), t.cuda()).cpu(), atol=1e-4)
    assert np.isfinite(gpu.train_epoch(0)).all()
    # CUDA's generators draw other numbers than the CPU's: compare distributions, not points
    s_cpu, s_gpu = cpu.generate(1, n=4000), gpu.generate(1, n=4000)
    assert s_gpu.shape == s_cpu.shape and np.isfinite(s_gpu).all()
    assert np.allclose(s_cpu.mean(axis=1), s_gpu.mean(axis=1), atol=0.1)
