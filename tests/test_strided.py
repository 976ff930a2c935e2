"""The strided samplers (respaced DDPM, DDIM with eta = 0) against brute-force loops written here, and their config."""

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from memnb import ExperimentConfig
from memnb.core.seeding import Stream
from memnb.models.ensemble import Ensemble
from memnb.models.graphs import GraphedSampler
from memnb.models.sampling import (
    _AtTimesteps,
    generate,
    respace,
    sample_strided,
    sample_timesteps,
    strided_coefficients,
)
from memnb.models.schedule import NoiseSchedule
from memnb.models.tiny_diffusion import EnsembleDenoiser

T, B0, B1 = 50, 1e-4, 0.02
FIXTURES = Path(__file__).parent / "fixtures" / "previous"


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def abars(T=T):
    betas = [B0 + (B1 - B0) * t / (T - 1) for t in range(T)]
    return [math.prod(1 - b for b in betas[: t + 1]) for t in range(T)]


def brute_timesteps(T, S):
    """Evenly spaced, both ends, i (T-1)/(S-1) rounded half up, in exact fractions."""
    if S == 1:
        return [T - 1]
    return [math.floor(Fraction(i * (T - 1), S - 1) + Fraction(1, 2)) for i in range(S)]


def brute_loop(model, n, seeds, tau, sampler):
    """Respaced DDPM (Nichol & Dhariwal 2021: beta' = 1 - abar_t / abar_prev, posterior of Ho et al. eq. 7) or DDIM
    eta = 0 (Song et al. 2021 eq. 12), one step at a time with math's scalars, over the model's forward()."""
    abar = abars()
    g = gens(*seeds)
    x = torch.stack([torch.randn(n, 2, generator=q) for q in g]).double()
    z = torch.stack([torch.randn(len(tau), n, 2, generator=q) for q in g], 1).double() if sampler == "ddpm" else None
    R = len(seeds)
    with torch.no_grad():
        for i in reversed(range(len(tau))):
            t = tau[i]
            ab, ab_prev = abar[t], (abar[tau[i - 1]] if i > 0 else 1.0)
            eps = model(x.float(), torch.full((R, n), t)).double()
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            if sampler == "ddim":
                x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
                continue
            beta = 1 - ab / ab_prev
            x = math.sqrt(ab_prev) * beta / (1 - ab) * x0 + math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab) * x
            if i > 0:
                x = x + math.sqrt((1 - ab_prev) / (1 - ab) * beta) * z[i]
    return x.float()


@pytest.fixture(scope="module")
def model():
    return EnsembleDenoiser(2, generators=gens(0, 1))


