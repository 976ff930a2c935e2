"""Cheaper generation, same exact test: the strided samplers against the full DDPM, side by side in one run.

    python benchmarks/sampler_bench.py            # about 5 min of CPU (one thread): the two runs below
    python benchmarks/sampler_bench.py --quick    # seconds: proves the benchmark runs (CI); its numbers mean nothing

Two runs, each one ensemble trained once: "figure4", Figure 4's configuration (moons, 10,000 base points, 100
outliers, 100 near-duplicates) at the laptop profile's 3 repeats, 10 epochs, evaluated every 2 epochs (cost and
shares); "small", a small moons run trained long, where onsets were expected (64 base points, 6 outliers, 6
near-duplicates, the matched test set, 4 repeats, 10,000 epochs = 20,000 optimizer steps, 16 log-spaced
evaluations, 1000 samples each). At every evaluated epoch every sampler variant draws its samples from the same weights with the run's own
generators of that epoch (SAMPLE stream: each variant's x_T is the full sampler's x_T), the variants in a rotated
order: the full ancestral DDPM on all T = 50 steps (the reference, memnb's sampler), the respaced DDPM and DDIM
(eta = 0) on S = 25, 10, 5 steps, DDIM on all 50, the full DDPM on a quarter of the samples (n_generate / 4), and
the full DDPM with other noise (the generators of epoch e + 10^6: how far independent samples of the same sampler
move the shares, the yardstick for "the same"). Every variant's samples go through memnb's own exact test (the
neighbour searches of memnb.experiment.repeats, memnb.experiment.tabulate's summary and table rows) against the same
null draws (searched once per epoch); memnb.analysis.stats turns the tables into per-group signals and onsets.

Reported per variant: generation time in a timing pass at the last epoch (`--rounds` rounds of every variant in a
rotated order; the fastest round, CPU time of this process with one torch thread, and wall time) and its ratio to
the reference; the paper criterion's (ratio 1.5) memorized share per group and epoch (mean over repeats, percent),
its largest difference from the reference over the epochs; the onset per repeat and group (`timing_table`, margin
0.05, on the ``copied`` and the ``memorized`` signals; NaN: never); the reference's Wilson 95 % intervals and the
planner's numbers (memnb.analysis.planning). Written to outputs/bench/sampler-latest.json
(sampler-latest-quick.json with --quick) and a time-stamped copy. A benchmark reports: the exit status is non-zero
only on an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _cpu_name  # noqa: E402  (benchmarks/bench.py, beside this file)

REFERENCE = "ddpm@50"
GROUPS = ("inlier", "outlier", "duplicate")


OTHER_NOISE = 10**6  # "ddpm@50 other noise": the reference sampler with the generators of epoch e + this


def variants(T: int, n: int) -> dict[str, dict]:
    """name -> generate() arguments (sampler, steps, n) and the noise's epoch offset."""
    out = {REFERENCE: {"sampler": "ddpm", "steps": None, "n": n, "offset": 0}}
    for s in (25, 10, 5):
        out[f"ddpm@{s}"] = {"sampler": "ddpm", "steps": s, "n": n, "offset": 0}
    for s in (T, 25, 10, 5):
        out[f"ddim@{s}"] = {"sampler": "ddim", "steps": s, "n": n, "offset": 0}
    out[f"{REFERENCE} n/4"] = {"sampler": "ddpm", "steps": None, "n": n // 4, "offset": 0}
    # the yardstick: how far the same sampler moves the shares with other noise (independent samples)
    out[f"{REFERENCE} other noise"] = {"sampler": "ddpm", "steps": None, "n": n, "offset": OTHER_NOISE}
    return out


def run(config_dict: dict, rounds: int = 3) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    from memnb.analysis.planning import detectable_excess, samples_needed, share_interval
    from memnb.analysis.stats import signal_frame, timing_table
    from memnb.core.config import ExperimentConfig
    from memnb.core.seeding import Stream
    from memnb.experiment.repeats import RepeatData
    from memnb.experiment.tabulate import group_sizes, summarize, summary_rows, table_thresholds
    from memnb.models.ensemble import Ensemble
    from memnb.models.sampling import generate

    c = ExperimentConfig.from_dict(config_dict)
    data = RepeatData(c)
    ens = Ensemble(c, data.train_points)
    thresholds, sizes = table_thresholds(c), group_sizes(data.groups)
    arms = variants(c.num_timesteps, c.n_generate_points)
    gen_s = dict.fromkeys(arms, 0.0)
    search_s = dict.fromkeys(arms, 0.0)
    rows = {k: [] for k in arms}
    train_s = 0.0
    generate(ens.model, ens.schedule, 64, ens._generators(Stream.SAMPLE, 0))  # warm-up (first-call allocations)
    for i, e in enumerate(c.eval_epochs):
        null = data.search(data.null_draws(e), "null_")
        order = list(arms)[i % len(arms) :] + list(arms)[: i % len(arms)]  # rotated: no variant always first
        for name in order:
            a = arms[name]
            gens = ens._generators(Stream.SAMPLE, e + a["offset"])  # the run's generators of epoch e, fresh per variant
            t0 = time.perf_counter()
            s = generate(ens.model, ens.schedule, a["n"], gens, sampler=a["sampler"], steps=a["steps"])
            t1 = time.perf_counter()
            summary = summarize({**data.search(s.cpu().numpy()), **null}, data.groups, data.locations, thresholds)
            search_s[name] += time.perf_counter() - t1
            gen_s[name] += t1 - t0
            rows[name].append(summary_rows(summary, e, list(range(c.n_repeats)), thresholds, a["n"], sizes))
        t0 = time.perf_counter()
        for epoch in range(e, c.eval_epochs[i + 1] if i + 1 < len(c.eval_epochs) else e):  # up to the next evaluation
            ens.train_epoch(epoch)
        train_s += time.perf_counter() - t0
    tables = {k: pd.concat(v, ignore_index=True) for k, v in rows.items()}
    # the timing pass: the trained weights, `rounds` rounds of every variant in a rotated order each round; per
    # variant the fastest round, as wall time and as this process's CPU time (with one thread, the work done: the
    # other processes of a shared machine then stretch wall time only)
    names = list(arms)
    wall = {k: [] for k in names}
    cpu = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            a = arms[name]
            gens = ens._generators(Stream.SAMPLE, c.epochs + a["offset"])
            t0, p0 = time.perf_counter(), time.process_time()
            generate(ens.model, ens.schedule, a["n"], gens, sampler=a["sampler"], steps=a["steps"])
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - p0)

    def shares(table, criterion="paper", column="memorized"):  # (E, G) mean over repeats of a share, percent
        t = table[
            (table.criterion == criterion)
            & np.isclose(table.threshold, c.own_threshold(criterion))
            & table.group.isin(GROUPS)
        ]
        return t.groupby(["epoch", "group"])[column].mean().unstack()[list(GROUPS)] * 100

    ref = shares(tables[REFERENCE])
    ref_last = tables[REFERENCE][
        (tables[REFERENCE].criterion == "paper")
        & np.isclose(tables[REFERENCE].threshold, c.ratio)
        & (tables[REFERENCE].epoch == c.epochs)
    ]
    out = {"arms": {}, "reference": REFERENCE, "eval_epochs": list(c.eval_epochs), "train_s": train_s}
    for name, table in tables.items():
        sh = shares(table)
        best_cpu, best_wall = min(cpu[name]), min(wall[name])
        arm = {
            **arms[name],
            "generate_cpu_s": best_cpu,
            "generate_wall_s": best_wall,
            "generate_cpu_ratio": best_cpu / min(cpu[REFERENCE]),
            "generate_wall_ratio": best_wall / min(wall[REFERENCE]),
            "generate_s_over_epochs": gen_s[name],
            "search_s_over_epochs": search_s[name],
            # one evaluation of the exact test: generation (the timing pass) + searches and tables (over the epochs)
            "evaluation_cpu_ratio": (best_cpu + search_s[name] / len(c.eval_epochs))
            / (min(cpu[REFERENCE]) + search_s[REFERENCE] / len(c.eval_epochs)),
            "last_share_pct": sh.loc[c.epochs].round(3).to_dict(),
            "max_share_diff_pp": (sh - ref).abs().max().round(3).to_dict(),
            "share_pct_by_epoch": {g: sh[g].round(3).tolist() for g in GROUPS},
        }
        for value in ("copied", "memorized"):
            tim = timing_table(signal_frame(table, "paper", c.ratio, value=value), margin=0.05)
            arm[f"onset_{value}"] = {g: tim[tim.group == g].onset.tolist() for g in GROUPS}
        # the train-only criterion (Bonnaire et al.'s d1/d2 < 1/3, docs/questions.md's tau_mem) beside it
        sh_t, ref_t = shares(table, "train_only"), shares(tables[REFERENCE], "train_only")
        tim = timing_table(signal_frame(table, "train_only", c.train_ratio, value="copied"), margin=0.05)
        arm["train_only"] = {
            "last_share_pct": sh_t.loc[c.epochs].round(3).to_dict(),
            "max_share_diff_pp": (sh_t - ref_t).abs().max().round(3).to_dict(),
            "share_pct_by_epoch": {g: sh_t[g].round(3).tolist() for g in GROUPS},
            "onset_copied": {g: tim[tim.group == g].onset.tolist() for g in GROUPS},
        }
        out["arms"][name] = arm
    out["null_share_pct"] = {  # the null's memorized share per group, mean over epochs and repeats
        crit: shares(tables[REFERENCE], crit, "memorized_null").mean().round(3).to_dict()
        for crit in ("paper", "train_only")
    }
    # the reference's Wilson 95 % interval of the last epoch's share per group and repeat, and the planner's numbers
    lo, hi = share_interval(ref_last.memorized.to_numpy(), ref_last.n_generated.to_numpy())
    ref_last = ref_last.assign(lo=lo * 100, hi=hi * 100)
    out["reference_wilson_pct"] = {
        g: ref_last[ref_last.group == g][["memorized", "lo", "hi"]]
        .assign(memorized=lambda d: d.memorized * 100)
        .round(3)
        .values.tolist()
        for g in GROUPS
    }
    null = tables[REFERENCE]
    null = null[(null.criterion == "paper") & np.isclose(null.threshold, c.ratio) & null.group.isin(GROUPS)]
    p0 = null.groupby("group").memorized_null.mean()
    n = c.n_generate_points
    out["planner"] = {
        g: {
            "p0": float(p0[g]),
            "detectable_excess_at_n": detectable_excess(n, float(p0[g])) if p0[g] > 0 else None,
            "detectable_excess_at_n_over_4": detectable_excess(n // 4, float(p0[g])) if p0[g] > 0 else None,
            "samples_needed_for_1pp": samples_needed(float(p0[g]), 0.01) if 0 < p0[g] < 0.99 else None,
        }
        for g in GROUPS
    }
    out["threads"] = torch.get_num_threads()
    return out


def configs(a: argparse.Namespace) -> dict:
    """The two runs: Figure 4 at the laptop size (cost and shares), and a small moons run trained long (onsets)."""
    from memnb.core.config import ExperimentConfig
    from memnb.workflows import profiles

    fig4 = profiles.figure_config(4).replace(n_repeats=a.repeats, epochs=a.epochs, eval_every=2, device="cpu")
    # n = 76 (64 base points, 6 outliers, 6 near-duplicates: the questions grid's smallest size, whose tau_mem
    # docs/questions.md puts at about 3,200 optimizer steps), trained 20,000 steps; 1000 samples per evaluation
    small = ExperimentConfig(
        n_base=64,
        n_outliers=6,
        n_duplicates=6,
        epochs=a.small_epochs,
        eval_schedule="log",
        n_evals=16,
        n_generate=1000,
        test_set="matched",
        n_repeats=4,
        device="cpu",
    )
    if a.quick:
        fig4 = fig4.replace(n_base=200, n_outliers=6, n_duplicates=6, epochs=2, n_repeats=2)
        small = small.replace(epochs=20, n_evals=3, n_generate=100, n_repeats=2)
    return {"figure4": fig4, "small": small}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10, help="of the Figure 4 run")
    p.add_argument("--repeats", type=int, default=3, help="of the Figure 4 run")
    p.add_argument("--small-epochs", type=int, default=10_000, help="of the small run (2 steps per epoch)")
    p.add_argument("--rounds", type=int, default=3, help="timing rounds of every variant at the last epoch")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is the work done)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to prove the benchmark runs (CI)")
    p.add_argument("--out", default="outputs/bench")
    a, others = p.parse_known_args()  # make bench passes one BENCH_ARGS to bench.py and to this
    if others:
        print(f"ignored (benchmarks/bench.py's arguments): {' '.join(others)}")
    import torch

    torch.set_num_threads(a.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    report = {}
    for key, config in configs(a).items():
        report[key] = {**run(config.to_dict(), 1 if a.quick else a.rounds), "config": config.to_dict()}
    report.update(
        torch_threads=a.threads,
        rounds=a.rounds,
        wall_s=time.perf_counter() - t0,
        cpu_s=time.process_time() - c0,
        cpu=_cpu_name(),
        cores=os.cpu_count(),
        python=platform.python_version(),
        quick=a.quick,
        when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "sampler-latest-quick.json" if a.quick else "sampler-latest.json"
    for path in (out / f"sampler-{time.strftime('%Y%m%d-%H%M%S')}.json", out / name):
        path.write_text(json.dumps(report, indent=2))
    for key in ("figure4", "small"):
        print(f"-- {key}")
        print(f"{'variant':<20} {'cpu s':>7} {'ratio':>6} {'wall':>6}   last share % (in/out/dup)   onsets copied")
        for k, arm in report[key]["arms"].items():
            sh = " / ".join(f"{arm['last_share_pct'][g]:6.2f}" for g in GROUPS)
            on = " / ".join(f"{_mean(arm['onset_copied'][g])}" for g in GROUPS)
            ratios = f"{arm['generate_cpu_ratio']:6.3f} {arm['generate_wall_ratio']:6.3f}"
            print(f"{k:<20} {arm['generate_cpu_s']:7.2f} {ratios}   {sh}   {on}")
    print(f"wall {report['wall_s']:.1f} s, CPU {report['cpu_s']:.1f} s; wrote {out / name}")


def _mean(v: list) -> str:
    """The mean onset of the repeats that have one, and how many of all have one."""
    t = [x for x in v if x == x]
    return f"{sum(t) / len(t):.0f} ({len(t)}/{len(v)})" if t else f"never (0/{len(v)})"


if __name__ == "__main__":
    main()
