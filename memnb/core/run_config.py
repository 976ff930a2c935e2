"""The one interface of a run's configuration: what every reader of a run may ask of its config.

Two classes stand in for each other here: `ExperimentConfig` (a run memnb trains: memnb.core.config) and
`MonitorConfig` (a run memnb observes: memnb.core.monitor_config). Both satisfy `RunConfig`, so readers
(tabulation, Results, statistics, figures, the verdict) ask the config, never its class: no
``isinstance`` branch, no ``getattr(config, name, default)``.
"""

from __future__ import annotations

from typing import Any, Protocol

KINDS = ("experiment", "monitor")  # the "kind" of a run: trained by run_experiment, observed by memnb.Monitor
NULLS = ("per_epoch", "fixed", "none")  # fresh null points every epoch; the same held-out points; no null baseline


class RunConfig(Protocol):
    """Sizes are numbers of points per repeat (vectors of dimension `dim`); thresholds are the criteria's k."""

    kind: str  # one of KINDS
    null: str  # one of NULLS
    dataset: str
    dim: int
    n_repeats: int
    n_train: int
    n_base: int
    n_outliers: int
    n_duplicates: int
    n_test_points: int
    n_test_base: int
    n_test_outliers: int
    n_generate_points: int
    n_null_points: int
    group_names: tuple[str, ...]
    image_shape: tuple[int, ...] | None  # the points as images: (h, w) or (C, h, w); None: not images
    thresholds: tuple[float, ...]  # the grid the table is tabulated at (each criterion's own k is added)
    ratio: float
    train_ratio: float
    relative_alpha: float
    neighbors: str
    test_set: str
    precision: str
    epochs: int
    eval_every: int
    eval_epochs: tuple[int, ...]

    def own_threshold(self, criterion: str) -> float: ...

    def fingerprint(self) -> str: ...

    def run_name(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    def replace(self, **changes: Any) -> RunConfig: ...
