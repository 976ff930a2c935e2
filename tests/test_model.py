"""The batched ensemble against a plain, independently written tiny-diffusion MLP."""

import math

import pytest
import torch
from torch import nn

from memnb.models.tiny_diffusion import EnsembleDenoiser


class ReferenceMLP(nn.Module):
    """One denoiser written the plain way: nn.Linear layers and an explicit embedding."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(384, 128)
        self.blocks = nn.ModuleList(nn.Linear(128, 128) for _ in range(3))
        self.out = nn.Linear(128, 2)

    @staticmethod
    def emb(v):
        freqs = torch.tensor([math.exp(-math.log(10000.0) * k / 63) for k in range(64)])
        a = v[:, None] * freqs[None]
        return torch.cat([torch.sin(a), torch.cos(a)], 1)

    def forward(self, x, t):
        h = torch.cat([self.emb(t.float()), self.emb(25 * x[:, 0]), self.emb(25 * x[:, 1])], 1)
        h = nn.functional.gelu(self.first(h))
        for blk in self.blocks:
            h = h + nn.functional.gelu(blk(h))
        return self.out(h)


def load_member(ref: ReferenceMLP, ens: EnsembleDenoiser, r: int) -> None:
    layers = [ref.first, *ref.blocks, ref.out]
    with torch.no_grad():
        for lin, w, b in zip(layers, ens.weights, ens.biases):
            lin.weight.copy_(w[r].T)
            lin.bias.copy_(b[r, 0])


def test_parameter_count_is_tiny_diffusions():
    ens = EnsembleDenoiser(3)
    assert ens.member_parameter_count() == 99_074
    assert sum(p.numel() for p in ReferenceMLP().parameters()) == 99_074


def test_every_member_equals_the_reference_network():
    g = [torch.Generator().manual_seed(i) for i in range(3)]
    ens = EnsembleDenoiser(3, generators=g)
    x = torch.randn(3, 17, 2)
    t = torch.randint(0, 50, (3, 17))
    out = ens(x, t)
    for r in range(3):
        ref = ReferenceMLP()
        load_member(ref, ens, r)
        torch.testing.assert_close(out[r], ref(x[r], t[r]), rtol=1e-5, atol=1e-5)


def test_fixed_step_forward_equals_forward():
    ens = EnsembleDenoiser(2, generators=[torch.Generator().manual_seed(i) for i in range(2)])
    x = torch.randn(2, 33, 2)
    for t in (0, 17, 49):
        full = ens(x, torch.full((2, 33), t))
        torch.testing.assert_close(ens.forward_at_step(x, ens.time_term(t)), full, rtol=1e-5, atol=1e-5)


def test_init_matches_linear_default_bounds_and_differs_by_member():
    ens = EnsembleDenoiser(2, generators=[torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])
    w = ens.weights[0]
    assert w.abs().max().item() <= 1 / math.sqrt(384)
    assert w.abs().max().item() > 0.9 / math.sqrt(384)
    assert not torch.equal(w[0], w[1])
    same = EnsembleDenoiser(1, generators=[torch.Generator().manual_seed(1)])
    assert torch.equal(same.weights[0][0], w[1])


def test_generator_count_must_match_members():
    with pytest.raises(ValueError, match="one per member"):
        EnsembleDenoiser(2, generators=[torch.Generator()])
