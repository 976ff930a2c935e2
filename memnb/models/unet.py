"""A small convolutional U-Net for single-channel images (e.g. digits' 8x8), as a batched ensemble.

After diffusers' UNet2DModel, shrunk to two resolutions. One member, with C = hidden_size,
E = embedding_size, images H x W (the dataset's `image_shape`, d = H W, row-major) and every conv 3x3
with padding 1 unless said otherwise:

    temb = Linear(E, E)(SiLU(Linear(E, E)(e)))       e = [sin(t f), cos(t f)], f_k = exp(-ln(1e4) k / (E/2 - 1))
    x (d,) -> image (1, H, W)
    h0 = Conv(1 -> C)(image)                          H x W
    s  = Res(C -> C)(h0, temb)                        H x W      (the skip connection)
    h  = Conv(C -> C, stride 2)(s)                    H/2 x W/2  (rounded up)
    h  = Res(C -> 2C)(h, temb)                        H/2 x W/2
    h  = Conv(2C -> C)(nearest-upsample(h) to H x W)  H x W
    h  = Res(2C -> C)([h, s], temb)                   H x W      (channels concatenated)
    eps = Conv(C -> 1)(SiLU(GN(h)))                   -> (d,)

    Res(a -> b)(h, temb) = Conv(b -> b)(SiLU(GN(Conv(a -> b)(SiLU(GN(h))) + Linear(E, b)(SiLU(temb))))) + skip(h)

with skip a 1x1 Conv(a -> b) when a != b, else the identity, and GN a GroupNorm with affine weight and bias, of
`norm_groups(c)` groups (the largest divisor of c up to 8). `hidden_layers` is not used: the depth is fixed.

Parameters per member (`unet_parameter_count`), with conv(a, b, k) = (a k^2 + 1) b, lin(a, b) = (a + 1) b,
gn(c) = 2 c and res(a, b) = gn(a) + conv(a, b, 3) + lin(E, b) + gn(b) + conv(b, b, 3) + [a != b] conv(a, b, 1):

    2 lin(E, E) + conv(1, C, 3) + res(C, C) + conv(C, C, 3) + res(C, 2C) + conv(2C, C, 3) + res(2C, C)
    + gn(C) + conv(C, 1, 3)

i.e. 141,057 at C = E = 32, 35,713 at C = E = 16 and 2,235,393 at C = E = 128.

The ensemble: members are stacked along the channel axis, activations (B, R * c, H, W) with member r's c
channels at r c .. (r + 1) c - 1, and every conv is one grouped convolution (groups = R) whose weight is the
stacked (R, c_out, c_in, k, k) parameter; GroupNorm runs with R times the groups (a group never spans two
members), and the time terms are batched linear layers (baddbmm). So member r only ever sees its own inputs
and parameters. Every parameter has the member axis first: conv weights (R, c_out, c_in, k, k) and biases
(R, c_out), linear weights (R, in, out) and biases (R, 1, out), GroupNorm weights and biases (R, c). Member r is
initialised from its own generator only, layer by layer in the order above, with nn.Conv2d's and nn.Linear's
defaults (weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn as torch's (out, in, ...) layout, weight
then bias) and GroupNorm's (weight 1, bias 0).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..core.registry import DATASETS, DENOISERS
from . import Denoiser
from .tiny_diffusion import sinusoidal_embedding, sinusoidal_frequencies

MAX_NORM_GROUPS = 8
# forward() runs batches of more images per member in pieces of this many, so that the activations of R members
# stay in cache: the sampler passes 1024 points per member, and on a CPU (R = 10, C = 32, one thread) pieces of 32
# run about twice as fast as one piece of 1024
FORWARD_CHUNK = 32


def norm_groups(channels: int) -> int:
    """GroupNorm's groups for `channels`: the largest divisor of it up to 8."""
    return max(g for g in range(1, MAX_NORM_GROUPS + 1) if channels % g == 0)


def unet_parameter_count(hidden_size: int, embedding_size: int) -> int:
    """Parameters per member, from the module docstring's formula."""
    c, e = hidden_size, embedding_size

    def conv(a, b, k=3):
        return (a * k * k + 1) * b

    def lin(a, b):
        return (a + 1) * b

    def res(a, b):
        return 2 * a + conv(a, b) + lin(e, b) + 2 * b + conv(b, b) + (conv(a, b, 1) if a != b else 0)

    return (
        2 * lin(e, e)
        + conv(1, c)
        + res(c, c)
        + conv(c, c)
        + res(c, 2 * c)
        + conv(2 * c, c)
        + res(2 * c, c)
        + 2 * c
        + conv(c, 1)
    )


