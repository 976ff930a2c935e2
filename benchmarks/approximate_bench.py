"""Approximate neighbour search (FAISS IVF, HNSW) against the exact IndexFlatL2, side by side in one process.

    python benchmarks/approximate_bench.py                        # 5k, 20k and 50k training points x 3072-D
    python benchmarks/approximate_bench.py --sizes 5000 20000     # some of them
    python benchmarks/approximate_bench.py --quick                # seconds: proves it runs (CI); numbers mean nothing

Data with a known answer, float32 (as a user's images are): training points (N, d), test points (10,000, d)
and samples (2,000, d) from one low-rank distribution, x = z B + 0.1 e (z: `--rank` = 32 standard normal
latents, B a fixed (rank, d) matrix with N(0, 1/rank) entries, so every coordinate has variance about 1.01;
e: isotropic noise), the structure of images rather than structureless noise, which no index can speed up.
Half the samples are copies of distinct training points plus noise of 0.01 per coordinate (distance about
0.55 in 3072-D, against about 25 to the nearest other point): every criterion flags them, so the exact
memorized share is about 0.5; the other half are fresh draws, flagged by none.

Per training-set size, each arm searches the samples' k = 50 nearest training points (d1, d2, d_mean50) and
their nearest test point (d_test), as memnb does per observation:

- exact: FAISS IndexFlatL2, the bare float32 search (the floor an observation is measured against); its
  neighbours, their distances recomputed in float64, are the reference;
- ivf at each nprobe, hnsw at each efSearch: memnb.metric.approximate.ApproximateIndex, its time including the
  float64 recomputation of the k distances (`recompute_s` says how much of it that is).

Build (both indexes: training and test points) and search are timed separately, once each (the machine is
shared: see the load average in the report). Reported per setting: search and build time over the exact
arm's (ratios), recall@1, recall@2 and recall@50 of the training neighbours, recall@1 of the test
neighbour, and the absolute error of every criterion's memorized share at its own threshold (paper 1.5,
train_only 3, relative 10), for all groups and the worst of 3 random groups. At the first size it also
checks that an IVF index built and searched with one thread finds the neighbours the default thread count
finds. Results go to outputs/bench/approximate-<time>.json and outputs/bench/approximate-latest.json.
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

from memnb.metric.approximate import (  # noqa: E402
    ApproximateIndex,
    default_nlist,
    default_nprobe,
    exact_distances,
    recall_at_k,
    share_errors,
)
from memnb.metric.criteria import memorized_shares, names, ratio_from  # noqa: E402
from memnb.metric.neighbors import RELATIVE_NEIGHBOURS  # noqa: E402

K = RELATIVE_NEIGHBOURS
THRESHOLDS = {"paper": 1.5, "train_only": 3.0, "relative": 10.0}  # memnb's defaults (ratio, train_ratio, 1/alpha)
EF_SEARCH = (50, 100, 200, 400)


def make_data(n_train: int, n_test: int, n_samples: int, dim: int, rank: int, seed: int = 0) -> dict:
    """float32 training (n_train, dim), test (n_test, dim) and sample (n_samples, dim) points; `source` (n_samples,)
    the training point each copy copies (-1: a fresh draw); `group` (n_train,) a random group code 0-2."""
    rng = np.random.default_rng(seed)
    basis = (rng.standard_normal((rank, dim)) / np.sqrt(rank)).astype(np.float32)

    def draw(n: int) -> np.ndarray:
        x = rng.standard_normal((n, rank), dtype=np.float32) @ basis
        x += 0.1 * rng.standard_normal((n, dim), dtype=np.float32)
        return x

    train, test = draw(n_train), draw(n_test)
    n_copy = n_samples // 2
    source = np.full(n_samples, -1, np.int64)
    source[:n_copy] = rng.choice(n_train, n_copy, replace=False)
    samples = np.concatenate([train[source[:n_copy]], draw(n_samples - n_copy)])
    samples[:n_copy] += 0.01 * rng.standard_normal((n_copy, dim), dtype=np.float32)
    group = rng.choice(3, n_train, p=[0.8, 0.1, 0.1])
    return {"train": train, "test": test, "samples": samples, "source": source, "group": group}


def fields(d_train: np.ndarray, i_train: np.ndarray, d_test: np.ndarray) -> dict:
    """The neighbour fields of memnb.metric.neighbors from a (n, K) training and a (n, 1) test search."""
    return {
        "d1": d_train[:, 0],
        "d2": d_train[:, 1],
        "index": i_train[:, 0],
        "d_test": d_test[:, 0],
        "d_mean50": d_train.mean(axis=1),
    }


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def exact_arm(data: dict) -> dict:
    import faiss

    train, test, q = data["train"], data["test"], data["samples"]

    def build():
        out = []
        for x in (train, test):
            index = faiss.IndexFlatL2(x.shape[1])
            index.add(x)
            out.append(index)
        return out

    build_s, (flat_train, flat_test) = _timed(build)

    def search():
        sq_tr, i_tr = flat_train.search(q, K)
        sq_te, i_te = flat_test.search(q, 1)
        return np.sqrt(np.maximum(sq_tr, 0)), i_tr, np.sqrt(np.maximum(sq_te, 0)), i_te

    search_s, (_, i_tr, _, i_te) = _timed(search)
    recompute_s, (d_tr, i_tr) = _timed(lambda: exact_distances(train, q, i_tr))
    d_te, i_te = exact_distances(test, q, i_te)
    return {"build_s": build_s, "search_s": search_s, "recompute_s": recompute_s, "i_train": i_tr, "i_test": i_te,
            "fields": fields(d_tr, i_tr, d_te)}  # fmt: skip


def settings(kind: str, n_train: int) -> list[dict]:
    if kind == "hnsw":
        return [{"efSearch": ef} for ef in EF_SEARCH]
    nlist = default_nlist(n_train)
    return [{"nprobe": p} for p in sorted({1, 4, 16, 64, default_nprobe(nlist)}) if p <= nlist]


def approx_arm(kind: str, data: dict, exact: dict) -> dict:
    train, test, q = data["train"], data["test"], data["samples"]
    build_s, (a_train, a_test) = _timed(lambda: (ApproximateIndex(train, kind), ApproximateIndex(test, kind)))
    rows = []
    for s in settings(kind, len(train)):
        for index in (a_train, a_test):  # the same setting for both indexes (nprobe at most each nlist)
            index.set_search(**{p: min(v, index.params.get("nlist", v)) for p, v in s.items()})
        a_train.widened = 0
        search_s, ((d_tr, i_tr), (d_te, i_te)) = _timed(lambda: (a_train.search(q, K), a_test.search(q, 1)))
        recompute_s, _ = _timed(lambda i=i_tr: exact_distances(train, q, i))
        nb = fields(d_tr, i_tr, d_te)
        err = share_errors(exact["fields"], nb, data["group"], THRESHOLDS)
        rows.append(
            {
                **s,
                "search_s": search_s,
                "recompute_s": recompute_s,
                "search_over_exact": search_s / exact["search_s"],
                "recall_at_1": recall_at_k(i_tr, exact["i_train"], 1),
                "recall_at_2": recall_at_k(i_tr, exact["i_train"], 2),
                "recall_at_50": recall_at_k(i_tr, exact["i_train"], K),
                "recall_test_at_1": recall_at_k(i_te, exact["i_test"], 1),
                "rows_widened": a_train.widened,
                "share_error": {c: float(e[-1]) for c, e in err.items()},
                "share_error_worst_group": {c: float(e[:-1].max()) for c, e in err.items()},
                "shares": shares(nb, data["group"]),
            }
        )
    return {"build_s": build_s, "build_over_exact": build_s / exact["build_s"], "params": a_train.params, "rows": rows}


def shares(nb: dict, group: np.ndarray) -> dict:
    """Memorized share of all samples per criterion at its threshold."""
    return {
        c: float(memorized_shares(c, ratio_from(c, nb), group[nb["index"]], [THRESHOLDS[c]])[-1, 0]) for c in names()
    }


def thread_check(data: dict) -> dict:
    """IVF built and searched with one FAISS thread against the default count: the same neighbours?"""
    import faiss

    threads = faiss.omp_get_max_threads()
    found = []
    for n in (threads, 1):
        faiss.omp_set_num_threads(n)
        try:
            found.append(ApproximateIndex(data["train"], "ivf").search(data["samples"], K)[1])
        finally:
            faiss.omp_set_num_threads(threads)
    return {"threads": [threads, 1], "same_neighbours": float((found[0] == found[1]).all(axis=1).mean())}


def measure(n_train: int, a) -> dict:
    t0 = time.perf_counter()
    data = make_data(n_train, a.n_test, a.samples, a.dim, a.rank)
    exact = exact_arm(data)
    copies = data["source"] >= 0
    known = {
        "copy_fraction": float(copies.mean()),
        "copies_found_by_exact": float((exact["i_train"][copies, 0] == data["source"][copies]).mean()),
        "exact_shares": shares(exact["fields"], data["group"]),
    }
    known["ok"] = bool(
        known["copies_found_by_exact"] == 1
        and all(abs(s - known["copy_fraction"]) <= 0.02 for s in known["exact_shares"].values())
    )
    row = {"n_train": n_train, "known_answer": known}
    row["exact"] = {k: exact[k] for k in ("build_s", "search_s", "recompute_s")}
    for kind in ("ivf", "hnsw"):
        row[kind] = approx_arm(kind, data, exact)
    if a.thread_check:
        row["ivf_thread_check"] = thread_check(data)
        a.thread_check = False
    row["wall_s"] = time.perf_counter() - t0
    return row


def table(rows: list[dict]) -> str:
    head = "| N | index | setting | build / exact | search / exact | recall@1 | recall@2 | recall@50 | test recall@1 |"
    head += " share error paper / train_only / relative |"
    out = [head, "|" + " --- |" * 10]
    for r in rows:
        e = r["exact"]
        out.append(
            f"| {r['n_train']} | exact flat | - | 1 ({e['build_s']:.2f} s) | 1 ({e['search_s']:.2f} s) | 1 | 1 | 1 | 1 | 0 |"
        )
        for kind in ("ivf", "hnsw"):
            arm = r[kind]
            for s in arm["rows"]:
                key = "nprobe" if kind == "ivf" else "efSearch"
                err = " / ".join(f"{s['share_error'][c]:.4f}" for c in names())
                out.append(
                    f"| {r['n_train']} | {kind} | {key} {s[key]} | {arm['build_over_exact']:.1f} | "
                    f"{s['search_over_exact']:.2f} | {s['recall_at_1']:.4f} | {s['recall_at_2']:.4f} | "
                    f"{s['recall_at_50']:.4f} | {s['recall_test_at_1']:.4f} | {err} |"
                )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000], help="training points")
    p.add_argument("--dim", type=int, default=3072)
    p.add_argument("--rank", type=int, default=32, help="latent dimension of the data")
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="tiny sizes, to prove the benchmark runs (CI)")
    p.add_argument("--out", default="outputs/bench")
    a = p.parse_args()
    if a.quick:
        a.sizes, a.dim, a.n_test, a.samples = [600], 64, 300, 100
    a.thread_check = True
    import faiss

    report = {
        "quick": a.quick,
        "command": " ".join(["python"] + sys.argv),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "faiss": faiss.__version__,
            "faiss_threads": faiss.omp_get_max_threads(),
            "numpy": np.__version__,
            "load_average_at_start": os.getloadavg(),
        },
        "sizes": {"dim": a.dim, "rank": a.rank, "n_test": a.n_test, "samples": a.samples, "k": K},
        "thresholds": THRESHOLDS,
        "rows": [],
    }
    for n in a.sizes:
        report["rows"].append(measure(n, a))
        r = report["rows"][-1]
        print(f"N = {n}: {r['wall_s']:.0f} s, known answer {'ok' if r['known_answer']['ok'] else 'WRONG'}", flush=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    print(table(report["rows"]))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    latest = out / ("approximate-latest-quick.json" if a.quick else "approximate-latest.json")
    if not a.quick:
        (out / f"approximate-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    latest.write_text(text)
    print(f"wrote {latest}")


if __name__ == "__main__":
    main()
