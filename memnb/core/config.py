"""The one configuration of an experiment: frozen, validated before any work, saved beside every result.

Every knob of the paper's protocol lives here. Notebooks' papermill parameters mirror these
field names (tests/test_notebooks.py checks this), and `run_experiment` writes `config.json`
next to its results, so a results directory always says exactly what produced it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

from .device import DEVICES
from .registry import CRITERIA, DATASETS, DENOISERS

NEIGHBOR_BACKENDS = ("kdtree", "faiss")
PRECISIONS = ("fp32", "bf16")
# "base": the paper's test set, fresh base-distribution points only. "matched": the same points plus
# fresh outlier-cluster draws and fresh near-duplicates of held-out points, in training proportions,
# so the paper's ratio test compares like with like (see memnb.data.injection.make_test_set).
TEST_SETS = ("base", "matched")
# Thresholds at which the stored table is tabulated, for both criteria (ratios >= 1).
# Any other threshold can be recomputed from the stored per-sample distances.
THRESHOLD_GRID = (1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
# Fields added after memnb 0.1.0 with the value every earlier run had: the fingerprint (and so the run
# directory's name) covers them only when they differ from it, so runs stored before they existed are
# found again under their old names.
ADDED_FIELDS = {"denoiser": "tiny_diffusion"}


@dataclass(frozen=True)
class ExperimentConfig:
    """One configuration of the paper's experiment; all repeats of it run as one ensemble.

    Sizes are numbers of points (of the dataset's dimension `dim`). `n_test=None` and `n_generate=None` mean "the base
    training size" and "the full training-set size" (base + outliers + duplicates), the
    paper's choices.
    """

    # data and injection
    dataset: str = "moons"
    n_base: int = 20000
    n_outliers: int = 400
    n_duplicates: int = 400
    outlier_distance: float = 2.0  # cluster centre, in standard deviations from the data mean
    outlier_spread: float = 0.05  # cluster std, as a fraction of the data's std
    duplicate_jitter: float = 0.0  # std of noise added to copies, as a fraction of the data's std
    n_test: int | None = None
    # model and training (tiny-diffusion's reference values)
    denoiser: str = "tiny_diffusion"
    epochs: int = 400
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    hidden_size: int = 128
    hidden_layers: int = 3
    embedding_size: int = 128
    num_timesteps: int = 50
    beta_start: float = 1e-4
    beta_end: float = 0.02
    # protocol and metric
    eval_every: int = 1
    n_generate: int | None = None
    ratio: float = 1.5  # paper's criterion: memorized iff d_test >= ratio * d_train
    train_ratio: float = 3.0  # train-only criterion: memorized iff d2 > train_ratio * d1 (d1/d2 < 1/3)
    # relative criterion (Carlini et al. 2023): memorized iff d1 < relative_alpha * (mean distance to the
    # 50 nearest training locations). Carlini's alpha = 0.5 flags ~99.6% of fresh draws in 2-D (nearest-
    # neighbour distances grow like sqrt(k) here, not nearly constant as in high dimension); 0.1 flags ~20%.
    relative_alpha: float = 0.1
    test_set: str = "base"
    neighbors: str = "kdtree"
    # repeats and execution
    n_repeats: int = 10
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # of the sampler's matrix products; training is always fp32

    def __post_init__(self) -> None:
        for f in fields(self):  # numpy scalars are the Python numbers they hold (JSON, hashing and names need these)
            v = getattr(self, f.name)
            plain = _plain(v)
            if plain is not v:
                object.__setattr__(self, f.name, plain)
        _validate(self)

    # -- derived sizes -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension d of the data points (the dataset's)."""
        return DATASETS.get(self.dataset).dim

    @property
    def n_train(self) -> int:
        """Training-set size per repeat: base points plus injected outliers and duplicates."""
        return self.n_base + self.n_outliers + self.n_duplicates

    @property
    def n_test_base(self) -> int:
        """Fresh base-distribution points in the test set (`n_test`, default n_base)."""
        return self.n_base if self.n_test is None else self.n_test

    @property
    def n_test_outliers(self) -> int:
        """Fresh outlier-cluster draws in a "matched" test set: n_test_base * n_outliers / n_base, rounded; else 0."""
        return round(self.n_test_base * self.n_outliers / self.n_base) if self.test_set == "matched" else 0

    @property
    def n_test_duplicates(self) -> int:
        """Near-duplicate copies of held-out points in a "matched" test set, in training proportion; else 0."""
        if self.test_set != "matched":
            return 0
        return min(self.n_test_base, round(self.n_test_base * self.n_duplicates / self.n_base))

    @property
    def n_test_points(self) -> int:
        """Test-set size m: the base part plus, for test_set="matched", its outliers and near-duplicates."""
        return self.n_test_base + self.n_test_outliers + self.n_test_duplicates

    @property
    def n_generate_points(self) -> int:
        return self.n_train if self.n_generate is None else self.n_generate

    @property
    def eval_epochs(self) -> tuple[int, ...]:
        """Epochs at whose start samples are drawn: 0 (untrained), every `eval_every`, and the end."""
        ep = list(range(0, self.epochs, self.eval_every))
        return tuple(ep + [self.epochs])

    def own_threshold(self, criterion: str) -> float:
        """This config's threshold for `criterion`: the field its registry record names (paper: ratio,
        train_only: train_ratio, relative: 1/relative_alpha; see memnb.metric.criteria)."""
        return CRITERIA.get(criterion).own_threshold(self)

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; allowed: {sorted(known)}")
        return cls(**d)

    def replace(self, **changes: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def fingerprint(self) -> str:
        """Short hash of every field: two configs share a results directory iff they are equal.

        Fields of `ADDED_FIELDS` at their original value are left out, so the name of a run stored
        before such a field existed does not change."""
        d = {k: v for k, v in self.to_dict().items() if not (k in ADDED_FIELDS and v == ADDED_FIELDS[k])}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def run_name(self) -> str:
        """Directory name for this config's results: readable prefix plus the fingerprint."""
        return (
            f"{self.dataset}-n{self.n_base}-o{self.n_outliers}-d{self.n_duplicates}"
            f"-e{self.epochs}-r{self.n_repeats}-s{self.seed}-{self.fingerprint()}"
        )


CONFIG_FIELDS = tuple(f.name for f in fields(ExperimentConfig))  # in the dataclass's order


def _plain(v: Any) -> Any:
    """numpy's integer, float and string scalars as int, float and str; anything else unchanged."""
    if type(v) in (bool, int, float, str) or v is None:
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, str):
        return str(v)
    return v


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"config field {name!r} = {value!r} is invalid; allowed: {allowed}")


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _validate(c: ExperimentConfig) -> None:
    def integer(name: str, lo: int, optional: bool = False) -> None:
        v = getattr(c, name)
        if optional and v is None:
            return
        if not _is_int(v) or v < lo:
            _fail(name, v, f"an integer >= {lo}" + (" or None" if optional else ""))

    def real(name: str, lo: float, strict: bool, hi: float | None = None) -> None:
        v = getattr(c, name)
        ok = _is_real(v) and (v > lo if strict else v >= lo) and (hi is None or v <= hi)
        if not ok:
            rng = f"{'>' if strict else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
            _fail(name, v, f"a finite number {rng}")

    def choice(name: str, options: tuple[str, ...]) -> None:
        v = getattr(c, name)
        if v not in options:
            _fail(name, v, " | ".join(options))

    choice("dataset", DATASETS.names())
    choice("denoiser", DENOISERS.names())
    choice("device", DEVICES)
    choice("neighbors", NEIGHBOR_BACKENDS)
    choice("precision", PRECISIONS)
    choice("test_set", TEST_SETS)
    integer("n_base", 2)
    integer("n_outliers", 0)
    integer("n_duplicates", 0)
    integer("n_test", 2, optional=True)
    integer("n_generate", 1, optional=True)
    integer("epochs", 0)
    integer("batch_size", 1)
    integer("hidden_size", 1)
    integer("hidden_layers", 0)
    integer("embedding_size", 4)
    integer("num_timesteps", 1)
    integer("eval_every", 1)
    integer("n_repeats", 1)
    integer("seed", 0)
    if c.dataset in DATASETS and c.denoiser in DENOISERS:
        dims = DENOISERS.get(c.denoiser).dims
        if dims is not None and c.dim not in dims:
            _fail(
                "denoiser",
                c.denoiser,
                f"a denoiser for {c.dim}-dimensional data (dataset {c.dataset!r}); "
                f"{c.denoiser!r} takes d in {list(dims)}; denoisers: {' | '.join(DENOISERS.names())}",
            )
    if c.embedding_size % 2:
        _fail("embedding_size", c.embedding_size, "an even integer >= 4 (sin and cos halves)")
    if c.n_duplicates > c.n_base:
        _fail("n_duplicates", c.n_duplicates, f"at most n_base = {c.n_base} (copies of distinct base points)")
    if c.batch_size > c.n_train:
        _fail("batch_size", c.batch_size, f"at most the training-set size {c.n_train} (last partial batch is dropped)")
    real("outlier_distance", 0.0, strict=False)
    real("outlier_spread", 0.0, strict=False)
    real("duplicate_jitter", 0.0, strict=False)
    real("learning_rate", 0.0, strict=True)
    real("weight_decay", 0.0, strict=False)
    real("grad_clip", 0.0, strict=True)
    real("beta_start", 0.0, strict=True, hi=1.0)
    real("beta_end", 0.0, strict=True, hi=1.0)
    if _is_real(c.beta_start) and _is_real(c.beta_end) and c.beta_end < c.beta_start:
        _fail("beta_end", c.beta_end, f"a number >= beta_start = {c.beta_start} and < 1")
    if c.beta_end >= 1.0:
        _fail("beta_end", c.beta_end, "a number < 1")
    real("ratio", 1.0, strict=True)
    real("train_ratio", 1.0, strict=True)
    if not (_is_real(c.relative_alpha) and 0.0 < c.relative_alpha < 1.0):
        _fail("relative_alpha", c.relative_alpha, "a finite number > 0 and < 1 (the threshold 1/alpha must exceed 1)")
