"""Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2) for every ensemble member at once.

Sampling dominates the paper's protocol (n_train samples x T steps per evaluated epoch), so this
is the one hand-tuned loop of memnb. Per step it does exactly the model's arithmetic, with three
savings: the first layer's timestep term is computed once per step (every point shares t), the
embedding's sin and cos come from one sin over a contiguous buffer (cos a = sin(a + pi/2)), and
activations live in preallocated buffers sized to stay in cache (`chunk` points per member).
"""

from __future__ import annotations

import math

import torch

from .diffusion import NoiseSchedule
from .model import INPUT_SCALE, EnsembleDenoiser

CHUNK = 1024  # points per member carried through all T steps at once
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class _StepNetwork:
    """The denoiser's weights prepared for sampling in `dtype`, with preallocated activation buffers."""

    def __init__(self, model: EnsembleDenoiser, num_timesteps: int, dtype: torch.dtype, chunk: int):
        e, R, H = model.embedding_size, model.n_members, model.hidden_size
        self.dtype = dtype
        self.w_xy = model.weights[0][:, e:, :].detach().to(dtype).contiguous()  # (R, 2E, H)
        self.time_terms = [model.time_term(t).detach().to(dtype) for t in range(num_timesteps)]  # (R, 1, H) each
        self.blocks = [(w.detach().to(dtype), b.detach().to(dtype)) for w, b in zip(model.weights[1:-1], model.biases[1:-1])]
        self.w_out, self.b_out = model.weights[-1].detach().to(dtype), model.biases[-1].detach().to(dtype)
        half = e // 2
        freqs = INPUT_SCALE * model.freqs.detach()
        self.freqs = torch.cat([freqs, freqs])  # (E,) sin half then cos half
        self.phase = torch.cat([torch.zeros(half), torch.full((half,), math.pi / 2)]).to(freqs.device)
        device = freqs.device
        self.arg = torch.empty(R, chunk, 2, e, device=device)  # fp32: the sin argument needs the precision
        # in fp32 the embedding is the sin buffer itself; in bf16 a cast copy of it
        self.emb = self.arg.view(R, chunk, 2 * e) if dtype == torch.float32 else torch.empty(R, chunk, 2 * e, device=device, dtype=dtype)
        self.h = torch.empty(R, chunk, H, device=device, dtype=dtype)
        self.tmp = torch.empty(R, chunk, H, device=device, dtype=dtype)
        self.eps = torch.empty(R, chunk, 2, device=device, dtype=dtype)

    def eps_at(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """Predicted noise (R, c, 2) for x (R, c, 2) float32 at step t."""
        c = x.shape[1]
        arg, emb, h, tmp, eps = self.arg[:, :c], self.emb[:, :c], self.h[:, :c], self.tmp[:, :c], self.eps[:, :c]
        # [sin(25 x f), cos(25 x f), sin(25 y f), cos(25 y f)], cos a = sin(a + pi/2)
        torch.addcmul(self.phase, x.unsqueeze(-1), self.freqs, out=arg)
        arg.sin_()
        if emb.dtype != arg.dtype:
            emb.copy_(arg.view(emb.shape))
        torch.baddbmm(self.time_terms[t], emb, self.w_xy, out=h)
        torch._C._nn.gelu_(h)
        for w, b in self.blocks:  # h <- h + GELU(h W + b)
            torch.baddbmm(b, h, w, out=tmp)
            torch._C._nn.gelu_(tmp)
            h.add_(tmp)
        return torch.baddbmm(self.b_out, h, self.w_out, out=eps)


@torch.inference_mode()
def generate(model: EnsembleDenoiser, schedule: NoiseSchedule, n: int, generators: list[torch.Generator],
             chunk: int = CHUNK, precision: str = "fp32") -> torch.Tensor:
    """Draw n samples per member. Returns (R, n, 2) float32 on the model's device.

    All noise is drawn up front per member (x_T, then z for t = 0..T-1), so the result does not
    depend on `chunk` and member r's samples depend only on its own generator. `precision`
    "bf16" runs the network's matrix products in bfloat16 (x itself and the update stay float32).
    """
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r} is unknown; allowed: {' | '.join(DTYPES)}")
    device = model.freqs.device
    T = schedule.num_timesteps
    x_T, z = [], []
    for g in generators:
        x_T.append(torch.randn(n, 2, generator=g, device=g.device))
        z.append(torch.randn(T, n, 2, generator=g, device=g.device))
    x_T = torch.stack(x_T).to(device)
    z = torch.stack(z, dim=1).to(device)  # (T, R, n, 2)
    net = _StepNetwork(model, T, DTYPES[precision], min(chunk, n))
    a, b, s = (v.tolist() for v in (schedule.mean_coef_x, schedule.mean_coef_eps, schedule.posterior_std))
    out = torch.empty_like(x_T)
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
