"""Sizes of the two application benchmarks (anomaly detection, early stopping) and the profiles that shrink them.

Both notebooks (`notebooks/anomaly_detection.ipynb`, `notebooks/early_stopping.ipynb`) share one
grid of runs: datasets x outlier counts, each a `memnb.ExperimentConfig` with no near-duplicates
(the positives of the anomaly benchmark are the injected outliers alone) and the matched test set
(with the paper's base test set every sample near the outlier cluster counts as memorized, by
construction, which would decide the memorization scores). `FULL` is the benchmark reported in
docs/applications.md; a notebook's parameters default to it, and `profile` reduces them through memnb's one rule
(`apply_profile` is `profiles.apply_profile` with `FULL` as the defaults: a parameter set apart from `FULL` is kept),
with the values of `profiles.PROFILES[...].settings["applications"]` (``full`` is accepted for ``paper``):

- ``paper`` (or ``full``): nothing reduced (about 6 minutes per run on the shared 2-core machine, 6 runs);
- ``laptop`` (notebook default): 400 epochs evaluated every 40 (a few minutes in all); same datasets, sizes,
  outliers and repeats;
- ``smoke``: seconds, for tests: one dataset, 5 outliers among 60 points, 2 repeats, 4 epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.config import ExperimentConfig
from ..experiment.runner import run_experiment
from . import profiles
from .profiles import PROFILES, check_profile, resolve_runs_root

__all__ = ["PROFILES", "FULL", "SHARED", "apply_profile", "configs", "describe", "run_grid"]

FULL: dict[str, Any] = dict(
    datasets=["moons", "circle", "gmm"], outlier_counts=[10, 20], n_base=200, n_repeats=5, epochs=2000, eval_every=100
)
SHARED = dict(n_duplicates=0, test_set="matched", seed=0)  # fixed fields of every benchmark run


def apply_profile(params: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
    """`profiles.apply_profile` of the benchmark grid: params holds the keys of `FULL`, its defaults."""
    return profiles.apply_profile(params, profile, "applications", FULL)


def configs(params: Mapping[str, Any]) -> list[ExperimentConfig]:
    """The grid's configs, one per dataset x outlier count (device "cpu": the tiny model is not worth a GPU)."""
    return [
        ExperimentConfig(
            dataset=d,
            n_outliers=int(n),
            n_base=params["n_base"],
            n_repeats=params["n_repeats"],
            epochs=params["epochs"],
            eval_every=params["eval_every"],
            device="cpu",
            **SHARED,
        )
        for d in params["datasets"]
        for n in params["outlier_counts"]
    ]


def describe(name: str, profile: str, reductions: Mapping[str, tuple[Any, Any]], params: Mapping[str, Any]) -> str:
    """The lines a notebook prints first: its profile, what was reduced against the full benchmark, the grid."""
    head = (
        f"{name}: profile {profile!r} -- the full benchmark"
        if not reductions
        else f"{name}: profile {profile!r} -- NOT the full benchmark; reduced:"
    )
    lines = [head] + [f"    {k:<15} {given!s:>22} -> {now!s}" for k, (given, now) in reductions.items()]
    if check_profile(profile) == "paper" and any(params[k] != FULL[k] for k in FULL):
        lines.append("    (parameters differ from the full benchmark's defaults)")
    lines.append(
        f"Grid: datasets {list(params['datasets'])} x outliers {list(params['outlier_counts'])}, "
        f"{params['n_base']} base points, {params['n_repeats']} repeats, {params['epochs']} epochs "
        f"evaluated every {params['eval_every']}; no duplicates; matched test set"
    )
    return "\n".join(lines)


def run_grid(params: Mapping[str, Any], runs_root=None, progress: bool = False) -> list:
    """Run (or resume, or just load) every config of the grid with `memnb.run_experiment`; their Results.

    runs_root: None = $MEMNB_RUNS, else outputs/runs/ of the project (`profiles.resolve_runs_root`).
    """
    root = resolve_runs_root(runs_root)
    return [run_experiment(c, root=root, progress=progress) for c in configs(params)]
