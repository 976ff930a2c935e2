"""A time-conditioned residual MLP on raw coordinates, for data of any dimension, as a batched ensemble.

The denoiser of Bonnaire et al. (2025) in spirit: a residual MLP of 3 blocks of width 128 with a
sinusoidal time encoding. One member, with d the data dimension, W = hidden_size, E = embedding_size
and L = hidden_layers:

    e   = [sin(t f), cos(t f)]                  (B, E)   f_k = exp(-ln(1e4) k / (E/2 - 1)), t the integer step
    tau = Linear(E, W)(e)                       (B, W)   the time term, shared by the blocks
    h   = Linear(d, W)(x)                       (B, W)   x: the raw coordinates
    L times:  h <- h + Linear(W, W)(GELU(Linear(W, W)(h + tau)))
    eps = Linear(W, d)(h)                       (B, d)

No normalisation layers. Parameters per member (weights and biases):

    (E + 1) W  +  (d + 1) W  +  2 L (W + 1) W  +  (W + 1) d

e.g. 132,160 at W = E = 128, L = 3, d = 64 (116,226 at d = 2).

Every weight is stored (R, in, out) and every bias (R, 1, out), so a layer is one
`baddbmm(b, h, W)` on activations (R, B, in) for all R members at once. Member r is initialised
from its own generator only, with nn.Linear's default U(-1/sqrt(in), 1/sqrt(in)) for weight and
bias, drawn layer by layer in the order above (time, input, block 1 first and second, ..., output),
weight (as nn.Linear's (out, in)) then bias.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..core.registry import DENOISERS
from . import Denoiser
from .tiny_diffusion import sinusoidal_embedding, sinusoidal_frequencies


def residual_mlp_parameter_count(dim: int, hidden_size: int, hidden_layers: int, embedding_size: int) -> int:
    """Parameters per member: (E + 1) W + (d + 1) W + 2 L (W + 1) W + (W + 1) d."""
    d, w, n, e = dim, hidden_size, hidden_layers, embedding_size
    return (e + 1) * w + (d + 1) * w + 2 * n * (w + 1) * w + (w + 1) * d


class ResidualMLPEnsemble(nn.Module):
    """R residual MLPs with stacked weights: forward(x (R, B, d), t (R, B) int) -> eps (R, B, d) float32.

    Parameters, in order: weights[i] (R, in, out) and biases[i] (R, 1, out) for layers i = 0 (time,
    E -> W), 1 (input, d -> W), 2 + 2l and 3 + 2l (block l's two W -> W layers), and the last (output, W -> d).
    """

    def __init__(
        self,
        generators: list[torch.Generator],
        dim: int,
        hidden_size: int = 128,
        hidden_layers: int = 3,
        embedding_size: int = 128,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        if len(generators) < 1:
            raise ValueError("generators: got none, need one per member (at least one)")
        self.n_members, self.dim = len(generators), dim
        self.hidden_size, self.hidden_layers, self.embedding_size = hidden_size, hidden_layers, embedding_size
        self.register_buffer("freqs", sinusoidal_frequencies(embedding_size, device), persistent=False)
        w = hidden_size
        shapes = [(embedding_size, w), (dim, w)] + [(w, w)] * (2 * hidden_layers) + [(w, dim)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(self.n_members, fan_in, fan_out, device=device)) for fan_in, fan_out in shapes
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(self.n_members, 1, fan_out, device=device)) for _, fan_out in shapes
        )
        with torch.no_grad():
            for r, g in enumerate(generators):
                for wt, b in zip(self.weights, self.biases):
                    fan_in, fan_out = wt.shape[1], wt.shape[2]
                    bound = 1.0 / math.sqrt(fan_in)
                    wt[r].copy_((torch.rand(fan_out, fan_in, generator=g, device=g.device) * (2 * bound) - bound).T)
                    b[r].copy_(torch.rand(1, fan_out, generator=g, device=g.device) * (2 * bound) - bound)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise eps (R, B, d) for noisy points x (R, B, d) at integer timesteps t (R, B)."""
        ws, bs = self.weights, self.biases
        emb = sinusoidal_embedding(t.to(torch.float32), self.freqs)  # (R, B, E)
        tau = torch.baddbmm(bs[0], emb, ws[0])  # (R, B, W)
        h = torch.baddbmm(bs[1], x.to(torch.float32), ws[1])
        for i in range(self.hidden_layers):
            w1, b1, w2, b2 = ws[2 + 2 * i], bs[2 + 2 * i], ws[3 + 2 * i], bs[3 + 2 * i]
            h = h + torch.baddbmm(b2, F.gelu(torch.baddbmm(b1, h + tau, w1)), w2)
        return torch.baddbmm(bs[-1], h, ws[-1])

    def member_parameter_count(self) -> int:
        return sum(p[0].numel() for p in self.parameters())


def _build(config, generators, device) -> ResidualMLPEnsemble:
    return ResidualMLPEnsemble(
        list(generators), config.dim, config.hidden_size, config.hidden_layers, config.embedding_size, device
    )


DENOISERS.register(
    Denoiser(
        "residual_mlp",
        dims=None,
        build=_build,
        description="a time-conditioned residual MLP on raw coordinates (Bonnaire et al. 2025), any dimension",
    )
)
