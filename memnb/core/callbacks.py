"""The callback protocol of `memnb.run_experiment`: what a callback is, and what it is given.

A callback is an object with

- ``reset()``: forget everything seen;
- ``__call__(epoch, arrays, context) -> bool``: called once per evaluated epoch, in order, after the
  epoch's file is written; ``arrays`` are the epoch's stored arrays (see `memnb.experiment.results`),
  ``context`` an `EpochContext`; True asks the runner to stop before training on;
- ``record() -> dict``: JSON-serialisable settings and what it saw (the runner writes it to
  ``callbacks.json``); optionally ``settings() -> dict`` (its settings alone, for ``manifest.json``).

`memnb.experiment.replay` feeds a stored run's epochs to callbacks, so a run can be judged after the
fact exactly as it would have been during training; `memnb.analysis.early_stopping.EarlyStopping`
is the built-in callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .config import ExperimentConfig

METHODS = ("reset", "record", "__call__")


@dataclass(frozen=True)
class EpochContext:
    """What a callback may need besides an epoch's arrays: the run's config, groups (R, N) int8 and
    locations (R, N) (distinct-location ids of the training points), and the tabulated thresholds (K,)."""

    config: ExperimentConfig
    groups: np.ndarray
    locations: np.ndarray
    thresholds: np.ndarray


@runtime_checkable
class Callback(Protocol):
    def reset(self) -> None: ...

    def __call__(self, epoch: int, arrays: dict, context: EpochContext) -> bool: ...

    def record(self) -> dict: ...


def check_callbacks(callbacks) -> list:
    """The callbacks as a list, each checked for the protocol (reset, __call__, record)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(
            f"callbacks = {callbacks!r} is invalid; allowed: None or a list of callback objects "
            "(reset(), __call__(epoch, arrays, context) -> bool, record() -> dict; see memnb.core.callbacks)"
        )
    callbacks = list(callbacks)
    for cb in callbacks:
        missing = [m for m in METHODS if not callable(getattr(cb, m, None))]
        if missing:
            raise TypeError(
                f"callback {cb!r} lacks {missing}; allowed: objects with reset(), "
                "__call__(epoch, arrays, context) -> bool and record() -> dict (see memnb.core.callbacks)"
            )
    return callbacks


def settings_of(cb) -> dict:
    """A callback's settings for manifest.json: its settings() if it has one, else its record() without history."""
    if callable(getattr(cb, "settings", None)):
        return cb.settings()
    return {k: v for k, v in cb.record().items() if k != "history"}
