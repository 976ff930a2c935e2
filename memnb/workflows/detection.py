"""The detection notebook's workflow: digits with every generation-free detector beside the exact test, and its profiles.

`DETECTION` is the validation run of docs/detection.md: the digits finding's configuration (memnb.workflows.digits)
at 600 epochs evaluated every 60, with all five detectors (memnb.metric.membership). Its profiles are the digits
workflow's (`profiles.PROFILES[...].settings["digits"]`, applied by memnb's one rule `profiles.apply_profile`):
``paper`` as given (10 repeats), ``laptop`` 3 repeats (the measured run of docs/detection.md), ``smoke`` 60 base
digits, 2 repeats, 4 epochs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..core.config import ExperimentConfig
from ..core.registry import DETECTORS
from . import digits, profiles

DETECTION = digits.DIGITS.replace(epochs=600, eval_every=60, detectors=tuple(DETECTORS.names()))


def configuration(profile: str) -> tuple[ExperimentConfig, dict[str, tuple[Any, Any]]]:
    """(the config to run, what the profile reduced) for `profile` (paper | laptop | smoke)."""
    return profiles.apply_profile(DETECTION, profile, "digits", DETECTION)


def describe(config: ExperimentConfig, profile: str, reductions) -> str:
    """The text the notebook prints first: the profile, what it reduced, the run and its detectors."""
    return digits.describe(config, profile, reductions) + f"\nDetectors: {', '.join(config.detectors)}"


def cost(results) -> pd.DataFrame:
    """Seconds per evaluated epoch of this session (the manifest's timings): training, generation, search and
    tables, and all detectors together; `benchmarks/detection_bench.py` times each detector alone."""
    m = results.manifest
    n = max(1, len(results.evaluated_epochs) - int(m.get("resumed_from_epoch", 0) > 0))
    rows = [(k, m.get(f"{k}_s")) for k in ("train", "generate", "metric", "detect")]
    return pd.DataFrame([{"part": k, "seconds": v, "per_evaluation_s": None if v is None else v / n} for k, v in rows])
