"""memnb.Monitor at a real model's scale: time against the bare search, peak memory against its bound, disk per
observation in each storage mode, and the approximate searches' recall and share error, side by side.

    python benchmarks/monitor_bench.py                 # 5k, 20k and 50k training points x 3072 (CIFAR-10-shaped)
    python benchmarks/monitor_bench.py --sizes 5000    # one size
    python benchmarks/monitor_bench.py --quick         # seconds: 2k x 256 (tests/test_bench.py; numbers mean nothing)

Each size runs in a fresh child process (so that its peak RSS is its own). Synthetic float32 data with a known
answer: N training points from N(0, I) in d dimensions (5% "outlier", 5% "duplicate" labels), m = N/5 test and
N/5 fixed null points from the same law, and per observation N/5 samples of which the first half are near copies
of training points (noise 0.001: the paper criterion flags them, share 0.5) and the rest fresh draws (share 0:
in 3072-D a fresh draw's nearest training and test points are equally far). The answer is checked.

Timed with time.perf_counter, in one process, in this order:
1. `Monitor(...)` (the inputs checked and hashed) and its first `observe`: the one-time set-up (the training
   points hashed and de-duplicated, the FAISS indexes built, the test points' own search for Z_U, `setup_s`),
   the samples' search, the fixed null's search (done once per Monitor), the tables and the commit;
2. a second `observe` (new samples; the null's neighbours reused); the peak RSS is read here;
3. the bare FAISS flat search of the same arrays, as a user would write it: IndexFlatL2 over the training and
   the test points, the samples' 50 nearest training points (what the relative criterion needs) and nearest
   test point; for the first observation also the same for the null points and the test points' nearest
   training point (Z_U's), which the Monitor does once;
4. two later observations, each right after the bare search of its samples (interleaved: a shared machine's
   load and clock move both alike; run one after the other, a 50,000-point run once read 1.85x where the
   interleaved pairs read 0.89x and 0.93x).
Reported: first observe / bare first, the later observations' median / the bare searches' median (1: at the
search's floor), and set-up apart.

Memory: peak RSS (ru_maxrss) above the RSS after the imports, against the user's arrays (training, test, null
and one observation's samples, float32) and the bound 3x those (the arrays, one working copy, the index).
Disk: the epoch file of one observation written by the store in each mode (all, a fixed subsample of 1000, none)
and data.npz against the user's arrays. Approximate: FAISS IVF (nprobe defaults) and HNSW (parallel build) over
the training points, the samples' recall@1 and recall@2 against the exact search and the error in every share
(memnb.metric.approximate). Written to outputs/bench/monitor-latest.json (-quick with --quick) and a
time-stamped copy. A benchmark reports: its exit status is non-zero only on an error, never because of a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _cpu_name  # noqa: E402  (benchmarks/bench.py, beside this file)

K = 50  # the training neighbours a search returns (RELATIVE_NEIGHBOURS)
SUBSAMPLE = 1000


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def synthetic(n: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    m = n // 5
    train = rng.standard_normal((n, d), dtype=np.float32)
    groups = np.zeros(n, np.int64)
    groups[: n // 20], groups[n // 20 : n // 10] = 1, 2
    test = rng.standard_normal((m, d), dtype=np.float32)
    null = rng.standard_normal((m, d), dtype=np.float32)

    def samples(epoch: int):
        r = np.random.default_rng(1000 + epoch)
        x = r.standard_normal((m, d), dtype=np.float32)
        half = m // 2
        x[:half] *= 0.001
        x[:half] += train[r.integers(0, n, half)]  # near copies: memorized
        return x

    return train, groups, test, null, samples


def bare_search(train, test, queries, with_test: bool = False):
    """The same exact searches written directly with FAISS: (build s, search s, [per query set: (train k=K,
    test k=1) results]); with_test: also the test points' nearest training point (what Z_U needs, once)."""
    import faiss

    t = time.perf_counter()
    tr, te = faiss.IndexFlatL2(train.shape[1]), faiss.IndexFlatL2(train.shape[1])
    tr.add(train)
    te.add(test)
    build = time.perf_counter() - t
    t = time.perf_counter()
    out = [(tr.search(q, K), te.search(q, 1)) for q in queries]
    if with_test:
        tr.search(test, 1)
    return build, time.perf_counter() - t, out


