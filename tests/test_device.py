"""Device selection, and (where a GPU exists) CUDA against the CPU on the same seeds."""

import copy

import numpy as np
import pytest
import torch

from memnb.core.config import ExperimentConfig
from memnb.core.device import resolve_device
from memnb.experiment.repeats import RepeatData
from memnb.models.ensemble import Ensemble

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_auto_picks_cuda_only_when_available():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_gpu_fails_early_naming_the_field():
    with pytest.raises(ValueError, match="'device' = 'cuda'"):
        resolve_device("cuda")


@needs_cuda
def test_cuda_ensemble_matches_cpu_on_the_same_seeds():
    kw = dict(n_base=400, n_outliers=10, n_duplicates=10, n_repeats=2, epochs=1)
    data = RepeatData(ExperimentConfig(device="cpu", **kw)).train_points
    cpu, gpu = (
        Ensemble(ExperimentConfig(device="cpu", **kw), data),
        Ensemble(ExperimentConfig(device="cuda", **kw), data),
    )
    for a, b in zip(cpu.model.parameters(), gpu.model.parameters()):  # same initial weights on every device
        assert torch.equal(a, b.cpu())
    x, t = torch.randn(2, 64, 2), torch.randint(0, 50, (2, 64))
    assert torch.allclose(cpu.model(x, t), gpu.model(x.cuda(), t.cuda()).cpu(), atol=1e-4)
    assert np.isfinite(gpu.train_epoch(0)).all()
    # CUDA's generators draw other numbers than the CPU's: compare distributions, not points
    s_cpu, s_gpu = cpu.generate(1, n=4000), gpu.generate(1, n=4000)
    assert s_gpu.shape == s_cpu.shape and np.isfinite(s_gpu).all()
    assert np.allclose(s_cpu.mean(axis=1), s_gpu.mean(axis=1), atol=0.1)


# -- CUDA graphs (memnb.models.graphs) ------------------------------------------------------------
def test_cuda_graphs_only_on_cuda_and_switched_off_by_the_environment(monkeypatch):
    from memnb.models.graphs import ENV, use_cuda_graphs

    monkeypatch.delenv(ENV, raising=False)
    assert use_cuda_graphs("cuda") is True and use_cuda_graphs(torch.device("cuda", 0)) is True
    assert use_cuda_graphs("cpu") is False and use_cuda_graphs("cpu", requested=True) is False
    assert use_cuda_graphs("cuda", requested=False) is False
    monkeypatch.setenv(ENV, "0")
    assert use_cuda_graphs("cuda") is False and use_cuda_graphs("cuda", requested=True) is True
    monkeypatch.setenv(ENV, "1")
    assert use_cuda_graphs("cuda") is True
    assert Ensemble(_tiny(n_repeats=1), np.zeros((1, 220, 2))).graphs is False


def _tiny(device="cpu", **kw):
    base = dict(n_base=200, n_outliers=10, n_duplicates=10, n_repeats=2, epochs=2, batch_size=32, device=device)
    return ExperimentConfig(**{**base, **kw})


class EmulatedCapture:
    """memnb.models.graphs._Capture's contract with CUDA's semantics, on the CPU: warm-up runs the body, capture
    records it without running it, a replay runs it; `before_replay` stands for what a replay does implicitly
    (the captured backward assigns gradients rather than adding to them)."""

    before_replay = None

    def __init__(self, body, graph):
        self.body, self.graph, self.cuda_graph, self.log = body, graph, None, []

    @property
    def captured(self):
        return self.cuda_graph is not None

    def warmup(self, before=None):
        self.log.append("warmup")
        if before is not None:
            before()
        self.body()

    def capture(self, before=None):
        self.log.append("capture")
        self.cuda_graph = "recorded"

    def __call__(self, before=None):
        if self.captured:
            self.log.append("replay")
            if self.before_replay is not None:
                self.before_replay()
        elif before is not None:
            before()
        self.body()


