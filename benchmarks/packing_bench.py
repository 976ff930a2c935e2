"""Packing: member-steps per second of one 40-member ensemble against one of 10, side by side in one run.

    python benchmarks/packing_bench.py                  # about 1 min on a 2-core CPU: Figure 3's 10,200 points
    python benchmarks/packing_bench.py --quick          # seconds: proves it runs (tests); its numbers mean nothing
    python benchmarks/packing_bench.py --device cuda    # on a GPU, plus graphed against eager (memnb.models.graphs)

Four configurations of 10 repeats that share shapes can train as one ensemble of 40
(memnb.experiment.packed.run_packed). What that buys is measured here on the ensemble itself, in
one process, the arms alternating, best of --reps: one training epoch (batch 32, tiny-diffusion's
recipe) of R = 10 and R = 40 members on the same points per member, as member-steps per second
(members x optimizer steps / seconds), and one generation of --n-generate samples per member as
member-samples per second; the ratio 40 / 10 is what packing gains per member. On CUDA the
training and generation arms also run eagerly (MEMNB_CUDA_GRAPHS off) and graphed, and report
graphed / eager. Writes outputs/bench/packing-latest.json (and a time-stamped copy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's memnb, also when run as a script


from bench import _cpu_name  # noqa: E402  (benchmarks/bench.py, beside this file: python puts it on sys.path)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(members: int, n_points: int, n_generate: int, device: str, graphs: bool, reps: int) -> dict:
    """Best-of-`reps` seconds of one training epoch and one generation of an ensemble of `members`."""
    import numpy as np

    from memnb.core.config import ExperimentConfig
    from memnb.models.ensemble import Ensemble

    config = ExperimentConfig(n_base=n_points, n_outliers=0, n_duplicates=0, n_repeats=members, device=device)
    data = np.random.default_rng(0).normal(size=(members, n_points, 2))
    ens = Ensemble(config, data, cuda_graphs=graphs)
    steps = n_points // config.batch_size
    ens.train_epoch(0)  # warm-up (and, graphed, the capture)
    ens.generate(0, n=n_generate)
    train, gen = [], []
    for rep in range(reps):
        _sync(ens.device)
        t0 = time.perf_counter()
        ens.train_epoch(1 + rep)
        _sync(ens.device)
        t1 = time.perf_counter()
        ens.generate(1 + rep, n=n_generate)
        _sync(ens.device)
        train.append(t1 - t0)
        gen.append(time.perf_counter() - t1)
    return {
        "members": members,
        "graphs": ens.graphs,
        "steps": steps,
        "train_epoch_s": min(train),
        "generate_s": min(gen),
        "member_steps_per_s": members * steps / min(train),
        "member_samples_per_s": members * n_generate / min(gen),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-points", type=int, default=10200, help="training points per member (Figure 3: 10,200)")
    p.add_argument("--n-generate", type=int, default=2048, help="samples per member in the generation arm")
    p.add_argument("--small", type=int, default=10)
    p.add_argument("--large", type=int, default=40)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--quick", action="store_true", help="tiny sizes, to prove the benchmark runs")
    p.add_argument("--out", default="outputs/bench")
    a = p.parse_args()
    if a.quick:
        a.n_points, a.n_generate, a.small, a.large, a.reps = 320, 64, 2, 8, 1
    import torch

    graph_arms = [False, True] if a.device == "cuda" else [False]
    measure(a.small, a.n_points, a.n_generate, a.device, False, 1)  # discarded: the process's first-use costs
    arms = []
    for _ in range(a.reps):  # alternate the arms so that a busy moment is shared
        for graphs in graph_arms:
            for members in (a.small, a.large):
                r = measure(members, a.n_points, a.n_generate, a.device, graphs, 1)
                arms.append(r)
    best = {}
    for r in arms:  # best of the repetitions, per arm
        key = (r["members"], r["graphs"])
        b = best.setdefault(key, dict(r))
        b["train_epoch_s"] = min(b["train_epoch_s"], r["train_epoch_s"])
        b["generate_s"] = min(b["generate_s"], r["generate_s"])
        b["member_steps_per_s"] = r["members"] * r["steps"] / b["train_epoch_s"]
        b["member_samples_per_s"] = r["members"] * a.n_generate / b["generate_s"]
    summary = {}
    for graphs in {k[1] for k in best}:
        s, l_ = best[(a.small, graphs)], best[(a.large, graphs)]
        tag = "graphed" if graphs else "eager"
        summary[f"train_packing_ratio_{tag}"] = l_["member_steps_per_s"] / s["member_steps_per_s"]
        summary[f"generate_packing_ratio_{tag}"] = l_["member_samples_per_s"] / s["member_samples_per_s"]
    if a.device == "cuda":
        for m in (a.small, a.large):
            e, g = best[(m, False)], best.get((m, True))
            if g is not None:
                summary[f"train_graphed_over_eager_{m}"] = e["train_epoch_s"] / g["train_epoch_s"]
                summary[f"generate_graphed_over_eager_{m}"] = e["generate_s"] / g["generate_s"]
    report = {
        "quick": a.quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else None,
            "load_average": os.getloadavg(),
        },
        "device": a.device,
        "n_points": a.n_points,
        "n_generate": a.n_generate,
        "arms": sorted(best.values(), key=lambda r: (r["graphs"], r["members"])),
        "summary": summary,
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "packing-latest-quick.json" if a.quick else "packing-latest.json"
    text = json.dumps(report, indent=2)
    (out / name).write_text(text)
    if not a.quick:
        (out / f"packing-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    for r in report["arms"]:
        print(
            f"R = {r['members']:3d} {'graphed' if r['graphs'] else 'eager  '}: train epoch {r['train_epoch_s']:.3f} s "
            f"({r['member_steps_per_s']:.0f} member-steps/s), generate {r['generate_s']:.3f} s "
            f"({r['member_samples_per_s']:.0f} member-samples/s)"
        )
    for k, v in summary.items():
        print(f"{k}: {v:.2f}x")


if __name__ == "__main__":
    main()
