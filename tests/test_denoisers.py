"""The residual MLP and the U-Net denoisers: parameter counts, each member against a plain single-network
reference, an ensemble of two against each member alone (initialisation, forward, two epochs of training),
and the whole protocol end to end."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from memnb import ExperimentConfig, run_experiment
from memnb.core.registry import DATASETS
from memnb.core.seeding import Stream, torch_generator
from memnb.data import Dataset
from memnb.models import make_denoiser
from memnb.models.residual_mlp import ResidualMLPEnsemble, residual_mlp_parameter_count
from memnb.models.schedule import NoiseSchedule
from memnb.models.train import make_optimizer, train_epoch
from memnb.models.unet import UNetEnsemble, norm_groups, unet_parameter_count

IMAGES = "tiny_images_test"


def random_images(n, rng):
    """Random 8x8 images with pixels uniform in [-1, 1], row-major (n, 64)."""
    return rng.uniform(-1.0, 1.0, (n, 64))


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are tiny: one thread is as fast, and spares oneDNN's convolutions the OpenMP spin-waits that
    slow them tenfold when another process holds one of two cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def images():
    """A temporary 8x8 image dataset (any real image dataset would do; this one needs no files)."""
    with DATASETS.added(Dataset(IMAGES, 64, random_images, "random 8x8 test images", image_shape=(8, 8))):
        yield IMAGES


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def embedding(t, size):
    """[sin(t f), cos(t f)], f_k = exp(-ln(1e4) k / (size/2 - 1)), written out once more."""
    half = size // 2
    f = torch.exp(-math.log(1e4) * torch.arange(half, dtype=torch.float32) / (half - 1))
    a = t.float().unsqueeze(-1) * f
    return torch.cat([torch.sin(a), torch.cos(a)], dim=-1)


# -- plain single-network references ----------------------------------------------------------------------


class PlainResidualMLP(nn.Module):
    def __init__(self, d, width, layers, emb):
        super().__init__()
        self.emb = emb
        self.time, self.inp = nn.Linear(emb, width), nn.Linear(d, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.Linear(width, width)) for _ in range(layers)
        )
        self.out = nn.Linear(width, d)

    def layers(self):
        return [self.time, self.inp] + [lin for b in self.blocks for lin in b] + [self.out]

    def load_member(self, ens, r):
        with torch.no_grad():
            for lin, w, b in zip(self.layers(), ens.weights, ens.biases):
                lin.weight.copy_(w[r].T)
                lin.bias.copy_(b[r, 0])

    def forward(self, x, t):  # x (B, d), t (B,)
        tau = self.time(embedding(t, self.emb))
        h = self.inp(x)
        for first, second in self.blocks:
            h = h + second(F.gelu(first(h + tau)))
        return self.out(h)


class PlainResBlock(nn.Module):
    def __init__(self, a, b, emb):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(norm_groups(a), a), nn.Conv2d(a, b, 3, padding=1)
        self.time = nn.Linear(emb, b)
        self.norm2, self.conv2 = nn.GroupNorm(norm_groups(b), b), nn.Conv2d(b, b, 3, padding=1)
        self.skip = nn.Conv2d(a, b, 1) if a != b else None

    def forward(self, h, temb):
        y = self.conv1(F.silu(self.norm1(h))) + self.time(F.silu(temb))[:, :, None, None]
        y = self.conv2(F.silu(self.norm2(y)))
        return y + (h if self.skip is None else self.skip(h))


class PlainUNet(nn.Module):
    """The U-Net of one member, written with nn.Conv2d, nn.GroupNorm and nn.Linear on (B, 1, 8, 8)."""

    def __init__(self, c, emb):
        super().__init__()
        self.emb = emb
        self.time1, self.time2 = nn.Linear(emb, emb), nn.Linear(emb, emb)
        self.conv_in = nn.Conv2d(1, c, 3, padding=1)
        self.res_down = PlainResBlock(c, c, emb)
        self.down = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.res_mid = PlainResBlock(c, 2 * c, emb)
        self.up = nn.Conv2d(2 * c, c, 3, padding=1)
        self.res_up = PlainResBlock(2 * c, c, emb)
        self.norm_out = nn.GroupNorm(norm_groups(c), c)
        self.conv_out = nn.Conv2d(c, 1, 3, padding=1)

    def load_member(self, ens, r):
        theirs, modules = dict(ens.named_parameters()), dict(self.named_modules())
        assert theirs.keys() == dict(self.named_parameters()).keys()
        with torch.no_grad():
            for name, p in self.named_parameters():
                q = theirs[name][r]  # linear weights are stored (in, out), the rest in torch's layout
                linear_weight = isinstance(modules[name.rsplit(".", 1)[0]], nn.Linear) and name.endswith("weight")
                p.copy_(q.T if linear_weight else q.view_as(p))

    def forward(self, x, t):  # x (B, 64), t (B,)
        temb = self.time2(F.silu(self.time1(embedding(t, self.emb))))
        s = self.res_down(self.conv_in(x.view(-1, 1, 8, 8)), temb)
        h = self.res_mid(self.down(s), temb)
        h = self.up(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.res_up(torch.cat([h, s], dim=1), temb)
        return self.conv_out(F.silu(self.norm_out(h))).flatten(1)


# -- parameter counts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d, width, layers, emb, expected", [(64, 128, 3, 128, 132_160), (2, 128, 3, 128, 116_226), (5, 7, 0, 4, None)]
)
def test_residual_mlp_parameter_count(d, width, layers, emb, expected):
    ens = ResidualMLPEnsemble(gens(0, 1), d, width, layers, emb)
    plain = sum(p.numel() for p in PlainResidualMLP(d, width, layers, emb).parameters())
    assert ens.member_parameter_count() == plain == residual_mlp_parameter_count(d, width, layers, emb)
    assert all(p.shape[0] == 2 for p in ens.parameters())
    assert expected in (None, plain)


@pytest.mark.parametrize(
    "c, emb, expected", [(32, 32, 141_057), (16, 16, 35_713), (128, 128, 2_235_393), (12, 8, None)]
)
def test_unet_parameter_count(c, emb, expected):
    plain = sum(p.numel() for p in PlainUNet(c, emb).parameters())
    ens = UNetEnsemble(gens(0, 1), (8, 8), c, emb)
    assert ens.member_parameter_count() == plain == unet_parameter_count(c, emb)
    assert all(p.shape[0] == 2 for p in ens.parameters())
    assert expected in (None, plain)


# -- each member is the plain network ---------------------------------------------------------------------


def test_residual_mlp_members_are_the_plain_network():
    ens = ResidualMLPEnsemble(gens(0, 1, 2), 3, 16, 2, 8)
    x, t = torch.randn(3, 40, 3), torch.randint(0, 50, (3, 40))
    out = ens(x, t)
    assert out.shape == (3, 40, 3) and out.dtype == torch.float32
    ref = PlainResidualMLP(3, 16, 2, 8)
    for r in range(3):
        ref.load_member(ens, r)
        torch.testing.assert_close(out[r], ref(x[r], t[r]), rtol=1e-5, atol=1e-5)


def test_unet_members_are_the_plain_network():
    ens = UNetEnsemble(gens(0, 1, 2), (8, 8), 8, 8)
    x, t = torch.randn(3, 70, 64), torch.randint(0, 50, (3, 70))  # 70 > FORWARD_CHUNK: run in pieces
    out = ens(x, t)
    assert out.shape == (3, 70, 64) and out.dtype == torch.float32
    torch.testing.assert_close(out, ens._forward(x, t), rtol=1e-5, atol=1e-5)
    ref = PlainUNet(8, 8)
    for r in range(3):
        ref.load_member(ens, r)
        torch.testing.assert_close(out[r], ref(x[r], t[r]), rtol=1e-4, atol=1e-5)


def test_init_follows_torch_defaults_from_each_members_generator():
    """Weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (nn.Linear's and nn.Conv2d's), GroupNorm 1 and 0,
    different in every member."""
    mlp = ResidualMLPEnsemble(gens(0, 1), 4, 16, 1, 8)
    layers = [(w, b, w.shape[1]) for w, b in zip(mlp.weights, mlp.biases)]  # (R, in, out)
    unet = UNetEnsemble(gens(0, 1), (8, 8), 8, 8)
    for name, m in unet.named_modules():
        if "norm" in name:
            assert torch.all(m.weight == 1.0) and torch.all(m.bias == 0.0), name
        elif hasattr(m, "init_member"):
            w = m.weight
            layers.append((w, m.bias, w[0, 0].numel() if w.dim() == 5 else w.shape[1]))  # conv: in k^2
    assert len(layers) == 5 + 17  # time, input, 2 block layers, output; the U-Net's 17 convs and linears
    for w, b, fan_in in layers:
        for p in (w, b):
            bound = 1.0 / math.sqrt(fan_in)
            assert p.abs().max() <= bound
            assert p[0].numel() < 8 or p.abs().max() > 0.5 * bound  # the scale, not just the bound
            assert not torch.equal(p[0], p[1])
    same = ResidualMLPEnsemble(gens(1), 4, 16, 1, 8)
    assert all(torch.equal(p[1:], q) for p, q in zip(mlp.parameters(), same.parameters()))


# -- an ensemble of two is each member alone --------------------------------------------------------------


def tiny_config(denoiser, dataset, **kw):
    return ExperimentConfig(
        dataset=dataset,
        denoiser=denoiser,
        n_base=96,
        n_outliers=0,
        n_duplicates=0,
        batch_size=32,
        hidden_size=16,
        embedding_size=16,
        hidden_layers=2,
        num_timesteps=20,
        device="cpu",
        **kw,
    )


@pytest.mark.parametrize("denoiser", ["residual_mlp", "unet"])
def test_ensemble_of_two_equals_each_member_trained_alone(denoiser, images):
    c = tiny_config(denoiser, images)
    both = make_denoiser(c, [torch_generator(c.seed, r, Stream.INIT) for r in (0, 1)])
    alone = [make_denoiser(c, [torch_generator(c.seed, r, Stream.INIT)]) for r in (0, 1)]
    assert both.n_members == 2 and both.dim == 64 and alone[0].n_members == 1
    for r, m in enumerate(alone):
        for (name, p), q in zip(both.named_parameters(), m.parameters()):
            assert p.shape[0] == 2 and torch.equal(p[r : r + 1], q), name
    x, t = torch.randn(2, 32, 64), torch.randint(0, c.num_timesteps, (2, 32))
    out = both(x, t)
    for r, m in enumerate(alone):
        torch.testing.assert_close(m(x[r : r + 1], t[r : r + 1]), out[r : r + 1], rtol=1e-4, atol=1e-5)

    data = torch.tensor(random_images(2 * 96, np.random.default_rng(0)), dtype=torch.float32).view(2, 96, 64)
    schedule = NoiseSchedule.linear(c.num_timesteps, c.beta_start, c.beta_end)
    opt_both = make_optimizer(both, c.learning_rate, c.weight_decay)
    opt_alone = [make_optimizer(m, c.learning_rate, c.weight_decay) for m in alone]
    for epoch in range(2):
        train_gens = [torch_generator(c.seed, r, Stream.TRAIN, epoch) for r in (0, 1)]
        loss_both = train_epoch(both, opt_both, schedule, data, c.batch_size, c.grad_clip, train_gens)
        for r, (m, opt) in enumerate(zip(alone, opt_alone)):
            g = [torch_generator(c.seed, r, Stream.TRAIN, epoch)]
            loss = train_epoch(m, opt, schedule, data[r : r + 1], c.batch_size, c.grad_clip, g)
            torch.testing.assert_close(loss, loss_both[r : r + 1], rtol=1e-4, atol=0)
    assert not torch.equal(loss_both[0], loss_both[1])
    # a grouped conv of two members and a conv of one sum in different orders: weights agree to float rounding
    # (atol far below one AdamW step, lr = 1e-3), not bit for bit
    for r, m in enumerate(alone):
        for (name, p), q in zip(both.named_parameters(), m.parameters()):
            torch.testing.assert_close(
                p[r : r + 1], q, rtol=1e-4, atol=1e-5, msg=lambda msg, name=name: f"{name}: {msg}"
            )


# -- the whole protocol -----------------------------------------------------------------------------------


@pytest.mark.parametrize("denoiser", ["residual_mlp", "unet"])
def test_a_tiny_run_end_to_end(denoiser, images, tmp_path):
    dataset = "gmm" if denoiser == "residual_mlp" else images
    config = ExperimentConfig(
        dataset=dataset,
        denoiser=denoiser,
        n_base=100,
        n_outliers=5,
        n_duplicates=5,
        epochs=2,
        n_repeats=2,
        batch_size=32,
        hidden_size=16,
        embedding_size=16,
        hidden_layers=2,
        num_timesteps=20,
        device="cpu",
    )
    res = run_experiment(config, root=tmp_path, progress=False)
    assert res.complete and res.evaluated_epochs == [0, 1, 2]
    d = 2 if denoiser == "residual_mlp" else 64
    for e in res.evaluated_epochs:
        samples = res.epoch_arrays(e)["samples"]
        assert samples.shape == (2, config.n_generate_points, d) and np.isfinite(samples).all()
    loss = res.loss()
    assert len(loss) == 2 * 2 and np.isfinite(loss["loss"]).all()


def test_unet_refuses_a_dataset_without_images():
    """Before any work: the config itself is refused, naming the field, the value and what is allowed."""
    with pytest.raises(
        ValueError,
        match=r"'denoiser' = 'unet' is invalid; allowed: a denoiser for dataset 'moons', "
        r"which is not images",
    ):
        ExperimentConfig(dataset="moons", denoiser="unet", n_base=100, n_outliers=0, n_duplicates=0, device="cpu")