@pytest.mark.parametrize("mode", ["static", "emulated-graph"])
def test_static_buffer_training_equals_the_eager_epoch(mode):
    """GraphedTrainer's body over its static buffers (CPU) against train.train_epoch: without a graph, and through
    the graphed sequence (warm-up steps, capture, replays; again after a checkpoint reload) with capture emulated."""
    from memnb.core.seeding import Stream
    from memnb.models.graphs import WARMUP_STEPS, GraphedTrainer

    c = _tiny()
    data = RepeatData(c).train_points
    ref, static = Ensemble(c, data), Ensemble(c, data)
    emulated = mode == "emulated-graph"
    trainer = GraphedTrainer(
        static.model,
        static.optimizer,
        static.schedule,
        2,
        c.batch_size,
        2,
        c.grad_clip,
        static.device,
        graph=emulated,
        capture=EmulatedCapture if emulated else None,
    )
    zero = lambda: static.optimizer.zero_grad(set_to_none=True)  # noqa: E731
    steps = c.n_train // c.batch_size
    for epoch in range(4):
        if epoch == 2:  # a checkpoint reload: new optimizer state tensors, so the graph is dropped
            static.optimizer.load_state_dict(copy.deepcopy(ref.optimizer.state_dict()))  # as from a file
            trainer.reset()
        if emulated:
            trainer.step.before_replay = zero
        a = ref.train_epoch(epoch)
        b = trainer.train_epoch(static.data, c.batch_size, static._generators(Stream.TRAIN, epoch)).numpy()
        assert np.array_equal(a, b), epoch
        if emulated and epoch in (0, 2):
            log = trainer.step.log
            assert log[: WARMUP_STEPS + 2] == ["warmup"] * WARMUP_STEPS + ["capture", "replay"]
            assert len(log) == steps + 1 and set(log[WARMUP_STEPS + 1 :]) == {"replay"}
    for p, q in zip(ref.model.parameters(), static.model.parameters()):
        assert torch.equal(p, q)
    # the reference moved the weights: the comparison is not between two no-ops
    assert not torch.equal(next(Ensemble(c, data).model.parameters()), next(ref.model.parameters()))


@pytest.mark.parametrize("mode", ["static", "emulated-graph"])
@pytest.mark.parametrize("denoiser", ["tiny_diffusion", "residual_mlp"])
def test_static_buffer_sampler_equals_eager_generation(denoiser, mode):
    """GraphedSampler's chunk loop over static buffers (CPU) against sampling.generate, without a graph and with
    capture emulated; chunks of 64 over 150 points: a warm-up chunk, a replay of its capture, then a short chunk."""
    from memnb.core.seeding import Stream
    from memnb.models.graphs import GraphedSampler
    from memnb.models.sampling import DTYPES, _ForwardNetwork, generate

    c = _tiny(denoiser=denoiser, num_timesteps=20)
    ens = Ensemble(c, RepeatData(c).train_points)
    ens.train_epoch(0)
    n, chunk, T = 150, 64, c.num_timesteps
    ref = generate(ens.model, ens.schedule, n, ens._generators(Stream.SAMPLE, 3), chunk=chunk)
    x_T, z = [], []
    for g in ens._generators(Stream.SAMPLE, 3):  # the draws of generate, in its order
        x_T.append(torch.randn(n, 2, generator=g))
        z.append(torch.randn(T, n, 2, generator=g))
    x_T, z = torch.stack(x_T), torch.stack(z, dim=1)
    if denoiser == "tiny_diffusion":
        net = ens.model.sampling_network(T, DTYPES["fp32"], chunk)
    else:
        net = _ForwardNetwork(ens.model, torch.float32)
    sched = ens.schedule
    coefs = tuple(v.tolist() for v in (sched.mean_coef_x, sched.mean_coef_eps, sched.posterior_std))
    emulated = mode == "emulated-graph"
    sampler = GraphedSampler(net, coefs, graph=emulated, capture=EmulatedCapture if emulated else None)
    with torch.inference_mode():
        out = torch.cat(
            [sampler.run(x_T[:, lo : lo + chunk], z[:, :, lo : lo + chunk]).clone() for lo in (0, 64, 128)], 1
        )
    assert sorted(sampler.captures) == [22, 64]
    if emulated:
        assert sampler.captures[64][0].log == ["warmup", "capture", "replay"]
        assert sampler.captures[22][0].log == ["warmup", "capture"]
    assert torch.equal(out, ref)


@needs_cuda
@pytest.mark.parametrize("denoiser", ["tiny_diffusion", "residual_mlp"])
def test_cuda_graphs_match_eager_cuda(denoiser):
    """Graphed training (warm-up, capture, replays, across epochs and a checkpoint reload) and graphed sampling
    against the eager CUDA path on the same weights and random numbers."""
    c = _tiny("cuda", denoiser=denoiser, n_base=400)
    data = RepeatData(c).train_points
    eager, graphed = Ensemble(c, data, cuda_graphs=False), Ensemble(c, data, cuda_graphs=True)
    assert graphed.graphs and not eager.graphs
    for epoch in range(3):
        a, b = eager.train_epoch(epoch), graphed.train_epoch(epoch)
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert graphed.trainer.step.captured
    for p, q in zip(eager.model.parameters(), graphed.model.parameters()):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-5)
    graphed.load_state_dict(copy.deepcopy(eager.state_dict()))  # as from a file: the graph is dropped, captured again
    assert not graphed.trainer.step.captured
    for epoch in range(3, 5):
        assert np.allclose(eager.train_epoch(epoch), graphed.train_epoch(epoch), rtol=1e-4, atol=1e-6)
    assert graphed.trainer.step.captured
    for precision, tol in (("fp32", 1e-4), ("bf16", 2e-2)):
        s_eager = eager.generate(5, n=2500, precision=precision)  # chunks of 1024: two replays' shapes and a short one
        s_graph = graphed.generate(5, n=2500, precision=precision)
        assert np.allclose(s_eager, s_graph, atol=tol), np.abs(s_eager - s_graph).max()


