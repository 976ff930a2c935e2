"""Models: the denoiser registry, the noise schedule, training and sampling of batched ensembles.

A denoiser is one `Denoiser` record in `memnb.core.registry.DENOISERS`: a name, the data
dimensions it takes (None: any) and ``build(config, generators, device)`` returning an
``nn.Module`` of R members (one per generator) with ``forward(x (R, B, d), t (R, B)) -> eps (R, B, d)``
and attributes ``n_members`` and ``dim``. Every member must only ever see its own inputs and
parameters (a test per denoiser trains an ensemble of two against each member alone). A module
may offer ``sampling_network(num_timesteps, dtype, chunk)`` for a faster sampler (see
`memnb.models.sampling`). Adding a denoiser is one module in this folder that registers its
record, plus its test; `make_denoiser(config, generators)` builds the config's.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..core.config import ExperimentConfig
from ..core.registry import DENOISERS


@dataclass(frozen=True)
class Denoiser:
    """name; dims (data dimensions it accepts, None = any); build(config, generators, device) -> nn.Module;
    description (one line); images: it takes image datasets only (their `image_shape`)."""

    name: str
    dims: tuple[int, ...] | None
    build: Callable[[ExperimentConfig, Sequence[torch.Generator], torch.device | str], torch.nn.Module]
    description: str = ""
    images: bool = False


def make_denoiser(
    config: ExperimentConfig, generators: Sequence[torch.Generator], device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """The config's denoiser with one member per generator (each member initialised from its own generator)."""
    return DENOISERS.get(config.denoiser).build(config, list(generators), device)


# every denoiser module registers itself; tiny-diffusion's first (the 2-D default)
for _name in sorted((m.name for m in pkgutil.iter_modules(__path__)), key=lambda n: (n != "tiny_diffusion", n)):
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["Denoiser", "make_denoiser", "DENOISERS"]
