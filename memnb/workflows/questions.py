"""The paper's three open questions, measured (issue 17): `python -m memnb.workflows.questions --profile laptop`.

1. **Memorization time against n**: moons (and `gmm_d` at d = `dim`) at training-set sizes n, each trained
   for a horizon of optimizer steps and evaluated at log-spaced epochs (`eval_schedule="log"`); per repeat
   τ_gen and τ_mem (memnb.analysis.timescales), per group the train-only onset (memnb.analysis.verdict's
   `timings`), the fit log τ_mem = a + α log n with a bootstrap interval, the n above which nothing is
   memorized within the horizon, and the paired outlier-versus-inlier/duplicate comparison per n under
   the verdict rule (`verdict.RULE`), in steps.
2. **Model against training process**: at one n (`cells_n_base`), the model varied with the training
   fixed (width x depth) and the training varied with the model fixed (learning rate x batch size),
   every cell trained for the same number of optimizer steps with `cells_repeats` repeats (20: Holm over
   the cells needs 2^R >= 2 cells / alpha, which 6 repeats never reach; issue 25); per cell the outlier - inlier and outlier -
   duplicate onset differences with intervals and the verdict, and τ_mem; then whether the verdict
   depends on the architecture, the training, both or neither (`timescales.dependence`).
3. **Quality against memorization**: for every run, the energy distance to held-out data (over the
   fresh-data level) against the memorized share minus its null, with τ_gen and τ_mem; the
   generalization window τ_mem - τ_gen per n.

Runs go through the sweep engine (`memnb.workflows.sweep.run_sweep`, serial executor by default), so
stored runs are reused and interrupted ones resumed. Every run: `test_set="matched"`, outliers and
near-duplicates each `injected_share` of the base points (at least 2), batch 32 unless varied, seed
`seed`, device auto (CUDA when there is one: its generators draw other numbers than the CPU's, so the same curves
within their intervals, not the same values, and other run names).

Profiles (memnb's one record and rule, `profiles.PROFILES` and `profiles.apply_profile`; ``full`` = ``paper``):
``paper`` = `FULL`, the issue's grids (about half a day to a day of the project's 2-core machine; not run);
``laptop`` (`PROFILES["laptop"].settings["questions"]`), 16 runs: part 1 about 17 minutes of one core, part 2 at
20 repeats 106 minutes (the width-512 cells 85 of them), about 65 minutes wall two runs at a time
(``--executor dask``; docs/questions.md); ``smoke``, seconds (CI).
`make figures` does not run this (too long).

Modules: the parameters and grids (`questions_grid`), one run's statistics (`questions_stats`), the readable
tables, sentences and files (`questions_report`); this one runs them (`answer`) and is the command line.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.timescales import dependence, scaling_table
from ..core.config import ExperimentConfig
from ..experiment.results import Results
from ..experiment.runner import run_dir
from .profiles import PROFILES, check_profile, project_root, resolve_runs_root
from .questions_grid import FULL, apply_profile, cell_configs, describe, horizon, params_from, part1_configs
from .questions_report import Answer, markdown, readable, summary_text, write
from .questions_stats import analyse_run, holm_cells, window_table
from .sweep import EXECUTORS, run_sweep

__all__ = [
    "PROFILES",
    "FULL",
    "Answer",
    "apply_profile",
    "params_from",
    "horizon",
    "part1_configs",
    "cell_configs",
    "describe",
    "analyse_run",
    "window_table",
    "answer",
    "readable",
    "markdown",
    "summary_text",
    "write",
    "main",
]


def answer(
    params: Mapping[str, Any] | None = None,
    profile: str = "laptop",
    runs_root: Path | str | None = None,
    executor: str = "serial",
    progress: bool = False,
) -> Answer:
    """Run (or reuse) the three grids of `params` (default `FULL`) at `profile` and compute every statistic."""
    t0 = time.perf_counter()
    params, reductions = apply_profile(dict(FULL if params is None else params), profile)
    root = resolve_runs_root(runs_root)
    p1 = part1_configs(params)
    cells = cell_configs(params)
    configs = list({c.fingerprint(): c for c in [*p1, *(c for _, c in cells)]}.values())
    sweep = run_sweep(configs, root, executor=executor, torch_threads=1, progress=progress)
    parts: list[tuple[str, ExperimentConfig]] = [("part1", c) for c in p1] + cells
    out: dict[str, list[pd.DataFrame]] = {}
    done: dict[str, dict[str, pd.DataFrame]] = {}
    for factor, c in parts:
        key = (factor, c.fingerprint())
        if key not in done:
            done[key] = analyse_run(Results(run_dir(c, root)), params, factor)
        for name, frame in done[key].items():
            out.setdefault(name, []).append(frame)
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in out.items()}
    times = tables["times"]
    times["part"] = np.where(times.factor == "part1", 1, 2)
    rng = np.random.default_rng(params["seed"])
    part1 = times[times.part == 1]
    tables["scaling"] = pd.concat(
        [
            scaling_table(part1, rng, params["n_bootstrap"], 1 - params["alpha"], time="tau_mem"),
            scaling_table(part1, rng, params["n_bootstrap"], 1 - params["alpha"], time="tau_gen"),
            scaling_table(part1, rng, params["n_bootstrap"], 1 - params["alpha"], time="tau_plateau"),
        ],
        ignore_index=True,
    )
    comp = tables.pop("comparison")
    # Holm over every dataset x size of part 1, as over the cells: each is one more test of the same claim
    tables["ordering"] = holm_cells(comp[comp.factor == "part1"].reset_index(drop=True), params["alpha"])
    tables["cells"] = holm_cells(comp[comp.factor != "part1"].reset_index(drop=True), params["alpha"])
    tables["windows"] = window_table(part1)
    tables["trajectories"] = tables["trajectories"]
    cells_t = tables["cells"]
    # the rule reads the verdicts under Holm-adjusted p (eight cells, eight tests per comparison: issue 25)
    dep = dependence(
        cells_t[cells_t.factor == "model"].verdict_holm, cells_t[cells_t.factor == "training"].verdict_holm
    )
    return Answer(params, check_profile(profile), reductions, tables, dep, time.perf_counter() - t0, sweep.wall_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memnb.workflows.questions", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="laptop", help="paper (= full) | laptop | smoke")
    parser.add_argument("--runs-root", default=None, help="where runs live (default: $MEMNB_RUNS, else outputs/runs)")
    parser.add_argument("--out-dir", default=None, help="tables and figures (default: outputs/questions/<profile>)")
    parser.add_argument("--no-images", action="store_true", help="HTML only, no PNG/SVG")
    parser.add_argument(
        "--executor",
        default="serial",
        choices=EXECUTORS,
        help="serial: one run after another; dask: one process per core (the sweep engine's local cluster)",
    )
    args = parser.parse_args(argv)
    try:
        profile = check_profile(args.profile)
    except ValueError as e:
        parser.error(str(e))
    params, reductions = apply_profile(FULL, profile)
    print(describe(profile, reductions, params), flush=True)
    a = answer(FULL, profile, args.runs_root, executor=args.executor, progress=True)
    out = Path(args.out_dir) if args.out_dir else project_root() / "outputs" / "questions" / profile
    for path in write(a, out, images=not args.no_images):
        print(path)
    print(summary_text(a))
    print(f"wall {a.wall_s:.0f} s (sweep {a.sweep_wall_s:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