# -- exact neighbour search on the run's device -----------------------------------------------------
def _search_fields_equal(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        if a[k].dtype.kind == "f":
            assert np.allclose(a[k], b[k], rtol=1e-6, atol=1e-7), k
        else:
            assert np.array_equal(a[k], b[k]), k


def _searches(device: str, backend: str):
    return RepeatData(_tiny(device, neighbors=backend, n_base=300))


def test_torch_search_on_the_cpu_equals_the_kdtree_through_repeat_data():
    from memnb.experiment.tabulate import held_out_neighbours

    torch_cpu, kdtree = _searches("cpu", "torch"), _searches("cpu", "kdtree")
    q = np.random.default_rng(3).normal(size=(2, 500, 2))
    _search_fields_equal(torch_cpu.search(q), kdtree.search(q))
    (d_a, g_a), (d_b, g_b) = torch_cpu.held_out_neighbours(), kdtree.held_out_neighbours()
    assert np.allclose(d_a, d_b, rtol=1e-6) and np.array_equal(g_a, g_b)
    d_c, g_c = held_out_neighbours(kdtree.train_points, kdtree.test_points, kdtree.groups, "kdtree")
    assert np.array_equal(d_b, d_c) and np.array_equal(g_b, g_c)


@needs_cuda
def test_torch_search_on_cuda_equals_the_kdtree():
    gpu, kdtree = _searches("cuda", "torch"), _searches("cpu", "kdtree")
    assert all(s.device.type == "cuda" for s in gpu.searches)
    q = np.random.default_rng(3).normal(size=(2, 5000, 2))
    _search_fields_equal(gpu.search(q), kdtree.search(q))
    (d_a, g_a), (d_b, g_b) = gpu.held_out_neighbours(), kdtree.held_out_neighbours()
    assert np.allclose(d_a, d_b, rtol=1e-6) and np.array_equal(g_a, g_b)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_a_run_with_the_torch_search_matches_the_kdtree_on_its_samples(tmp_path, monkeypatch, device):
    """run_experiment with the torch search on the run's device (on CUDA also graphed training and sampling): every
    search it made (samples and null draws, float32 as searched, before the float16 cast of storage) gives the
    k-d tree's result."""
    from memnb.experiment.runner import run_experiment

    seen = []
    original = RepeatData.search

    def recording(self, points, prefix=""):
        out = original(self, points, prefix)
        seen.append((np.array(points), {k[len(prefix) :]: v for k, v in out.items()}))
        return out

    monkeypatch.setattr(RepeatData, "search", recording)
    c = _tiny(device, neighbors="torch", n_base=300)
    res = run_experiment(c, tmp_path, progress=False)
    assert res.complete and res.manifest["device"].startswith(device)
    assert len(seen) == 2 * len(res.evaluated_epochs)
    monkeypatch.setattr(RepeatData, "search", original)
    kdtree = _searches("cpu", "kdtree")
    for points, found in seen:
        _search_fields_equal(found, kdtree.search(points))


@needs_cuda
def test_a_small_run_on_cuda_gives_the_cpu_s_curves_within_their_intervals(tmp_path):
    """The same config on both devices (other random numbers: CUDA's generators are not the CPU's): per group and
    epoch the memorized shares agree within Welch's 95% interval in most cells (memnb.analysis.curves)."""
    from memnb import run_experiment
    from memnb.analysis.curves import compare_curves, select

    kw = dict(n_base=1000, n_outliers=20, n_duplicates=20, n_repeats=6, epochs=20, eval_every=5)
    cpu, gpu = (
        select(run_experiment(ExperimentConfig(device=d, **kw), tmp_path, progress=False).table(), "paper", 1.5)
        for d in ("cpu", "cuda")
    )
    for value in ("memorized", "copied"):
        assert compare_curves(cpu, gpu, value).within.mean() >= 0.8
