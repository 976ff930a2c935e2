"""The cost of one `memnb.Monitor.observe` early and late in one run, side by side.

    python benchmarks/store_bench.py             # about 25 s: epochs 0..400 observed
    python benchmarks/store_bench.py --quick     # seconds: epochs 0..40 (tests/test_bench.py runs it; its numbers mean nothing)

One Monitor run on synthetic points (numpy, fixed seed): 2,000 training points in d = 16 (5% outliers, 5%
near-duplicates), 500 test points, 500 fixed null points, 500 samples per observation, one repeat, the k-d tree.
Epochs 0..N are observed in order, each timed with time.perf_counter around `observe` alone (the samples are
drawn before the clock starts). Just before each, the same neighbour search of the same samples is timed outside
the store (`NeighbourSearch.query`): a load control, whose late / early ratio is what the machine's load alone
did between the two windows on a shared machine.

Reported: the median observation at epochs 5-15 and over the last 11 epochs, and their ratio (late / early; 1:
an observation costs the same at epoch N as at epoch 10, since each commits its own epoch file and rewrites
nothing else); the control's medians and ratio; and, apart, `monitor.results()`, which consolidates the tables
from every stored epoch once (O(epochs)). Written to outputs/bench/store-latest.json (store-latest-quick.json
with --quick) and a time-stamped copy. A benchmark reports: the exit status is non-zero only on an error, never
because of a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _cpu_name  # noqa: E402  (benchmarks/bench.py, beside this file)

EARLY = range(5, 16)  # epochs 5..15
LATE_COUNT = 11  # the last 11 epochs


def settings(args: argparse.Namespace) -> dict:
    return {
        "epochs": args.epochs,
        "n_train": 2000,
        "dim": 16,
        "n_test": 500,
        "n_null": 500,
        "n_samples": 500,
        "repeats": 1,
        "neighbors": args.neighbors,
        "seed": 0,
        "quick": args.quick,
    }


def synthetic(s: dict):
    """Training points (inliers from N(0, I), 5% outliers far out, 5% near-duplicates of inliers), test and null
    points from the inliers' distribution, and a sampler: samples near training points, with fresh noise each
    epoch."""
    import numpy as np

    rng = np.random.default_rng(s["seed"])
    n, d = s["n_train"], s["dim"]
    train = rng.standard_normal((n, d)).astype(np.float32)
    groups = np.zeros(n, dtype=np.int64)
    n_out = n_dup = n // 20
    train[:n_out] *= 4.0
    groups[:n_out] = 1
    train[n_out : n_out + n_dup] = train[-n_dup:] + 0.01 * rng.standard_normal((n_dup, d)).astype(np.float32)
    groups[n_out : n_out + n_dup] = 2
    test = rng.standard_normal((s["n_test"], d)).astype(np.float32)
    null = rng.standard_normal((s["n_null"], d)).astype(np.float32)

    def sample(epoch: int):
        r = np.random.default_rng(1000 + epoch)
        base = train[r.integers(0, n, s["n_samples"])]
        return (base + 0.3 * r.standard_normal(base.shape)).astype(np.float32)

    return train, groups, test, null, sample


def run(s: dict, root: Path) -> dict:
    import memnb
    from memnb.metric.neighbors import NeighbourSearch

    train, groups, test, null, sample = synthetic(s)
    monitor = memnb.Monitor(
        train, groups, test, root=root, name="store-bench", null=null, neighbors=s["neighbors"], model="bench"
    )
    # the load control: the same search of the same samples, outside the store, timed just before each observe
    control = NeighbourSearch(train, test, s["neighbors"])
    times, control_times = [], []
    for epoch in range(s["epochs"] + 1):
        x = sample(epoch)
        t = time.perf_counter()
        control.query(x)
        control_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        monitor.observe(epoch, x, loss=1.0 / (1 + epoch))
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    results = monitor.results()
    results_s = time.perf_counter() - t
    observed = len(results.evaluated_epochs)
    early_epochs = list(EARLY)
    late_epochs = list(range(len(times) - LATE_COUNT, len(times)))

    def median_ms(values, epochs):
        return 1e3 * statistics.median(values[e] for e in epochs)

    early_ms, late_ms = median_ms(times, early_epochs), median_ms(times, late_epochs)
    control_early_ms, control_late_ms = median_ms(control_times, early_epochs), median_ms(control_times, late_epochs)
    return {
        "observe_s": [round(v, 6) for v in times],
        "early_epochs": early_epochs,
        "late_epochs": late_epochs,
        "early_median_ms": round(early_ms, 3),
        "late_median_ms": round(late_ms, 3),
        "ratio_late_over_early": late_ms / early_ms,
        # the same search outside the store: its ratio is what the machine's load alone did between the two windows
        "control_query_s": [round(v, 6) for v in control_times],
        "control_early_median_ms": round(control_early_ms, 3),
        "control_late_median_ms": round(control_late_ms, 3),
        "control_ratio_late_over_early": control_late_ms / control_early_ms,
        "median_ms_per_50_epochs": [
            round(1e3 * statistics.median(times[i : i + 50]), 3) for i in range(0, len(times), 50)
        ],
        "first_observe_ms": round(1e3 * times[0], 3),  # the run's start: config, data.npz, the searches' set-up
        "results_s": round(results_s, 4),
        "observed_epochs": observed,
        "table_rows": len(results.table()),
    }


def machine() -> dict:
    import numpy
    import torch

    return {
        "cpu": _cpu_name(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "load_average": list(os.getloadavg()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="observe epochs 0..EPOCHS (default 400; 40 with --quick)")
    p.add_argument("--quick", action="store_true", help="40 epochs, to prove the benchmark runs (CI)")
    p.add_argument("--neighbors", default="kdtree", choices=["kdtree", "faiss", "torch", "auto"])
    p.add_argument("--out", default="outputs/bench")
    args = p.parse_args()
    if args.epochs is None:
        args.epochs = 40 if args.quick else 400
    if args.epochs < 15 + LATE_COUNT:
        p.error(f"--epochs must be at least {15 + LATE_COUNT} (epochs 5-15 and the last {LATE_COUNT} apart)")
    s = settings(args)
    report = {"benchmark": "store", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "settings": s}
    with tempfile.TemporaryDirectory(prefix="memnb-store-bench-") as root:
        report["result"] = run(s, Path(root))
    report["machine"]["load_average_after"] = list(os.getloadavg())
    r = report["result"]
    print(f"memnb.Monitor.observe, {s['n_samples']} samples, {s['n_train']} training points in d = {s['dim']}, "
          f"{s['neighbors']}, epochs 0..{s['epochs']}")  # fmt: skip
    print(f"{'':32} {'ms':>10}")
    print(f"{'median observe, epochs 5-15':32} {r['early_median_ms']:>10.2f}")
    print(f"{'median observe, last 11 epochs':32} {r['late_median_ms']:>10.2f}")
    print(f"{'ratio late / early':32} {r['ratio_late_over_early']:>10.3f}")
    print(f"{'control search, epochs 5-15':32} {r['control_early_median_ms']:>10.2f}")
    print(f"{'control search, last 11 epochs':32} {r['control_late_median_ms']:>10.2f}")
    print(f"{'control ratio (the load alone)':32} {r['control_ratio_late_over_early']:>10.3f}")
    print(f"{'first observe (run start)':32} {r['first_observe_ms']:>10.2f}")
    print(
        f"{'results(), once':32} {1e3 * r['results_s']:>10.2f}"
        f"   ({r['observed_epochs']} epochs, {r['table_rows']} rows)"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1)
    stem = "store-latest-quick" if args.quick else "store-latest"
    (out / f"store-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    (out / f"{stem}.json").write_text(text)
    print(f"written to {out / (stem + '.json')}")


if __name__ == "__main__":
    main()
