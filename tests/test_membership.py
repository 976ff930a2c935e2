"""Generation-free membership scores (memnb.metric.membership*): each score against a brute-force loop on a tiny
model, the quantile null's rate, and a memorizing model that separates training from held-out points perfectly."""

import numpy as np
import pytest
import torch

from memnb.core.registry import DETECTORS
from memnb.metric import membership as mb
from memnb.metric.membership_null import auroc, first_flagged, group_table, quantile_threshold
from memnb.metric.membership_scores import calls_per_point, fixed_noise, score_points

T = 50
ABAR = np.cumprod(1 - np.linspace(1e-4, 0.02, T))


class TinyEps(torch.nn.Module):
    """eps(x, t) = MLP([x, t / T]) on any leading shape (*L, n, d)."""

    def __init__(self, d=2, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = torch.nn.Parameter(torch.randn(d + 1, 16, generator=g))
        self.w2 = torch.nn.Parameter(torch.randn(16, d, generator=g) / 4)

    def forward(self, x, t):
        h = torch.cat([x, (t.float() / T).unsqueeze(-1)], dim=-1)
        return torch.tanh(h @ self.w1) @ self.w2


def _one(model, x, t):
    """ε̂ of one point x (d,) at step t, as a float64 numpy vector."""
    with torch.no_grad():
        return model(torch.tensor(x, dtype=torch.float32)[None], torch.tensor([t]))[0].double().numpy()


def _c(t):
    return np.sqrt(ABAR[t]), np.sqrt(1 - ABAR[t])


@pytest.fixture
def setup():
    rng = np.random.default_rng(1)
    return TinyEps(), rng.standard_normal((7, 2)).astype(np.float32), rng.standard_normal((3, 7, 2)).astype(np.float32)


def test_timesteps_map_the_papers_band_to_memnb_5_to_23():
    assert mb.map_timesteps(ABAR, mb.BAND) == (5, 9, 14, 18, 23)
    assert mb.map_timesteps(ABAR, (0, 220, 999)) == (0, 49)  # the chain ends at a 1000-step DDPM's t = 220
    assert DETECTORS.get("secmi").timesteps(ABAR) == (0, 3, 5, 7, 9, 11, 14, 16, 18, 20, 23)


def test_denoising_loss_against_a_loop(setup):
    model, x, noise = setup
    ts = (5, 14, 23)
    got = mb.denoising_loss(model, ABAR, torch.tensor(x), ts, torch.tensor(noise))
    ref = [
        -np.mean([np.sum((_one(model, _c(t)[0] * x[i] + _c(t)[1] * noise[k, i], t) - noise[k, i]) ** 2)
                  for k, t in enumerate(ts)])
        for i in range(len(x))
    ]  # fmt: skip
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_pia_against_a_loop(setup):
    model, x, _ = setup
    ts = (5, 9, 23)
    got = mb.pia(model, ABAR, torch.tensor(x), ts)
    ref = []
    for i in range(len(x)):
        e0 = _one(model, x[i], 0)
        ref.append(-np.mean([np.sum(np.abs(_one(model, _c(t)[0] * x[i] + _c(t)[1] * e0, t) - e0) ** 4) for t in ts]))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


def test_secmi_against_a_loop(setup):
    model, x, _ = setup
    grid = (0, 3, 5, 9, 14)

    def step(v, t_from, t_to):  # DDIM, eta = 0: x0_hat then x_to
        e = _one(model, v, t_from)
        x0 = (v - _c(t_from)[1] * e) / _c(t_from)[0]
        return _c(t_to)[0] * x0 + _c(t_to)[1] * e

    ref = []
    for i in range(len(x)):
        v = x[i].astype(np.float64)
        for a, b in zip(grid[:-2], grid[1:-1]):
            v = step(v, a, b)
        back = step(step(v, grid[-2], grid[-1]), grid[-1], grid[-2])
        ref.append(-np.sum((v - back) ** 2))
    np.testing.assert_allclose(mb.secmi(model, ABAR, torch.tensor(x), grid), ref, rtol=1e-3, atol=1e-7)
    with pytest.raises(ValueError, match="grid"):
        mb.secmi(model, ABAR, torch.tensor(x), (5, 3))


def test_sima_against_a_loop(setup):
    model, x, _ = setup
    got = mb.sima(model, ABAR, torch.tensor(x), (14,))
    np.testing.assert_allclose(got, [-np.sum(np.abs(_one(model, p, 14)) ** 4) for p in x], rtol=1e-5)


def test_local_dimension_against_a_jacobian_per_point(setup):
    model, x, _ = setup
    t = 11
    a, s = _c(t)
    got = mb.local_dimension(model, ABAR, torch.tensor(x), t)
    ref = []
    for p in x:
        y = torch.tensor(a * p, dtype=torch.float32)
        jac = torch.autograd.functional.jacobian(lambda v: model(v[None], torch.tensor([t]))[0], y)
        e = _one(model, a * p, t)
        ref.append(2 - s * float(torch.trace(jac)) + np.sum(e**2))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mb.lid(model, ABAR, torch.tensor(x), (t,)), -np.asarray(ref), rtol=1e-4, atol=1e-5)