def _uniform(shape: tuple[int, ...], bound: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=g.device) * (2 * bound) - bound


class MemberConv(nn.Module):
    """R convolutions c_in -> c_out as one grouped conv on (B, R c_in, H, W). weight (R, c_out, c_in, k, k), bias (R, c_out)."""

    def __init__(self, n_members: int, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, device=None):
        super().__init__()
        self.n_members, self.stride, self.padding = n_members, stride, kernel // 2
        self.weight = nn.Parameter(torch.empty(n_members, c_out, c_in, kernel, kernel, device=device))
        self.bias = nn.Parameter(torch.empty(n_members, c_out, device=device))

    @torch.no_grad()
    def init_member(self, r: int, g: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.weight[0].numel() // self.weight.shape[1])  # nn.Conv2d: 1/sqrt(c_in k^2)
        self.weight[r].copy_(_uniform(tuple(self.weight.shape[1:]), bound, g))
        self.bias[r].copy_(_uniform(tuple(self.bias.shape[1:]), bound, g))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        w = self.weight.flatten(0, 1)  # (R c_out, c_in, k, k): member r's filters see only its c_in channels
        return F.conv2d(h, w, self.bias.flatten(), stride=self.stride, padding=self.padding, groups=self.n_members)


class MemberLinear(nn.Module):
    """R linear layers on (R, B, in) with baddbmm. weight (R, in, out), bias (R, 1, out)."""

    def __init__(self, n_members: int, fan_in: int, fan_out: int, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_members, fan_in, fan_out, device=device))
        self.bias = nn.Parameter(torch.empty(n_members, 1, fan_out, device=device))

    @torch.no_grad()
    def init_member(self, r: int, g: torch.Generator) -> None:
        fan_in, fan_out = self.weight.shape[1:]
        bound = 1.0 / math.sqrt(fan_in)
        self.weight[r].copy_(_uniform((fan_out, fan_in), bound, g).T)  # drawn as nn.Linear's (out, in)
        self.bias[r].copy_(_uniform((1, fan_out), bound, g))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, h, self.weight)


class MemberGroupNorm(nn.Module):
    """R GroupNorms over (B, R c, H, W): R * norm_groups(c) groups, each within one member. weight, bias (R, c)."""

    def __init__(self, n_members: int, channels: int, device=None):
        super().__init__()
        self.groups = n_members * norm_groups(channels)
        self.weight = nn.Parameter(torch.ones(n_members, channels, device=device))
        self.bias = nn.Parameter(torch.zeros(n_members, channels, device=device))

    @torch.no_grad()
    def init_member(self, r: int, g: torch.Generator) -> None:
        self.weight[r].fill_(1.0)
        self.bias[r].fill_(0.0)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.group_norm(h, self.groups, self.weight.flatten(), self.bias.flatten(), eps=1e-5)


def _per_member_channels(v: torch.Tensor) -> torch.Tensor:
    """(R, B, c) -> (B, R c, 1, 1): a per-image, per-channel term in the stacked layout."""
    n_members, batch, c = v.shape
    return v.transpose(0, 1).reshape(batch, n_members * c, 1, 1)


class MemberResBlock(nn.Module):
    """diffusers' ResnetBlock2D per member: GN, SiLU, conv, + time term, GN, SiLU, conv, + skip (1x1 conv if c_in != c_out)."""

    def __init__(self, n_members: int, c_in: int, c_out: int, embedding_size: int, device=None):
        super().__init__()
        self.norm1 = MemberGroupNorm(n_members, c_in, device)
        self.conv1 = MemberConv(n_members, c_in, c_out, 3, device=device)
        self.time = MemberLinear(n_members, embedding_size, c_out, device)
        self.norm2 = MemberGroupNorm(n_members, c_out, device)
        self.conv2 = MemberConv(n_members, c_out, c_out, 3, device=device)
        self.skip = MemberConv(n_members, c_in, c_out, 1, device=device) if c_in != c_out else None

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """h (B, R c_in, H, W), temb (R, B, E) -> (B, R c_out, H, W)."""
        y = self.conv1(F.silu(self.norm1(h)))
        y = y + _per_member_channels(self.time(F.silu(temb)))
        y = self.conv2(F.silu(self.norm2(y)))
        return y + (h if self.skip is None else self.skip(h))


