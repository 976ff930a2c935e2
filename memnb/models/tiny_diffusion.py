"""tiny-diffusion's denoiser (the 2-D default), re-implemented as a batched ensemble: R independent networks in one module.

One member: sinusoidal embeddings of t, 25*x and 25*y (E each), concatenated (3E) ->
Linear(3E, H) + GELU -> L residual blocks h + GELU(Linear(H, H)(h)) -> Linear(H, 2), predicting
the noise eps. With E = H = 128 and L = 3 that is 99,074 parameters per member.

Every weight carries a leading repeat axis, so R members train and sample with batched matrix
products (one kernel for all repeats) while staying mathematically independent: member r only
ever sees its own inputs and parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..core.registry import DENOISERS
from . import Denoiser

INPUT_SCALE = 25.0  # tiny-diffusion scales x and y before embedding them


def sinusoidal_frequencies(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(size/2,) frequencies exp(-ln(1e4) k / (size/2 - 1)), k = 0..size/2-1."""
    half = size // 2
    k = torch.arange(half, dtype=torch.float32, device=device)
    return torch.exp(-math.log(1e4) * k / (half - 1))


def sinusoidal_embedding(v: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """(...,) values -> (..., 2F) embedding [sin(v f), cos(v f)]."""
    arg = v.unsqueeze(-1) * freqs
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)


