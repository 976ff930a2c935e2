"""The open questions' parameters and grids: `FULL` (the issue's grids), their checks, the runs of part 1 (dataset x
size, trained for a horizon of optimizer steps) and of part 2 (model cells and training cells), and the lines
printed first. The profiles' values are `profiles.PROFILES[...].settings["questions"]`; `apply_profile` is memnb's
one rule with `FULL` as the defaults (a parameter set apart from `FULL` is kept)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..analysis.timescales import steps_per_epoch
from ..core.config import ExperimentConfig
from ..core.validate import check_int, fail, is_real
from . import profiles

CRITERION = "train_only"  # Bonnaire et al.'s d1/d2 < 1/3 (the config's train_ratio = 3)

FULL: dict[str, Any] = dict(
    datasets=["moons", "gmm_d"],
    dim=8,
    sizes=[64, 128, 256, 512, 1024, 2048, 4096],  # base points; n = base + outliers + duplicates
    injected_share=0.1,
    n_repeats=6,
    horizon_steps=50_000,  # optimizer steps: max(horizon_steps, horizon_per_point * n)
    horizon_per_point=200,
    n_evals=24,
    cells_n_base=128,
    cells_repeats=20,  # part 2's repeats: 8+ cells under Holm need 2^R >= 2 cells / alpha (issue 25: 20)
    widths=[32, 64, 128, 256, 512],
    depths=[1, 2, 3, 6],
    learning_rates=[1e-4, 3e-4, 1e-3, 3e-3],
    batch_sizes=[8, 32, 128],
    factor=1.5,
    plateau_tol=0.1,
    margin=0.05,
    z=3.0,
    n_bootstrap=2000,
    alpha=0.05,
    seed=0,
)

BATCH = 32  # batch size of every run whose batch size is not varied
MODEL_FIXED = dict(hidden_size=128, hidden_layers=3)  # tiny-diffusion's: the model of the training cells
TRAINING_FIXED = dict(learning_rate=1e-3, batch_size=BATCH)  # the training of the model cells


# -- parameters and profiles ------------------------------------------------------------------------------
def apply_profile(params: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
    """(parameters to run, {name: (given, reduced)}) for `profile`: `profiles.apply_profile` with `FULL` as the
    defaults (params holds exactly the keys of `FULL`; one set apart from `FULL` is kept, so ``-p sizes [64, 96]``
    at the laptop profile runs those), then every parameter checked."""
    out, reductions = profiles.apply_profile(params, profile, "questions", FULL)
    _check(out)
    return out, reductions


def _check(p: Mapping[str, Any]) -> None:
    for name in ("sizes", "widths", "depths", "learning_rates", "batch_sizes", "datasets"):
        if isinstance(p[name], (str, bytes)) or not isinstance(p[name], Sequence) or len(p[name]) == 0:
            fail(name, p[name], "a non-empty list")
    for name, lo in (
        ("n_repeats", 2),
        ("cells_repeats", 2),
        ("horizon_steps", 1),
        ("horizon_per_point", 0),
        ("n_evals", 2),
    ):
        check_int(name, p[name], lo)
    if not (is_real(p["injected_share"]) and 0 <= p["injected_share"] < 0.5):
        fail(
            "injected_share",
            p["injected_share"],
            "a share >= 0 and < 0.5 (of the base points, each for outliers and duplicates)",
        )
    if not (is_real(p["factor"]) and p["factor"] > 0):
        fail("factor", p["factor"], "a number > 0")


def params_from(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of `FULL` as named in `namespace` (a notebook's globals()); a missing one is an error."""
    missing = [k for k in FULL if k not in namespace]
    if missing:
        raise ValueError(f"parameters {missing} are missing; allowed: a mapping with keys {list(FULL)}")
    return {k: namespace[k] for k in FULL}


def horizon(params: Mapping[str, Any], n_train: int) -> int:
    """Optimizer steps of a part-1 run of n_train points: max(horizon_steps, horizon_per_point * n_train)."""
    return max(params["horizon_steps"], params["horizon_per_point"] * n_train)


