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
EF_SEARCH = (50, 100, 200)
SETS = ("known", "graded")


class Family:
    """The low-rank distribution x = z B + 0.1 e (see the module docstring), fixed by `seed`."""

    def __init__(self, dim: int, rank: int, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.basis = (self.rng.standard_normal((rank, dim)) / np.sqrt(rank)).astype(np.float32)

    def draw(self, n: int) -> np.ndarray:
        """(n, dim) float32 fresh points."""
        x = self.rng.standard_normal((n, len(self.basis)), dtype=np.float32) @ self.basis
        x += 0.1 * self.rng.standard_normal((n, self.basis.shape[1]), dtype=np.float32)
        return x

    def copies(self, train: np.ndarray, n: int, sigma) -> tuple[np.ndarray, np.ndarray]:
        """n copies of distinct training points plus noise of std `sigma` ((n,) or a scalar) per coordinate,
        and the copied points' indices."""
        source = self.rng.choice(len(train), n, replace=False)
        noise = self.rng.standard_normal((n, train.shape[1]), dtype=np.float32)
        return train[source] + np.asarray(sigma, np.float32).reshape(-1, 1) * noise, source


def make_samples(family: Family, train: np.ndarray, n_known: int, n_graded: int) -> dict:
    """The known-answer set (half copies at noise 0.01, half fresh draws) and the graded set (copies at noise
    log-uniform in [0.01, 1], whose ratios cross every criterion's threshold), float32, one array; `source`:
    the copied point (-1: a fresh draw); `set`: 0 known, 1 graded."""
    n_copy = n_known // 2
    copies, src = family.copies(train, n_copy, 0.01)
    graded, gsrc = family.copies(train, n_graded, np.exp(family.rng.uniform(np.log(0.01), 0.0, n_graded)))
    samples = np.concatenate([copies, family.draw(n_known - n_copy), graded])
    source = np.concatenate([src, np.full(n_known - n_copy, -1), gsrc])
    which = np.repeat([0, 1], [n_known, n_graded])
    return {"samples": samples, "source": source, "set": which}


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


class Flat:
    """FAISS IndexFlatL2, the bare exact float32 search: `search` gives float distances and int64 indices."""

    def __init__(self, x: np.ndarray):
        import faiss

        self.data = x
        self.index = faiss.IndexFlatL2(x.shape[1])
        self.index.add(x)

    def search(self, q: np.ndarray, k: int):
        sq, i = self.index.search(q, k)
        return np.sqrt(np.maximum(sq, 0)), i


def build(kind: str, x: np.ndarray):
    return Flat(x) if kind == "exact" else ApproximateIndex(x, kind)


def settings(kind: str, n_train: int) -> list[dict]:
    if kind == "exact":
        return [{}]
    if kind == "hnsw":
        return [{"efSearch": ef} for ef in EF_SEARCH]
    nlist = default_nlist(n_train)
    return [{"nprobe": p} for p in sorted({4, 16, 64, default_nprobe(nlist)}) if p <= nlist]


def shares(nb: dict, group: np.ndarray, rows: np.ndarray) -> dict:
    """Memorized share of the samples `rows` per criterion at its threshold."""
    sub = {f: v[rows] for f, v in nb.items()}
    return {
        c: float(memorized_shares(c, ratio_from(c, sub), group[sub["index"]], [THRESHOLDS[c]])[-1, 0]) for c in names()
    }


def evaluate(nb: dict, i_tr, i_te, ref: dict, group, which) -> dict:
    """Recalls and share errors of one search against the exact one, per sample set."""
    out = {}
    for j, name in enumerate(SETS):
        rows = which == j
        sub, rsub = ({f: v[rows] for f, v in x.items()} for x in (nb, ref["fields"]))
        err = share_errors(rsub, sub, group, THRESHOLDS)
        out[name] = {
            "recall_at_1": recall_at_k(i_tr[rows], ref["i_train"][rows], 1),
            "recall_at_2": recall_at_k(i_tr[rows], ref["i_train"][rows], 2),
            "recall_at_50": recall_at_k(i_tr[rows], ref["i_train"][rows], K),
            "recall_test_at_1": recall_at_k(i_te[rows], ref["i_test"][rows], 1),
            "share_error": {c: float(e[-1]) for c, e in err.items()},
            "share_error_worst_group": {c: float(e[:-1].max()) for c, e in err.items()},
            "shares": shares(nb, group, rows),
        }
    return out


def arm(kind: str, train: np.ndarray, test_index, data: dict, ref: dict | None) -> dict:
    """Build `kind` over the training points, search the samples at each setting (test points: `test_index`)."""
    q = data["samples"]
    build_s, index = _timed(lambda: build(kind, train))
    rows = []
    for s in settings(kind, len(train)):
        if s:
            for ix in (index, test_index):  # the same setting for both indexes (nprobe at most each nlist)
                ix.set_search(**{p: min(v, ix.params.get("nlist", v)) for p, v in s.items()})
            index.widened = 0
        search_s, ((d_tr, i_tr), (d_te, i_te)) = _timed(lambda: (index.search(q, K), test_index.search(q, 1)))
        row = {**s, "search_s": search_s}
        if kind == "exact":  # the reference: the flat search's neighbours, distances recomputed in float64
            row["recompute_s"], (d_tr, i_tr) = _timed(lambda i=i_tr: exact_distances(train, q, i))
            d_te, i_te = exact_distances(test_index.data, q, i_te)
            return {
                "build_s": build_s,
                "rows": [row],
                "i_train": i_tr,
                "i_test": i_te,
                "fields": fields(d_tr, i_tr, d_te),
            }
        row["rows_widened"] = index.widened
        row.update(evaluate(fields(d_tr, i_tr, d_te), i_tr, i_te, ref, data["group"], data["set"]))
        rows.append(row)
    return {"build_s": build_s, "params": index.params, "rows": rows}


def thread_check(train: np.ndarray, q: np.ndarray) -> dict:
    """IVF built and searched with one FAISS thread against the default count: the same neighbours?"""
    import faiss

    threads = faiss.omp_get_max_threads()
    found = []
    for n in (threads, 1):
        faiss.omp_set_num_threads(n)
        try:
            found.append(ApproximateIndex(train, "ivf").search(q, K)[1])
        finally:
            faiss.omp_set_num_threads(threads)
    return {"threads": [threads, 1], "same_neighbours": float((found[0] == found[1]).all(axis=1).mean())}


def measure(n_train: int, family: Family, test: dict, a) -> dict:
    """One training-set size: every arm on the same training points and samples."""
    t0 = time.perf_counter()
    train = family.draw(n_train)
    data = make_samples(family, train, a.samples, a.graded)
    data["group"] = family.rng.choice(3, n_train, p=[0.8, 0.1, 0.1])  # 3 groups at random
    exact = arm("exact", train, test["exact"], data, None)
    known = data["set"] == 0
    copies = known & (data["source"] >= 0)
    answer = {
        "copy_fraction": float(copies.sum() / known.sum()),
        "copies_found_by_exact": float((exact["i_train"][copies, 0] == data["source"][copies]).mean()),
        "exact_shares": shares(exact["fields"], data["group"], known),
        "exact_shares_graded": shares(exact["fields"], data["group"], ~known),
    }
    answer["ok"] = bool(
        answer["copies_found_by_exact"] == 1
        and all(abs(s - answer["copy_fraction"]) <= 0.02 for s in answer["exact_shares"].values())
    )
    row = {"n_train": n_train, "known_answer": answer, "exact": {k: exact[k] for k in ("build_s", "rows")}}
    for kind in ("ivf", "hnsw"):
        row[kind] = arm(kind, train, test[kind], data, exact)
        row[kind]["build_over_exact"] = row[kind]["build_s"] / exact["build_s"]
        for r in row[kind]["rows"]:
            r["search_over_exact"] = r["search_s"] / exact["rows"][0]["search_s"]
    if a.thread_check:
        row["ivf_thread_check"] = thread_check(train, data["samples"][known])
        a.thread_check = False
    row["wall_s"] = time.perf_counter() - t0
    return row


def table(rows: list[dict]) -> str:
    """Markdown: per size and setting, time ratios to the exact arm, recalls and share errors of both sample sets."""
    head = ["N", "index", "setting", "build / exact", "search / exact"]
    head += [f"{s} {m}" for s in SETS for m in ("recall@1", "recall@2", "test recall@1", "max share error")]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        e = r["exact"]
        cells = [r["n_train"], "exact flat", "-", f"1 ({e['build_s']:.2f} s)", f"1 ({e['rows'][0]['search_s']:.2f} s)"]
        out.append("| " + " | ".join(map(str, cells + ["1", "1", "1", "0"] * len(SETS))) + " |")
        for kind in ("ivf", "hnsw"):
            for s in r[kind]["rows"]:
                key = "nprobe" if kind == "ivf" else "efSearch"
                cells = [r["n_train"], kind, f"{key} {s[key]}", f"{r[kind]['build_over_exact']:.1f}"]
                cells.append(f"{s['search_over_exact']:.2f}")
                for name in SETS:
                    m = s[name]
                    cells += [f"{m['recall_at_1']:.4f}", f"{m['recall_at_2']:.4f}", f"{m['recall_test_at_1']:.4f}"]
                    cells.append(f"{max(m['share_error'].values()):.4f}")
                out.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000], help="training points")
    p.add_argument("--dim", type=int, default=3072)
    p.add_argument("--rank", type=int, default=32, help="latent dimension of the data")
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--samples", type=int, default=2000, help="known-answer samples (half copies, half fresh)")
    p.add_argument("--graded", type=int, default=1000, help="copies at graded noise (ratios across the thresholds)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to prove the benchmark runs (CI)")
    p.add_argument("--out", default="outputs/bench")
    a = p.parse_args()
    if a.quick:
        a.sizes, a.dim, a.n_test, a.samples, a.graded = [600], 64, 300, 100, 50
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
        "sizes": vars(a) | {"k": K},
        "thresholds": THRESHOLDS,
        "rows": [],
    }
    family = Family(a.dim, a.rank)
    test_points = family.draw(a.n_test)
    test, report["test_index_build_s"] = {}, {}
    for kind in ("exact", "ivf", "hnsw"):  # the test points are the same at every size: indexed once
        report["test_index_build_s"][kind], test[kind] = _timed(lambda k=kind: build(k, test_points))
    for n in a.sizes:
        report["rows"].append(measure(n, family, test, a))
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
