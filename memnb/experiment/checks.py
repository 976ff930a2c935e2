"""Divergence checks of a trained run: a non-finite loss or weight, or samples beyond what is stored."""

from __future__ import annotations

import numpy as np
import torch

from ..core.config import ExperimentConfig

__all__ = ["DivergedError", "SAMPLE_LIMIT", "check_training", "check_samples"]

# Largest magnitude a stored sample may have: samples are stored as float16 (data of scale ~1 need no more);
# a model whose samples leave this range has diverged.
SAMPLE_LIMIT = float(np.finfo(np.float16).max)


class DivergedError(RuntimeError):
    """Training diverged: a non-finite loss or weight, or samples beyond float16's range, at a named epoch and repeat."""


def _first_bad_member(values: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if len(bad) else None


def _divergence_advice(config: ExperimentConfig, epoch: int) -> str:
    return (
        f"training diverged (learning_rate = {config.learning_rate}, grad_clip = {config.grad_clip}); the "
        f"evaluated epochs before epoch {epoch} are stored and the checkpoint holds the last finite weights; "
        "lower learning_rate (tiny-diffusion's is 1e-3) or grad_clip and run the new config"
    )


def check_training(loss: np.ndarray, model: torch.nn.Module, epoch: int, config: ExperimentConfig) -> None:
    """DivergedError naming the epoch, repeat and value when a member's loss or weights are not finite.

    loss: (R,) mean training loss of the epoch; the model's parameters carry the member axis first.
    """
    r = _first_bad_member(np.asarray(loss, np.float64))
    if r is not None:
        raise DivergedError(
            f"repeat {r}: training loss {float(loss[r])} at epoch {epoch + 1} (training epoch "
            f"{epoch} -> {epoch + 1}); {_divergence_advice(config, epoch + 1)}"
        )
    with torch.no_grad():
        for name, p in model.named_parameters():
            finite = torch.isfinite(p.reshape(p.shape[0], -1)).all(dim=1).cpu().numpy()
            if not finite.all():
                r = int(np.flatnonzero(~finite)[0])
                value = p[r][~torch.isfinite(p[r])].flatten()[0].item()
                raise DivergedError(
                    f"repeat {r}: weight {name} = {value} at epoch {epoch + 1}; {_divergence_advice(config, epoch + 1)}"
                )


def check_samples(samples: np.ndarray, epoch: int, config: ExperimentConfig) -> None:
    """DivergedError when a sample is not finite or beyond float16's range (the stored dtype), naming the epoch,
    the repeat and the value; samples (R, n, d)."""
    magnitude = np.abs(samples).reshape(len(samples), -1).max(axis=1)
    bad = np.flatnonzero(~(magnitude <= SAMPLE_LIMIT))  # NaN compares False
    if len(bad):
        r = int(bad[0])
        raise DivergedError(
            f"repeat {r}: samples drawn at epoch {epoch} reach {float(magnitude[r])} (stored as "
            f"float16, at most {SAMPLE_LIMIT:g}); {_divergence_advice(config, epoch)}"
        )
