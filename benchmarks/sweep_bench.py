"""A small sweep three ways, side by side in one run: serial, on memnb's local Dask cluster, and on a
local Dask cluster with Dask's default worker environment (MALLOC_TRIM_THRESHOLD_=65536).

    python benchmarks/sweep_bench.py            # 4 configurations (2 datasets x 2 outlier counts), 3 repeats each
    python benchmarks/sweep_bench.py --quick    # seconds: proves the benchmark works (CI); its numbers mean nothing

Each arm runs the same grid into its own empty runs folder, in its own fresh process, and the
runs of every arm are checked to be identical to the serial arm's. Reported: wall time per arm
(cluster start included), the ratio to serial, and the mean time per configuration inside the
tasks. Results go to outputs/bench/sweep-<time>.json and outputs/bench/sweep-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import _cpu_name  # noqa: E402  (benchmarks/bench.py, beside this file: python puts it on sys.path)

ARMS = ("serial", "dask", "dask_default_env")


def _grid(quick: bool):
    from memnb import ExperimentConfig
    from memnb.workflows.sweep import expand_grid

    if quick:
        base = ExperimentConfig(
            n_base=200, n_outliers=10, n_duplicates=10, epochs=2, eval_every=1, n_repeats=2, device="cpu"
        )
        return expand_grid(base, {"seed": [0, 1]})
    base = ExperimentConfig(
        n_base=4000, n_outliers=80, n_duplicates=80, epochs=40, eval_every=10, n_repeats=3, device="cpu"
    )
    return expand_grid(base, {"dataset": ["moons", "circle"], "n_outliers": [40, 80]})


def arm(name: str, quick: bool, root: str, n_workers: int) -> dict:
    """One arm, in a fresh process: (wall seconds, per-task seconds)."""
    import torch
    from distributed import Client, LocalCluster

    from memnb.workflows.sweep import local_cluster, run_sweep

    configs = _grid(quick)
    t0 = time.perf_counter()
    if name == "serial":
        sweep = run_sweep(
            configs,
            root,
            out_dir=Path(root) / "sweep",
            executor="serial",
            torch_threads=torch.get_num_threads(),
            progress=False,
        )
    else:
        cluster = (
            local_cluster(n_workers, 1)
            if name == "dask"
            else LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        )
        with cluster, Client(cluster) as client:
            sweep = run_sweep(
                configs, root, out_dir=Path(root) / "sweep", client=client, torch_threads=1, progress=False
            )
    wall = time.perf_counter() - t0
    log = sweep.log
    return {
        "wall_s": round(wall, 2),
        "task_s_mean": round(float(log.wall_s.mean()), 2),
        "torch_threads": sorted(set(int(x) for x in log.torch_threads)),
        "malloc_trim_threshold": sorted(set(str(x) for x in log.malloc_trim_threshold)),
        "configs": len(configs),
    }


def _in_fresh_process(name: str, quick: bool, root: str, n_workers: int) -> dict:
    """`arm` in a new interpreter (not a multiprocessing pool: its daemonic workers may not start a cluster)."""
    cmd = [sys.executable, __file__, "--arm", name, "--root", root, "--workers", str(n_workers)] + (
        ["--quick"] if quick else []
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"arm {name} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def identical(a: str, b: str) -> bool:
    """Every run of root `a` equals the same run of root `b` (arrays, tables, losses)."""
    import numpy as np

    from memnb import Results

    for run in sorted(p.name for p in Path(a).iterdir() if (p / "config.json").exists()):
        x, y = Results(Path(a) / run), Results(Path(b) / run)
        if x.evaluated_epochs != y.evaluated_epochs or not x.table().equals(y.table()):
            return False
        for e in x.evaluated_epochs:
            ax, ay = x.epoch_arrays(e), y.epoch_arrays(e)
            if ax.keys() != ay.keys() or any(
                not np.array_equal(ax[k], ay[k], equal_nan=ax[k].dtype.kind == "f") for k in ax
            ):
                return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, to prove the benchmark runs (CI)")
    p.add_argument("--workers", type=int, default=None, help="Dask workers (default: the machine's cores)")
    p.add_argument("--out", default="outputs/bench")
    p.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)  # internal: run one arm, print its JSON
    p.add_argument("--root", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.arm:
        print(json.dumps(arm(args.arm, args.quick, args.root, args.workers)))
        return
    from memnb.workflows.sweep import machine_cores

    n_workers = args.workers or machine_cores()
    scratch = Path(tempfile.mkdtemp(prefix="memnb-sweep-bench-"))
    report: dict = {
        "machine": {"cores": machine_cores(), "cpu": _cpu_name(), "python": platform.python_version()},
        "grid": [c.to_dict() for c in _grid(args.quick)],
        "workers": n_workers,
        "quick": args.quick,
    }
    try:
        for name in ARMS:
            report[name] = _in_fresh_process(name, args.quick, str(scratch / name), n_workers)
            print(
                f"{name:>17}: {report[name]['wall_s']:7.1f} s wall, {report[name]['task_s_mean']:6.1f} s per configuration "
                f"(MALLOC_TRIM_THRESHOLD_ in workers: {report[name]['malloc_trim_threshold']})",
                flush=True,
            )
        report["summary"] = {
            "dask_speedup_vs_serial": round(report["serial"]["wall_s"] / report["dask"]["wall_s"], 3),
            "default_env_slowdown_vs_dask": round(report["dask_default_env"]["wall_s"] / report["dask"]["wall_s"], 3),
            "results_identical": all(identical(str(scratch / "serial"), str(scratch / a)) for a in ARMS[1:]),
        }
    finally:
        if not os.environ.get("MEMNB_KEEP"):
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(report["summary"], indent=2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "sweep-latest-quick" if args.quick else "sweep-latest"
    text = json.dumps(report, indent=2)
    (out / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    (out / f"{stem}.json").write_text(text)


if __name__ == "__main__":
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    main()
