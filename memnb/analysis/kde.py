"""The reference picture of what each criterion and Z_U report: a kernel density estimate of the training set,
from perfect copying (bandwidth 0) to pure noise, measured by memnb's own protocol.

A KDE sampler draws a training point at random and adds isotropic Gaussian noise of standard deviation
h * s, with s the training set's root-mean per-coordinate standard deviation (data units) and h the
bandwidth in those units. h = 0 returns exact copies (every criterion's ceiling; Z_U far below 0); a small h
gives near copies; somewhere in between the samples sit as far from the training set as held-out data do
(Z_U near 0); a large h gives noise that is near neither data nor copies: every share falls *below* its
null (a quality failure, not anti-memorization; memnb.analysis.against_null) and Z_U grows far above 0.

`kde_sweep` runs it on the data of a configuration (its repeats' training, test and null sets, exactly as a
run would have them: memnb.experiment.repeats) and tabulates each bandwidth as a run tabulates an epoch
(memnb.experiment.tabulate), with Bonnaire et al.'s f_mem (memnb.metric.peers) beside memnb's criteria and
Meehan et al.'s Z_U with their continuity shift beside memnb's. `sweep_summary` condenses it to one row per
bandwidth, criterion and group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..core.config import ExperimentConfig
from ..core.registry import CRITERIA
from ..core.seeding import Stream, numpy_rng
from ..core.validate import check_int, fail, is_real
from ..experiment.repeats import RepeatData
from ..experiment.tabulate import data_copying, group_sizes, summarize, summary_rows, table_thresholds, zu_rows
from ..metric.copying import mann_whitney_z
from ..metric.peers import BONNAIRE_FMEM
from .against_null import BELOW_SIGNIFICANCE, below_null_p

# bandwidths in units of the training set's per-coordinate sd: copies, near copies, Z_U ~ 0 (digits: 0.6-0.7), noise
BANDWIDTHS = (0.0, 0.01, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 1.0, 3.0)


def kde_samples(train: np.ndarray, n: int, bandwidth: float, rng: np.random.Generator) -> np.ndarray:
    """(n, d) float64 draws of a Gaussian KDE of `train` (N, d): a uniformly chosen training point plus
    N(0, (h s)^2 I) noise, s = sqrt(mean_j var(train[:, j])) (data units), h = `bandwidth` >= 0 (0: copies)."""
    train = np.asarray(train, np.float64)
    scale = float(np.sqrt(train.var(axis=0).mean()))
    centres = train[rng.integers(0, len(train), size=n)]
    return centres + bandwidth * scale * rng.standard_normal(centres.shape) if bandwidth > 0 else centres.copy()


def kde_sweep(
    config: ExperimentConfig, bandwidths: Sequence[float] = BANDWIDTHS, seed: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, zu) of a KDE sampler at each bandwidth on `config`'s data, with a run's columns and `bandwidth`
    where a run has `epoch` (the epoch column holds the bandwidth's index).

    config: its repeats' training, test and null sets (the null: fresh draws, or a real dataset's held-out
    part); n_generate_points samples per repeat and bandwidth, drawn from generator (seed, repeat, SAMPLE,
    bandwidth index), seed None: config.seed. table: every registered criterion and Bonnaire et al.'s
    f_mem at every table threshold (memnb.experiment.tabulate.summary_rows' columns); zu: Z_U per cell
    (zu_rows' columns) plus ``z_u_meehan``, the same statistic with Meehan et al.'s 0.5 continuity shift.
    """
    hs = [float(h) for h in bandwidths]
    if not hs or not all(is_real(h) and h >= 0 for h in hs):
        fail("bandwidths", bandwidths, "a non-empty sequence of finite numbers >= 0 (units of the data's sd)")
    seed = config.seed if seed is None else check_int("seed", seed, lo=0)
    data = RepeatData(config)
    train, groups, locations = data.train_points, data.groups, data.locations
    labels, repeats, R = config.group_names, data.repeats, len(data.repeats)
    test_d, test_group = data.held_out_neighbours()
    null = data.search(data.null_draws(0), "null_")
    thresholds = table_thresholds(config)
    sizes = group_sizes(groups, labels)
    tables, zus = [], []
    with CRITERIA.added(BONNAIRE_FMEM):
        for i, h in enumerate(hs):
            samples = np.stack(
                [
                    kde_samples(train[k], config.n_generate_points, h, numpy_rng(seed, r, Stream.SAMPLE, i))
                    for k, r in enumerate(repeats)
                ]
            )
            arrays = {**data.search(samples), **null}
            s = summarize(arrays, groups, locations, thresholds, labels)
            tables.append(
                summary_rows(s, i, repeats, thresholds, config.n_generate_points, sizes, labels).assign(bandwidth=h)
            )
            z, n = data_copying(arrays, test_d, test_group, groups, labels)
            zr = zu_rows(z, n, i, repeats, labels).assign(bandwidth=h)
            meehan = [mann_whitney_z(test_d[k], arrays["d1"][k], continuity=0.5) for k in range(R)]
            zr["z_u_meehan"] = np.nan
            zr.loc[zr.group == "all", "z_u_meehan"] = meehan
            zus.append(zr)
    return pd.concat(tables, ignore_index=True), pd.concat(zus, ignore_index=True)


def sweep_summary(
    table: pd.DataFrame, zu: pd.DataFrame, config: ExperimentConfig, significance: float = BELOW_SIGNIFICANCE
) -> pd.DataFrame:
    """One row per bandwidth, criterion (at the config's own threshold; f_mem at train_ratio) and group.

    Columns: bandwidth, criterion, threshold, group, memorized_% and null_% (means over repeats), p_below and
    p_above (one-sided exact tests of the counts pooled over repeats: memnb.analysis.against_null), against
    ("above" | "on" | "below" its null at `significance`), z_u, z_u_meehan ('all' only) and z_u_null (means).
    """
    own = {c.name: c.own_threshold(config) for c in CRITERIA}
    own[BONNAIRE_FMEM.name] = config.train_ratio
    rows = table[np.isclose(table.threshold, table.criterion.map(own).astype(np.float64))]
    n0 = float(config.n_null_points)
    out = []
    for (h, crit, g), t in rows.groupby(["bandwidth", "criterion", "group"], sort=True):
        n = t.n_generated.to_numpy(np.float64)
        x, y = t.memorized.to_numpy() * n, t.memorized_null.to_numpy() * n0
        p_below = below_null_p(x, n, y, np.full(len(t), n0))
        p_above = below_null_p(y, np.full(len(t), n0), x, n)  # the same test with the sides swapped
        z = zu[(zu.bandwidth == h) & (zu.group == g)]
        out.append(
            {
                "bandwidth": h,
                "criterion": crit,
                "threshold": float(t.threshold.iloc[0]),
                "group": g,
                "memorized_%": 100 * t.memorized.mean(),
                "null_%": 100 * t.memorized_null.mean(),
                "p_below": p_below,
                "p_above": p_above,
                "against": "below" if p_below < significance else "above" if p_above < significance else "on",
                "z_u": z.z_u.mean(),
                "z_u_meehan": z.z_u_meehan.mean(),
                "z_u_null": z.z_u_null.mean(),
            }
        )
    return pd.DataFrame(out)
