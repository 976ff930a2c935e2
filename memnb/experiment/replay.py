"""Feeding a stored run's evaluated epochs to callbacks (memnb.core.callbacks), as the runner would."""

from __future__ import annotations

from ..core.callbacks import EpochContext, check_callbacks
from .tabulate import table_thresholds


def context_of(results) -> EpochContext:
    """The EpochContext of a stored run (a `Results`)."""
    return EpochContext(results.config, results.data["groups"], results.locations, table_thresholds(results.config))


def replay(results, callbacks, epochs=None) -> list[dict]:
    """Feed a stored run's evaluated epochs to `callbacks` (reset first), as the runner would.

    results: a `Results`; epochs: the evaluated epochs to feed (default all, in order). Feeding
    ends after the first epoch at which a callback asks to stop (the runner would have stopped
    there); record-only callbacks see every epoch. Returns each callback's `record()`.
    """
    return feed(results, callbacks, epochs)[1]


def first_stop(results, callbacks, epochs=None) -> int | None:
    """The evaluated epoch at which `callbacks`, replayed on a stored run, would have stopped it (None: never)."""
    return feed(results, callbacks, epochs)[0]


def notify(callbacks, epoch: int, arrays: dict, context: EpochContext) -> bool:
    """Call every callback on one evaluated epoch (each sees it, even after one asks to stop); True if any asks."""
    return any([cb(epoch, arrays, context) for cb in callbacks])  # a list, not a generator: no short-circuit


def feed(results, callbacks, epochs=None) -> tuple[int | None, list[dict]]:
    """(stop epoch or None, records) of `callbacks` fed a stored run's epochs (see replay)."""
    callbacks = check_callbacks(callbacks)
    context = context_of(results)
    for cb in callbacks:
        cb.reset()
    stop = None
    for e in results.evaluated_epochs if epochs is None else epochs:
        if notify(callbacks, e, results.epoch_arrays(e), context):
            stop = e
            break
    return stop, [cb.record() for cb in callbacks]
