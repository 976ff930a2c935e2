"""What stands in for `ExperimentConfig` in a run that memnb observed but did not train (memnb.experiment.monitor).

A monitored run's ``config.json`` holds a `MonitorConfig` (with ``"kind": "monitor"``): the data's sizes and
SHA-256, the dimension, the user's group labels and model name, the criteria's own thresholds and the neighbour
search. It has the attributes that `memnb.Results`, the figure views, the statistics and the verdict read from an
ExperimentConfig, so they work on a monitored run unchanged. What memnb's own runs fix in advance (the number of
epochs, the evaluated epochs) a monitored run learns as it goes: `Results` fills `observed` from the stored epoch
files, and `epochs`, `eval_epochs` and `eval_every` follow from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from dataclasses import dataclass, fields
from typing import Any

from .config import THRESHOLD_GRID
from .registry import CRITERIA, DETECTORS
from .run_config import KINDS, NULLS
from .validate import fail

KIND = "monitor"  # the "kind" key of a monitored run's config.json
NULL_KINDS = ("none", "fixed", "per_epoch")  # no null set; the same held-out points every epoch; fresh per epoch
assert set(NULL_KINDS) == set(NULLS) and KIND in KINDS
STORE_SAMPLES = ("all", "none")  # or a positive number k: a fixed subsample of k sample slots per epoch
# Fields added after monitored runs were first stored, and their defaults (left out of config.json at them).
LATER_FIELDS = {"store_samples": "all", "features": None, "feature_dim": None, "features_sha256": None, "detectors": []}


def check_store_samples(value) -> str | int:
    """`value` of ``store_samples`` checked: "all", "none" or a positive integer k (a fixed subsample)."""
    if isinstance(value, str) and value in STORE_SAMPLES:
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    fail("store_samples", value, "all | none | a positive number of sample slots kept per epoch")


@dataclass(frozen=True)
class MonitorConfig:
    """The fixed description of a monitored run (sizes are numbers of points per repeat, of dimension `dim`).

    group_names: the labels by group code (memnb's inlier / outlier / duplicate or the user's own);
    group_counts: training points per label (of repeat 0); null: which null baseline the run has (NULL_KINDS);
    n_null_points: its size (0 without one); data_sha256: of the training points, groups, test and fixed null
    points, as stored in data.npz; thresholds: the grid the table is tabulated at (plus the own thresholds);
    store_samples: which samples each epoch file keeps (STORE_SAMPLES: "all", "none" or a number k of fixed
    slots; memnb.experiment.samples); features: the name of the embedding the points are searched in (None: the
    points themselves), feature_dim its dimension and features_sha256 the SHA-256 of the training points'
    features (an embedding changed between sessions is refused); observed: the evaluated epochs (not stored:
    read from the epoch files); detectors: the generation-free membership scores observed (names in DETECTORS;
    memnb.metric.membership_scores). The fields added after the first release (store_samples, features...) are left out
    of ``config.json`` at their defaults, so a run stored before them keeps its fingerprint.
    """

    name: str
    model: str
    dataset: str
    dim: int
    n_repeats: int
    n_train: int
    n_test_points: int
    n_generate_points: int
    group_names: tuple[str, ...]
    group_counts: tuple[int, ...]
    data_sha256: str
    null: str = "none"
    n_null_points: int = 0
    ratio: float = 1.5
    train_ratio: float = 3.0
    relative_alpha: float = 0.1
    neighbors: str = "kdtree"
    thresholds: tuple[float, ...] = THRESHOLD_GRID
    image_shape: tuple[int, ...] | None = None
    store_samples: str | int = "all"
    features: str | None = None
    feature_dim: int | None = None
    features_sha256: str | None = None
    detectors: tuple[str, ...] = ()
    observed: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_names", tuple(str(g) for g in self.group_names))
        object.__setattr__(self, "group_counts", tuple(int(n) for n in self.group_counts))
        object.__setattr__(self, "observed", tuple(sorted(int(e) for e in self.observed)))
        object.__setattr__(self, "thresholds", tuple(float(k) for k in self.thresholds))
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        object.__setattr__(self, "store_samples", check_store_samples(self.store_samples))
        if isinstance(self.detectors, str):
            fail("detectors", self.detectors, f"a list of detector names: {' | '.join(DETECTORS.names())}")
        object.__setattr__(self, "detectors", tuple(DETECTORS.get(str(n)).name for n in self.detectors))
        if self.null not in NULL_KINDS:
            raise ValueError(f"MonitorConfig null = {self.null!r} is invalid; allowed: {' | '.join(NULL_KINDS)}")

    # -- what an ExperimentConfig also says ----------------------------------------------------
    kind = KIND
    test_set = "held-out"  # the user's held-out test points
    precision = "n/a"

    @property
    def epochs(self) -> int:
        """The last observed epoch (0 before any)."""
        return max(self.observed, default=0)

    @property
    def eval_epochs(self) -> tuple[int, ...]:
        return self.observed

    @property
    def eval_every(self) -> int:
        """The smallest gap between observed epochs (1 for fewer than two)."""
        gaps = [b - a for a, b in zip(self.observed, self.observed[1:])]
        return min(gaps, default=1)

    def _count(self, label: str) -> int:
        return self.group_counts[self.group_names.index(label)] if label in self.group_names else 0

    @property
    def n_outliers(self) -> int:
        return self._count("outlier")

    @property
    def n_duplicates(self) -> int:
        return self._count("duplicate")

    @property
    def n_base(self) -> int:
        """Training points outside the outlier and duplicate groups."""
        return self.n_train - self.n_outliers - self.n_duplicates

    n_test_outliers = 0  # the test set is the user's: no injected cluster points in it that memnb knows of

    @property
    def n_test_base(self) -> int:
        return self.n_test_points

    def own_threshold(self, criterion: str) -> float:
        """This run's threshold for `criterion` (paper: ratio, train_only: train_ratio, relative: 1/relative_alpha)."""
        return CRITERIA.get(criterion).own_threshold(self)

    def with_observed(self, epochs) -> MonitorConfig:
        return dataclasses.replace(self, observed=tuple(epochs))

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("observed")
        d["group_names"], d["group_counts"] = list(self.group_names), list(self.group_counts)
        d["thresholds"] = list(self.thresholds)
        d["detectors"] = list(self.detectors)
        if self.image_shape is not None:
            d["image_shape"] = list(self.image_shape)
        for name, default in LATER_FIELDS.items():  # at their defaults: absent, as in the runs stored before them
            if d[name] == default:
                d.pop(name)
        return {"kind": KIND, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorConfig:
        d = dict(d)
        if d.pop("kind", None) != KIND:
            raise ValueError(f"not a monitored run's config (its kind is not {KIND!r})")
        known = {f.name for f in fields(cls)} - {"observed"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown monitor config field(s) {unknown}; allowed: {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def fingerprint(self) -> str:
        """Short hash of everything stored: a run directory holds one monitored run."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]

    def run_name(self) -> str:
        return self.name

    def replace(self, **changes: Any) -> MonitorConfig:
        return dataclasses.replace(self, **changes)