class EnsembleDenoiser(nn.Module):
    """R denoisers with stacked weights.

    Weights are stored (R, in, out) and biases (R, 1, out) so that a layer is one
    `baddbmm(b, h, W)` on activations h of shape (R, B, in).
    """

    def __init__(
        self,
        n_members: int,
        hidden_size: int = 128,
        hidden_layers: int = 3,
        embedding_size: int = 128,
        generators: list[torch.Generator] | None = None,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        self.n_members, self.hidden_size, self.embedding_size = n_members, hidden_size, embedding_size
        self.dim = 2  # tiny-diffusion embeds x and y separately: 2-D data only
        self.register_buffer("freqs", sinusoidal_frequencies(embedding_size, device), persistent=False)
        # [f, f] and [0, pi/2]: one sin gives [sin(v f), cos(v f)] since cos a = sin(a + pi/2)
        self.register_buffer("freqs2", torch.cat([self.freqs, self.freqs]), persistent=False)
        self.register_buffer(
            "phase",
            torch.cat(
                [
                    torch.zeros(embedding_size // 2, device=device),
                    torch.full((embedding_size // 2,), math.pi / 2, device=device),
                ]
            ),
            persistent=False,
        )
        shapes = [(3 * embedding_size, hidden_size)] + [(hidden_size, hidden_size)] * hidden_layers + [(hidden_size, 2)]
        gens = generators if generators is not None else [None] * n_members
        if len(gens) != n_members:
            raise ValueError(f"generators: got {len(gens)}, need one per member ({n_members})")
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in shapes:
            self.weights.append(nn.Parameter(torch.empty(n_members, fan_in, fan_out, device=device)))
            self.biases.append(nn.Parameter(torch.empty(n_members, 1, fan_out, device=device)))
        # torch.nn.Linear's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias,
        # drawn member by member from that member's own generator (layer order, weight then bias).
        with torch.no_grad():
            for r, g in enumerate(gens):
                for w, b in zip(self.weights, self.biases):
                    bound = 1.0 / math.sqrt(w.shape[1])
                    w[r].copy_(
                        torch.rand(w.shape[2], w.shape[1], generator=g, device=device).mul_(2 * bound).sub_(bound).T
                    )
                    b[r].copy_(torch.rand(1, b.shape[2], generator=g, device=device).mul_(2 * bound).sub_(bound))

    def embed(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (R, B, 2), t (R, B) -> (R, B, 3E) = [emb(t), emb(25 x), emb(25 y)], in three kernels."""
        v = torch.cat([t.to(x.dtype).unsqueeze(-1), INPUT_SCALE * x], dim=-1)  # (R, B, 3)
        arg = torch.addcmul(self.phase, v.unsqueeze(-1), self.freqs2)  # (R, B, 3, E)
        return arg.sin_().flatten(-2)

    def trunk(self, h: torch.Tensor) -> torch.Tensor:
        """Residual blocks and output layer on the first layer's activations h (R, B, H) -> (R, B, 2)."""
        for w, b in zip(self.weights[1:-1], self.biases[1:-1]):
            h = h + F.gelu(torch.baddbmm(b, h, w))
        return torch.baddbmm(self.biases[-1], h, self.weights[-1])

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise eps (R, B, 2) for noisy points x (R, B, 2) at integer timesteps t (R, B)."""
        return self.trunk(F.gelu(torch.baddbmm(self.biases[0], self.embed(x, t), self.weights[0])))

    def time_term(self, t: int) -> torch.Tensor:
        """(R, 1, H): the first layer's contribution of timestep t plus its bias.

        During sampling every point of a step shares t, so this third of the first layer is
        computed once per step instead of once per point.
        """
        e = self.embedding_size
        emb_t = sinusoidal_embedding(torch.tensor(float(t), device=self.freqs.device), self.freqs)  # (E,)
        return torch.matmul(emb_t, self.weights[0][:, :e, :]).unsqueeze(1) + self.biases[0]

    def forward_at_step(self, x: torch.Tensor, time_term: torch.Tensor) -> torch.Tensor:
        """Same as forward() when every point shares the step whose `time_term` is given. x (R, B, 2)."""
        e = self.embedding_size
        emb_xy = torch.cat(
            [
                sinusoidal_embedding(INPUT_SCALE * x[..., 0], self.freqs),
                sinusoidal_embedding(INPUT_SCALE * x[..., 1], self.freqs),
            ],
            dim=-1,
        )
        return self.trunk(F.gelu(torch.baddbmm(time_term, emb_xy, self.weights[0][:, e:, :])))

    def member_parameter_count(self) -> int:
        return sum(p[0].numel() for p in self.parameters())

    def sampling_network(self, num_timesteps: int, dtype: torch.dtype, chunk: int) -> StepNetwork:
        """The sampler's fast path (memnb.models.sampling): same arithmetic as forward(), see StepNetwork."""
        return StepNetwork(self, num_timesteps, dtype, chunk)


class StepNetwork:
    """The denoiser's weights prepared for sampling in `dtype`, with preallocated activation buffers.

    Sampling dominates the paper's protocol (n_train samples x T steps per evaluated epoch). Per step
    this does exactly the model's arithmetic, with three savings: the first layer's timestep term is
    computed once per step (every point shares t), the embedding's sin and cos come from one sin over a
    contiguous buffer (cos a = sin(a + pi/2)), and activations live in preallocated buffers sized to
    stay in cache (`chunk` points per member).
    """

    def __init__(self, model: EnsembleDenoiser, num_timesteps: int, dtype: torch.dtype, chunk: int):
        e, R, H = model.embedding_size, model.n_members, model.hidden_size
        self.dtype = dtype
        self.w_xy = model.weights[0][:, e:, :].detach().to(dtype).contiguous()  # (R, 2E, H)
        self.time_terms = [model.time_term(t).detach().to(dtype) for t in range(num_timesteps)]  # (R, 1, H) each
        self.blocks = [
            (w.detach().to(dtype), b.detach().to(dtype)) for w, b in zip(model.weights[1:-1], model.biases[1:-1])
        ]
        self.w_out, self.b_out = model.weights[-1].detach().to(dtype), model.biases[-1].detach().to(dtype)
        half = e // 2
        freqs = INPUT_SCALE * model.freqs.detach()
        self.freqs = torch.cat([freqs, freqs])  # (E,) sin half then cos half
        self.phase = torch.cat([torch.zeros(half), torch.full((half,), math.pi / 2)]).to(freqs.device)
        device = freqs.device
        self.arg = torch.empty(R, chunk, 2, e, device=device)  # fp32: the sin argument needs the precision
        # in fp32 the embedding is the sin buffer itself; in bf16 a cast copy of it
        self.emb = (
            self.arg.view(R, chunk, 2 * e)
            if dtype == torch.float32
            else torch.empty(R, chunk, 2 * e, device=device, dtype=dtype)
        )
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


def _build(config, generators, device) -> EnsembleDenoiser:
    return EnsembleDenoiser(
        len(generators), config.hidden_size, config.hidden_layers, config.embedding_size, generators, device
    )


DENOISERS.register(
    Denoiser(
        "tiny_diffusion",
        dims=(2,),
        build=_build,
        description="tiny-diffusion's MLP on sinusoidal embeddings of t, x and y (2-D only)",
    )
)
