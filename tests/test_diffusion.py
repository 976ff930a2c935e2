"""Schedule constants against closed forms computed independently in float64 Python."""

import math

import pytest
import torch

from memnb.models.schedule import NoiseSchedule


def closed_forms(T=50, b0=1e-4, b1=0.02):
    betas = [b0 + (b1 - b0) * t / (T - 1) for t in range(T)]
    abar, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        abar.append(prod)
    return betas, abar


def test_linear_betas_and_cumulative_products():
    s = NoiseSchedule.linear(50, 1e-4, 0.02)
    betas, abar = closed_forms()
    assert s.num_timesteps == 50
    assert s.betas.tolist() == pytest.approx(betas, rel=1e-12)
    assert s.alphas_cumprod.tolist() == pytest.approx(abar, rel=1e-12)
    assert s.alphas_cumprod_prev.tolist() == pytest.approx([1.0] + abar[:-1], rel=1e-12)
    assert s.alphas_cumprod[-1].item() == pytest.approx(math.prod(1 - b for b in betas), rel=1e-12)


def test_sampler_step_is_ho_et_al_eq_11_with_posterior_variance():
    s = NoiseSchedule.linear(50, 1e-4, 0.02)
    betas, abar = closed_forms()
    for t in range(50):
        alpha = 1 - betas[t]
        # eq. (11): x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z
        assert s.mean_coef_x[t].item() == pytest.approx(1 / math.sqrt(alpha), rel=1e-10)
        assert s.mean_coef_eps[t].item() == pytest.approx(
            betas[t] / (math.sqrt(alpha) * math.sqrt(1 - abar[t])), rel=1e-10
        )
        prev = abar[t - 1] if t > 0 else 1.0
        var = max(betas[t] * (1 - prev) / (1 - abar[t]), 1e-20)
        assert s.posterior_std[t].item() == pytest.approx(0.0 if t == 0 else math.sqrt(var), rel=1e-10)


def test_add_noise_is_forward_process():
    s = NoiseSchedule.linear(10, 1e-4, 0.02)
    x0, eps = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    t = torch.tensor([0, 3, 9, 9, 1])
    _, abar = closed_forms(10)
    want = torch.stack([math.sqrt(abar[i]) * x0[j] + math.sqrt(1 - abar[i]) * eps[j] for j, i in enumerate(t.tolist())])
    torch.testing.assert_close(s.add_noise(x0, eps, t), want)


def test_custom_schedule_lengths():
    s = NoiseSchedule.linear(200, 1e-4, 0.02)
    betas, abar = closed_forms(200)
    assert s.alphas_cumprod[-1].item() == pytest.approx(abar[-1], rel=1e-10)
