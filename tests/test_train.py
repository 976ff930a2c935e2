import numpy as np
import torch

from memnb.experiment.repeats import RepeatData
from memnb.models.ensemble import Ensemble
from memnb.models.tiny_diffusion import EnsembleDenoiser
from memnb.models.train import clip_grad_norm_per_member


def test_per_member_clipping_matches_torch_on_each_member_alone():
    ens = EnsembleDenoiser(3, generators=[torch.Generator().manual_seed(i) for i in range(3)])
    grads = [torch.randn_like(p) * s for p, s in zip(ens.parameters(), [1, 0.01, 3, 0.2, 0.001, 5, 1, 0.1, 2, 0.3])]
    for p, g in zip(ens.parameters(), grads):
        p.grad = g.clone()
    clip_grad_norm_per_member(list(ens.parameters()), 1.0)
    for r in range(3):
        alone = [torch.nn.Parameter(p[r].detach().clone()) for p in ens.parameters()]
        for a, g in zip(alone, grads):
            a.grad = g[r].clone()
        torch.nn.utils.clip_grad_norm_(alone, 1.0)
        for a, p in zip(alone, ens.parameters()):
            torch.testing.assert_close(p.grad[r], a.grad)


def test_small_gradients_are_not_clipped():
    ens = EnsembleDenoiser(2)
    for p in ens.parameters():
        p.grad = torch.full_like(p, 1e-6)
    before = [p.grad.clone() for p in ens.parameters()]
    clip_grad_norm_per_member(list(ens.parameters()), 1.0)
    for b, p in zip(before, ens.parameters()):
        torch.testing.assert_close(p.grad, b)


def test_ensemble_of_two_equals_each_repeat_trained_alone(tiny_config):
    """The batched ensemble is only a speed-up: repeat r's samples do not depend on who it trains with."""
    data = RepeatData(tiny_config, [0, 1]).train_points
    both = Ensemble(tiny_config, data, [0, 1])
    alone = [Ensemble(tiny_config, data[r : r + 1], [r]) for r in (0, 1)]
    for epoch in range(2):
        loss_both = both.train_epoch(epoch)
        for r, e in enumerate(alone):
            np.testing.assert_allclose(e.train_epoch(epoch), loss_both[r : r + 1], rtol=1e-4)
    s_both = both.generate(2, n=300)
    for r, e in enumerate(alone):
        np.testing.assert_allclose(e.generate(2, n=300)[0], s_both[r], atol=1e-4)
    assert not np.allclose(s_both[0], s_both[1])


def test_training_lowers_the_loss():
    from memnb import ExperimentConfig

    c = ExperimentConfig(n_base=2000, n_outliers=0, n_duplicates=0, n_repeats=2, device="cpu")
    ens = Ensemble(c, RepeatData(c).train_points)
    losses = [ens.train_epoch(e) for e in range(4)]
    assert (losses[-1] < 0.85 * losses[0]).all()
