"""memnb's per-epoch protocol against a naive reference loop, side by side in one run.

    python benchmarks/bench.py            # full: 10 repeats, 20000 points, 2 epochs, plus the scaling table
    python benchmarks/bench.py --quick    # seconds: proves the benchmark works (CI); its numbers mean nothing

Each arm runs in its own fresh process, so peak memory (ru_maxrss) is that arm's own. Reported:
model-epochs per second of memnb and of the naive loop and their ratio; generation's achieved
GFLOP/s next to this machine's fp32 and bf16 matmul rates measured in the same run; the time
split per evaluated epoch; peak memory; bf16 generation's speed-up and its effect on the
memorized shares at the paper's ratio; how the per-epoch cost scales with points and repeats.
Results go to outputs/bench/bench-<time>.json and outputs/bench/latest.json.

The naive loop is written here, independently of memnb: one repeat at a time, a plain
nn.Linear network, tiny-diffusion-style batch-32 steps, generation in batches of 1000 with the
full 384-wide first layer, and FAISS IndexFlatL2 searches (the paper's protocol, without a null
baseline: memnb's protocol does strictly more work per epoch).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import time
from pathlib import Path

# Work per generated point per step of the reference network (multiply-adds x 2): 384x128 first
# layer, three 128x128 blocks, 128x2 output. memnb computes the timestep third of the first layer
# once per step, so it *executes* 256x128 there; both counts are reported.
NOMINAL_FLOP = 2 * (384 * 128 + 3 * 128 * 128 + 128 * 2)
EXECUTED_FLOP = 2 * (256 * 128 + 3 * 128 * 128 + 128 * 2)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _in_fresh_process(fn, *args):
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


# -- the machine's matmul rates -------------------------------------------------------------------
def matmul_rates(size: int = 2048, reps: int = 5) -> dict:
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b
        best = math.inf
        for _ in range(reps):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        out[name] = 2 * size**3 / best / 1e9
    return out


# -- memnb -----------------------------------------------------------------------------------------
def memnb_arm(config_dict: dict, epochs: int, compare_bf16: bool) -> dict:
    import numpy as np
    import torch

    from memnb.core.config import ExperimentConfig
    from memnb.experiment.repeats import RepeatData
    from memnb.experiment.tabulate import summarize, table_thresholds
    from memnb.metric.criteria import critical_ratio, is_memorized
    from memnb.models.ensemble import Ensemble

    c = ExperimentConfig.from_dict(config_dict)
    t0 = time.perf_counter()
    data = RepeatData(c)
    ens = Ensemble(c, data.train_points)
    setup_s = time.perf_counter() - t0
    groups, locations, thresholds = data.groups, data.locations, table_thresholds(c)
    split = {"train_s": [], "generate_s": [], "metric_s": []}
    for e in range(epochs):
        t0 = time.perf_counter()
        samples = ens.generate(e)
        t1 = time.perf_counter()
        arrays = {**data.search(samples), **data.search(data.null_draws(e), "null_")}
        summarize(arrays, groups, locations, thresholds)
        t2 = time.perf_counter()
        ens.train_epoch(e)
        t3 = time.perf_counter()
        split["generate_s"].append(t1 - t0)
        split["metric_s"].append(t2 - t1)
        split["train_s"].append(t3 - t2)
    out = {
        "setup_s": setup_s,
        **{k: float(np.mean(v)) for k, v in split.items()},
        "epochs": epochs,
        "repeats": c.n_repeats,
        "n_train": c.n_train,
        "n_generate": c.n_generate_points,
        "device": str(ens.device),
        "threads": torch.get_num_threads(),
    }
    out["epoch_s"] = out["train_s"] + out["generate_s"] + out["metric_s"]
    out["model_epochs_per_s"] = c.n_repeats / out["epoch_s"]
    sample_steps = c.n_repeats * c.n_generate_points * c.num_timesteps
    out["generate_gflops_nominal"] = sample_steps * NOMINAL_FLOP / out["generate_s"] / 1e9
    out["generate_gflops_executed"] = sample_steps * EXECUTED_FLOP / out["generate_s"] / 1e9
    if compare_bf16:
        # same trained weights, same sampling seeds: fp32 against bf16
        shares = {}
        for prec in ("fp32", "bf16"):
            t0 = time.perf_counter()
            s = ens.generate(epochs, precision=prec)
            out[f"generate_{prec}_s"] = time.perf_counter() - t0
            nb = data.search(s)
            per_group = []
            for r in range(c.n_repeats):
                mem = is_memorized("paper", critical_ratio("paper", nb["d1"][r], nb["d2"][r], nb["d_test"][r]), c.ratio)
                g = groups[r][nb["index"][r]]
                per_group.append([float((mem & (g == k)).mean()) for k in range(3)] + [float(mem.mean())])
            shares[prec] = np.array(per_group)  # (R, inlier/outlier/duplicate/all)
        diff = np.abs(shares["bf16"].mean(0) - shares["fp32"].mean(0)) * 100
        out["bf16_speedup_generation"] = out["generate_fp32_s"] / out["generate_bf16_s"]
        out["bf16_share_diff_pp"] = dict(zip(["inlier", "outlier", "duplicate", "all"], diff.round(4).tolist()))
        out["fp32_shares_pct"] = dict(
            zip(["inlier", "outlier", "duplicate", "all"], (shares["fp32"].mean(0) * 100).round(3).tolist())
        )
    out["peak_rss_gib"] = _peak_rss_gib()
    return out


# -- the naive reference loop ----------------------------------------------------------------------
def naive_arm(config_dict: dict, epochs: int, repeats: int) -> dict:
    import faiss
    import numpy as np
    import torch
    from torch import nn

    from memnb.core.config import ExperimentConfig
    from memnb.data.injection import make_test_set, make_training_set

    c = ExperimentConfig.from_dict(config_dict)
    T = c.num_timesteps
    betas = torch.linspace(c.beta_start, c.beta_end, T)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1), abar[:-1]])

    class Emb(nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale
            self.register_buffer("f", torch.exp(-math.log(1e4) * torch.arange(64) / 63))

        def forward(self, v):
            a = (v * self.scale)[:, None] * self.f[None]
            return torch.cat([torch.sin(a), torch.cos(a)], -1)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.et, self.ex, self.ey = Emb(1.0), Emb(25.0), Emb(25.0)
            layers = [nn.Linear(384, 128), nn.GELU()]
            self.first = nn.Sequential(*layers)
            self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(128, 128), nn.GELU()) for _ in range(3))
            self.out = nn.Linear(128, 2)

        def forward(self, x, t):
            h = self.first(torch.cat([self.ex(x[:, 0]), self.ey(x[:, 1]), self.et(t.float())], -1))
            for b in self.blocks:
                h = h + b(h)
            return self.out(h)

    split = {"train_s": 0.0, "generate_s": 0.0, "metric_s": 0.0}
    for r in range(repeats):
        torch.manual_seed(r)
        ts, test = make_training_set(c, r), make_test_set(c, r)
        data = torch.tensor(ts.points, dtype=torch.float32)
        model = MLP()
        opt = torch.optim.AdamW(model.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay)
        for _ in range(epochs):
            t0 = time.perf_counter()
            model.eval()
            chunks = []
            with torch.no_grad():
                for lo in range(0, c.n_generate_points, 1000):
                    x = torch.randn(min(1000, c.n_generate_points - lo), 2)
                    for t in reversed(range(T)):
                        eps = model(x, torch.full((len(x),), t))
                        x0 = (x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
                        mean = (betas[t] * abar_prev[t].sqrt() * x0 + (1 - abar_prev[t]) * alphas[t].sqrt() * x) / (
                            1 - abar[t]
                        )
                        if t > 0:
                            var = (betas[t] * (1 - abar_prev[t]) / (1 - abar[t])).clamp(min=1e-20)
                            mean = mean + var.sqrt() * torch.randn_like(x)
                        x = mean
                    chunks.append(x)
            samples = torch.cat(chunks).numpy()
            t1 = time.perf_counter()
            index_train, index_test = faiss.IndexFlatL2(2), faiss.IndexFlatL2(2)
            index_train.add(ts.points.astype(np.float32))
            index_test.add(test.astype(np.float32))
            d_train, _ = index_train.search(samples, 1)
            d_test, _ = index_test.search(samples, 1)
            memorized = np.sqrt(d_test[:, 0]) >= c.ratio * np.sqrt(d_train[:, 0])
            memorized.mean()
            t2 = time.perf_counter()
            model.train()
            perm = torch.randperm(len(data))
            for lo in range(0, len(data) - c.batch_size + 1, c.batch_size):
                x0 = data[perm[lo : lo + c.batch_size]]
                noise = torch.randn_like(x0)
                t = torch.randint(0, T, (len(x0),))
                xt = abar[t].sqrt()[:, None] * x0 + (1 - abar[t]).sqrt()[:, None] * noise
                loss = nn.functional.mse_loss(model(xt, t), noise)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
                opt.step()
                opt.zero_grad()
            t3 = time.perf_counter()
            split["generate_s"] += t1 - t0
            split["metric_s"] += t2 - t1
            split["train_s"] += t3 - t2
    model_epochs = repeats * epochs
    out = {k: v / model_epochs for k, v in split.items()}  # per model-epoch
    out["model_epoch_s"] = sum(out.values())
    out["model_epochs_per_s"] = 1 / out["model_epoch_s"]
    out["repeats"], out["epochs"] = repeats, epochs
    out["generate_gflops_nominal"] = c.n_generate_points * T * NOMINAL_FLOP / out["generate_s"] / 1e9
    out["peak_rss_gib"] = _peak_rss_gib()
    return out


def scaling_cell(config_dict: dict) -> dict:
    return memnb_arm(config_dict, epochs=1, compare_bf16=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--n-base", type=int, default=20000)
    p.add_argument("--injected", type=int, default=400, help="outliers and near-duplicates, each")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--naive-repeats", type=int, default=None, help="default: --repeats")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to prove the benchmark runs (CI)")
    p.add_argument("--out", default="outputs/bench")
    a = p.parse_args()
    if a.quick:
        a.repeats, a.n_base, a.injected, a.epochs, a.no_scaling = 2, 400, 10, 1, True
    from memnb.core.config import ExperimentConfig

    base = ExperimentConfig(
        n_base=a.n_base,
        n_outliers=a.injected,
        n_duplicates=a.injected,
        n_repeats=a.repeats,
        device="cpu",
        epochs=a.epochs,
    )
    report: dict = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": a.quick,
        "machine": {
            "processor": _cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": __import__("torch").__version__,
            "load_average_at_start": os.getloadavg(),
        },
        "config": base.to_dict(),
    }
    print(f"machine: {report['machine']}")
    report["matmul_gflops"] = _in_fresh_process(matmul_rates)
    print(
        f"matmul GFLOP/s (2048^2): fp32 {report['matmul_gflops']['fp32']:.0f}, bf16 {report['matmul_gflops']['bf16']:.0f}"
    )
    m = report["memnb"] = _in_fresh_process(memnb_arm, base.to_dict(), a.epochs, True)
    print(
        f"memnb: {m['model_epochs_per_s']:.3f} model-epochs/s; per evaluated epoch of {a.repeats} repeats: "
        f"train {m['train_s']:.2f} s, generate {m['generate_s']:.2f} s, metric {m['metric_s']:.2f} s; peak {m['peak_rss_gib']:.2f} GiB"
    )
    n = report["naive"] = _in_fresh_process(naive_arm, base.to_dict(), a.epochs, a.naive_repeats or a.repeats)
    print(
        f"naive: {n['model_epochs_per_s']:.3f} model-epochs/s; per model-epoch: train {n['train_s']:.2f} s, "
        f"generate {n['generate_s']:.2f} s, FAISS {n['metric_s']:.2f} s; peak {n['peak_rss_gib']:.2f} GiB"
    )
    fp32 = report["matmul_gflops"]["fp32"]
    report["summary"] = {
        "speedup_vs_naive": m["model_epochs_per_s"] / n["model_epochs_per_s"],
        "generation_fraction_of_fp32_matmul_nominal": m["generate_gflops_nominal"] / fp32,
        "generation_fraction_of_fp32_matmul_executed": m["generate_gflops_executed"] / fp32,
        "train_plus_metric_over_generation": (m["train_s"] + m["metric_s"]) / m["generate_s"],
        "bf16_speedup_generation": m["bf16_speedup_generation"],
        "bf16_max_share_diff_pp": max(m["bf16_share_diff_pp"].values()),
        "peak_rss_gib": m["peak_rss_gib"],
    }
    s = report["summary"]
    print(f"speed-up over naive: {s['speedup_vs_naive']:.1f}x")
    print(
        f"generation: {m['generate_gflops_nominal']:.0f} GFLOP/s nominal ({s['generation_fraction_of_fp32_matmul_nominal']:.0%} "
        f"of fp32 matmul), {m['generate_gflops_executed']:.0f} executed ({s['generation_fraction_of_fp32_matmul_executed']:.0%})"
    )
    print(f"train + metric = {s['train_plus_metric_over_generation']:.0%} of generation")
    print(
        f"bf16 generation: {s['bf16_speedup_generation']:.2f}x faster; memorized shares move by "
        f"{m['bf16_share_diff_pp']} percentage points (fp32 shares {m['fp32_shares_pct']} %)"
    )
    # digits (64-D images, the residual MLP, FAISS): seconds per evaluated epoch of the digits finding's config
    from memnb.workflows import digits

    dcfg = digits.apply_profile(digits.DIGITS, "smoke")[0] if a.quick else digits.DIGITS
    dcfg = dcfg.replace(device="cpu")
    g = report["digits"] = _in_fresh_process(memnb_arm, dcfg.to_dict(), 2, False)
    print(
        f"digits ({dcfg.n_repeats} repeats, {dcfg.n_train} images, {dcfg.denoiser}, {dcfg.neighbors}): per evaluated "
        f"epoch train {g['train_s']:.2f} s, generate {g['generate_s']:.2f} s, metric {g['metric_s']:.2f} s"
    )
    if not a.no_scaling:
        rows = []
        for n_base, R in ((10000, 10), (20000, 10), (40000, 10), (20000, 1), (20000, 20)):
            inj = n_base // 50
            cfg = base.replace(n_base=n_base, n_outliers=inj, n_duplicates=inj, n_repeats=R)
            cell = _in_fresh_process(scaling_cell, cfg.to_dict())
            rows.append(
                {
                    "n_base": n_base,
                    "n_train": cfg.n_train,
                    "repeats": R,
                    "epoch_s": cell["epoch_s"],
                    "train_s": cell["train_s"],
                    "generate_s": cell["generate_s"],
                    "metric_s": cell["metric_s"],
                    "model_epochs_per_s": cell["model_epochs_per_s"],
                    "peak_rss_gib": cell["peak_rss_gib"],
                }
            )
            print(
                f"scaling: n_train {cfg.n_train:6d}, {R:2d} repeats: {cell['epoch_s']:.2f} s/epoch "
                f"(train {cell['train_s']:.2f}, generate {cell['generate_s']:.2f}, metric {cell['metric_s']:.2f}), "
                f"peak {cell['peak_rss_gib']:.2f} GiB",
                flush=True,
            )
        report["scaling"] = rows
    report["machine"]["load_average_at_end"] = os.getloadavg()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for f in (
        out / f"bench-{stamp}{'-quick' if a.quick else ''}.json",
        out / ("latest-quick.json" if a.quick else "latest.json"),
    ):
        f.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / ('latest-quick.json' if a.quick else 'latest.json')}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