class PlainForward(torch.nn.Module):
    """The same network without `sampling_network`: the sampler's generic forward(x, t) path."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.dim = inner, inner.dim

    def forward(self, x, t):
        return self.inner(x, t)


# -- the timesteps and the respaced schedule -------------------------------------------------------------------
@pytest.mark.parametrize("n_steps", [1, 2, 7, 10, 50, 1000])
def test_timesteps_are_evenly_spaced_distinct_and_keep_both_ends(n_steps):
    for S in range(1, n_steps + 1):
        tau = sample_timesteps(n_steps, S)
        assert tau == brute_timesteps(n_steps, S)
        assert len(tau) == S and tau[-1] == n_steps - 1 and (S == 1 or tau[0] == 0)
        assert all(b > a for a, b in zip(tau, tau[1:]))
    assert sample_timesteps(n_steps, n_steps) == list(range(n_steps))


def test_timesteps_of_the_brief():
    assert sample_timesteps(50, 5) == [0, 12, 25, 37, 49]
    assert sample_timesteps(50, 10) == [0, 5, 11, 16, 22, 27, 33, 38, 44, 49]


@pytest.mark.parametrize("bad", [0, 51, 2.0, True, None])
def test_bad_steps_fail_naming_the_value(bad):
    with pytest.raises(ValueError, match=r"steps = .* is invalid; allowed: an integer from 1 to num_timesteps = 50"):
        sample_timesteps(50, bad)


@pytest.mark.parametrize("S", [5, 10, 25])
def test_respaced_schedule_against_the_ratios_of_abar(S):
    tau = sample_timesteps(T, S)
    r = respace(NoiseSchedule.linear(T, B0, B1), tau)
    abar = abars()
    for i, t in enumerate(tau):
        prev = abar[tau[i - 1]] if i else 1.0
        beta = 1 - abar[t] / prev
        assert r.betas[i].item() == pytest.approx(beta, rel=1e-12, abs=1e-15)
        assert r.alphas_cumprod[i].item() == pytest.approx(abar[t], rel=1e-12)  # the marginals are kept
        std = math.sqrt((1 - prev) / (1 - abar[t]) * beta) if i else 0.0
        assert r.posterior_std[i].item() == pytest.approx(std, rel=1e-10, abs=1e-15)
    assert r.num_timesteps == S


def test_respaced_on_all_steps_is_the_schedule_to_the_bit():
    s = NoiseSchedule.linear(T, B0, B1)
    r = respace(s, list(range(T)))
    for k, v in s.__dict__.items():
        assert torch.equal(getattr(r, k), v), k


def test_ddim_coefficients_are_eq_12():
    tau = sample_timesteps(T, 10)
    a, b, s = strided_coefficients(NoiseSchedule.linear(T, B0, B1), tau, "ddim")
    abar = abars()
    for i, t in enumerate(tau):
        prev = abar[tau[i - 1]] if i else 1.0
        # x_prev = sqrt(prev) (x - sqrt(1 - abar) eps) / sqrt(abar) + sqrt(1 - prev) eps, written as a x - b eps
        assert a[i] == pytest.approx(math.sqrt(prev / abar[t]), rel=1e-12)
        assert b[i] == pytest.approx(
            math.sqrt(prev) * math.sqrt(1 - abar[t]) / math.sqrt(abar[t]) - math.sqrt(1 - prev)
        )
    assert s == [0.0] * 10


# -- the samplers ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", [False, True], ids=["step_network", "forward"])
def test_respaced_ddpm_on_all_steps_is_the_full_sampler_exactly(model, wrap):
    """Same noise, same constants, same arithmetic: identical samples (a float64 schedule: constants to the bit)."""
    net = PlainForward(model) if wrap else model
    s64 = NoiseSchedule.linear(T, B0, B1)
    full = generate(net, s64, 300, gens(3, 4), chunk=128)
    strided = sample_strided(net, s64, 300, gens(3, 4), "ddpm", T, chunk=128)
    assert torch.equal(full, strided)
    # the float32 schedule an Ensemble holds: its constants were rounded from float64, respace's come from float32
    s32 = s64.to("cpu")
    full32 = generate(net, s32, 300, gens(3, 4), chunk=128)
    torch.testing.assert_close(sample_strided(net, s32, 300, gens(3, 4), "ddpm", T, chunk=128), full32)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("S", [5, 10, 25, 50])
def test_strided_samplers_equal_brute_force_loops(model, sampler, S):
    tau = brute_timesteps(T, S)
    ours = sample_strided(model, NoiseSchedule.linear(T, B0, B1), 200, gens(5, 6), sampler, S, chunk=64)
    torch.testing.assert_close(ours, brute_loop(model, 200, (5, 6), tau, sampler), rtol=1e-4, atol=1e-4)


def test_ddim_is_deterministic_in_x_T_and_shares_it_with_ddpm(model):
    """DDIM draws only x_T, the full sampler's x_T (drawn first): one step from S = 1 is x0_hat(x_T) for both."""
    s = NoiseSchedule.linear(T, B0, B1)
    one_ddim = sample_strided(model, s, 100, gens(9, 10), "ddim", 1)
    one_ddpm = sample_strided(model, s, 100, gens(9, 10), "ddpm", 1)
    torch.testing.assert_close(one_ddim, one_ddpm, rtol=1e-5, atol=1e-5)
    g = gens(9, 10)
    x_T = torch.stack([torch.randn(100, 2, generator=q) for q in g])
    abar = abars()[-1]
    x0 = (x_T - math.sqrt(1 - abar) * model(x_T, torch.full((2, 100), T - 1))) / math.sqrt(abar)
    torch.testing.assert_close(one_ddim, x0, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_chunking_and_members_do_not_change_strided_samples(model, sampler):
    s = NoiseSchedule.linear(T, B0, B1)
    a = sample_strided(model, s, 300, gens(1, 2), sampler, 10, chunk=64)
    b = sample_strided(model, s, 300, gens(1, 2), sampler, 10, chunk=4096)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_generate_dispatches_to_the_strided_sampler(model):
    s = NoiseSchedule.linear()
    ref = sample_strided(model, s, 50, gens(1, 2), "ddim", 10)
    assert torch.equal(generate(model, s, 50, gens(1, 2), sampler="ddim", steps=10), ref)
    assert torch.equal(generate(model, s, 50, gens(1, 2), sampler="ddpm", steps=T), generate(model, s, 50, gens(1, 2)))
    assert not torch.equal(generate(model, s, 50, gens(1, 2), steps=10), generate(model, s, 50, gens(1, 2)))
    with pytest.raises(ValueError, match=r"sampler = 'euler' is invalid; allowed: ddpm \| ddim"):
        generate(model, s, 50, gens(1, 2), sampler="euler")


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_the_graphed_loop_maps_steps_to_timesteps(model, sampler):
    """The CUDA-graph path's loop (GraphedSampler, run eagerly here) through `_AtTimesteps` gives the eager samples."""
    s = NoiseSchedule.linear()
    tau = sample_timesteps(T, 10)
    coefs = strided_coefficients(s, tau, sampler)
    g = gens(1, 2)
    x_T = torch.stack([torch.randn(80, 2, generator=q) for q in g])
    z = (
        torch.stack([torch.randn(10, 80, 2, generator=q) for q in g], 1)
        if sampler == "ddpm"
        else torch.zeros(10, 2, 80, 2)
    )
    net = model.sampling_network(T, torch.float32, 80)
    with torch.inference_mode():
        out = GraphedSampler(_AtTimesteps(net, tau), coefs, graph=False).run(x_T, z).clone()
    torch.testing.assert_close(out, sample_strided(model, s, 80, gens(1, 2), sampler, 10), rtol=1e-6, atol=1e-6)


# -- the config fields ----------------------------------------------------------------------------------------
def test_default_sampler_keeps_stored_runs_names():
    runs = [p for p in sorted(FIXTURES.glob("*/*/config.json")) if json.loads(p.read_text()).get("kind") is None]
    assert runs  # memnb 0.1.0's stored experiments (a monitored run's config says kind = "monitor")
    for path in runs:
        d = json.loads(path.read_text())
        assert "sampler" not in d and "sample_steps" not in d
        assert ExperimentConfig.from_dict(d).run_name() == path.parent.name
    base = ExperimentConfig()
    assert base.replace(sampler="ddim").fingerprint() != base.fingerprint()
    assert base.replace(sample_steps=10).fingerprint() != base.replace(sample_steps=5).fingerprint()
    assert ExperimentConfig.from_dict(base.replace(sampler="ddim", sample_steps=5).to_dict()).sample_steps == 5


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"sampler": "DDIM"}, r"config field 'sampler' = 'DDIM' is invalid; allowed: ddpm \| ddim"),
        ({"sample_steps": 0}, r"config field 'sample_steps' = 0 is invalid; allowed: None \(all steps\) or an integer"),
        ({"sample_steps": 51}, r"'sample_steps' = 51 is invalid; allowed: .* from 1 to num_timesteps = 50"),
        ({"sample_steps": 12, "num_timesteps": 10}, r"'sample_steps' = 12 .* num_timesteps = 10"),
        ({"sample_steps": 2.5}, r"'sample_steps' = 2.5 is invalid"),
        ({"sample_steps": True}, r"'sample_steps' = True is invalid"),
    ],
)
def test_bad_sampler_fields_fail_naming_field_value_and_allowed(kw, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig(**kw)


def test_ensemble_samples_with_the_configs_sampler():
    c = ExperimentConfig(n_base=40, n_outliers=2, n_duplicates=2, n_repeats=2, device="cpu", batch_size=8)
    data = np.random.default_rng(0).normal(size=(2, c.n_train, 2))
    full = Ensemble(c, data).generate(3, n=64)
    for sampler, steps in (("ddim", 10), ("ddpm", 5), ("ddim", None)):
        cs = c.replace(sampler=sampler, sample_steps=steps)
        ens = Ensemble(cs, data)
        ours = ens.generate(3, n=64)
        ref = sample_strided(ens.model, ens.schedule, 64, ens._generators(Stream.SAMPLE, 3), sampler, steps or T)
        np.testing.assert_array_equal(ours, ref.numpy())
        assert not np.array_equal(ours, full)


@pytest.mark.slow
def test_quick_sampler_benchmark_writes_a_consistent_report(tmp_path):
    """benchmarks/sampler_bench.py --quick runs; its ratios follow from its timings (speed itself is not judged)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "benchmarks/sampler_bench.py", "--quick", "--out", str(tmp_path)]
    subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "sampler-latest-quick.json").read_text())
    names = {"ddpm@50", "ddpm@25", "ddpm@10", "ddpm@5", "ddim@50", "ddim@25", "ddim@10", "ddim@5"}
    for key in ("figure4", "small"):
        run = report[key]
        arms, ref = run["arms"], run["arms"]["ddpm@50"]
        assert set(arms) == names | {"ddpm@50 n/4", "ddpm@50 other noise"}
        assert ref["generate_cpu_ratio"] == 1 and set(ref["max_share_diff_pp"].values()) == {0}
        for arm in arms.values():
            assert arm["generate_cpu_ratio"] == pytest.approx(arm["generate_cpu_s"] / ref["generate_cpu_s"])
            assert all(0 <= v <= 100 for v in arm["last_share_pct"].values())
            assert all(len(v) == len(run["eval_epochs"]) for v in arm["share_pct_by_epoch"].values())
            assert all(len(v) == run["config"]["n_repeats"] for v in arm["onset_copied"].values())
        assert arms["ddpm@50 n/4"]["n"] == ref["n"] // 4
