"""Which stored runs to judge, and what each one is: run discovery and the report that names them.

`find_runs` turns what a user names (run directories, bare names under a runs root, a glob pattern, a sweep,
or nothing: every run under the root) into `Results`; `describe` names a run's configuration in one line and
`runs_report` lists the runs found, warning where a run has too few repeats to reach p < alpha.
"""

from __future__ import annotations

import glob
import json
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from ..core.config import ExperimentConfig
from ..core.run_config import RunConfig
from ..experiment.results import Results
from ..experiment.store import is_run, list_runs
from ..experiment.store import runs_root as store_runs_root


def describe(config: RunConfig) -> str:
    """Short text naming a configuration: dataset, sizes, training, repeats, test set (and the
    outlier cluster's distance and spread where they are not the paper's)."""
    if config.kind == "monitor":
        return (
            f"{config.model} on {config.dataset} {config.n_base}+{config.n_duplicates}dup+{config.n_outliers}out, "
            f"{len(config.eval_epochs)} epochs observed up to {config.epochs}, R={config.n_repeats}, monitored"
        )
    default = ExperimentConfig()
    extra = "".join(
        f", {name} {getattr(config, name):g}"
        for name in ("outlier_distance", "outlier_spread")
        if getattr(config, name) != getattr(default, name)
    )
    return (
        f"{config.dataset} {config.n_base}+{config.n_duplicates}dup+{config.n_outliers}out, "
        f"{config.epochs} ep/{config.eval_every}, R={config.n_repeats}, test={config.test_set}{extra}"
    )


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _runs_root(runs_root) -> Path:
    root = store_runs_root(runs_root)
    if not root.is_dir():
        what = "a file" if root.exists() else "nothing"
        raise ValueError(
            f"runs_root = {str(runs_root)!r} is {what}; allowed: the folder holding memnb runs (default: $MEMNB_RUNS, else the project's outputs/runs)"
        )
    return root


def _one_run(name, runs_root) -> Path:
    """A run directory from a path or a bare run name (looked up under runs_root)."""
    p = Path(name)
    if p.is_dir():
        return p
    if len(p.parts) == 1:
        candidate = _runs_root(runs_root) / p
        if candidate.is_dir():
            return candidate
        raise ValueError(
            f"run {str(name)!r} is not a directory here nor a run under runs_root = {str(runs_root)!r}; "
            "allowed: a run directory, a run name under runs_root, a glob pattern, a sweep, or None"
        )
    raise ValueError(
        f"run {str(name)!r} does not exist; allowed: a run directory, a run name under runs_root, "
        "a glob pattern, a sweep, or None (every run under runs_root)"
    )


def find_runs(runs=None, runs_root: str | Path | None = None) -> list[Results]:
    """Results of `runs`: `Results`, run directories or bare run names (looked up under `runs_root`, which
    defaults to the store's runs root: memnb.experiment.store.runs; one, or a list), a
    glob pattern, a sweep (its output directory, or its ``table.parquet`` / ``runs.parquet``: the
    sweep's runs under the runs root its ``sweep.json`` names; see memnb.workflows.sweep), or None
    (every run under `runs_root`).

    Only directories with a config.json are runs; a requested name that is not one raises ValueError, as
    does a pattern or a root that finds no run. With runs=None, runs under the root that cannot be read
    are skipped with a warning naming each (the others are judged).
    """
    if isinstance(runs, Results):
        return [runs]
    if runs is None:
        root = _runs_root(runs_root)
        skipped: list[str] = []
        found = sorted(list_runs(root, skipped), key=lambda r: r.path.name)  # the store's one discovery
        if not found and not skipped:
            raise ValueError(
                f"runs_root = {str(root)!r} holds no memnb run; run a figure notebook or "
                "memnb.run_experiment first, or pass runs="
            )
        if skipped:
            warnings.warn(
                f"skipped {len(skipped)} unreadable run(s) under {runs_root}:\n  " + "\n  ".join(skipped), stacklevel=2
            )
        if not found:
            raise ValueError(f"runs_root = {str(runs_root)!r} holds no readable memnb run (skipped: {skipped})")
        return found
    if isinstance(runs, (str, Path)) and (Path(runs).suffix == ".parquet" or (Path(runs) / "sweep.json").is_file()):
        paths = sweep_runs(Path(runs), runs_root)
    elif isinstance(runs, (str, Path)) and _is_pattern(str(runs)):
        paths = sorted(Path(p) for p in glob.glob(str(runs)))
        if not paths:
            raise ValueError(f"runs = {str(runs)!r} matches no directory; allowed: a pattern matching run directories")
    elif isinstance(runs, (str, Path)):
        paths = [_one_run(runs, runs_root)]
    elif isinstance(runs, Iterable) and not isinstance(runs, (bytes, Mapping)):
        runs = list(runs)
        if not runs:
            raise ValueError("runs = [] is invalid; allowed: None (every run under runs_root) or at least one run")
        given = [r if isinstance(r, Results) else None for r in runs]  # a Results, a path or a name alike
        paths = [r.path if r is not None else _one_run(p, runs_root) for r, p in zip(given, runs)]
        opened = {r.path: r for r in given if r is not None}
        paths = list(dict.fromkeys(paths))
        bad = [str(p) for p in paths if not is_run(p)]
        if bad:
            raise ValueError(f"not memnb run directories (no config.json): {bad}")
        return [opened.get(p) or Results(p) for p in paths]
    else:
        raise ValueError(
            f"runs = {runs!r} is invalid; allowed: None, a run directory or name, a list of them, a glob "
            "pattern or a sweep"
        )
    paths = list(dict.fromkeys(paths))  # a run named twice is judged once
    bad = [str(p) for p in paths if not is_run(p)]
    if bad:
        raise ValueError(f"not memnb run directories (no config.json): {bad}")
    return [Results(p) for p in paths]


def sweep_runs(sweep: Path, runs_root: str | Path | None = None) -> list[Path]:
    """Run directories of a sweep: the ``run`` column of one of its parquet tables (its directory means its
    ``table.parquet``: the finished runs).

    Names resolve under the runs root recorded in the sweep's ``sweep.json`` when there is one, else `runs_root`."""
    if sweep.is_dir():
        sweep = sweep / "table.parquet"
    meta = sweep.parent / "sweep.json"
    names = pd.read_parquet(sweep, columns=["run"])["run"].astype(str).unique().tolist()
    root = Path(json.loads(meta.read_text())["runs_root"]) if meta.is_file() else store_runs_root(runs_root)
    return [root / n for n in names]


def runs_report(found: list[Results], alpha: float = 0.05) -> str:
    """Text naming each run (configuration, complete or partial) and warning where its number of
    repeats cannot reach p < alpha."""
    lines = [f"{len(found)} run(s):"]
    for res in found:
        c = res.config
        state = "complete" if res.complete else f"PARTIAL ({len(res.evaluated_epochs)} epochs evaluated)"
        lines.append(f"  {res.path.name}: {describe(c)} [{state}]")
        floor = 2 / 2**c.n_repeats
        if floor >= alpha:
            lines.append(
                f"    only {c.n_repeats} repeat(s): the smallest attainable p is 2/2^{c.n_repeats} = "
                f"{floor:.3g} >= alpha = {alpha}, so this run can only be 'inconclusive'"
            )
    return "\n".join(lines)
