"""Error rates of the verdict (issue 25): how often "holds", "reversed" and "inconclusive" are said when the
groups' true onsets are known.

Simulated part-2 cells (memnb.analysis.simulate_ordering: moons at n = 76, 58 inliers, 6 outliers, 12 duplicate
points, their measured null shares, binomial noise at each group's size, the runs' log grid, censoring at the
horizon), every simulated run through the verdict's own code (`stats.timing_table`, `verdict.compare_groups`).
Truths: the outliers' onsets equal the others' (shift 0: "holds" and "reversed" are both errors), twice as late
(shift log 2), or beyond the horizon (shift log 100: never memorized within the run). Writes
outputs/bench/ordering-latest.json and prints the table as Markdown (docs/questions.md quotes it).

    python benchmarks/ordering_bench.py [--runs 200] [--seed 0] [--out outputs/bench/ordering-latest.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny arrays: BLAS threads only contend

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from memnb.analysis.simulate_ordering import OrderingSetting, verdict_rates  # noqa: E402

SHIFTS = {"equal": 0.0, "x2 later": math.log(2.0), "never": math.log(100.0)}
HEIGHTS = (0.3, 0.6)
SHAPES = ("ramp", "step")
REPEATS = (6, 20)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200, help="simulated runs per setting (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "outputs/bench/ordering-latest.json"))
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error(f"--runs = {args.runs} is invalid; allowed: an integer >= 1")
    rng = np.random.default_rng(args.seed)
    rows, t0 = [], time.perf_counter()
    for (truth, shift), height, shape, r in itertools.product(SHIFTS.items(), HEIGHTS, SHAPES, REPEATS):
        t = time.perf_counter()
        s = OrderingSetting(shift=shift, height=height, shape=shape, n_repeats=r)
        rows.append(
            {"outliers": truth, "height": height, "shape": shape, "repeats": r, **verdict_rates(s, args.runs, rng)}
        )
        print(f"{truth} h {height} {shape} R {r}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    setting = {
        k: v for k, v in OrderingSetting().__dict__.items() if k not in ("shift", "height", "shape", "n_repeats")
    }
    out.write_text(
        json.dumps(
            {"runs": args.runs, "seed": args.seed, "setting": setting, "wall_s": time.perf_counter() - t0,
             "table": table.to_dict(orient="records")},
            indent=1,
        )
    )  # fmt: skip
    cols = ["outliers", "height", "shape", "repeats", "holds", "reversed", "inconclusive", "below null"]
    print("| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols))
    for r in table[cols].itertuples(index=False):
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    print(f"{args.runs} runs per setting, seed {args.seed}, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
