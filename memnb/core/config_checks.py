"""What each field of an ExperimentConfig may hold, and the check that refuses anything else before any work.

The allowed values of the choice fields are named here (memnb.core.config re-exports them); `check_config` runs at
the end of ``ExperimentConfig.__post_init__`` and raises, through `memnb.core.validate`, the ValueError
"config field 'name' = value is invalid; allowed: ..." for the first field that is wrong, checked in a fixed order
(choices first, then sizes, then the relations between fields).
"""

from __future__ import annotations

from typing import Any

from .device import DEVICES
from .registry import DATASETS, DENOISERS, DETECTORS
from .validate import fail
from .validate import is_int as _is_int
from .validate import is_real as _is_real

# "auto" is resolved from the dimension; faiss-ivf and faiss-hnsw are approximate (memnb.metric.approximate), opt-in
NEIGHBOR_BACKENDS = ("kdtree", "faiss", "torch", "faiss-ivf", "faiss-hnsw")
PRECISIONS = ("fp32", "bf16")
# the sampler of the generated points (memnb.models.sampling): ddpm: ancestral, on all T steps or respaced to
# sample_steps (Nichol & Dhariwal 2021); ddim: deterministic DDIM (Song et al. 2021, eta = 0) on sample_steps
SAMPLERS = ("ddpm", "ddim")
# "base": the paper's test set, fresh base-distribution points only. "matched": the same points plus
# fresh outlier-cluster draws and fresh near-duplicates of held-out points, in training proportions,
# so the paper's ratio test compares like with like (see memnb.data.injection.make_test_set).
TEST_SETS = ("base", "matched")
INJECTIONS = ("cluster", "watermark")  # the outlier group: the paper's cluster, or watermarked copies (images)
WATERMARKS = ("corner", "stroke")  # a bright 2x2 block in the top-left corner, or a bright diagonal stroke
# "linear": evaluate at 0, every `eval_every` epochs and at the end (the paper's, eval_every = 1). "log": at 0, at
# `n_evals` epochs log-spaced from 1 to `epochs` (rounded, duplicates merged) and at the end; eval_every is unused.
EVAL_SCHEDULES = ("linear", "log")
# neighbors="auto": the k-d tree up to this d, FAISS above: the measured crossover of NeighbourSearch.query at
# 20,800 points (k-d tree faster at d = 12, FAISS from 16; at 2000 points from 32: docs/performance.md)
NEIGHBOR_AUTO_MAX_DIM = 12


def _fail(name: str, value: Any, allowed: str) -> None:
    fail(f"config field {name!r}", value, allowed)


def check_config(c: Any) -> None:
    """ValueError naming the first field of `c` (an ExperimentConfig, typed Any: memnb.core.config imports this
    module, not the reverse) that holds a value it may not (and what it may hold); else None."""

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
    choice("neighbors", NEIGHBOR_BACKENDS + (("auto",) if not _is_int(c.dim) else ()))
    choice("injection", INJECTIONS)
    choice("watermark", WATERMARKS)
    integer("n_null", 1, optional=True)
    if c.dataset in DATASETS:
        ds = DATASETS.get(c.dataset)
        if ds.dim is not None and c.dim != ds.dim:
            _fail("dim", c.dim, f"None or {ds.dim} (dataset {c.dataset!r} is {ds.dim}-dimensional)")
        lo, hi = ds.dims or (1, 1 << 20)
        if ds.dim is None and not (_is_int(c.dim) and lo <= c.dim <= hi):
            _fail("dim", c.dim, f"an integer from {lo} to {hi} (the dimension of dataset {c.dataset!r})")
        if c.injection == "watermark" and ds.image_shape is None:
            _fail(
                "injection",
                c.injection,
                f"cluster (dataset {c.dataset!r} is not images; watermark needs images: "
                + " | ".join(d.name for d in DATASETS if d.image_shape is not None)
                + ")",
            )
    choice("precision", PRECISIONS)
    if not isinstance(c.detectors, tuple) or not all(d in DETECTORS for d in c.detectors):
        _fail("detectors", c.detectors, f"a tuple of detector names ({' | '.join(DETECTORS.names())})")
    if c.detectors and c.test_set == "base" and (c.n_outliers or c.n_duplicates):
        _fail(
            "detectors",
            c.detectors,
            '() with test_set="base": a detector\'s null needs held-out points of every group (test_set="matched")',
        )
    choice("sampler", SAMPLERS)
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
    if c.sample_steps is not None and not (_is_int(c.sample_steps) and 1 <= c.sample_steps <= c.num_timesteps):
        _fail(
            "sample_steps",
            c.sample_steps,
            f"None (all steps) or an integer from 1 to num_timesteps = {c.num_timesteps}",
        )
    integer("eval_every", 1)
    choice("eval_schedule", EVAL_SCHEDULES)
    if c.eval_schedule == "log":
        integer("n_evals", 1)
    elif c.n_evals is not None:
        _fail("n_evals", c.n_evals, 'None with eval_schedule="linear" (eval_every sets its epochs; "log" uses n_evals)')
    integer("n_repeats", 1)
    integer("seed", 0)
    if c.dataset in DATASETS and c.denoiser in DENOISERS:
        if DENOISERS.get(c.denoiser).images and DATASETS.get(c.dataset).image_shape is None:
            _fail(
                "denoiser",
                c.denoiser,
                f"a denoiser for dataset {c.dataset!r}, which is not images ({c.denoiser!r} "
                "takes image datasets only); denoisers: " + " | ".join(DENOISERS.names()),
            )
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
    if (
        c.dataset in DATASETS
        and not DATASETS.get(c.dataset).fresh_draws
        and _is_int(c.n_base)
        and (c.n_test is None or _is_int(c.n_test))
        and _is_int(c.n_outliers)
        and _is_int(c.n_duplicates)
        and c.n_base >= 2
    ):
        pool, parts = c.pool_size, c.pool_parts
        if sum(parts.values()) > pool:
            _fail(
                "n_base",
                c.n_base,
                f"n_base + test base + null base = {parts['train']} + {parts['test']} + "
                f"{parts['null']} = {sum(parts.values())} at most the {pool} points of dataset {c.dataset!r} "
                "(set n_base, n_test or n_null smaller)",
            )
    real("ratio", 1.0, strict=True)
    real("train_ratio", 1.0, strict=True)
    if not (_is_real(c.relative_alpha) and 0.0 < c.relative_alpha < 1.0):
        _fail("relative_alpha", c.relative_alpha, "a finite number > 0 and < 1 (the threshold 1/alpha must exceed 1)")
