"""The tuned sampler against a plain ancestral-sampling loop over the model's forward()."""

import math

import pytest
import torch

from memnb.models.sampling import generate
from memnb.models.schedule import NoiseSchedule
from memnb.models.tiny_diffusion import EnsembleDenoiser


def reference_samples(model, n, seeds, T=50, b0=1e-4, b1=0.02):
    betas = [b0 + (b1 - b0) * t / (T - 1) for t in range(T)]
    abar = [math.prod(1 - b for b in betas[: t + 1]) for t in range(T)]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    x = torch.stack([torch.randn(n, 2, generator=g) for g in gens])
    z = torch.stack([torch.randn(T, n, 2, generator=g) for g in gens], 1)
    R = len(seeds)
    with torch.no_grad():
        for t in reversed(range(T)):
            eps = model(x, torch.full((R, n), t))
            alpha = 1 - betas[t]
            # Ho et al. (2020) eq. (11), with sigma_t^2 = beta~_t (posterior variance)
            x = (x - betas[t] / math.sqrt(1 - abar[t]) * eps) / math.sqrt(alpha)
            if t > 0:
                x = x + math.sqrt(betas[t] * (1 - abar[t - 1]) / (1 - abar[t])) * z[t]
    return x


@pytest.fixture(scope="module")
def model():
    return EnsembleDenoiser(2, generators=[torch.Generator().manual_seed(i) for i in range(2)])


def test_sampler_equals_plain_loop(model):
    ours = generate(model, NoiseSchedule.linear(), 300, [torch.Generator().manual_seed(s) for s in (7, 8)], chunk=128)
    torch.testing.assert_close(ours, reference_samples(model, 300, (7, 8)), rtol=1e-4, atol=1e-4)


def test_chunking_does_not_change_samples(model):
    s = NoiseSchedule.linear()
    a = generate(model, s, 500, [torch.Generator().manual_seed(s_) for s_ in (1, 2)], chunk=64)
    b = generate(model, s, 500, [torch.Generator().manual_seed(s_) for s_ in (1, 2)], chunk=4096)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_bf16_is_close_to_fp32(model):
    s = NoiseSchedule.linear()
    a = generate(model, s, 400, [torch.Generator().manual_seed(s_) for s_ in (1, 2)])
    b = generate(model, s, 400, [torch.Generator().manual_seed(s_) for s_ in (1, 2)], precision="bf16")
    assert (a - b).abs().mean() < 2e-3


def test_unknown_precision(model):
    with pytest.raises(ValueError, match="fp8"):
        generate(model, NoiseSchedule.linear(), 10, [torch.Generator(), torch.Generator()], precision="fp8")
