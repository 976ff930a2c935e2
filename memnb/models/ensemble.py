"""All repeats of one configuration as one batched ensemble: the model side (denoiser, schedule, optimizer).

Member i is repeat `repeats[i]`: its initialisation, shuffling and noise all come from generators
derived from (config.seed, repeats[i]), so an ensemble of repeats (0, 1) reproduces, to float
tolerance, ensembles (0,) and (1,) run separately. The data side (training and test sets,
neighbour searches, null draws) is `memnb.experiment.repeats.RepeatData`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..core.config import ExperimentConfig
from ..core.device import resolve_device
from ..core.seeding import Stream, torch_generator
from . import make_denoiser
from .sampling import generate
from .schedule import NoiseSchedule
from .train import make_optimizer, train_epoch


class Ensemble:
    """The config's denoiser with one member per repeat, its optimizer and schedule, training on `data`.

    data: (R, N, d) training points, one set per member (float64 or float32; stored as float32 on the device).
    """

    def __init__(self, config: ExperimentConfig, data: np.ndarray, repeats: Sequence[int] | None = None):
        self.config = c = config
        self.repeats = list(range(c.n_repeats)) if repeats is None else [int(r) for r in repeats]
        self.device = resolve_device(c.device)
        data = np.asarray(data)
        if data.ndim != 3 or len(data) != len(self.repeats):
            raise ValueError(f"data has shape {data.shape}; allowed: (R, N, d) with R = {len(self.repeats)} repeats")
        self.schedule = NoiseSchedule.linear(c.num_timesteps, c.beta_start, c.beta_end).to(self.device)
        # initialise on the CPU so every device starts from the same weights
        init_gens = [torch_generator(c.seed, r, Stream.INIT) for r in self.repeats]
        self.model = make_denoiser(c, init_gens).to(self.device)
        self.optimizer = make_optimizer(self.model, c.learning_rate, c.weight_decay)
        self.data = torch.tensor(data, dtype=torch.float32, device=self.device)

    def _generators(self, stream: Stream, epoch: int) -> list[torch.Generator]:
        return [torch_generator(self.config.seed, r, stream, epoch, self.device) for r in self.repeats]

    def train_epoch(self, epoch: int) -> np.ndarray:
        """Train epoch `epoch` (0-based) for every member; returns the (R,) mean training loss."""
        c = self.config
        loss = train_epoch(
            self.model,
            self.optimizer,
            self.schedule,
            self.data,
            c.batch_size,
            c.grad_clip,
            self._generators(Stream.TRAIN, epoch),
        )
        return loss.cpu().numpy()

    def generate(self, epoch: int, n: int | None = None, precision: str | None = None) -> np.ndarray:
        """(R, n, d) float32 samples drawn at the start of `epoch`.

        Defaults: n = config.n_generate_points, precision = config.precision.
        """
        n = self.config.n_generate_points if n is None else n
        precision = self.config.precision if precision is None else precision
        gens = self._generators(Stream.SAMPLE, epoch)
        return generate(self.model, self.schedule, n, gens, precision=precision).cpu().numpy()

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "repeats": self.repeats}

    def load_state_dict(self, state: dict) -> None:
        if list(state["repeats"]) != self.repeats:
            raise ValueError(f"checkpoint holds repeats {state['repeats']}, this ensemble has {self.repeats}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


__all__ = ["Ensemble", "resolve_device"]
