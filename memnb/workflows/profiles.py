"""The paper's four figure configurations and the profiles that shrink them to a laptop or to CI.

A figure notebook's papermill parameters are the `ExperimentConfig` fields (defaults: that
figure's configuration, `FIGURES[n]`) plus `profile`; `apply_profile` turns them into the
configuration actually run and lists every field it reduced, so a notebook can print at the top
of its output exactly how far a run is from the paper's protocol.

Profiles (`PROFILES`):

- ``paper``: the configuration as given (for the figure defaults: the paper's, every epoch
  evaluated, 10 repeats). Nothing is reduced.
- ``laptop``: same dataset, sizes and injections; fewer repeats (at most `LAPTOP_REPEATS`),
  fewer training epochs (at most `LAPTOP_TRAIN_STEPS` optimizer steps, rounded down to a
  multiple of 10 epochs) and fewer evaluated epochs (at most `LAPTOP_EVALS` + 1), so that each
  figure takes about five minutes on a 2-core CPU.
- ``smoke``: seconds, for CI: at most `SMOKE_BASE` base points (injections scaled down in
  proportion, at least `SMOKE_MIN_INJECTED` each), at most `SMOKE_EPOCHS` epochs, every one
  evaluated, at most `SMOKE_REPEATS` repeats. Its numbers show that the pipeline works, not the
  paper's result.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.config import CONFIG_FIELDS, ExperimentConfig
from ..experiment.runner import run_experiment

# One vocabulary of profiles for every notebook: the full protocol (nothing reduced), a laptop's few minutes,
# CI's seconds. "full" is the name the application notebooks used for "paper" (accepted, same meaning).
PROFILES = ("paper", "laptop", "smoke")
PROFILE_ALIASES = {"full": "paper"}

# The paper's figures (section 4.1): moons, ratio 1.5, 10 repeats, samples drawn at every epoch.
# The captions read "400 Inliers/400 Outliers Injected"; the text injects outliers and
# near-duplicates, so the first number is the near-duplicates.
_PAPER = dict(dataset="moons", ratio=1.5, n_repeats=10, eval_every=1)
FIGURES: dict[int, ExperimentConfig] = {
    1: ExperimentConfig(**_PAPER, n_base=20000, n_duplicates=400, n_outliers=400, epochs=400),
    2: ExperimentConfig(**_PAPER, n_base=20000, n_duplicates=200, n_outliers=200, epochs=800),
    3: ExperimentConfig(**_PAPER, n_base=10000, n_duplicates=100, n_outliers=100, epochs=800),
    4: ExperimentConfig(**_PAPER, n_base=10000, n_duplicates=100, n_outliers=100, epochs=10),
}

# laptop: tuned so that each figure takes about 5 minutes on a 2-core CPU (docs/notebooks.md, "Profiles")
LAPTOP_REPEATS = 3
LAPTOP_TRAIN_STEPS = 65_000  # optimizer steps per repeat: 100 epochs at 20800 points, 200 at 10200
LAPTOP_EVALS = 10  # evaluated epochs besides epoch 0
# smoke: a figure notebook in seconds
SMOKE_BASE = 1000
SMOKE_MIN_INJECTED = 10
SMOKE_EPOCHS = 4
SMOKE_REPEATS = 2

FIELD_MEANING = {
    "n_repeats": "repeats",
    "epochs": "training epochs",
    "eval_every": "epochs between evaluations",
    "n_base": "base training points",
    "n_outliers": "injected outliers",
    "n_duplicates": "injected near-duplicates",
    "n_test": "test points",
    "n_generate": "generated samples per evaluation",
}


def check_profile(profile: str) -> str:
    """The profile's canonical name (PROFILES; an alias of PROFILE_ALIASES is translated); ValueError otherwise."""
    profile = PROFILE_ALIASES.get(profile, profile) if isinstance(profile, str) else profile
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is unknown; allowed: {' | '.join(PROFILES)}")
    return profile


