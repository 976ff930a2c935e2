"""The one configuration of an experiment: frozen, validated before any work, saved beside every result.

Every knob of the paper's protocol lives here. Notebooks' papermill parameters mirror these
field names (tests/test_notebooks.py checks this), and `run_experiment` writes `config.json`
next to its results, so a results directory always says exactly what produced it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from dataclasses import dataclass, fields
from typing import Any

from .config_checks import (  # noqa: F401  (the allowed values, importable from here as before)
    EVAL_SCHEDULES,
    INJECTIONS,
    NEIGHBOR_AUTO_MAX_DIM,
    NEIGHBOR_BACKENDS,
    PRECISIONS,
    SAMPLERS,
    TEST_SETS,
    WATERMARKS,
    check_config,
)
from .registry import CRITERIA, DATASETS, DENOISERS
from .validate import is_int as _is_int
from .vocabulary import GROUPS

# Thresholds at which the stored table is tabulated, for both criteria (ratios >= 1).
# Any other threshold can be recomputed from the stored per-sample distances.
THRESHOLD_GRID = (1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
# Fields added after memnb 0.1.0 with the value every earlier run had: the fingerprint (and so the run
# directory's name) covers them only when they differ from it, so runs stored before they existed are
# found again under their old names.
ADDED_FIELDS = {
    "denoiser": lambda c: c.denoiser == "tiny_diffusion",
    "dim": lambda c: c.dataset in DATASETS and DATASETS.get(c.dataset).dim == c.dim,  # a fixed-dimension dataset's own
    "injection": lambda c: c.injection == "cluster",
    "watermark": lambda c: c.watermark == "corner",
    "n_null": lambda c: c.n_null is None,
    "eval_schedule": lambda c: c.eval_schedule == "linear",
    "n_evals": lambda c: c.n_evals is None,
    "sampler": lambda c: c.sampler == "ddpm",
    "sample_steps": lambda c: c.sample_steps is None,
    "detectors": lambda c: c.detectors == (),
}


@dataclass(frozen=True)
class ExperimentConfig:
    """One configuration of the paper's experiment; all repeats of it run as one ensemble.

    Sizes are numbers of points (of the dataset's dimension `dim`). `n_test=None` and `n_generate=None` mean "the base
    training size" and "the full training-set size" (base + outliers + duplicates), the
    paper's choices.
    """

    # data and injection
    dataset: str = "moons"
    dim: int | None = None  # d, for datasets whose dimension the config sets (gmm_d); None: the dataset's own
    n_base: int = 20000
    n_outliers: int = 400
    n_duplicates: int = 400
    outlier_distance: float = 2.0  # cluster centre, in standard deviations from the data mean
    outlier_spread: float = 0.05  # cluster std, as a fraction of the data's std
    duplicate_jitter: float = 0.0  # std of noise added to copies, as a fraction of the data's std
    injection: str = "cluster"  # the outliers: cluster (the paper's) | watermark (images: stamped copies)
    watermark: str = "corner"  # the stamped pattern of injection="watermark": corner | stroke
    n_test: int | None = None
    n_null: int | None = None  # real data: held-out points of the null part (None: n_generate)
    # model and training (tiny-diffusion's reference values)
    denoiser: str = "auto"  # auto: tiny_diffusion in 2-D, unet for images, residual_mlp otherwise
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
    eval_schedule: str = "linear"  # linear: every eval_every epochs | log: n_evals log-spaced epochs (EVAL_SCHEDULES)
    n_evals: int | None = None  # eval_schedule="log": how many log-spaced epochs from 1 to epochs; None for "linear"
    n_generate: int | None = None
    ratio: float = 1.5  # paper's criterion: memorized iff d_test >= ratio * d_train
    train_ratio: float = 3.0  # train-only criterion: memorized iff d2 > train_ratio * d1 (d1/d2 < 1/3)
    # relative criterion (Carlini et al. 2023): memorized iff d1 < relative_alpha * (mean distance to the
    # 50 nearest training locations). Carlini's alpha = 0.5 flags ~99.6% of fresh draws in 2-D (nearest-
    # neighbour distances grow like sqrt(k) here, not nearly constant as in high dimension); 0.1 flags ~20%.
    relative_alpha: float = 0.1
    test_set: str = "base"
    neighbors: str = "auto"  # kdtree | faiss | torch | auto (k-d tree for d <= 12, FAISS above)
    # repeats and execution
    n_repeats: int = 10
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # of the sampler's matrix products; training is always fp32
    sampler: str = "ddpm"  # ddpm: ancestral (respaced with sample_steps) | ddim: deterministic, eta = 0 (SAMPLERS)
    sample_steps: int | None = None  # network calls per sample, S of num_timesteps (None: all of them)
    # generation-free membership scores computed at every evaluated epoch (names in DETECTORS; docs/detection.md)
    detectors: tuple[str, ...] = ()

    # -- the RunConfig interface (memnb.core.run_config): what a monitored run's config says too ------------
    kind = "experiment"
    null = "per_epoch"  # fresh draws of the data distribution (or held-out real points) at every evaluated epoch
    thresholds = THRESHOLD_GRID  # the table's grid (each criterion's own threshold is added to it)

    def __post_init__(self) -> None:
        for f in fields(self):  # numpy scalars are the Python numbers they hold (JSON, hashing and names need these)
            v = getattr(self, f.name)
            plain = _plain(v)
            if plain is not v:
                object.__setattr__(self, f.name, plain)
        if isinstance(self.detectors, list):  # config.json holds a list
            object.__setattr__(self, "detectors", tuple(self.detectors))
        # defaults that depend on the dataset, resolved once so that the stored config says what ran
        if self.dataset in DATASETS:
            ds = DATASETS.get(self.dataset)
            if self.dim is None:
                object.__setattr__(self, "dim", ds.dim if ds.dim is not None else 8)
            if self.neighbors == "auto" and _is_int(self.dim):
                object.__setattr__(self, "neighbors", "kdtree" if self.dim <= NEIGHBOR_AUTO_MAX_DIM else "faiss")
            if self.denoiser == "auto":
                object.__setattr__(self, "denoiser", auto_denoiser(ds, self.dim))
        check_config(self)

    # -- derived sizes -------------------------------------------------------------------
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
    def n_null_points(self) -> int:
        """Points of the null baseline per evaluation: fresh draws (n_generate), or real data's held-out null part."""
        return self.n_generate_points if self.n_null is None else self.n_null

    @property
    def n_null_outliers(self) -> int:
        """Outlier points in the null part, in training proportion (cluster draws, or watermarked held-out points)."""
        return round(self.n_null_points * self.n_outliers / self.n_train)

    @property
    def pool_size(self) -> int | None:
        """Points of a real dataset's pool (None: a dataset with fresh draws)."""
        ds = DATASETS.get(self.dataset)
        return None if ds.fresh_draws else len(ds.pool())

    @property
    def pool_parts(self) -> dict[str, int]:
        """Held-out points a real dataset's pool must give each repeat: training base, test base, null base."""
        return {"train": self.n_base, "test": self.n_test_base, "null": self.n_null_points - self.n_null_outliers}

    @property
    def eval_epochs(self) -> tuple[int, ...]:
        """Epochs at whose start samples are drawn: 0 (untrained), every `eval_every` (eval_schedule "linear") or
        `n_evals` epochs log-spaced from 1 to `epochs` (round(geomspace(1, epochs, n_evals)), duplicates merged;
        "log"), and the end. Increasing, without repeats."""
        if self.eval_schedule == "log":
            if self.epochs == 0:
                return (0,)
            n = self.n_evals
            ep = [round(self.epochs ** (i / (n - 1))) for i in range(n)] if n > 1 else [self.epochs]
            return tuple(sorted({0, *ep, self.epochs}))
        ep = list(range(0, self.epochs, self.eval_every))
        return tuple(ep + [self.epochs])

    @property
    def group_names(self) -> tuple[str, ...]:
        """The run's group labels, by group code (memnb's own runs: inlier, outlier, duplicate)."""
        return GROUPS

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """The points' image shape (h, w) when the dataset is images (its registry record says), else None."""
        return DATASETS.get(self.dataset).image_shape if self.dataset in DATASETS else None

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
        """A copy with `changes`. Changing the dataset re-resolves `dim` and `neighbors` when they held the old
        dataset's defaults (so a 64-D dataset gets FAISS, not the 2-D k-d tree it inherited)."""
        if "dataset" in changes and changes["dataset"] != self.dataset and self.dataset in DATASETS:
            old = DATASETS.get(self.dataset)
            if "dim" not in changes and old.dim is not None:
                changes["dim"] = None
            auto = "kdtree" if self.dim <= NEIGHBOR_AUTO_MAX_DIM else "faiss"
            if "neighbors" not in changes and self.neighbors == auto:
                changes["neighbors"] = "auto"
            if "denoiser" not in changes and self.denoiser == auto_denoiser(old, self.dim):
                changes["denoiser"] = "auto"
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def fingerprint(self) -> str:
        """Short hash of every field: two configs share a results directory iff they are equal.

        Fields of `ADDED_FIELDS` at their original value are left out, so the name of a run stored
        before such a field existed does not change."""
        d = {k: v for k, v in self.to_dict().items() if not (k in ADDED_FIELDS and ADDED_FIELDS[k](self))}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def run_name(self) -> str:
        """Directory name for this config's results: readable prefix plus the fingerprint."""
        return (
            f"{self.dataset}-n{self.n_base}-o{self.n_outliers}-d{self.n_duplicates}"
            f"-e{self.epochs}-r{self.n_repeats}-s{self.seed}-{self.fingerprint()}"
        )


CONFIG_FIELDS = tuple(f.name for f in fields(ExperimentConfig))  # in the dataclass's order


def auto_denoiser(dataset, dim) -> str:
    """denoiser="auto": tiny-diffusion's network in 2-D (the paper's), the U-Net for images, the residual MLP else."""
    if dim == 2:
        return "tiny_diffusion"
    if getattr(dataset, "image_shape", None) is not None and "unet" in DENOISERS:
        return "unet"
    return "residual_mlp"


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
