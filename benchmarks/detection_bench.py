"""Generation-free detectors against the exact test: the cost of one evaluation, side by side in one run.

    python benchmarks/detection_bench.py            # a few minutes on 2 cores: Figure 4's size, 3 repeats
    python benchmarks/detection_bench.py --quick    # seconds: proves the benchmark runs (CI); its numbers mean nothing

One ensemble of Figure 4's configuration (moons, 10,000 base points, 100 outliers, 100 near-duplicates, the matched
test set: 10,200 training and 10,200 held-out points per repeat; the laptop profile's 3 repeats) is trained for
`--epochs` epochs (its weights only fix what is timed). Then, `--rounds` times, interleaved so that the machine's
load falls on every arm alike (the order rotates each round): the exact test of one evaluation (generation of
n_train samples with the run's sampler, their neighbour search and the null draws' search, as
memnb.experiment.session.Session.evaluate does) and each detector scoring every training and held-out point
(memnb.metric.membership_scores.score_points, one detector at a time). Reported per arm: the median seconds over
rounds, the ratio to the exact test's median (a speed-up above 1), the network calls per scored point
(memnb.metric.membership_scores.calls_per_point) beside the sampler's T per sample. Written to
outputs/bench/detection-latest.json (detection-latest-quick.json with --quick) and a time-stamped copy. A benchmark
reports: the exit status is non-zero only on an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _cpu_name  # noqa: E402  (benchmarks/bench.py, beside this file)

DETECTORS = ("loss", "pia", "secmi", "sima", "lid")


def run(config_dict: dict, epochs: int, rounds: int) -> dict:
    import torch

    from memnb.core.config import ExperimentConfig
    from memnb.experiment.repeats import RepeatData
    from memnb.metric.membership_scores import calls_per_point, score_points
    from memnb.models.ensemble import Ensemble

    c = ExperimentConfig.from_dict(config_dict)
    data = RepeatData(c)
    ens = Ensemble(c, data.train_points)
    t0 = time.perf_counter()
    for e in range(epochs):
        ens.train_epoch(e)
    train_s = time.perf_counter() - t0
    abar = ens.schedule.alphas_cumprod.cpu().numpy()
    train, held, groups, held_groups = data.train_points, data.test_points, data.groups, data.test_groups

    def exact():
        samples = ens.generate(epochs)
        data.search(samples)
        data.search(data.null_draws(epochs), "null_")

    def detector(name):
        return lambda: score_points(ens.model, abar, train, held, groups, held_groups, [name], c.seed, batched=True)

    arms = {"exact": exact, **{d: detector(d) for d in DETECTORS}}
    seconds = {k: [] for k in arms}
    detector(DETECTORS[0])()  # warm-up (first-call allocations)
    for i in range(rounds):
        order = list(arms)[i % len(arms) :] + list(arms)[: i % len(arms)]
        for name in order:
            t = time.perf_counter()
            with torch.no_grad() if name != "lid" else torch.enable_grad():
                arms[name]()
            seconds[name].append(time.perf_counter() - t)
    ref = statistics.median(seconds["exact"])
    rows = {}
    for name, s in seconds.items():
        med = statistics.median(s)
        rows[name] = {
            "median_s": round(med, 4),
            "all_s": [round(x, 4) for x in s],
            "speedup_vs_exact": round(ref / med, 2),
            "calls_per_point": c.num_timesteps if name == "exact" else calls_per_point(name, abar, c.dim),
            "points": c.n_generate_points if name == "exact" else c.n_train + c.n_test_points,
        }
    return {"train_s": round(train_s, 2), "arms": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tiny run in seconds (CI); its numbers mean nothing")
    p.add_argument("--epochs", type=int, default=None, help="training epochs before timing (default 3; quick 1)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; quick 1)")
    p.add_argument("--out", default="outputs/bench")
    args = p.parse_args(argv)
    from memnb.workflows.profiles import FIGURES

    base = FIGURES[4].replace(n_repeats=3, test_set="matched", device="cpu")
    if args.quick:
        base = base.replace(n_base=300, n_outliers=10, n_duplicates=10, n_repeats=1, hidden_size=32)
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 3)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    t0 = time.perf_counter()
    report = {
        "benchmark": "detection",
        "settings": {"config": base.to_dict(), "epochs": epochs, "rounds": rounds, "quick": args.quick},
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
        "command": "python benchmarks/detection_bench.py" + (" --quick" if args.quick else ""),
        **run(base.to_dict(), epochs, rounds),
    }
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "detection-latest-quick.json" if args.quick else "detection-latest.json"
    text = json.dumps(report, indent=2)
    (out / name).write_text(text)
    (out / f"detection-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json").write_text(text)
    print(f"{'arm':8s} {'median s':>9s} {'speed-up':>9s} {'calls/pt':>9s} {'points':>7s}")
    for k, r in report["arms"].items():
        print(f"{k:8s} {r['median_s']:9.3f} {r['speedup_vs_exact']:9.2f} {r['calls_per_point']:9d} {r['points']:7d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
