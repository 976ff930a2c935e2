"""Profiles: one record per profile (`PROFILES`), one rule that applies it (`apply_profile`); and the paper's four
figure configurations (`FIGURES`), which the figure notebooks' parameters default to.

A profile says, for every workflow (`WORKFLOWS`), which parameters it sets and to what:

- ``paper``: nothing: the parameters as given (for the figures the paper's configuration, every epoch evaluated,
  10 repeats; for the others their measured or issue's protocol).
- ``laptop``: minutes on a 2-core CPU. Figures: at most `LAPTOP_REPEATS` repeats, at most `LAPTOP_TRAIN_STEPS`
  optimizer steps (rounded down to a multiple of 10 epochs), at most `LAPTOP_EVALS` + 1 evaluated epochs.
- ``smoke``: seconds, for CI: 2 repeats and a few epochs everywhere (figures: at most `SMOKE_BASE` base points,
  injections scaled in proportion, at least `SMOKE_MIN_INJECTED` each, `SMOKE_EPOCHS` epochs, all evaluated).
  Its numbers show that the pipeline works, not the paper's result.

`PROFILES[name].settings[workflow]` lists the values; `apply_profile`'s docstring states the one merge rule. Every
workflow applies a profile through `apply_profile` (digits, applications and questions bind their defaults:
``digits.apply_profile``, ...); a notebook prints at the top of its output what was reduced.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.config import CONFIG_FIELDS, ExperimentConfig
from ..core.validate import check_bool, fail
from ..experiment.runner import run_experiment
from ..experiment.store import project_root as store_project_root
from ..experiment.store import runs_root as store_runs_root

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

# laptop: tuned so that each figure takes at most about 5 minutes on a 2-core CPU (Figure 4: under a minute) (docs/notebooks.md, "Profiles")
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


# -- the record ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Derived:
    """A profile value computed from the parameters: ``rule(given, applied)``, `applied` holding the parameters
    set so far (the profile's earlier entries already applied), e.g. epochs from a budget of optimizer steps."""

    rule: Callable[[Mapping[str, Any], Mapping[str, Any]], Any]
    meaning: str


@dataclasses.dataclass(frozen=True)
class Profile:
    """One profile: its name, what it is for, and per workflow the parameters it sets, in order (a value or a
    `Derived`). A workflow it does not name is left as given."""

    name: str
    purpose: str
    settings: Mapping[str, Mapping[str, Any]]


def _n_train(p: Mapping[str, Any]) -> int:
    return p["n_base"] + p["n_outliers"] + p["n_duplicates"]


def _round_epochs(e: float) -> int:
    """Down to a multiple of 10 (at least 1 below 10)."""
    return max(1, int(e)) if e < 10 else int(e // 10) * 10


def _laptop_epochs(g, out) -> int:
    return min(g["epochs"], _round_epochs(LAPTOP_TRAIN_STEPS / max(1, _n_train(g) // g["batch_size"])))


def _smoke_scale(g, out) -> float:  # the share of the base points the smoke profile keeps
    return out["n_base"] / g["n_base"]


def _smoke_injected(name: str) -> Derived:
    def rule(g, out):
        n = g[name]
        scaled = n if n == 0 else min(n, max(SMOKE_MIN_INJECTED, round(n * _smoke_scale(g, out))))
        return min(scaled, out["n_base"]) if name == "n_duplicates" else scaled  # duplicates copy base points

    return Derived(rule, f"{name} scaled with the base points, at least {SMOKE_MIN_INJECTED}")


_FIGURE_LAPTOP = {
    "n_repeats": Derived(lambda g, out: min(g["n_repeats"], LAPTOP_REPEATS), f"at most {LAPTOP_REPEATS}"),
    "epochs": Derived(_laptop_epochs, f"at most {LAPTOP_TRAIN_STEPS} optimizer steps, a multiple of 10 epochs"),
    "eval_every": Derived(
        lambda g, out: (
            max(g["eval_every"], math.ceil(out["epochs"] / LAPTOP_EVALS)) if out["epochs"] else g["eval_every"]
        ),
        f"at most {LAPTOP_EVALS} + 1 evaluated epochs",
    ),
}
_FIGURE_SMOKE = {
    "n_base": Derived(lambda g, out: min(g["n_base"], SMOKE_BASE), f"at most {SMOKE_BASE}"),
    "n_outliers": _smoke_injected("n_outliers"),
    "n_duplicates": _smoke_injected("n_duplicates"),
    "epochs": Derived(lambda g, out: min(g["epochs"], SMOKE_EPOCHS), f"at most {SMOKE_EPOCHS}"),
    "eval_every": 1,
    "n_repeats": Derived(lambda g, out: min(g["n_repeats"], SMOKE_REPEATS), f"at most {SMOKE_REPEATS}"),
    "n_test": Derived(
        lambda g, out: g["n_test"] and max(2, min(g["n_test"], round(g["n_test"] * _smoke_scale(g, out)))),
        "scaled with the base points (None: n_base)",
    ),
    "n_generate": Derived(lambda g, out: g["n_generate"] and min(g["n_generate"], _n_train(out)), "<= n_train"),
    "batch_size": Derived(lambda g, out: min(g["batch_size"], _n_train(out)), "<= n_train"),
}

WORKFLOWS = ("figure", "digits", "applications", "questions", "bring_your_own_model")
PROFILES: dict[str, Profile] = {
    "paper": Profile("paper", "the protocol as given: nothing reduced", {}),
    "laptop": Profile(
        "laptop",
        "minutes on a 2-core CPU: fewer repeats, epochs and evaluations; same data, sizes and injections",
        {
            "figure": _FIGURE_LAPTOP,
            "digits": {"n_repeats": 3},  # 119 s on the 2-core machine: the finding's curves with 3 repeats
            "applications": {"epochs": 400, "eval_every": 40},  # same datasets, sizes, outliers, 5 repeats
            "questions": dict(
                sizes=[64, 128, 256, 512],
                horizon_steps=20_000,
                horizon_per_point=0,
                n_evals=16,
                cells_n_base=64,
                widths=[32, 512],
                depths=[1, 3],
                learning_rates=[1e-3, 3e-3],
                batch_sizes=[8, 32],
            ),
            "bring_your_own_model": {"epochs": 1000, "observe_every": 100},
        },
    ),
    "smoke": Profile(
        "smoke",
        "seconds, for CI: 2 repeats, a few epochs, small data; shows that the pipeline works, not a result",
        {
            "figure": _FIGURE_SMOKE,
            "digits": dict(
                n_base=60,
                n_outliers=4,
                n_duplicates=4,
                n_test=60,
                epochs=4,
                eval_every=1,
                n_repeats=2,
                hidden_size=32,
                embedding_size=16,
                hidden_layers=1,
                batch_size=16,
            ),
            "applications": dict(
                datasets=["moons"], outlier_counts=[5], n_base=60, n_repeats=2, epochs=4, eval_every=1
            ),
            "questions": dict(
                datasets=["moons"],
                sizes=[40, 80],
                n_repeats=2,
                horizon_steps=300,
                horizon_per_point=0,
                n_evals=5,
                cells_n_base=40,
                cells_repeats=2,
                widths=[16, 32],
                depths=[1],
                learning_rates=[1e-3],
                batch_sizes=[8, 32],
                n_bootstrap=100,
            ),
            "bring_your_own_model": {"epochs": 2, "observe_every": 1},
        },
    ),
}
# "full" is the name the application notebooks used for "paper" (accepted, same meaning)
PROFILE_ALIASES = {"full": "paper"}


def check_profile(profile: str) -> str:
    """The profile's canonical name (PROFILES; an alias of PROFILE_ALIASES is translated); ValueError otherwise."""
    profile = PROFILE_ALIASES.get(profile, profile) if isinstance(profile, str) else profile
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is unknown; allowed: {' | '.join(PROFILES)}")
    return profile


def _parameters(value: Any) -> dict[str, Any]:
    """A mapping's items, or a config's fields (`to_dict`)."""
    return dict(value) if isinstance(value, Mapping) else value.to_dict()


def apply_profile(given, profile: str, workflow: str = "figure", defaults=None):
    """(the parameters to run, {parameter: (given value, applied value)}) of `profile` for `workflow`.

    given: a config (ExperimentConfig, returned as one) or a mapping of parameters (returned as a dict);
    defaults: the workflow's defaults, of the same kind and the same parameters (None: `given` itself).

    The one merge rule: every parameter the profile sets for the workflow (`PROFILES[profile].settings[workflow]`),
    in order, takes the profile's value (a `Derived` one computed from the given parameters) **where the given value
    is the default**; a parameter set apart from the defaults is kept (``-p sizes [64, 96]`` at the laptop profile
    runs those sizes; ``-p n_repeats 5`` at the laptop profile runs 5 repeats), and every other parameter is left
    as given. The reductions list, in the profile's order, each parameter whose value changed.
    """
    profile = check_profile(profile)
    if workflow not in WORKFLOWS:
        fail("workflow", workflow, " | ".join(WORKFLOWS))
    params = _parameters(given)
    base = params if defaults is None else _parameters(defaults)
    missing, unknown = [k for k in base if k not in params], [k for k in params if k not in base]
    if missing:
        raise ValueError(f"parameters {missing} are missing; allowed: a mapping with keys {list(base)}")
    if unknown:
        raise ValueError(f"parameters {unknown} are unknown; allowed: {list(base)}")
    out = dict(params)
    settings = PROFILES[profile].settings.get(workflow, {})
    for name, value in settings.items():
        if params[name] == base[name]:
            out[name] = value.rule(params, out) if isinstance(value, Derived) else value
    reductions = {k: (params[k], out[k]) for k in settings if out[k] != params[k]}
    if isinstance(given, Mapping):
        return out, reductions
    return (given.replace(**{k: out[k] for k in reductions}) if reductions else given), reductions


def figure_config(figure: int) -> ExperimentConfig:
    """The paper's configuration of Figure `figure` (1-4)."""
    if figure not in FIGURES:
        raise ValueError(f"figure {figure!r} is unknown; allowed: {' | '.join(map(str, FIGURES))}")
    return FIGURES[figure]


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
    """The memnb checkout holding `start` (default: the working directory), else the working directory
    (memnb.experiment.store.runs.project_root)."""
    return store_project_root(start)


def resolve_runs_root(runs_root: Path | str | None = None) -> Path:
    """The runs root: `runs_root` if given, else $MEMNB_RUNS, else <project>/outputs/runs (the one policy,
    memnb.experiment.store.runs.runs_root)."""
    return store_runs_root(runs_root)


def run(config: ExperimentConfig, runs_root: Path | str | None = None, text_progress: bool = False):
    """`memnb.run_experiment` into `resolve_runs_root(runs_root)` (reused when done, resumed when interrupted).

    text_progress: a plain-text progress bar even inside a kernel (papermill copies a kernel's
    text output to the terminal as it comes, but not a widget's).
    """
    root = resolve_runs_root(runs_root)
    if not check_bool("text_progress", text_progress):
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
