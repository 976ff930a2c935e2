"""Sampling every ensemble member at once: ancestral DDPM (Ho et al. 2020), or a strided DDPM / DDIM on S of T steps.

Any denoiser works through its forward(x, t); one that offers ``sampling_network(T, dtype, chunk)``
(tiny-diffusion's hand-tuned `StepNetwork`) is sampled through that instead, with the same
arithmetic. Noise is drawn up front, so the result does not depend on the chunk size.

`generate(..., sampler="ddpm", steps=None)` is the paper's sampler (Algorithm 2, all T steps). With fewer steps, or
sampler="ddim", it runs `sample_strided`: the network at the S timesteps of `sample_timesteps` only, with either
the respaced DDPM of Nichol & Dhariwal (2021, section 4) or DDIM's deterministic update (Song et al. 2021, eq. 12,
eta = 0). Both start from the same x_T as the full sampler for the same generator (it is drawn first).
"""

from __future__ import annotations

import torch

from ..core.config_checks import SAMPLERS
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
    sampler: str = "ddpm",
    steps: int | None = None,
) -> torch.Tensor:
    """Draw n samples per member. Returns (R, n, d) float32 on the model's device (d = model.dim).

    sampler "ddpm" with steps None (or T): the full ancestral sampler below; otherwise `sample_strided` on `steps`
    (None: T) of the T steps (SAMPLERS: ddpm = respaced DDPM, ddim = deterministic DDIM).

    All noise is drawn up front per member (x_T, then z for t = 0..T-1), so the result does not
    depend on `chunk` and member r's samples depend only on its own generator. `precision`
    "bf16" runs the network's matrix products in bfloat16 (x itself and the update stay float32).
    graph: run each chunk's T-step loop as a captured CUDA graph (memnb.models.graphs.GraphedSampler;
    CUDA only, same noise, same arithmetic); False: the eager loop below, the reference.
    """
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r} is unknown; allowed: {' | '.join(DTYPES)}")
    T = schedule.num_timesteps
    if sampler != "ddpm" or (steps is not None and steps != T):
        return sample_strided(
            model, schedule, n, generators, sampler, T if steps is None else steps, chunk, precision, graph
        )
    device = next(model.parameters()).device
    d = model.dim
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


def sample_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """The S = `steps` timesteps a strided sampler visits, increasing: tau_i = floor(i (T - 1) / (S - 1) + 1/2),
    i = 0..S-1 (S = 1: [T - 1]).

    Evenly spaced with both ends kept, as improved-diffusion's ``space_timesteps`` (Nichol & Dhariwal 2021, section 4;
    it rounds half to even, this rounds half up, in exact integer arithmetic): t = T - 1, where x_T ~ N(0, I)
    enters (memnb's T = 50 chain ends at abar_49 = 0.6, far from pure noise, so it must start where the full
    sampler does), and t = 0, the last denoising step. The stride (T - 1) / (S - 1) >= 1 keeps them distinct.
    """
    if not (isinstance(num_timesteps, int) and num_timesteps >= 1):
        raise ValueError(f"num_timesteps = {num_timesteps!r} is invalid; allowed: an integer >= 1")
    if not (isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= num_timesteps):
        raise ValueError(f"steps = {steps!r} is invalid; allowed: an integer from 1 to num_timesteps = {num_timesteps}")
    if steps == 1:
        return [num_timesteps - 1]
    T, S = num_timesteps, steps
    return [(2 * i * (T - 1) + (S - 1)) // (2 * (S - 1)) for i in range(S)]


def respace(schedule: NoiseSchedule, timesteps: list[int]) -> NoiseSchedule:
    """The S-step DDPM whose step i jumps from tau_i to tau_{i-1} of `schedule` (Nichol & Dhariwal 2021, section 4).

    beta'_i = 1 - abar_{tau_i} / abar_{tau_{i-1}} (abar_{tau_{-1}} = 1), so that abar'_i = abar_{tau_i}: the
    respaced chain has the marginals q(x_t | x_0) of the original at the visited steps, and its posterior
    (eq. 7) and std sqrt(beta~'_i) follow from these betas (`NoiseSchedule.from_betas`). Where tau_i =
    tau_{i-1} + 1 the ratio is beta_{tau_i} itself, taken as it is, so all T steps give `schedule`'s constants back
    to the bit. Float64 on the CPU; step i's network call is at the original timestep tau_i.
    """
    abar = schedule.alphas_cumprod.detach().double().cpu()
    tau = torch.tensor(timesteps, dtype=torch.int64)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[tau[:-1]]])
    consecutive = torch.cat([tau[:1] == 0, tau[1:] == tau[:-1] + 1])
    betas = torch.where(consecutive, schedule.betas.detach().double().cpu()[tau], 1.0 - abar[tau] / prev)
    return NoiseSchedule.from_betas(betas)


