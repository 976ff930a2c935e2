"""Digits: the protocol on real 64-dimensional images (scikit-learn's 8x8 digits), and its profiles.

`DIGITS` is the configuration of the measured finding (docs/findings.md, "Digits"): a small training set
(Gu et al. 2023: small training sets are memorized) of 150 digits, 10 watermarked outliers (copies of
base images with a bright 2x2 corner block, the paper's section 5.1 example) and 10 near-duplicates,
the matched test set and a held-out null part, 10 repeats. The DDPM uses 100 steps with betas up to
0.1 (abar_T = 0.006: nearly pure noise, unlike tiny-diffusion's 50 steps to 0.02, abar_T = 0.60).
`notebooks/digits.ipynb` defaults to it; `apply_profile` (memnb's one rule, `profiles.apply_profile`, with
`DIGITS` as the defaults) reduces it as `profiles.PROFILES[...].settings["digits"]` says:

- ``paper``: as given (nothing reduced);
- ``laptop``: 3 repeats (119 s on the 2-core machine: the finding's curves, with 3 repeats instead of 10);
- ``smoke``: seconds, for CI: 60 base images, 2 repeats, 4 epochs, a narrow network.
"""

from __future__ import annotations

from typing import Any

from ..core.config import ExperimentConfig
from . import profiles

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
# notebooks/bring_your_own_model.ipynb's training loop (a diffusers U-Net on the digits, under memnb.Monitor): the
# finding's length and observation interval; profiles.apply_profile(..., "bring_your_own_model", LOOP) shortens it
LOOP: dict[str, int] = {"epochs": DIGITS.epochs, "observe_every": DIGITS.eval_every}


def apply_profile(config: ExperimentConfig, profile: str) -> tuple[ExperimentConfig, dict[str, tuple[Any, Any]]]:
    """`profiles.apply_profile` of the digits workflow: `DIGITS` are the defaults (a field set apart is kept)."""
    return profiles.apply_profile(config, profile, "digits", DIGITS)


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
