"""Peers' conventions, to reproduce a paper's number exactly: Bonnaire et al. (2025)'s fraction memorized.

Bonnaire, Urfin, Biroli & Mézard (2025; tbonnair/Why-Diffusion-Models-Don-t-Memorize,
Experiments/src/Evaluation/compute_fmem.py) call a sample memorized when d1 / d2 < 1/3, with d1 and d2 its
distances to the two nearest training *points* (a top-2 search over the training set as given). memnb's
``train_only`` criterion takes the two nearest distinct training *locations* instead. The two agree except
where the nearest location holds several training points (an exact duplicate): there Bonnaire's second
neighbour is the duplicate itself, d2 = d1, the ratio is 1 (0/0 for an exact copy, which is not < 1/3
either), and the sample is never memorized, however close it is. So their fraction leaves out every copy of
a duplicated training point; memnb's counts it (memnb.metric.neighbors de-duplicates so that "an exact copy
never hides the point it copies").

`BONNAIRE_FMEM` is that rule as a criterion record, not registered by default (a registered criterion is
tabulated in every run, and the stored runs' summaries hold memnb's three); register it to compute it from a
run's stored neighbours, e.g. ``with CRITERIA.added(BONNAIRE_FMEM): results.rates_at("bonnaire_fmem", 3.0)``.
Meehan et al.'s Z_U convention (their 0.5 continuity shift) is `memnb.metric.copying.mann_whitney_z`'s
``continuity=0.5``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .criteria import Criterion


def point_multiplicity(index: np.ndarray, locations: np.ndarray) -> np.ndarray:
    """(n,) int64: how many training points sit at each sample's nearest training location.

    index: (n,) index of the nearest training point; locations: (N,) location id of every training point
    (exact copies share one id).
    """
    locations = np.asarray(locations, np.int64)
    return np.bincount(locations)[locations[np.asarray(index, np.int64)]]


def bonnaire_ratio(neighbours: Mapping[str, np.ndarray], locations: np.ndarray | None) -> np.ndarray:
    """(n,) float64 r = d2_points / d1 of Bonnaire et al.: memnb's d2 / d1 (inf where d1 = 0), except 1.0
    where the nearest location holds two or more training points (their second neighbour is the duplicate,
    d2 = d1; never memorized at any k >= 1).

    neighbours: ``d1``, ``d2`` (distances to the two nearest distinct locations, data units) and ``index``,
    (n,) each; locations: (N,) location id of every training point (the run's `Results.locations[r]`).
    """
    if locations is None:
        raise ValueError(
            "criterion 'bonnaire_fmem' needs the training points' location ids (locations=), "
            "to count the training points at each sample's nearest location"
        )
    d1, d2 = (np.asarray(neighbours[f], np.float64) for f in ("d1", "d2"))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d1 == 0, np.inf, d2 / d1)
    return np.where(point_multiplicity(neighbours["index"], locations) > 1, 1.0, r)


BONNAIRE_FMEM = Criterion(
    "bonnaire_fmem",
    numerator="d2",
    strict=True,
    threshold_field="train_ratio",
    rule="Bonnaire et al.'s f_mem: d1/d2 < 1/{k:g}, d2 to the second-nearest training point (a duplicate: d2 = d1)",
    button="Bonnaire f_mem: d2_point > k·d1",
    ratio=bonnaire_ratio,
)