def figure_config(figure: int) -> ExperimentConfig:
    """The paper's configuration of Figure `figure` (1-4)."""
    if figure not in FIGURES:
        raise ValueError(f"figure {figure!r} is unknown; allowed: {' | '.join(map(str, FIGURES))}")
    return FIGURES[figure]


def _round_epochs(e: float) -> int:
    """Down to a multiple of 10 (at least 1 below 10)."""
    return max(1, int(e)) if e < 10 else int(e // 10) * 10


def apply_profile(config: ExperimentConfig, profile: str) -> tuple[ExperimentConfig, dict[str, tuple[Any, Any]]]:
    """(the config to run, {field: (given value, reduced value)}) for `profile` (see the module docstring)."""
    profile = check_profile(profile)
    c = config
    changes: dict[str, Any] = {}
    if profile == "laptop":
        changes["n_repeats"] = min(c.n_repeats, LAPTOP_REPEATS)
        max_epochs = _round_epochs(LAPTOP_TRAIN_STEPS / max(1, c.n_train // c.batch_size))
        changes["epochs"] = epochs = min(c.epochs, max_epochs)
        changes["eval_every"] = max(c.eval_every, math.ceil(epochs / LAPTOP_EVALS)) if epochs else c.eval_every
    elif profile == "smoke":
        scale = min(1.0, SMOKE_BASE / c.n_base)
        n_base = min(c.n_base, SMOKE_BASE)

        def scaled(n: int) -> int:
            return n if n == 0 else min(n, max(SMOKE_MIN_INJECTED, round(n * scale)))

        changes.update(
            n_base=n_base,
            n_outliers=scaled(c.n_outliers),
            n_duplicates=min(scaled(c.n_duplicates), n_base),
            epochs=min(c.epochs, SMOKE_EPOCHS),
            eval_every=1,
            n_repeats=min(c.n_repeats, SMOKE_REPEATS),
        )
        if c.n_test is not None:
            changes["n_test"] = max(2, min(c.n_test, round(c.n_test * scale)))
        n_train = changes["n_base"] + changes["n_outliers"] + changes["n_duplicates"]
        if c.n_generate is not None:
            changes["n_generate"] = min(c.n_generate, n_train)
        changes["batch_size"] = min(c.batch_size, n_train)
    reduced = {k: (getattr(c, k), v) for k, v in changes.items() if getattr(c, k) != v}
    return (c.replace(**changes) if reduced else c), reduced


def describe_profile(
    profile: str,
    reductions: Mapping[str, tuple[Any, Any]],
    config: ExperimentConfig,
    figure: int | None = None,
    given: ExperimentConfig | None = None,
) -> str:
    """The text a notebook prints first: profile, what it reduced, and how the parameters differ from the paper's."""
    profile = check_profile(profile)
    name = f"Figure {figure}" if figure is not None else "This run"
    lines = []
    if not reductions:
        lines.append(f"{name}: profile {profile!r}, nothing reduced.")
    else:
        lines.append(f"{name}: profile {profile!r} -- NOT the paper's protocol; reduced:")
        for k, (a, b) in reductions.items():
            lines.append(f"    {k:<13} {a!s:>6} -> {b!s:<6} ({FIELD_MEANING.get(k, k)})")
    lines.append(f"    evaluated epochs: {len(config.eval_epochs)} ({_epochs_text(config)})")
    if figure is not None and given is not None:
        paper = figure_config(figure)
        diff = {
            k: (getattr(paper, k), getattr(given, k)) for k in CONFIG_FIELDS if getattr(paper, k) != getattr(given, k)
        }
        if diff:
            lines.append(
                f"Parameters set apart from the paper's Figure {figure}: "
                + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in diff.items())
            )
        else:
            lines.append(f"Parameters: the paper's Figure {figure} configuration.")
    lines.append(f"Run: {config.run_name()}")
    return "\n".join(lines)


def _epochs_text(config: ExperimentConfig) -> str:
    ep = config.eval_epochs
    return ", ".join(map(str, ep)) if len(ep) <= 12 else f"{ep[0]}, {ep[1]}, {ep[2]}, ..., {ep[-1]}"


def figure_title(
    config: ExperimentConfig,
    profile: str,
    figure: int | None = None,
    reductions: Mapping[str, tuple[Any, Any]] | None = None,
) -> str:
    """Title naming the configuration and profile, for every plot; a second line lists what the profile reduced."""
    head = f"Figure {figure}" if figure is not None else config.dataset
    title = (
        f"{head} [profile {profile}]: {config.dataset}, {config.n_base} points + {config.n_duplicates} "
        f"near-duplicates + {config.n_outliers} outliers, {config.epochs} epochs, {config.n_repeats} repeats"
    )
    if reductions:
        title += "\nreduced from the paper's protocol: " + ", ".join(
            f"{FIELD_MEANING.get(k, k)} {a} → {b}" for k, (a, b) in reductions.items()
        )
    return title


def config_from(namespace: Mapping[str, Any], defaults: ExperimentConfig | None = None) -> ExperimentConfig:
    """The ExperimentConfig whose fields are named in `namespace` (a notebook's `globals()`).

    A field the namespace lacks (a notebook older than the config) takes its value from
    `defaults` (else the dataclass default), with a printed warning; tests/test_notebooks.py
    keeps the committed notebooks' parameters equal to the config's fields.
    """
    base = ExperimentConfig() if defaults is None else defaults
    missing = [f for f in CONFIG_FIELDS if f not in namespace]
    if missing:
        print(f"warning: parameters {missing} are not in this notebook; using {[getattr(base, f) for f in missing]}")
    return base.replace(**{f: namespace[f] for f in CONFIG_FIELDS if f in namespace})


def project_root(start: Path | str | None = None) -> Path:
    """The memnb checkout holding `start` (default: the working directory), else the working directory.

    Notebooks run with their own folder as working directory; runs and figures still go to the
    project's `outputs/`.
    """
    here = Path.cwd() if start is None else Path(start)
    for d in (here.resolve(), *here.resolve().parents):
        if (d / "pyproject.toml").exists() and (d / "memnb").is_dir():
            return d
    return here.resolve()


def resolve_runs_root(runs_root: Path | str | None = None) -> Path:
    """`runs_root` if given, else $MEMNB_RUNS if set and non-empty, else <project>/outputs/runs."""
    if runs_root not in (None, ""):
        return Path(runs_root)
    env = os.environ.get("MEMNB_RUNS")
    if env:
        return Path(env)
    return project_root() / "outputs" / "runs"


def run(config: ExperimentConfig, runs_root: Path | str | None = None, text_progress: bool = False):
    """`memnb.run_experiment` into `resolve_runs_root(runs_root)` (reused when done, resumed when interrupted).

    text_progress: a plain-text progress bar even inside a kernel (papermill copies a kernel's
    text output to the terminal as it comes, but not a widget's).
    """
    root = resolve_runs_root(runs_root)
    if not text_progress:
        return run_experiment(config, root=root)
    import tqdm.auto
    import tqdm.std

    class TextBar(tqdm.std.tqdm):  # at most one line every 10 s: readable in papermill's log
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs.setdefault("mininterval", 10.0)
            kwargs.setdefault("ncols", 100)
            super().__init__(*args, **kwargs)

        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):  # no forced redraw per epoch
            super().set_postfix(ordered_dict, refresh=False, **kwargs)

    saved = tqdm.auto.tqdm
    tqdm.auto.tqdm = TextBar  # the runner imports tqdm.auto.tqdm when it starts
    try:
        return run_experiment(config, root=root)
    finally:
        tqdm.auto.tqdm = saved
