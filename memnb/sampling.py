"""Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2) for every ensemble member at once."""

from __future__ import annotations

import torch

from .diffusion import NoiseSchedule
from .model import EnsembleDenoiser

CHUNK = 2048  # points per member processed through all T steps at once; keeps activations in cache


@torch.inference_mode()
def generate(model: EnsembleDenoiser, schedule: NoiseSchedule, n: int, generators: list[torch.Generator],
             chunk: int = CHUNK) -> torch.Tensor:
    """Draw n samples per member. Returns (R, n, 2) on the model's device.

    All noise is drawn up front per member (x_T, then z for t = 0..T-1), so the result does not
    depend on `chunk` and member r's samples depend only on its own generator.
    """
    device = model.freqs.device
    T = schedule.num_timesteps
    x_T, z = [], []
    for g in generators:
        x_T.append(torch.randn(n, 2, generator=g, device=g.device))
        z.append(torch.randn(T, n, 2, generator=g, device=g.device))
    x_T = torch.stack(x_T).to(device)
    z = torch.stack(z, dim=1).to(device)  # (T, R, n, 2)
    time_terms = [model.time_term(t) for t in range(T)]
    a, b, s = (v.tolist() for v in (schedule.mean_coef_x, schedule.mean_coef_eps, schedule.posterior_std))
    out = torch.empty_like(x_T)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        x = x_T[:, lo:hi]
        for t in reversed(range(T)):
            eps = model.forward_at_step(x, time_terms[t])
            # x_{t-1} = mu~(x_t, x0_hat(x_t, eps)) + sigma~_t z, eq. (7) with eq. (15); sigma~_0 = 0
            x = a[t] * x - b[t] * eps
            if t > 0:
                x = x + s[t] * z[t, :, lo:hi]
        out[:, lo:hi] = x
    return out
