"""The paper's injections (an outlier cluster, near-duplicates), the independent test set and the null draws.

Every array here is (n, d) float64, d the dataset's dimension; each function is pure in
(config, repeat) through the repeat's own random streams (memnb.core.seeding).

Datasets with fresh draws (the toys, gmm_d) draw every base, test and null point anew. A real dataset
(a fixed pool, e.g. digits) is split once per repeat (`pool_split`, its own stream) into disjoint
training, test and null parts; its null baseline is the held-out null part (the same points at every
evaluation), in training proportions: held-out points plus outliers (cluster draws, or watermarked
held-out images).

Outliers are the paper's cluster (``injection="cluster"``), or, for images, the paper's section 5.1
example ("images with watermarks tend to be a large outlier cluster"): ``injection="watermark"``
stamps a fixed pattern (`watermark_mask`) on copies of randomly chosen base images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.config import ExperimentConfig
from ..core.registry import DATASETS
from ..core.seeding import Stream, numpy_rng
from ..core.vocabulary import DUPLICATE, GROUPS, INLIER, OUTLIER
from . import make_base

WATERMARK_VALUE = 1.0  # the stamped pixels: the brightest value of data scaled to [-1, 1]


def watermark_mask(pattern: str, image_shape: tuple[int, int]) -> np.ndarray:
    """(h * w,) bool, row-major: the pixels a watermark sets. corner: the 2x2 block at the top left;
    stroke: the main diagonal."""
    h, w = image_shape
    m = np.zeros((h, w), bool)
    if pattern == "corner":
        m[:2, :2] = True
    elif pattern == "stroke":
        m[np.arange(min(h, w)), np.arange(min(h, w))] = True
    else:
        raise ValueError(f"watermark {pattern!r} is unknown; allowed: corner | stroke")
    return m.reshape(-1)


def stamp(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copies of (n, d) images with the mask's pixels set to WATERMARK_VALUE."""
    out = np.array(images, np.float64, copy=True)
    out[:, mask] = WATERMARK_VALUE
    return out


def pool_split(config: ExperimentConfig, repeat: int) -> dict[str, np.ndarray]:
    """Indices into a real dataset's pool of the repeat's training base, test base and null base parts
    (disjoint; sizes config.pool_parts), from the repeat's own SPLIT stream."""
    pool = DATASETS.get(config.dataset).pool()
    perm = numpy_rng(config.seed, repeat, Stream.SPLIT).permutation(len(pool))
    out, start = {}, 0
    for part, size in config.pool_parts.items():
        out[part] = perm[start : start + size]
        start += size
    return out


def _base(config: ExperimentConfig, repeat: int, part: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, d) base points of a part: fresh draws, or the pool's points of the repeat's split."""
    ds = DATASETS.get(config.dataset)
    if ds.fresh_draws:
        return make_base(config.dataset, n, rng, config.dim)
    return np.array(ds.pool()[pool_split(config, repeat)[part]], np.float64)


def _outliers(config: ExperimentConfig, cluster, base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, d) outliers: draws from the cluster, or watermarked copies of n distinct points of `base`."""
    if config.injection == "cluster":
        return cluster.sample(n, rng)
    src = rng.choice(len(base), size=n, replace=False)
    return stamp(base[src], watermark_mask(config.watermark, DATASETS.get(config.dataset).image_shape))


