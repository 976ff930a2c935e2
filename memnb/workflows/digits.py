"""Digits: the protocol on real 64-dimensional images (scikit-learn's 8x8 digits), and its profiles.

`DIGITS` is the configuration of the measured finding (docs/findings.md, "Digits"): a small training set
(Gu et al. 2023: small training sets are memorized) of 150 digits, 10 watermarked outliers (copies of
base images with a bright 2x2 corner block, the paper's section 5.1 example) and 10 near-duplicates,
the matched test set and a held-out null part, 10 repeats. The DDPM uses 100 steps with betas up to
0.1 (abar_T = 0.006: nearly pure noise, unlike tiny-diffusion's 50 steps to 0.02, abar_T = 0.60).
`notebooks/digits.ipynb` defaults to it; `apply_profile` reduces it:

- ``paper``: as given (nothing reduced);
- ``laptop``: 3 repeats, at most `LAPTOP_EPOCHS` epochs, evaluated at least every `LAPTOP_EVAL_EVERY`
  (119 s on the 2-core machine: the finding's curves, with 3 repeats instead of 10);
- ``smoke``: seconds, for CI: 60 base images, 2 repeats, 4 epochs, a narrow network.
"""

from __future__ import annotations

from typing import Any

from ..core.config import ExperimentConfig
from .profiles import check_profile

DIGITS = ExperimentConfig(
    dataset="digits",
    n_base=150,
    n_outliers=10,
    n_duplicates=10,
    n_test=200,
    injection="watermark",
    watermark="corner",
    test_set="matched",
    denoiser="residual_mlp",
    hidden_size=256,
    hidden_layers=3,
    embedding_size=64,
    num_timesteps=100,
    beta_end=0.1,
    epochs=3000,
    eval_every=150,
    n_repeats=10,
)
LAPTOP_REPEATS, LAPTOP_EPOCHS, LAPTOP_EVAL_EVERY = 3, 3000, 300
SMOKE = dict(
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
)


def apply_profile(config: ExperimentConfig, profile: str) -> tuple[ExperimentConfig, dict[str, tuple[Any, Any]]]:
    """(the config to run, {field: (given, reduced)}) for `profile` (see the module docstring)."""
    profile = check_profile(profile)
    changes: dict[str, Any] = {}
    if profile == "laptop":
        epochs = min(config.epochs, LAPTOP_EPOCHS)
        changes = dict(
            n_repeats=min(config.n_repeats, LAPTOP_REPEATS),
            epochs=epochs,
            eval_every=min(max(config.eval_every, 1), LAPTOP_EVAL_EVERY, max(1, epochs)),
        )
    elif profile == "smoke":
        changes = {
            k: (min(getattr(config, k), v) if isinstance(v, int) and getattr(config, k) is not None else v)
            for k, v in SMOKE.items()
        }
    reduced = {k: (getattr(config, k), v) for k, v in changes.items() if getattr(config, k) != v}
    return (config.replace(**changes) if reduced else config), reduced


def describe(config: ExperimentConfig, profile: str, reductions) -> str:
    """The text the digits notebook prints first: profile, what it reduced, the run."""
    head = (
        f"Digits: profile {profile!r}, nothing reduced."
        if not reductions
        else f"Digits: profile {profile!r} -- NOT the measured protocol; reduced:"
    )
    lines = [head] + [f"    {k:<13} {a!s:>6} -> {b!s:<6}" for k, (a, b) in reductions.items()]
    lines.append(
        f"    {config.n_base} training digits + {config.n_outliers} watermarked ({config.watermark}) + "
        f"{config.n_duplicates} near-duplicates; test {config.n_test_points}, null part {config.n_null_points} "
        f"held-out images; {config.epochs} epochs evaluated every {config.eval_every}; {config.n_repeats} repeats; "
        f"denoiser {config.denoiser}, neighbours {config.neighbors}"
    )
    lines.append(f"Run: {config.run_name()}")
    return "\n".join(lines)
