"""The verdict on "outliers memorized last": one row per run x metric variant x timing statistic.

`timings` turns stored runs into per-repeat, per-group memorization times (see memnb.analysis.stats) under
several metric variants (by default every criterion of the registry `CRITERIA`, and Meehan's Z_U);
`verdict_table` compares the outliers' times with the inliers' and the duplicates' across repeats, and
names the outcome by the rule `RULE`. Which runs to judge, and the report naming them, are
memnb.analysis.runs (`find_runs`, `sweep_runs`, `runs_report`, `describe`, importable from here too).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.registry import CRITERIA
from ..core.run_config import RunConfig
from ..core.validate import fail, is_int, is_real
from ..core.vocabulary import DUPLICATE, GROUPS, INLIER, OUTLIER, SIGNAL_VALUES
from ..experiment.results import Results
from .against_null import BELOW_SIGNIFICANCE, standing
from .inference import bootstrap_ci, cohens_dz, paired_permutation_test, rank_biserial
from .runs import describe, find_runs, runs_report, sweep_runs  # noqa: F401 (re-exported: the verdict's runs)
from .stats import TIMINGS, signal_frame, timing_table, zu_signal_frame

VERDICTS = ("holds", "reversed", "inconclusive", "below null")
JUDGED = GROUPS[OUTLIER]  # the group whose times are judged
COMPARED = (GROUPS[INLIER], GROUPS[DUPLICATE])  # the outliers' times are compared with these groups'

RULE = """\
Verdict rule (one row = one run x metric variant x timing statistic).
For each repeat r and group g, T[r, g] is the first evaluated epoch at which g's null-corrected
rate (observed minus the null baseline, the null averaged over epochs) exceeds the margin
("onset"), or reaches half of its final value ("half"), counting only epochs where that excess is
also z standard errors above 0 (binomial, from the group's size; z = 0: the margin alone). A
group that never gets there is censored at one evaluation step after the last evaluated epoch
(conservative: it shrinks differences towards 0, never flips their sign).
For each comparison c in {inlier, duplicate}: D_c[r] = T[r, outlier] - T[r, c] (epochs; > 0 means
the outliers are memorized later). Reported: the mean of D_c over repeats, its percentile-bootstrap
interval over repeats (level 1 - alpha, seeded), and the two-sided exact paired sign-flip
permutation p-value (smallest attainable: 2 / 2^R, so R >= 6 repeats are needed for p < 0.05).
  holds        every available comparison has interval > 0 and p < alpha
               (outliers significantly later than inliers AND than duplicates);
  reversed     some comparison has interval < 0 and p < alpha
               (some group is memorized significantly LATER than the outliers);
  inconclusive otherwise (including too few repeats, or no comparison available);
  below null   first of all: the outliers or a compared group lie significantly BELOW their null at the
               final epoch (memnb.analysis.against_null: a one-sided exact test of the counts pooled over
               repeats at 5 %; for Z_U, Stouffer's z of Z_U minus its null's above 1.645): a quality failure
               (the generator is worse than the data there), never read as "not memorized yet"; the
               group's censored times say nothing about when it is memorized, so nothing is compared.
Each row is its own test at level alpha; no correction across rows.
"""


@dataclass(frozen=True)
class Variant:
    """A metric variant: `criterion`, a name of the registry CRITERIA, at `threshold` (None: the
    run's own, e.g. ratio, train_ratio or 1/relative_alpha), `value` (copied | memorized | conditional, see
    stats.signal_frame); or
    criterion "zu": Meehan et al.'s data-copying effect per cell (threshold and value unused)."""

    criterion: str
    threshold: float | None = None
    value: str = "copied"

    def resolve(self, config: RunConfig) -> Variant:
        if self.criterion == "zu" or self.threshold is not None:
            return self
        if self.criterion not in CRITERIA:
            fail("criterion", self.criterion, f"{' | '.join(CRITERIA.names())} | zu")
        return Variant(self.criterion, config.own_threshold(self.criterion), self.value)

    def label(self) -> str:
        if self.criterion == "zu":
            return "Meehan Z_U (1/2 - U/mn)"
        inverse = self.criterion in CRITERIA and CRITERIA.get(self.criterion).inverse  # k = 1/alpha (relative)
        k = f"alpha={1 / self.threshold:.3g}" if inverse else f"k={self.threshold:g}"
        return f"{self.criterion} {k} ({self.value})"


def default_variants(values=("copied", "conditional")) -> tuple[Variant, ...]:
    """Every registered criterion (memnb.core.registry.CRITERIA, read at the call: a criterion registered
    later is judged too) at the run's own threshold under each of `values`, then Meehan's Z_U."""
    for v in values:
        check_arguments(value=v)
    return tuple(Variant(c, value=v) for c in CRITERIA.names() for v in values) + (Variant("zu"),)


def check_arguments(*, alpha=None, margin=None, margin_zu=None, z=None, n_bootstrap=None, value=None) -> None:
    """ValueError naming the argument, its value and what is allowed, for the verdict's settings (those given)."""
    if alpha is not None and not (is_real(alpha) and 0 < alpha < 1):
        fail("alpha", alpha, "a test level > 0 and < 1 (intervals at 1 - alpha)")
    for name, v in (("margin", margin), ("margin_zu", margin_zu), ("z", z)):
        if v is not None and not (is_real(v) and v >= 0):
            fail(name, v, "a finite number >= 0")
    if n_bootstrap is not None and not (is_int(n_bootstrap) and n_bootstrap >= 1):
        fail("n_bootstrap", n_bootstrap, "an integer >= 1")
    if value is not None and value not in SIGNAL_VALUES:
        fail("value", value, " | ".join(SIGNAL_VALUES))


def _rows(results: Results, v: Variant) -> pd.DataFrame | None:
    """The table rows of a resolved criterion variant (recomputed from the stored distances off the grid);
    None when the run cannot give them (the relative criterion of a run stored before d_mean50 existed)."""
    table = results.table()
    rows = table[(table.criterion == v.criterion) & np.isclose(table.threshold, v.threshold)]
    if rows.empty:
        rows = results.rates_at(v.criterion, v.threshold)
    return None if rows[["copied", "memorized"]].isna().all().all() else rows


def run_signals(results: Results, variant: Variant) -> pd.DataFrame | None:
    """Signal frame of one run under one variant; None when the run cannot give it (e.g. no relative
    criterion stored, or an off-grid threshold, which is recomputed from the stored distances)."""
    v = variant.resolve(results.config)
    if v.criterion == "zu":
        return zu_signal_frame(results.zu())
    rows = _rows(results, v)
    if rows is None:
        return None
    return signal_frame(rows, v.criterion, v.threshold, v.value, results.zu() if v.value == "conditional" else None)


def below_null(results: Results, variant: Variant) -> dict[str, float]:
    """{group: one-sided p that its final-epoch share lies below its null} of one run under one variant.

    A criterion: memnb.analysis.against_null.standing's exact test (counts pooled over repeats) of the copied
    share for value "copied", else of the memorized share; NaN for a group that rose above its null by the
    one onset rule (its final state is not "never memorized"). Z_U: Stouffer's z over repeats of
    (Z_U - Z_U of the null draws) / sqrt(2) at the final epoch, its upper tail (generated points farther from
    the training set than held-out points: underfitting).
    """
    from scipy.stats import norm

    v = variant.resolve(results.config)
    if v.criterion == "zu":
        zu = results.zu()
        last = zu[(zu.epoch == zu.epoch.max()) & (zu.group != "all")]
        out = {}
        for g, d in last.groupby("group"):
            z = ((d.z_u - d.z_u_null) / np.sqrt(2)).dropna()
            out[str(g)] = float(norm.sf(z.sum() / np.sqrt(len(z)))) if len(z) else float("nan")
        return out
    rows = _rows(results, v)
    if rows is None:
        return {}
    st = standing(rows, "copied" if v.value == "copied" else "memorized", results.config.n_null_points)
    return {r.group: (float("nan") if r.standing == "above" else r.p_below) for r in st.itertuples()}


def timings(
    runs: Iterable[Results],
    variants=None,
    margin: float = 0.05,
    margin_zu: float = 0.05,
    pool_null: bool = True,
    z: float = 3.0,
) -> pd.DataFrame:
    """Per run, variant, repeat and group: onset and half-level epochs (see stats.timing_table).

    variants: Variant records (None: `default_variants()`, every registered criterion and Z_U);
    margin: on the per-point rates (copied share, or memorized share per point) minus their null;
    margin_zu: on Meehan's effect 1/2 - U/(mn) minus its null; z: see stats.timing_table. Extra
    columns: run, configuration, test_set, metric, margin, z, p_below and below_null (the group's final share
    significantly below its null: `below_null`, the same in every repeat).
    """
    check_arguments(margin=margin, margin_zu=margin_zu, z=z)
    variants = default_variants() if variants is None else variants
    frames = []
    for res in runs:
        for variant in variants:
            v = variant.resolve(res.config)
            sig = run_signals(res, v)
            if sig is None:
                continue
            m = margin_zu if v.criterion == "zu" else margin
            t = timing_table(sig, m, pool_null, z)
            p = below_null(res, v)
            t["p_below"] = t.group.map(p).astype(np.float64)
            t["below_null"] = t.p_below < BELOW_SIGNIFICANCE
            t.insert(0, "metric", v.label())
            t.insert(0, "test_set", res.config.test_set)
            t.insert(0, "configuration", describe(res.config))
            t.insert(0, "run", res.path.name)
            t["margin"], t["z"] = m, z
            frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def decide(comparisons: dict[str, tuple[float, float, float]], alpha: float) -> str:
    """Verdict word from {group: (interval low, interval high, p)} under `RULE`."""
    avail = {g: c for g, c in comparisons.items() if not any(math.isnan(x) for x in c)}
    if not avail:
        return "inconclusive"
    if any(hi < 0 and p < alpha for lo, hi, p in avail.values()):
        return "reversed"
    if all(lo > 0 and p < alpha for lo, hi, p in avail.values()):
        return "holds"
    return "inconclusive"


def compare_groups(
    timing: pd.DataFrame, statistic: str = "onset", n_bootstrap: int = 10_000, seed: int = 0, alpha: float = 0.05
) -> dict:
    """One verdict row from one run's and variant's timing table (stats.timing_table rows).

    For each group in COMPARED: mean outlier-minus-group difference of the censored times,
    bootstrap interval (level 1 - alpha), paired permutation p, Cohen's d_z, rank-biserial r, how
    many of the two groups' times were censored and in how many repeats both were defined
    (n_pairs); then `decide`. Also outliers_censored / outliers_timed: in how many repeats the
    outliers never crossed, of those where they could be timed: a `holds` with the outliers
    censored in most repeats says "not memorized within the run", not "memorized later". below_null: the
    judged and compared groups whose final share lies below their null (the timing's ``below_null`` column,
    when present): then the verdict is "below null" (`RULE`).
    """
    check_arguments(alpha=alpha, n_bootstrap=n_bootstrap)
    if statistic not in TIMINGS:
        raise ValueError(f"timing statistic {statistic!r} is unknown; allowed: {' | '.join(TIMINGS)}")
    wide = timing.pivot(index="repeat", columns="group", values=f"{statistic}_filled")
    cens = timing.pivot(index="repeat", columns="group", values=f"{statistic}_censored")
    row: dict = {
        "timing": statistic,
        "n_repeats": len(wide),
        "outliers_censored": int(cens[JUDGED].sum()) if JUDGED in cens else 0,
        "outliers_timed": int(wide[JUDGED].notna().sum()) if JUDGED in wide else 0,
    }
    comparisons = {}
    for g in COMPARED:
        key = f"out_minus_{g[:3]}"
        diff = (wide[JUDGED] - wide[g]).to_numpy(np.float64) if JUDGED in wide and g in wide else np.array([])
        pairs = int(np.sum(~np.isnan(diff)))  # repeats where both groups could be timed (a cell may hold no test point)
        if pairs == 0:
            est = lo = hi = p = dz = rb = math.nan
            n_cens = 0
        else:
            est, lo, hi = bootstrap_ci(diff, n_bootstrap, seed=seed, level=1 - alpha)
            p = paired_permutation_test(diff, seed=seed)
            dz, rb = cohens_dz(diff), rank_biserial(diff)
            n_cens = int(cens[[JUDGED, g]].to_numpy().sum())
        row.update(
            {
                key: est,
                f"{key}_low": lo,
                f"{key}_high": hi,
                f"p_{g[:3]}": p,
                f"d_z_{g[:3]}": dz,
                f"r_rb_{g[:3]}": rb,
                f"censored_{g[:3]}": n_cens,
                f"n_pairs_{g[:3]}": pairs,
            }
        )
        comparisons[g] = (lo, hi, p)
    ps = [c[2] for c in comparisons.values() if not math.isnan(c[2])]
    row["p_max"] = max(ps) if ps else math.nan  # the intersection-union p of "later than both"
    below = set(timing.group[timing.below_null.astype(bool)]) if "below_null" in timing else set()
    row["below_null"] = ", ".join(g for g in (JUDGED, *COMPARED) if g in below)
    row["verdict"] = "below null" if row["below_null"] else decide(comparisons, alpha)
    return row


def verdict_table(timing: pd.DataFrame, n_bootstrap: int = 10_000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """One row per run x metric x timing statistic (columns of compare_groups plus run, configuration,
    test_set, metric), from the output of `timings`."""
    keys = ["run", "configuration", "test_set", "metric"]
    rows = []
    for key, t in timing.groupby(keys, sort=False):
        for statistic in TIMINGS:
            rows.append({**dict(zip(keys, key)), **compare_groups(t, statistic, n_bootstrap, seed, alpha)})
    return pd.DataFrame(rows)


def verdict(
    runs=None,
    runs_root: str | Path | None = None,
    variants=None,
    margin: float = 0.05,
    margin_zu: float = 0.05,
    n_bootstrap: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
    z: float = 3.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(verdict table, timing table) of `runs` (see find_runs) under `variants` (None: `default_variants()`),
    in one call; every argument checked before any work."""
    check_arguments(alpha=alpha, margin=margin, margin_zu=margin_zu, z=z, n_bootstrap=n_bootstrap)
    t = timings(find_runs(runs, runs_root), variants, margin, margin_zu, z=z)
    if t.empty:
        return pd.DataFrame(), t
    return verdict_table(t, n_bootstrap, seed, alpha), t


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The verdict table for reading: differences as 'mean [low, high]' epochs, p-values to 3 digits."""

    def interval(row, key):
        if math.isnan(row[key]):
            return "n/a"
        return f"{row[key]:+.1f} [{row[key + '_low']:+.1f}, {row[key + '_high']:+.1f}]"

    out = table[["configuration", "metric", "timing"]].copy()
    for group in COMPARED:
        g = group[:3]
        out[f"{JUDGED} - {group} (epochs)"] = [interval(r, f"out_minus_{g}") for _, r in table.iterrows()]
        out[f"p ({g})"] = table[f"p_{g}"].map(lambda p: "n/a" if math.isnan(p) else f"{p:.3f}")
    out["outliers never"] = [f"{c}/{n}" for c, n in zip(table.outliers_censored, table.outliers_timed)]
    if "below_null" in table:
        out["below its null"] = table["below_null"].replace("", "-")
    out["verdict"] = table["verdict"]
    return out
