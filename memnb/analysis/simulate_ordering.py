"""Simulated runs with a known group ordering, to measure the verdict's error rates (issue 25, item 1).

The verdict (`verdict.compare_groups` on `stats.timing_table`) concludes "holds" (outliers memorized later
than inliers and duplicates), "reversed" or "inconclusive". This module measures how often it says each when
the truth is known. Pure functions; all randomness from the `numpy.random.Generator` passed in.

One simulated *run* has `n_repeats` repeats. In repeat r every group g (inlier, outlier, duplicate, of
`sizes[g]` training points) has its own onset (optimizer steps)

    log τ[r, g] = log tau_ref + shift[g] + sigma_repeat u[r] + sigma_group e[r, g]    (u, e standard normal),

shift = 0 for inliers and duplicates and `shift` for the outliers (0: the null hypothesis "not later"; > 0: the
outliers later by a factor e^shift), u shared by the groups of a repeat (one model per repeat). The share of the
group's training points copied follows p(t) = q[g] + height s((t - τ) / (ramp τ)) (ramp: s = clip(u, 0, 1);
step: s = 1[u >= 0]); at every evaluated epoch of the grid (`simulate.eval_grid`, log or linear, the run trained
for `horizon_steps` steps of n // batch_size per epoch) the observed share is Binomial(n_g, p(t)) / n_g and the
null's Binomial(n_g, q[g]) / n_g: the `copied` signal frame memnb builds from a run (`stats.signal_frame`),
with its ``n`` column. Defaults: part 2's default cell (moons, n = 76: 58 inliers, 6 outliers, 12 duplicate
points; its null shares 0.237, 0.096, 0.259, measured from the 20-repeat run).

`verdict_rates` runs many simulated runs of one setting through the verdict's own code and counts its words.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..core.vocabulary import GROUPS
from .simulate import GRIDS, SHAPES, eval_grid, true_share
from .stats import timing_table
from .timescales import steps_per_epoch
from .verdict import VERDICTS, compare_groups


@dataclasses.dataclass(frozen=True)
class OrderingSetting:
    """One simulated design of a part-2 cell: `shift` the outliers' log-onset shift (0: the null hypothesis)."""

    shift: float = 0.0
    height: float = 0.3  # the plateau of each group's copied share above its null
    shape: str = "ramp"
    n_repeats: int = 20
    sizes: tuple[int, int, int] = (58, 6, 12)  # inlier, outlier, duplicate training points
    null: tuple[float, float, float] = (0.237, 0.096, 0.259)  # their copied shares for fresh draws
    tau_ref: float = 3000.0  # median onset (steps) of the inliers and duplicates
    sigma_repeat: float = 0.25
    sigma_group: float = 0.25
    ramp: float = 0.2
    horizon_steps: int = 20_000
    batch_size: int = 32
    grid: str = "log"
    n_evals: int = 16
    eval_every: int = 25

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"shape = {self.shape!r} is invalid; allowed: {' | '.join(SHAPES)}")
        if self.grid not in GRIDS:
            raise ValueError(f"grid = {self.grid!r} is invalid; allowed: {' | '.join(GRIDS)}")
        if not (len(self.sizes) == len(self.null) == len(GROUPS) and min(self.sizes) >= 1):
            raise ValueError(f"sizes = {self.sizes!r} is invalid; allowed: three group sizes >= 1 (with three nulls)")
        if not (0 < self.height and max(self.null) + self.height <= 1):
            raise ValueError(f"height = {self.height!r} is invalid; allowed: > 0 with null + height <= 1")
        for name in ("tau_ref", "ramp"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)!r} is invalid; allowed: a number > 0")
        for name in ("sigma_repeat", "sigma_group"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} = {getattr(self, name)!r} is invalid; allowed: a number >= 0")
        if self.n_repeats < 2:
            raise ValueError(f"n_repeats = {self.n_repeats!r} is invalid; allowed: an integer >= 2")

    @property
    def n_train(self) -> int:
        return int(sum(self.sizes))


def simulate_run(s: OrderingSetting, rng: np.random.Generator) -> pd.DataFrame:
    """One run's `copied` signal frame: columns repeat, epoch, group, signal, null, n, scale (= 1)."""
    spe = steps_per_epoch(s.n_train, s.batch_size)
    epochs = eval_grid(-(-s.horizon_steps // spe), s.grid, n_evals=s.n_evals, eval_every=s.eval_every)
    steps = epochs * spe
    shift = np.array([0.0, s.shift, 0.0])
    u = rng.standard_normal((s.n_repeats, 1))
    e = rng.standard_normal((s.n_repeats, len(GROUPS)))
    tau = np.exp(np.log(s.tau_ref) + shift + s.sigma_repeat * u + s.sigma_group * e)  # (R, G) steps
    rows = []
    for r in range(s.n_repeats):
        for g, name in enumerate(GROUPS):
            n, q = s.sizes[g], s.null[g]
            p = true_share(steps, [tau[r, g]], q, s.height, s.shape, s.ramp)[0]  # in [q, q + height] within [0, 1]
            sig = rng.binomial(n, p) / n
            nul = rng.binomial(n, q, size=len(epochs)) / n
            rows.append(pd.DataFrame({"repeat": r, "epoch": epochs, "group": name, "signal": sig, "null": nul}))
    return pd.concat(rows, ignore_index=True).assign(
        n=lambda f: f.group.map(dict(zip(GROUPS, s.sizes))).astype(np.float64), scale=1.0
    )


def verdict_of(signals: pd.DataFrame, margin: float = 0.05, z: float = 3.0, n_bootstrap: int = 1000) -> str:
    """The verdict word memnb's rule gives this signal frame (the onset statistic, alpha 0.05)."""
    timing = timing_table(signals, margin, pool_null=True, z=z)
    return compare_groups(timing, "onset", n_bootstrap=n_bootstrap, seed=0)["verdict"]


def verdict_rates(
    s: OrderingSetting, n_runs: int, rng: np.random.Generator, z: float = 3.0, n_bootstrap: int = 1000
) -> dict[str, float]:
    """Share of `n_runs` simulated runs of `s` given each verdict word (keys: `VERDICTS`), plus n_runs."""
    words = [verdict_of(simulate_run(s, rng), z=z, n_bootstrap=n_bootstrap) for _ in range(n_runs)]
    return {**{w: words.count(w) / n_runs for w in VERDICTS}, "n_runs": n_runs}


__all__ = ["GROUPS", "OrderingSetting", "simulate_run", "verdict_of", "verdict_rates"]
