"""Exact neighbour search by dimension: the k-d tree against FAISS and torch, side by side in one process.

    python benchmarks/neighbors_bench.py            # full: 2000 training, test and query points, d = 2 to 64
    python benchmarks/neighbors_bench.py --quick    # seconds: proves the benchmark works (CI); its numbers mean nothing

For every dimension d, the same data go to every backend of memnb.metric.neighbors.NeighbourSearch:
`gmm_d` points (memnb's d-dimensional family: 8 Gaussians, std 0.1, at radius 1.5) as training
points, test points and queries (fresh draws, standing in for generated samples). Timed, best of
`--reps` repetitions each:

- build: NeighbourSearch(train, test, backend), the index over the distinct training locations and
  the one over the test points (plus the de-duplication and row hashes, the same for every backend);
- query: NeighbourSearch.query(queries), what memnb runs per evaluated epoch: the k = 50 search of
  the training locations (d1, d2, d_mean50), the 1-neighbour search of the test points, exact copies;
- knn2: the plain 2-neighbour search of the training locations alone (the paper's d1/d2 search).

speedup_vs_kdtree[backend][d] is the k-d tree's time over the backend's (above 1: the backend is
faster). The crossover of each timing is the lowest d from which FAISS is faster than the k-d tree
at that d and at every larger d measured (None: the k-d tree is faster at the largest d).
memnb.core.config.NEIGHBOR_AUTO_MAX_DIM is the largest d for which neighbors="auto" picks the k-d tree.
Results go to outputs/bench/neighbors-<time>.json and outputs/bench/neighbors-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _cpu_name  # noqa: E402  (benchmarks/bench.py, beside this file)

from memnb.data import make_base  # noqa: E402
from memnb.metric.neighbors import RELATIVE_NEIGHBOURS, NeighbourSearch  # noqa: E402

DIMS = (2, 3, 4, 8, 16, 32, 64)
TIMINGS = ("build", "query", "knn2")


def _best(fn, reps: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def backends() -> list[tuple[str, str, str]]:
    """(name, NeighbourSearch backend, device) of every arm this machine can run."""
    import torch

    arms = [("kdtree", "kdtree", "cpu"), ("faiss", "faiss", "cpu"), ("torch", "torch", "cpu")]
    if torch.cuda.is_available():
        arms.append(("torch_cuda", "torch", "cuda"))
    return arms


def measure(d: int, n_train: int, n_test: int, n_query: int, reps: int, seed: int = 0) -> dict:
    """Timings of every arm at dimension d, and how far each arm's neighbours agree with the k-d tree's."""
    rng = np.random.default_rng(seed + d)
    train, test, queries = (make_base("gmm_d", n, rng, dim=d) for n in (n_train, n_test, n_query))
    out, ref = {}, None
    for name, backend, device in backends():
        build_s, search = _best(lambda b=backend, dev=device: NeighbourSearch(train, test, b, dev), reps)
        query_s, nb = _best(lambda s=search: s.query(queries), reps)
        knn2_s, _ = _best(lambda s=search: s._search(s._train, queries, 2), reps)
        ref = nb if ref is None else ref
        out[name] = {
            "build_s": build_s,
            "query_s": query_s,
            "knn2_s": knn2_s,
            "same_index_as_kdtree": float((nb.index == ref.index).mean()),
            "max_rel_d1_diff_vs_kdtree": float(np.max(np.abs(nb.d1 - ref.d1) / np.maximum(ref.d1, 1e-30))),
        }
    return out


def crossover(dims, fast: dict, slow: dict):
    """Lowest d from which fast[d] < slow[d] at every measured d at or above it; None if not at the largest."""
    found = None
    for d in sorted(dims, reverse=True):
        if not fast[d] < slow[d]:
            break
        found = d
    return found


def summarise(timings: dict, dims) -> tuple[dict, dict]:
    names = list(timings)
    speedup = {
        n: {
            str(d): {t: timings["kdtree"][str(d)][f"{t}_s"] / timings[n][str(d)][f"{t}_s"] for t in TIMINGS}
            for d in dims
        }
        for n in names
    }
    cross = {}
    for n in names:
        if n == "kdtree":
            continue
        cross[n] = {
            t: crossover(
                dims,
                {d: timings[n][str(d)][f"{t}_s"] for d in dims},
                {d: timings["kdtree"][str(d)][f"{t}_s"] for d in dims},
            )
            for t in ("query", "knn2")
        }
        cross[n]["build_plus_query"] = crossover(
            dims,
            {d: timings[n][str(d)]["build_s"] + timings[n][str(d)]["query_s"] for d in dims},
            {d: timings["kdtree"][str(d)]["build_s"] + timings["kdtree"][str(d)]["query_s"] for d in dims},
        )
    return speedup, cross


def table(timings: dict, dims) -> str:
    names = list(timings)
    head = ["d"] + [f"{n} {t} ms" for t in ("query", "knn2") for n in names]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for d in dims:
        cells = [str(d)] + [f"{1e3 * timings[n][str(d)][f'{t}_s']:.1f}" for t in ("query", "knn2") for n in names]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="training, test and query points, each")
    p.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="tiny sizes, to prove the benchmark runs (CI)")
    p.add_argument("--out", default="outputs/bench")
    a = p.parse_args()
    if a.quick:
        a.n, a.dims, a.reps = 120, [2, 4, 16], 1
    import faiss
    import scipy
    import torch

    from memnb.core.config import NEIGHBOR_AUTO_MAX_DIM

    timings: dict[str, dict[str, dict]] = {}
    for d in a.dims:
        for name, row in measure(d, a.n, a.n, a.n, a.reps).items():
            timings.setdefault(name, {})[str(d)] = row
        print(
            f"d = {d}: " + ", ".join(f"{n} {1e3 * timings[n][str(d)]['query_s']:.1f} ms" for n in timings), flush=True
        )
    speedup, cross = summarise(timings, a.dims)
    report = {
        "quick": a.quick,
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "faiss": faiss.__version__,
            "faiss_threads": faiss.omp_get_max_threads(),
            "scipy": scipy.__version__,
            "numpy": np.__version__,
            "load_average_at_end": None,
        },
        "sizes": {"n_train": a.n, "n_test": a.n, "n_query": a.n, "k": RELATIVE_NEIGHBOURS, "reps": a.reps},
        "dims": a.dims,
        "backends": list(timings),
        "timings": timings,
        "speedup_vs_kdtree": speedup,
        "crossover": cross,
        "auto_max_dim": NEIGHBOR_AUTO_MAX_DIM,
    }
    report["machine"]["load_average_at_end"] = os.getloadavg()
    print(table(timings, a.dims))
    print("crossover (lowest d from which FAISS beats the k-d tree):", json.dumps(cross["faiss"]))
    print(f"neighbors='auto' uses the k-d tree up to d = {NEIGHBOR_AUTO_MAX_DIM}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    latest = out / ("neighbors-latest-quick.json" if a.quick else "neighbors-latest.json")
    if not a.quick:
        (out / f"neighbors-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    latest.write_text(text)
    print(f"wrote {latest}")


if __name__ == "__main__":
    main()