def _config(
    params: Mapping[str, Any], dataset: str, n_base: int, steps: int, repeats: int | None = None, **changes: Any
) -> ExperimentConfig:
    k = max(2, round(params["injected_share"] * n_base))
    n_train = n_base + 2 * k
    batch = changes.get("batch_size", BATCH)
    epochs = math.ceil(steps / steps_per_epoch(n_train, batch))
    return ExperimentConfig(
        dataset=dataset,
        dim=params["dim"] if dataset == "gmm_d" else None,
        n_base=n_base,
        n_outliers=k,
        n_duplicates=k,
        epochs=epochs,
        eval_schedule="log",
        n_evals=params["n_evals"],
        n_repeats=params["n_repeats"] if repeats is None else repeats,
        seed=params["seed"],
        test_set="matched",
        **{"batch_size": BATCH, **changes},
    )


def _n_train(params: Mapping[str, Any], n_base: int) -> int:
    return n_base + 2 * max(2, round(params["injected_share"] * n_base))


def part1_configs(params: Mapping[str, Any]) -> list[ExperimentConfig]:
    """Part 1's runs: every dataset x size, trained for `horizon` steps."""
    return [
        _config(params, ds, nb, horizon(params, _n_train(params, nb)))
        for ds in params["datasets"]
        for nb in params["sizes"]
    ]


def cell_configs(params: Mapping[str, Any]) -> list[tuple[str, ExperimentConfig]]:
    """Part 2's runs as (factor, config): moons at `cells_n_base`, every width x depth with the training
    fixed ("model"), every learning rate x batch size with the model fixed ("training"), all trained for the
    part-1 horizon of that n with `cells_repeats` repeats (the cell of the default model and training is the
    part-1 run of that n, reused, when cells_repeats == n_repeats; with more repeats it is a run of its own)."""
    nb = params["cells_n_base"]
    steps = horizon(params, _n_train(params, nb))
    r = params["cells_repeats"]
    cells = [
        ("model", _config(params, "moons", nb, steps, r, hidden_size=w, hidden_layers=d, **TRAINING_FIXED))
        for w in params["widths"]
        for d in params["depths"]
    ]
    cells += [
        ("training", _config(params, "moons", nb, steps, r, learning_rate=lr, batch_size=b, **MODEL_FIXED))
        for lr in params["learning_rates"]
        for b in params["batch_sizes"]
    ]
    return cells


def describe(profile: str, reductions: Mapping[str, tuple[Any, Any]], params: Mapping[str, Any]) -> str:
    """The lines printed first: the profile, what it reduced against the issue's grids, and the grids."""
    head = f"Questions: profile {profile!r} -- " + ("the issue's full grids" if not reductions else "reduced:")
    lines = [head] + [f"    {k:<17} {given!s:>28} -> {now!s}" for k, (given, now) in reductions.items()]
    p = params
    sizes = [_n_train(p, nb) for nb in p["sizes"]]
    lines.append(
        f"Part 1: {list(p['datasets'])} (gmm_d at d = {p['dim']}), base sizes {list(p['sizes'])} (n = {sizes}), "
        f"{p['n_repeats']} repeats, horizon max({p['horizon_steps']}, {p['horizon_per_point']} n) steps, "
        f"{p['n_evals']} log-spaced evaluations"
    )
    lines.append(
        f"Part 2: moons, base {p['cells_n_base']}, {p['cells_repeats']} repeats; width {list(p['widths'])} x depth {list(p['depths'])} "
        f"(lr 1e-3, batch 32); lr {list(p['learning_rates'])} x batch {list(p['batch_sizes'])} (width 128, depth 3)"
    )
    lines.append(
        f"Statistics: train-only criterion (d1/d2 < 1/3); tau_gen: energy distance < {p['factor']} x fresh data; "
        f"tau_mem: excess > {p['margin']} and {p['z']} s.e.; {p['n_bootstrap']} bootstrap resamples, "
        f"alpha {p['alpha']}, seed {p['seed']}"
    )
    return "\n".join(lines)
