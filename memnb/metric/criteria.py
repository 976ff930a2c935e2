"""The memorization criteria and rates: one registry record per criterion, and pure functions on arrays.

Three criteria, each decided by a per-sample *critical ratio* r and a threshold k >= 1:

- ``paper`` (the paper's): memorized iff d_test >= k * d1, i.e. r = d_test / d1 >= k, with d1 the
  distance to the nearest training point and d_test to the nearest test point.
- ``train_only`` (Gu et al. 2023; Bonnaire et al. 2025): memorized iff d1 / d2 < 1/k, i.e.
  r = d2 / d1 > k, with d2 the distance to the second-nearest distinct training location
  (k = 3 is the literature's 1/3 rule).
- ``relative`` (Carlini et al. 2023, their CIFAR-10 definition): memorized iff
  d1 < alpha * mean_{y in S} ||x - y||, S the n = 50 nearest training locations (d1 included),
  i.e. r = d_mean50 / d1 > k with k = 1 / alpha. Carlini's alpha = 0.5 (k = 2) suits high
  dimension, where neighbour distances concentrate; in 2-D the k-th neighbour distance grows like
  sqrt(k), the mean of the 50 is ~5x E[d1], and k = 2 flags ~99.6% of fresh draws. memnb's default
  alpha = 0.1 (k = 10) flags ~20% (config.relative_alpha; the table holds both k = 2 and 1/alpha).

A memorized sample is attributed to the group of its nearest training point. Rates are reported
in two normalisations: ``memorized`` = share of the generated set that is memorized and
attributed to the group (the paper's plots), and ``copied`` = share of the group's training
points that at least one memorized sample copies.

A criterion is one `Criterion` record in `memnb.core.registry.CRITERIA` (name, the neighbour field
whose ratio to d1 it thresholds, strict or not, the config field of its own threshold, labels; or its own
`ratio` function of the neighbour arrays and the training points' location ids); adding one is one record
here, or in a module of the user's, plus its test. Peers' conventions that differ from memnb's in a detail
(Bonnaire et al.'s fraction memorized, which counts an exact duplicate as the second neighbour) are records
of memnb.metric.peers, registered by a user who wants a paper's number exactly (`CRITERIA.added(...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.registry import CRITERIA


@dataclass(frozen=True)
class Criterion:
    """One memorization criterion: memorized iff r = (neighbour field `numerator`) / d1 passes k.

    strict: r > k (True) or r >= k (False); threshold_field: the config field holding its own
    threshold, read as 1/value when `inverse` (relative_alpha); rule: the criterion in words with
    ``{k}`` for the threshold (figure subtitles, summaries); button: a short label (the explorer).
    ratio: None (r = numerator / d1, `ratio_from`), or the criterion's own ``ratio(neighbours, locations)``:
    neighbours the (n,) arrays by field name, locations the (N,) location id of every training point
    (memnb.metric.neighbors.TrainingLocations), returning (n,) float64 r (`numerator` still names the field
    it needs, so that a run stored without it gets NaN rates).
    """

    name: str
    numerator: str
    strict: bool
    threshold_field: str
    rule: str
    button: str
    inverse: bool = False
    ratio: Callable[[Mapping[str, np.ndarray], np.ndarray | None], np.ndarray] | None = None

    def own_threshold(self, config: Any) -> Any:
        """The threshold of `config` (an ExperimentConfig, or column-wise a frame with config columns)."""
        v = getattr(config, self.threshold_field)
        return 1.0 / v if self.inverse else v

    def text(self, k: float) -> str:
        return self.rule.format(k=k)


PAPER = CRITERIA.register(
    Criterion(
        "paper",
        numerator="d_test",
        strict=False,
        threshold_field="ratio",
        rule="paper's criterion: d_test ≥ {k:g}·d_train",
        button="paper: d_test ≥ k·d_train",
    )
)
TRAIN_ONLY = CRITERIA.register(
    Criterion(
        "train_only",
        numerator="d2",
        strict=True,
        threshold_field="train_ratio",
        rule="train-only criterion: d2 > {k:g}·d1 (d1/d2 < 1/{k:g})",
        button="train-only: d2 > k·d1",
    )
)
RELATIVE = CRITERIA.register(
    Criterion(
        "relative",
        numerator="d_mean50",
        strict=True,
        threshold_field="relative_alpha",
        inverse=True,
        rule="relative criterion: d1 < α·(mean distance to the 50 nearest), α = 1/{k:g}",
        button="relative: d1 < d_mean50/k",
    )
)


def names() -> tuple[str, ...]:
    """The criteria in registry order (the criterion axis of the summary array)."""
    return CRITERIA.names()


def ratio_from(criterion: str, neighbours: Mapping[str, np.ndarray], locations: np.ndarray | None = None) -> np.ndarray:
    """(n,) float64 critical ratio r = neighbours[numerator] / neighbours["d1"] (inf where d1 = 0: an exact copy),
    or the criterion's own `ratio` (which may need `locations`).

    neighbours: (n,) distance arrays by field name (memnb.metric.neighbors.NEIGHBOUR_FIELDS), data units, and
    ``index`` (n,) the nearest training point; locations: None, or (N,) the location id of every training point
    (for a criterion that counts exact duplicates: memnb.metric.peers).
    """
    rec = CRITERIA.get(criterion)
    num = neighbours.get(rec.numerator)
    if num is None:
        raise ValueError(
            f"criterion {criterion!r} needs the neighbour field {rec.numerator!r} "
            "(runs stored before it existed lack it)"
        )
    if rec.ratio is not None:
        return np.asarray(rec.ratio(neighbours, locations), np.float64)
    d1 = np.asarray(neighbours["d1"])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.asarray(num, np.float64) / np.asarray(d1, np.float64)
    return np.where(d1 == 0, np.inf, r)


def critical_ratio(
    criterion: str, d1: np.ndarray, d2: np.ndarray, d_test: np.ndarray, d_mean50: np.ndarray | None = None
) -> np.ndarray:
    """(n,) float64 ratio r compared with the threshold (inf where d1 = 0: an exact copy).

    d1, d2, d_test, d_mean50: (n,) distances in data units (d_mean50, the mean distance to the 50
    nearest training locations, is needed by ``relative`` only).
    """
    return ratio_from(criterion, {"d1": d1, "d2": d2, "d_test": d_test, "d_mean50": d_mean50})


def is_memorized(criterion: str, r: np.ndarray, threshold: float) -> np.ndarray:
    """(n,) bool: r >= k for ``paper``; r > k for ``train_only`` (the literature's strict d1/d2 < 1/k)
    and ``relative`` (d1 < alpha * mean, alpha = 1/k): the record's `strict`."""
    return r > threshold if CRITERIA.get(criterion).strict else r >= threshold


def _count_at_least(sorted_r: np.ndarray, thresholds: np.ndarray, criterion: str) -> np.ndarray:
    """How many of the sorted ratios pass each threshold (is_memorized's rule, by binary search)."""
    side = "right" if CRITERIA.get(criterion).strict else "left"
    return len(sorted_r) - np.searchsorted(sorted_r, thresholds, side=side)


def memorized_shares(
    criterion: str, r: np.ndarray, sample_group: np.ndarray, thresholds, n_groups: int = 3
) -> np.ndarray:
    """Share of all generated samples that are memorized and attributed to each group.

    r: (n,) critical ratios; sample_group: (n,) group code of each sample's nearest training point;
    thresholds: (K,). Returns (n_groups + 1, K); the last row is all groups together.
    """
    thresholds = np.asarray(thresholds, np.float64)
    out = np.zeros((n_groups + 1, len(thresholds)))
    n = len(r)
    if n == 0:
        return out
    for g in range(n_groups):
        out[g] = _count_at_least(np.sort(r[sample_group == g]), thresholds, criterion) / n
    out[n_groups] = out[:n_groups].sum(0)
    return out


def copied_shares(
    criterion: str,
    r: np.ndarray,
    sample_location: np.ndarray,
    point_location: np.ndarray,
    point_group: np.ndarray,
    thresholds,
    n_groups: int = 3,
) -> np.ndarray:
    """Share of each group's training points copied by at least one memorized sample.

    r: (n,) critical ratios; sample_location: (n,) location id of each sample's nearest training
    point; point_location, point_group: (N,) location id and group code of every training point
    (all points at a copied location count as copied). Returns (n_groups + 1, K), NaN for an
    empty group; the last row is all training points.
    """
    thresholds = np.asarray(thresholds, np.float64)
    n_loc = int(point_location.max()) + 1 if len(point_location) else 0
    best = np.full(n_loc, -np.inf)
    np.maximum.at(best, sample_location, r)  # a location is copied at k iff its best sample passes k
    point_best = best[point_location]
    out = np.full((n_groups + 1, len(thresholds)), np.nan)
    for g in range(n_groups):
        sel = point_best[point_group == g]
        if len(sel):
            out[g] = _count_at_least(np.sort(sel), thresholds, criterion) / len(sel)
    if len(point_best):
        out[n_groups] = _count_at_least(np.sort(point_best), thresholds, criterion) / len(point_best)
    return out
