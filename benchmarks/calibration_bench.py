"""Calibration bench of the time-scale estimators (issue 25): bias of α and coverage of its 95 % interval.

Simulated studies with a known law τ = c n^α (memnb.analysis.simulate: the laptop profile's design, binomial
noise at n generated samples, the runs' linear or log grids, censoring at the horizon), every estimator on the
same studies: least squares on first crossings (memnb's first), the same crossings as censored intervals, and
the censored estimator on the one onset rule. Writes outputs/bench/calibration-latest.json and prints the
table as Markdown (docs/questions.md quotes it). `make bench` runs it at 200 studies per setting.

    python benchmarks/calibration_bench.py [--studies 200] [--seed 0] [--out outputs/bench/calibration-latest.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the fits are tiny: BLAS threads only contend

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from memnb.analysis.simulate import GRIDS, SHAPES, Setting, calibrate, coverage_table  # noqa: E402

ALPHAS = (0.8, 1.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--studies", type=int, default=200, help="simulated studies per setting (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-bootstrap", type=int, default=1000, help="resamples of the least-squares interval")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "outputs/bench/calibration-latest.json"))
    args = p.parse_args(argv)
    if args.studies < 1:
        p.error(f"--studies = {args.studies} is invalid; allowed: an integer >= 1")
    rng = np.random.default_rng(args.seed)
    rows, t0 = [], time.perf_counter()
    for alpha, shape, grid in itertools.product(ALPHAS, SHAPES, GRIDS):
        t = time.perf_counter()
        rows.append(calibrate(Setting(alpha=alpha, shape=shape, grid=grid), args.studies, rng, args.n_bootstrap))
        print(f"alpha {alpha} {shape} {grid}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    table = coverage_table(pd.concat(rows, ignore_index=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "studies": args.studies,
                "seed": args.seed,
                "setting": {k: v for k, v in Setting().__dict__.items() if k not in ("alpha", "shape", "grid")},
                "wall_s": time.perf_counter() - t0,
                "table": table.to_dict(orient="records"),
            },
            indent=1,
            default=str,
        )
    )
    cols = ["alpha", "shape", "grid", "estimator", "n_studies", "bias", "coverage", "median_width"]
    print("| " + " | ".join(cols) + " |\n| " + " | ".join("---" for _ in cols) + " |")
    for r in table[cols].itertuples(index=False):
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    print(f"{out} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
