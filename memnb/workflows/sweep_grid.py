"""A sweep's grid: every combination of a grid's values applied to a base configuration (`expand_grid`), the
sweep's name, each run's status (new, partial, complete) and the configurations as a table."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.config import CONFIG_FIELDS, ExperimentConfig
from ..experiment.results import Results
from ..experiment.runner import run_dir
from ..experiment.store import is_run

STATUSES = ("new", "partial", "complete")


def expand_grid(base: ExperimentConfig, grid: Mapping[str, Sequence[Any]]) -> list[ExperimentConfig]:
    """Every combination of `grid`'s values applied to `base`, in grid order, without repeats.

    grid: config field -> non-empty list of values, e.g. ``{"n_outliers": [20, 40], "seed": [0, 1]}``
    (4 configurations; the last field varies fastest). An empty grid is `[base]`. Each configuration
    is validated before anything runs; an invalid one raises ValueError naming the grid point.
    """
    if not isinstance(base, ExperimentConfig):
        raise TypeError(f"base must be an ExperimentConfig, got {type(base).__name__}")
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid = {grid!r} is invalid; allowed: a mapping of config field -> list of values")
    for name, values in grid.items():
        if name not in CONFIG_FIELDS:
            raise ValueError(f"grid field {name!r} is invalid; allowed: ExperimentConfig fields {list(CONFIG_FIELDS)}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid field {name!r} = {values!r} is invalid; allowed: a non-empty list of values")
    configs: dict[str, ExperimentConfig] = {}
    names = list(grid)
    for point in itertools.product(*(grid[n] for n in names)):
        changes = dict(zip(names, point))
        try:
            config = base.replace(**changes)
        except ValueError as e:
            raise ValueError(f"grid point {changes}: {e}") from None
        configs.setdefault(config.fingerprint(), config)
    return list(configs.values())


def sweep_name(configs: Sequence[ExperimentConfig]) -> str:
    """A name for the set of configurations (order-free): ``sweep-<count>-<hash>``."""
    digest = hashlib.sha256("".join(sorted(c.fingerprint() for c in configs)).encode()).hexdigest()[:10]
    return f"sweep-{len(configs)}-{digest}"


def run_status(config: ExperimentConfig, root: Path | str | None = None) -> str:
    """``complete`` (finished), ``partial`` (started: resumes from its checkpoint) or ``new``.

    A run stopped early by a callback (memnb.analysis.early_stopping) is ``partial``: a sweep, which runs
    without callbacks, trains it on to its configured epochs."""
    path = run_dir(config, root)
    if is_run(path) and Results(path).complete:
        return "complete"
    return "partial" if path.exists() and any(path.iterdir()) else "new"


def config_frame(configs: Sequence[ExperimentConfig]) -> pd.DataFrame:
    """One row per configuration: ``run`` (its directory name) and every config field.

    Fields left to their default meaning (``n_test``, ``n_generate``, ``n_evals``, ``sample_steps`` = None) are nullable
    integers, so the frame round-trips through parquet."""
    rows = [{"run": c.run_name(), **c.to_dict()} for c in configs]
    frame = pd.DataFrame(rows, columns=["run", *CONFIG_FIELDS])
    for name in ("n_test", "n_generate", "n_evals", "sample_steps"):
        frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
    return frame