class UNetEnsemble(nn.Module):
    """R small U-Nets on H x W single-channel images: forward(x (R, B, H W), t (R, B) int) -> eps (R, B, H W)."""

    def __init__(
        self,
        generators: list[torch.Generator],
        image_shape: tuple[int, int],
        hidden_size: int = 32,
        embedding_size: int = 32,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        if len(generators) < 1:
            raise ValueError("generators: got none, need one per member (at least one)")
        R, c, e = len(generators), hidden_size, embedding_size
        self.n_members, self.image_shape = R, tuple(int(s) for s in image_shape)
        self.dim = self.image_shape[0] * self.image_shape[1]
        self.hidden_size, self.embedding_size = hidden_size, embedding_size
        self.register_buffer("freqs", sinusoidal_frequencies(e, device), persistent=False)
        # registration order is the initialisation order (see init_member)
        self.time1 = MemberLinear(R, e, e, device)
        self.time2 = MemberLinear(R, e, e, device)
        self.conv_in = MemberConv(R, 1, c, 3, device=device)
        self.res_down = MemberResBlock(R, c, c, e, device)
        self.down = MemberConv(R, c, c, 3, stride=2, device=device)
        self.res_mid = MemberResBlock(R, c, 2 * c, e, device)
        self.up = MemberConv(R, 2 * c, c, 3, device=device)
        self.res_up = MemberResBlock(R, 2 * c, c, e, device)
        self.norm_out = MemberGroupNorm(R, c, device)
        self.conv_out = MemberConv(R, c, 1, 3, device=device)
        layers = [m for m in self.modules() if m is not self and hasattr(m, "init_member")]
        for r, g in enumerate(generators):
            for layer in layers:
                layer.init_member(r, g)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise eps (R, B, d) for noisy images x (R, B, d) at integer timesteps t (R, B).

        Every image is processed on its own (GroupNorm normalises per image), so running a large batch in
        pieces of FORWARD_CHUNK images per member gives the same result, faster."""
        if x.shape[1] <= FORWARD_CHUNK:
            return self._forward(x, t)
        return torch.cat(
            [
                self._forward(x[:, i : i + FORWARD_CHUNK], t[:, i : i + FORWARD_CHUNK])
                for i in range(0, x.shape[1], FORWARD_CHUNK)
            ],
            dim=1,
        )

    def _forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        R, B, _ = x.shape
        H, W = self.image_shape
        c = self.hidden_size
        temb = self.time2(F.silu(self.time1(sinusoidal_embedding(t.to(torch.float32), self.freqs))))  # (R, B, E)
        h = x.to(torch.float32).transpose(0, 1).reshape(B, R, H, W)  # member r's image is channel r
        skip = self.res_down(self.conv_in(h), temb)  # (B, R c, H, W)
        h = self.res_mid(self.down(skip), temb)  # (B, R 2c, H/2, W/2)
        h = self.up(F.interpolate(h, size=(H, W), mode="nearest"))  # (B, R c, H, W)
        h = torch.cat([h.view(B, R, c, H, W), skip.view(B, R, c, H, W)], dim=2).view(B, R * 2 * c, H, W)
        h = self.res_up(h, temb)
        h = self.conv_out(F.silu(self.norm_out(h)))  # (B, R, H, W)
        return h.reshape(B, R, H * W).transpose(0, 1).contiguous()

    def member_parameter_count(self) -> int:
        return sum(p[0].numel() for p in self.parameters())


def _build(config, generators, device) -> UNetEnsemble:
    ds = DATASETS.get(config.dataset)
    if ds.image_shape is None:
        images = " | ".join(d.name for d in DATASETS if d.image_shape is not None) or "none registered"
        raise ValueError(
            f"config field 'dataset' = {config.dataset!r} is invalid for denoiser 'unet'; "
            f"allowed: a dataset of images ({images})"
        )
    h, w = ds.image_shape
    if h * w != config.dim:
        raise ValueError(
            f"config field 'dataset' = {config.dataset!r} has image_shape {ds.image_shape} but dim {config.dim}; "
            "allowed: a dataset whose dim is height * width"
        )
    return UNetEnsemble(list(generators), ds.image_shape, config.hidden_size, config.embedding_size, device)


DENOISERS.register(
    Denoiser(
        "unet",
        dims=None,
        build=_build,
        description="a small convolutional U-Net (two resolutions, diffusers-style residual blocks), image datasets only",
        images=True,
    )
)
