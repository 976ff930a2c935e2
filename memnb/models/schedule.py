"""DDPM noise schedule (Ho et al. 2020) with every per-step constant precomputed once.

Notation: beta_t linear from beta_start to beta_end over T steps, alpha_t = 1 - beta_t,
abar_t = prod_{s<=t} alpha_s, abar_{-1} = 1. Indices t = 0..T-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NoiseSchedule:
    betas: torch.Tensor  # (T,) float64
    alphas_cumprod: torch.Tensor  # (T,) abar_t
    alphas_cumprod_prev: torch.Tensor  # (T,) abar_{t-1}
    sqrt_alphas_cumprod: torch.Tensor  # (T,) forward process, eq. (4): x_t = sqrt(abar_t) x0 + sqrt(1-abar_t) eps
    sqrt_one_minus_alphas_cumprod: torch.Tensor  # (T,)
    mean_coef_x: torch.Tensor  # (T,) posterior mean coefficient of x_t once x0 is replaced by its eps-estimate
    mean_coef_eps: torch.Tensor  # (T,) ... and of the predicted eps
    posterior_std: torch.Tensor  # (T,) sqrt(beta~_t), beta~_t clipped at 1e-20; 0 at t=0 (no noise added)

    @property
    def num_timesteps(self) -> int:
        return len(self.betas)

    @classmethod
    def linear(cls, num_timesteps: int = 50, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        return cls.from_betas(torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64))

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> NoiseSchedule:
        """Every constant of the schedule with these (T,) float64 betas (a respaced schedule's too)."""
        alphas = 1.0 - betas
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        # x0 estimate, eq. (15) rearranged: x0 = x_t / sqrt(abar_t) - sqrt(1/abar_t - 1) eps
        s_x = 1.0 / abar.sqrt()
        s_eps = (1.0 / abar - 1.0).sqrt()
        # posterior q(x_{t-1} | x_t, x0), eq. (7): mean = c0 x0 + ct x_t
        c0 = betas * abar_prev.sqrt() / (1.0 - abar)
        ct = (1.0 - abar_prev) * alphas.sqrt() / (1.0 - abar)
        # substituting the x0 estimate: mean = (c0 s_x + ct) x_t - c0 s_eps eps  (= eq. (11))
        var = (betas * (1.0 - abar_prev) / (1.0 - abar)).clamp(min=1e-20)
        std = var.sqrt()
        std[0] = 0.0
        return cls(
            betas=betas,
            alphas_cumprod=abar,
            alphas_cumprod_prev=abar_prev,
            sqrt_alphas_cumprod=abar.sqrt(),
            sqrt_one_minus_alphas_cumprod=(1.0 - abar).sqrt(),
            mean_coef_x=c0 * s_x + ct,
            mean_coef_eps=c0 * s_eps,
            posterior_std=std,
        )

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> NoiseSchedule:
        return NoiseSchedule(**{k: v.to(device=device, dtype=dtype) for k, v in self.__dict__.items()})

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward process q(x_t | x0), eq. (4). x0, noise: (..., d); t: (...) int64."""
        return (
            self.sqrt_alphas_cumprod[t].unsqueeze(-1) * x0 + self.sqrt_one_minus_alphas_cumprod[t].unsqueeze(-1) * noise
        )