def test_an_ensemble_axis_scores_each_member_as_alone(setup):
    """(R, n, d) through one callable equals each repeat scored alone (the member axis is only batched)."""
    model, x, _ = setup
    xs = torch.tensor(np.stack([x, x[::-1].copy()]))
    for name in ("pia", "secmi", "sima", "lid"):
        rec = DETECTORS.get(name)
        both = rec.score(model, ABAR, xs, rec.timesteps(ABAR), None)
        for r in range(2):
            np.testing.assert_allclose(both[r], rec.score(model, ABAR, xs[r], rec.timesteps(ABAR), None), rtol=1e-5)


def test_calls_per_point():
    assert [calls_per_point(n, ABAR, 2) for n in ("loss", "pia", "secmi", "sima", "lid")] == [5, 6, 11, 1, 3]
    assert calls_per_point("lid", ABAR, 64) == 65


# -- the null and the decision ------------------------------------------------------------------------------------
def test_the_quantile_null_rate_is_q_on_held_out_points():
    rng = np.random.default_rng(0)
    for m, q in [(200, 0.05), (1000, 0.01), (100, 0.1), (37, 0.25)]:
        held = rng.standard_normal(m)
        thr = quantile_threshold(held, q)
        assert np.mean(held > thr) == np.floor(q * m) / m
    # fresh points of the same distribution: the rate is q within binomial noise (here 4 s.e.)
    held, fresh = rng.standard_normal(2000), rng.standard_normal(20000)
    rate = np.mean(fresh > quantile_threshold(held, 0.05))
    assert abs(rate - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 2000)
    assert np.isnan(quantile_threshold(np.array([]), 0.05))
    with pytest.raises(ValueError, match="q = 1.5 is invalid"):
        quantile_threshold(held, 1.5)


def test_the_decision_is_per_group():
    """Each group is thresholded against its own held-out points: the outliers' high held-out scores do not flag
    the inliers, and a group without held-out points has no decision."""
    rng = np.random.default_rng(2)
    held = np.concatenate([rng.normal(0, 1, 400), rng.normal(5, 1, 400)])
    held_g = np.repeat([0, 1], 400)
    train = np.concatenate([rng.normal(0, 1, 300), rng.normal(5, 1, 300), rng.normal(0, 1, 10)])
    train_g = np.repeat([0, 1, 2], [300, 300, 10])
    t = group_table(train, train_g, held, held_g, 0.05, 3)
    assert np.allclose(t["null"][:2], 0.05) and np.all(np.abs(t["share"][:2] - 0.05) < 0.05)
    assert np.isnan(t["share"][2]) and np.isnan(t["auroc"][2]) and t["n_train"][2] == 10 and t["n_held"][2] == 0
    assert np.all(np.abs(t["auroc"][:2] - 0.5) < 0.1)