def random_direction(d: int, rng: np.random.Generator) -> np.ndarray:
    """(d,) unit vector, uniform on the sphere.

    In 2-D it is drawn as an angle, uniform in [0, 2 pi) (one uniform draw, as memnb always did,
    so 2-D runs keep their numbers); in other dimensions as a normalised standard normal vector.
    """
    if d == 2:
        angle = rng.uniform(0.0, 2 * np.pi)
        return np.array([np.cos(angle), np.sin(angle)])
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class OutlierCluster:
    """The injected cluster: isotropic Gaussian with `centre` (d,) and `std` (scalar), data units."""

    centre: np.ndarray
    std: float

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, d) draws from the cluster."""
        return self.centre + self.std * rng.standard_normal((n, len(self.centre)))


@dataclass(frozen=True)
class TrainingSet:
    """One repeat's training data.

    points: (n_train, d) float64, base points first, then outliers, then duplicates.
    groups: (n_train,) int8 group codes (INLIER, OUTLIER, DUPLICATE). A base point that was
        copied is labelled DUPLICATE as well as its copy, so attributing a generated sample to
        "its nearest training point" cannot depend on which of two identical points a search
        returns first.
    source: (n_train,) int64 index of the base point each duplicate copies, -1 elsewhere.
    cluster: the outlier cluster (also used to draw the null baseline and outlier-aware test sets; drawn
        for every injection, so a repeat's random numbers do not depend on it).
    null: a real dataset's held-out null part (config.n_null_points, d), else None (fresh draws instead).
    """

    points: np.ndarray
    groups: np.ndarray
    source: np.ndarray
    cluster: OutlierCluster
    null: np.ndarray | None = None

    def counts(self) -> dict[str, int]:
        return {g: int((self.groups == i).sum()) for i, g in enumerate(GROUPS)}


def outlier_cluster(base: np.ndarray, distance: float, spread: float, rng: np.random.Generator) -> OutlierCluster:
    """The paper's outlier cluster: centre `distance` standard deviations from the data mean, random direction.

    "Standard deviation" is taken per axis (the data's per-coordinate std), so the centre sits at
    mean + distance * std * u for a random unit vector u; the cluster's std is `spread` times the
    data's overall std (root mean of the per-axis variances).
    """
    mean, std = base.mean(axis=0), base.std(axis=0)
    u = random_direction(base.shape[1], rng)
    return OutlierCluster(centre=mean + distance * std * u, std=float(spread * np.sqrt((std**2).mean())))


def make_training_set(config: ExperimentConfig, repeat: int) -> TrainingSet:
    """Base draw plus injections for one repeat; a pure function of (config, repeat)."""
    rng = numpy_rng(config.seed, repeat, Stream.DATA)
    base = _base(config, repeat, "train", config.n_base, rng)
    cluster = outlier_cluster(base, config.outlier_distance, config.outlier_spread, rng)
    outliers = _outliers(config, cluster, base, config.n_outliers, rng)
    src = rng.choice(config.n_base, size=config.n_duplicates, replace=False)
    data_std = float(np.sqrt((base.std(axis=0) ** 2).mean()))
    copies = base[src] + config.duplicate_jitter * data_std * rng.standard_normal((config.n_duplicates, base.shape[1]))
    points = np.concatenate([base, outliers, copies])
    groups = np.concatenate(
        [
            np.full(config.n_base, INLIER, np.int8),
            np.full(config.n_outliers, OUTLIER, np.int8),
            np.full(config.n_duplicates, DUPLICATE, np.int8),
        ]
    )
    groups[src] = DUPLICATE
    source = np.full(len(points), -1, np.int64)
    source[config.n_base + config.n_outliers :] = src
    null = None if DATASETS.get(config.dataset).fresh_draws else make_null_part(config, repeat, cluster)
    return TrainingSet(points=points, groups=groups, source=source, cluster=cluster, null=null)


def make_null_part(config: ExperimentConfig, repeat: int, cluster: OutlierCluster) -> np.ndarray:
    """A real dataset's null part (config.n_null_points, d): the repeat's held-out null points, then
    config.n_null_outliers outliers (cluster draws, or watermarked copies of distinct null points)."""
    rng = numpy_rng(config.seed, repeat, Stream.NULL)
    base = _base(config, repeat, "null", config.pool_parts["null"], rng)
    return np.concatenate([base, _outliers(config, cluster, base, config.n_null_outliers, rng)])


def make_test_set(config: ExperimentConfig, repeat: int, train: TrainingSet | None = None) -> np.ndarray:
    """(config.n_test_points, d) held-out points from the repeat's own TEST stream (never the training draw).

    test_set "base" (the paper's): n_test fresh base-distribution points. test_set "matched": the same
    n_test points first (an identical draw), then fresh draws from the repeat's outlier cluster, then
    near-duplicates of distinct held-out base points (copies plus the training set's duplicate
    jitter), counts in training proportions (config.n_test_outliers, n_test_duplicates). Without
    it the paper's ratio test has no held-out point near the outlier cluster, so any sample there
    looks "memorized". `train` is the repeat's training set (for its cluster); made here when omitted.
    """
    rng = numpy_rng(config.seed, repeat, Stream.TEST)
    base = _base(config, repeat, "test", config.n_test_base, rng)
    if config.test_set == "base":
        return base
    cluster = (make_training_set(config, repeat) if train is None else train).cluster
    outliers = _outliers(config, cluster, base, config.n_test_outliers, rng)
    src = rng.choice(len(base), size=config.n_test_duplicates, replace=False)
    data_std = float(np.sqrt((base.std(axis=0) ** 2).mean()))
    copies = base[src] + config.duplicate_jitter * data_std * rng.standard_normal((len(src), base.shape[1]))
    return np.concatenate([base, outliers, copies])


def sample_data_distribution(
    config: ExperimentConfig, train: TrainingSet, n: int, rng: np.random.Generator
) -> np.ndarray:
    """(n, d) fresh draws from the process that generated the training set: a perfect generator.

    Mixture weights follow the training proportions: base distribution (inliers and the points
    duplicates copy) with weight (n_base + n_duplicates) / n_train, the outlier cluster with
    n_outliers / n_train. A real dataset has no fresh draws: its held-out null part is returned
    (`train.null`, whatever n and rng).
    """
    if train.null is not None:
        return train.null
    n_out = int(rng.binomial(n, config.n_outliers / config.n_train))
    pts = np.concatenate([make_base(config.dataset, n - n_out, rng, config.dim), train.cluster.sample(n_out, rng)])
    return pts[rng.permutation(n)]