def child(n: int, d: int, approximate: bool = True) -> dict:
    import numpy as np

    import memnb
    from memnb.experiment.samples import chosen_slots, keep_samples
    from memnb.experiment.store import read_epoch, write_epoch
    from memnb.metric.approximate import ApproximateIndex, recall_at_k, share_errors

    base = rss_bytes()
    train, groups, test, null, samples = synthetic(n, d)
    x0, x1 = samples(0), samples(1)
    user = sum(a.nbytes for a in (train, groups, test, null, x0))
    out: dict = {"n_train": n, "dim": d, "n_test": len(test), "n_null": len(null), "n_samples": len(x0)}
    with tempfile.TemporaryDirectory(prefix="memnb-monitor-bench-") as root:
        t = time.perf_counter()
        mon = memnb.Monitor(train, groups, test, root=root, name="bench", null=null, progress=False)
        init_s = time.perf_counter() - t
        t = time.perf_counter()
        mon.observe(0, x0)
        obs0 = time.perf_counter() - t
        t = time.perf_counter()
        s1 = mon.observe(1, x1)
        obs1 = time.perf_counter() - t
        peak = peak_bytes() - base  # the Monitor's peak: before the bare search's own indexes exist
        # the bare search: its first-observation work, then later observations interleaved with the Monitor's
        # (the machine's load and clock drift alike for both)
        build, search0, bare0 = bare_search(train, test, [x0, null], with_test=True)
        later, bare_later = [], []
        for e in (2, 3):
            x = samples(e)
            _, s_bare, bare1 = bare_search(train, test, [x])
            bare_later.append(s_bare)
            t = time.perf_counter()
            mon.observe(e, x)
            later.append(time.perf_counter() - t)
        res = mon.results()
        paper = s1[(s1.criterion == "paper") & (s1.group == "all")].iloc[0]
        run = Path(root) / "bench"
        arrays = read_epoch(run, 1)
        arrays.pop("epoch", None)
        x = np.asarray(arrays.pop("samples"), np.float32)  # as stored (float16 values): the stored bytes are the same
        disk = {}
        for mode in ("all", SUBSAMPLE, "none"):
            slots = chosen_slots(mode, x.shape[1], res.config.data_sha256)
            f = write_epoch(Path(root) / f"mode-{mode}", 1, {**arrays, **keep_samples(x, slots)})
            disk[str(mode)] = f.stat().st_size
        data_npz = (run / "data.npz").stat().st_size
        exact = {f: arrays[f][0] for f in ("d1", "d2", "index", "d_test", "d_mean50")}
        setup_s = mon.setup_s
        del mon, res
    bare_first = build + search0
    bare_second, obs_later = float(np.median(bare_later)), float(np.median(later))
    x1 = samples(3)  # the approximate searches' queries, with their exact neighbours from the last bare search
    # the approximate searches over the training points, of the second observation's samples
    exact_i = bare1[0][0][1]  # the exact flat search's neighbour indices (n, K)
    exact = dict(exact)
    (d_tr, i_tr), (d_te, _) = bare1[0]
    exact.update(d1=np.sqrt(d_tr[:, 0]), d2=np.sqrt(d_tr[:, 1]), index=i_tr[:, 0], d_test=np.sqrt(d_te[:, 0]),
                 d_mean50=np.sqrt(np.maximum(d_tr, 0)).mean(axis=1))  # fmt: skip
    approx = {}
    for kind, params in (("ivf", {}), ("hnsw", {"parallel_build": True})) if approximate else ():
        t = time.perf_counter()
        index = ApproximateIndex(train, kind, **params)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        dist, idx = index.search(x1, 2)
        search_s = time.perf_counter() - t
        got = dict(exact, d1=dist[:, 0], d2=dist[:, 1], index=idx[:, 0])
        errors = share_errors(exact, got, point_group=groups)
        approx[kind] = {
            "params": {k: v for k, v in index.params.items() if isinstance(v, (int, float, bool, str))},
            "build_s": round(build_s, 3),
            "search_s": round(search_s, 3),
            "recall@1": recall_at_k(idx[:, :1], exact_i[:, :1]),
            "recall@2": recall_at_k(idx[:, :2], exact_i[:, :2]),
            "max_share_error": max(float(np.max(v)) for v in errors.values()),
            "share_error_all": {c: float(v[-1]) for c, v in errors.items()},
        }
    del bare0, bare1
    out.update(
        {
            "init_s": round(init_s, 3),
            "setup_s": round(setup_s, 3),
            "observe_first_s": round(obs0, 6),
            "observe_second_s": round(obs1, 6),
            "observe_later_s": [round(v, 6) for v in later],
            "bare_first_s": round(bare_first, 6),
            "bare_later_s": [round(v, 6) for v in bare_later],
            "bare_second_s": round(bare_second, 6),
            "observe_later_median_s": round(obs_later, 6),
            "ratio_first": obs0 / bare_first,
            "ratio_second": obs_later / bare_second,
            "gflop_first": round(2 * ((len(x0) + len(null)) * (n + len(test)) + len(test) * n) * d / 1e9, 1),
            "user_bytes": user,
            "peak_rss_above_imports": peak,
            "bound_bytes": 3 * user,
            "peak_over_user": peak / user,
            "epoch_file_bytes": disk,
            "data_npz_bytes": data_npz,
            "data_npz_over_user_data": data_npz / (user - x0.nbytes),
            "memorized_share": float(paper.memorized),
            "memorized_null": float(paper.memorized_null),
            "answer_ok": abs(float(paper.memorized) - 0.5) < 0.02 and float(paper.memorized_null) < 0.02,
            "approximate": approx,
        }
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="training set sizes (default 5000 20000 50000)")
    p.add_argument("--dim", type=int, default=None, help="dimension (default 3072; 256 with --quick)")
    p.add_argument("--quick", action="store_true", help="2000 x 256, to prove the benchmark runs (CI)")
    p.add_argument("--out", default="outputs/bench")
    p.add_argument("--skip-approximate", action="store_true", help="time the exact paths only (no IVF / HNSW)")
    p.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(*a.child, approximate=not a.skip_approximate)))
        return
    sizes = a.sizes or ([2000] if a.quick else [5000, 20000, 50000])
    dim = a.dim or (256 if a.quick else 3072)
    import numpy
    import torch

    report = {
        "benchmark": "monitor",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "cpu": _cpu_name(),
            "nproc": os.cpu_count(),
            "numpy": numpy.__version__,
            "torch": torch.__version__,
            "load_average": list(os.getloadavg()),
        },  # fmt: skip
        "quick": a.quick,
        "sizes": [],
    }
    for n in sizes:
        skip = ["--skip-approximate"] if a.skip_approximate else []
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), str(dim), *skip], capture_output=True,
                              text=True)  # fmt: skip
        if proc.returncode:
            sys.exit(f"size {n}: the child failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r["load_average_1min"] = [load, os.getloadavg()[0]]  # before and after: other jobs move every time
        report["sizes"].append(r)
        gib = 2**30
        print(f"N = {n} x {dim}: {r['n_samples']} samples, {r['n_test']} test, {r['n_null']} null "
              f"({r['gflop_first']} GFLOP in the first observation's exact search)")  # fmt: skip
        print(f"  time   first observe {r['observe_first_s']:.2f} s vs bare {r['bare_first_s']:.2f} s "
              f"(x{r['ratio_first']:.2f}); later (median of 2, interleaved) {r['observe_later_median_s']:.2f} s vs "
              f"{r['bare_second_s']:.2f} s (x{r['ratio_second']:.2f}); set-up once {r['setup_s']:.2f} s")  # fmt: skip
        print(f"  memory peak {r['peak_rss_above_imports'] / gib:.2f} GiB for {r['user_bytes'] / gib:.2f} GiB of "
              f"arrays (x{r['peak_over_user']:.2f}; bound x3 = {r['bound_bytes'] / gib:.2f} GiB)")  # fmt: skip
        e = r["epoch_file_bytes"]
        print(f"  disk   per observation: all {e['all'] / 2**20:.1f} MiB, {SUBSAMPLE} kept "
              f"{e[str(SUBSAMPLE)] / 2**20:.1f} MiB, none {e['none'] / 2**20:.2f} MiB; data.npz "
              f"{r['data_npz_bytes'] / 2**20:.0f} MiB (x{r['data_npz_over_user_data']:.2f} the given arrays)")  # fmt: skip
        for kind, v in r["approximate"].items():
            print(f"  {kind:5}  build {v['build_s']:.2f} s, search {v['search_s']:.2f} s; recall@1 {v['recall@1']:.3f}, "
                  f"recall@2 {v['recall@2']:.3f}; largest share error {v['max_share_error']:.4f}")  # fmt: skip
        print(f"  answer memorized {r['memorized_share']:.3f} against null {r['memorized_null']:.3f}: "
              f"{'as constructed' if r['answer_ok'] else 'WRONG'}")  # fmt: skip
    report["machine"]["load_average_after"] = list(os.getloadavg())
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1)
    stem = "monitor-latest-quick" if a.quick else "monitor-latest"
    (out / f"monitor-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    (out / f"{stem}.json").write_text(text)
    print(f"written to {out / (stem + '.json')}")


if __name__ == "__main__":
    main()
