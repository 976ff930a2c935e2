"""Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2) for every ensemble member at once.

Any denoiser works through its forward(x, t); one that offers ``sampling_network(T, dtype, chunk)``
(tiny-diffusion's hand-tuned `StepNetwork`) is sampled through that instead, with the same
arithmetic. Noise is drawn up front, so the result does not depend on the chunk size.
"""

from __future__ import annotations

import torch

from .graphs import GraphedSampler
from .schedule import NoiseSchedule

CHUNK = 1024  # points per member carried through all T steps at once
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class _ForwardNetwork:
    """The generic path: eps = model(x, t) with every point at step t (matrix products in `dtype`)."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype):
        self.model, self.dtype = model, dtype

    def eps_at(self, x: torch.Tensor, t: int) -> torch.Tensor:
        steps = torch.full(x.shape[:2], t, dtype=torch.int64, device=x.device)
        # cache_enabled=False: a CUDA graph may capture this (autocast's weight cache must be off then); the cache
        # would not be reused anyway, every call opens a new autocast region
        with torch.autocast(x.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32, cache_enabled=False):
            return self.model(x, steps).float()


@torch.inference_mode()
def generate(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    n: int,
    generators: list[torch.Generator],
    chunk: int = CHUNK,
    precision: str = "fp32",
    graph: bool = False,
) -> torch.Tensor:
    """Draw n samples per member. Returns (R, n, d) float32 on the model's device (d = model.dim).

    All noise is drawn up front per member (x_T, then z for t = 0..T-1), so the result does not
    depend on `chunk` and member r's samples depend only on its own generator. `precision`
    "bf16" runs the network's matrix products in bfloat16 (x itself and the update stay float32).
    graph: run each chunk's T-step loop as a captured CUDA graph (memnb.models.graphs.GraphedSampler;
    CUDA only, same noise, same arithmetic); False: the eager loop below, the reference.
    """
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r} is unknown; allowed: {' | '.join(DTYPES)}")
    device = next(model.parameters()).device
    T, d = schedule.num_timesteps, model.dim
    x_T, z = [], []
    for g in generators:
        x_T.append(torch.randn(n, d, generator=g, device=g.device))
        z.append(torch.randn(T, n, d, generator=g, device=g.device))
    x_T = torch.stack(x_T).to(device)
    z = torch.stack(z, dim=1).to(device)  # (T, R, n, d)
    if callable(getattr(model, "sampling_network", None)):
        net = model.sampling_network(T, DTYPES[precision], min(chunk, n))
    else:
        net = _ForwardNetwork(model, DTYPES[precision])
    a, b, s = (v.tolist() for v in (schedule.mean_coef_x, schedule.mean_coef_eps, schedule.posterior_std))
    out = torch.empty_like(x_T)
    if graph:
        sampler = GraphedSampler(net, (a, b, s), graph=True)
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            out[:, lo:hi] = sampler.run(x_T[:, lo:hi], z[:, :, lo:hi])
        return out
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        x = x_T[:, lo:hi].clone()
        for t in reversed(range(T)):
            eps = net.eps_at(x, t)
            # x_{t-1} = mu~(x_t, x0_hat(x_t, eps)) + sigma~_t z, eq. (7) with eq. (15); sigma~_0 = 0
            x.mul_(a[t]).sub_(eps, alpha=b[t])
            if t > 0:
                x.add_(z[t, :, lo:hi], alpha=s[t])
        out[:, lo:hi] = x
    return out