def test_auroc_against_all_pairs():
    rng = np.random.default_rng(3)
    pos, neg = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 20).astype(float)
    pairs = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auroc(pos, neg) == pytest.approx(pairs)


def test_first_flagged():
    flags = np.array([[0, 0, 1], [1, 0, 1], [1, 0, 0]], bool)  # (E, N)
    np.testing.assert_array_equal(first_flagged([0, 5, 10], flags), [5, np.nan, 0])


# -- a memorizing model separates perfectly ------------------------------------------------------------------------
def _memorizing(train: np.ndarray):
    """The training set's optimal denoiser: ε̂(x, t) = (x - a_t E[x0 | x_t = x]) / s_t, the posterior over the
    training points (softmax of -|x - a_t x_i|^2 / 2 s_t^2): it returns a training point's noise exactly as s_t
    shrinks below the points' spacing, the model that has memorized every point."""
    pts = torch.tensor(train, dtype=torch.float64)
    a = torch.tensor(np.sqrt(ABAR))
    s = torch.tensor(np.sqrt(1 - ABAR))

    def eps(x, t):
        x = x.double()
        at, st = a[t].unsqueeze(-1), s[t].unsqueeze(-1)
        d2 = ((x.unsqueeze(-2) - at.unsqueeze(-1) * pts) ** 2).sum(-1)  # (..., n, N)
        w = torch.softmax(-d2 / (2 * st**2), dim=-1)
        return (x - at * (w @ pts)) / st

    return eps


def test_a_memorizing_model_separates_training_from_held_out_points_perfectly():
    rng = np.random.default_rng(4)
    grid = np.stack(np.meshgrid(np.arange(6), np.arange(6)), -1).reshape(-1, 2) * 2.0 - 5.0
    train = grid + 0.01 * rng.standard_normal(grid.shape)
    # between the training points, as far from them as the grid allows (inside the grid: a held-out point beyond its
    # edge has its posterior on one training point too, and SecMI's round trip is then exact for it as well)
    held = grid[(grid < 5).all(1)] + 1.0
    eps = _memorizing(train)
    out = score_points(eps, ABAR, train[None], held[None], np.zeros((1, len(train))), np.zeros((1, len(held))),
                       DETECTORS.names(), seed=0)  # fmt: skip
    assert list(out["detector_names"]) == ["loss", "pia", "secmi", "sima", "lid"]
    for k, name in enumerate(out["detector_names"]):
        assert out["detector_auroc"][0, k, 0] == 1.0, name
        assert out["detector_tpr"][0, k, 0] == 1.0, name


def test_score_points_noise_is_fixed_per_point_and_repeat():
    model = TinyEps()
    rng = np.random.default_rng(5)
    train, held = rng.standard_normal((2, 9, 2)), rng.standard_normal((2, 4, 2))
    g_t, g_h = np.zeros((2, 9), int), np.zeros((2, 4), int)
    a = score_points(model, ABAR, train, held, g_t, g_h, ["loss"], seed=3)
    b = score_points(model, ABAR, train, held, g_t, g_h, ["loss"], seed=3, chunk=2)
    np.testing.assert_allclose(a["detector_train"], b["detector_train"], rtol=1e-6)  # chunking changes nothing
    n0, _ = fixed_noise(3, 0, 5, 9, 4, 2)
    n1, _ = fixed_noise(3, 1, 5, 9, 4, 2)
    assert not np.allclose(n0, n1)
    same = score_points(model, ABAR, np.stack([train[0]] * 2), np.stack([held[0]] * 2), g_t, g_h, ["loss"], seed=3)
    assert not np.allclose(same["detector_train"][0], same["detector_train"][1])  # each repeat its own noise
    per_repeat = score_points([model, model], ABAR, train, held, g_t, g_h, ["loss"], seed=3)
    np.testing.assert_allclose(per_repeat["detector_train"], a["detector_train"], rtol=1e-6)
    with pytest.raises(ValueError, match="detector 'nope' is unknown; allowed: loss"):
        score_points(model, ABAR, train, held, g_t, g_h, ["nope"], seed=3)