def strided_coefficients(
    schedule: NoiseSchedule, timesteps: list[int], sampler: str
) -> tuple[list[float], list[float], list[float]]:
    """(a, b, s) per step i of the update x_{tau_{i-1}} = a_i x_{tau_i} - b_i eps(x_{tau_i}, tau_i) + s_i z_i.

    ddpm: the respaced DDPM's eq. (11) with sigma_i^2 = beta~'_i (`respace`). ddim: Song et al. (2021) eq. (12) with
    eta = 0 (sigma = 0): x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps, x0_hat = (x - sqrt(1 - abar) eps)
    / sqrt(abar), so a = sqrt(abar_prev / abar), b = sqrt(abar_prev) sqrt(1/abar - 1) - sqrt(1 - abar_prev), s = 0;
    abar_prev = 1 at the last step (x_0 = x0_hat).
    """
    if sampler == "ddpm":
        r = respace(schedule, timesteps)
        return r.mean_coef_x.tolist(), r.mean_coef_eps.tolist(), r.posterior_std.tolist()
    if sampler != "ddim":
        raise ValueError(f"sampler = {sampler!r} is invalid; allowed: {' | '.join(SAMPLERS)}")
    abar = schedule.alphas_cumprod.detach().double().cpu()[torch.tensor(timesteps)]
    prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    a = (prev / abar).sqrt()
    b = prev.sqrt() * (1.0 / abar - 1.0).sqrt() - (1.0 - prev).sqrt()
    return a.tolist(), b.tolist(), [0.0] * len(timesteps)


class _AtTimesteps:
    """The sampler's network with step index i mapped to the original timestep tau_i (GraphedSampler's loop counts
    steps, the network is conditioned on timesteps)."""

    def __init__(self, net, timesteps: list[int]):
        self.net, self.timesteps = net, timesteps

    def eps_at(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self.net.eps_at(x, self.timesteps[i])


@torch.inference_mode()
def sample_strided(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    n: int,
    generators: list[torch.Generator],
    sampler: str = "ddim",
    steps: int = 10,
    chunk: int = CHUNK,
    precision: str = "fp32",
    graph: bool = False,
) -> torch.Tensor:
    """n samples per member from S = `steps` network calls (timesteps `sample_timesteps(T, S)`). (R, n, d) float32.

    1. Noise per member, up front, from its own generator: x_T (n, d) first (the full sampler's x_T for the same
       generator), then for ddpm z (S, n, d) (ddim draws nothing more: eta = 0).
    2. For i = S-1 .. 0: eps = eps_theta(x, tau_i); x <- a_i x - b_i eps (+ s_i z_i for i > 0, ddpm), with
       `strided_coefficients` (respaced DDPM eq. 11 / DDIM eq. 12).
    At S = T, ddpm is the full ancestral sampler on the same noise (tests/test_strided.py).
    graph: each chunk's loop as a captured CUDA graph (GraphedSampler; CUDA only, same noise and arithmetic).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler = {sampler!r} is invalid; allowed: {' | '.join(SAMPLERS)}")
    if precision not in DTYPES:
        raise ValueError(f"precision = {precision!r} is invalid; allowed: {' | '.join(DTYPES)}")
    T, d = schedule.num_timesteps, model.dim
    tau = sample_timesteps(T, steps)
    a, b, s = strided_coefficients(schedule, tau, sampler)
    device = next(model.parameters()).device
    x_T, z = [], []
    for g in generators:
        x_T.append(torch.randn(n, d, generator=g, device=g.device))
        if sampler == "ddpm":
            z.append(torch.randn(steps, n, d, generator=g, device=g.device))
    x_T = torch.stack(x_T).to(device)
    z = torch.stack(z, dim=1).to(device) if z else None  # (S, R, n, d)
    if callable(getattr(model, "sampling_network", None)):
        net = model.sampling_network(T, DTYPES[precision], min(chunk, n))
    else:
        net = _ForwardNetwork(model, DTYPES[precision])
    out = torch.empty_like(x_T)
    if graph:
        sampler_graph = GraphedSampler(_AtTimesteps(net, tau), (a, b, s), graph=True)
        if z is None:  # its loop adds s_i z_i with s = 0
            z = torch.zeros((steps, *x_T.shape), device=device)
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            out[:, lo:hi] = sampler_graph.run(x_T[:, lo:hi], z[:, :, lo:hi])
        return out
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        x = x_T[:, lo:hi].clone()
        for i in reversed(range(steps)):
            eps = net.eps_at(x, tau[i])
            x.mul_(a[i]).sub_(eps, alpha=b[i])
            if z is not None and i > 0:
                x.add_(z[i, :, lo:hi], alpha=s[i])
        out[:, lo:hi] = x
    return out
