"""All repeats of one configuration as one batched ensemble: data, model, optimizer, evaluation.

Member i is repeat `repeats[i]`: its data draw, injection, test set, initialisation, shuffling
and noise all come from generators derived from (config.seed, repeats[i]), so an ensemble of
repeats (0, 1) reproduces, to float tolerance, ensembles (0,) and (1,) run separately.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .config import ExperimentConfig
from .data import GROUPS, make_test_set, make_training_set, sample_data_distribution
from .diffusion import NoiseSchedule
from .model import EnsembleDenoiser
from .neighbors import NeighbourSearch
from .sampling import generate
from .seeding import Stream, numpy_rng, torch_generator
from .train import make_optimizer, train_epoch

NEIGHBOUR_FIELDS = ("d1", "d2", "index", "d_test", "d_mean50")


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("config field 'device' = 'cuda' is unavailable on this machine; allowed here: auto | cpu")
    return torch.device(name)


class Ensemble:
    def __init__(self, config: ExperimentConfig, repeats: Sequence[int] | None = None):
        self.config = c = config
        self.repeats = list(range(c.n_repeats)) if repeats is None else [int(r) for r in repeats]
        self.device = resolve_device(c.device)
        self.train_sets = [make_training_set(c, r) for r in self.repeats]
        self.test_sets = [make_test_set(c, r, ts) for r, ts in zip(self.repeats, self.train_sets)]
        self.searches = [NeighbourSearch(ts.points, test, c.neighbors) for ts, test in zip(self.train_sets, self.test_sets)]
        self.schedule = NoiseSchedule.linear(c.num_timesteps, c.beta_start, c.beta_end).to(self.device)
        # initialise on the CPU so every device starts from the same weights
        init_gens = [torch_generator(c.seed, r, Stream.INIT) for r in self.repeats]
        self.model = EnsembleDenoiser(len(self.repeats), c.hidden_size, c.hidden_layers, c.embedding_size, init_gens).to(self.device)
        self.optimizer = make_optimizer(self.model, c.learning_rate, c.weight_decay)
        self.data = torch.tensor(np.stack([ts.points for ts in self.train_sets]), dtype=torch.float32, device=self.device)

    @property
    def groups(self) -> np.ndarray:
        """(R, N) group codes of the training points."""
        return np.stack([ts.groups for ts in self.train_sets])

    @property
    def locations(self) -> np.ndarray:
        """(R, N) distinct-location id of every training point."""
        return np.stack([s.locations.location for s in self.searches])

    def _generators(self, stream: Stream, epoch: int) -> list[torch.Generator]:
        return [torch_generator(self.config.seed, r, stream, epoch, self.device) for r in self.repeats]

    def train_epoch(self, epoch: int) -> np.ndarray:
        """Train epoch `epoch` (0-based) for every member; returns the (R,) mean training loss."""
        c = self.config
        loss = train_epoch(self.model, self.optimizer, self.schedule, self.data, c.batch_size, c.grad_clip,
                           self._generators(Stream.TRAIN, epoch))
        return loss.cpu().numpy()

    def generate(self, epoch: int, n: int | None = None, precision: str | None = None) -> np.ndarray:
        """(R, n, 2) float32 samples drawn at the start of `epoch`.

        Defaults: n = config.n_generate_points, precision = config.precision.
        """
        n = self.config.n_generate_points if n is None else n
        precision = self.config.precision if precision is None else precision
        return generate(self.model, self.schedule, n, self._generators(Stream.SAMPLE, epoch), precision=precision).cpu().numpy()

    def search(self, samples: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
        """Neighbours of (R, n, 2) points, each member against its own training and test sets.

        Returns {prefix + field: (R, n)} for d1, d2, index, d_test, d_mean50.
        """
        found = [s.query(x) for s, x in zip(self.searches, samples)]
        return {prefix + f: np.stack([getattr(nb, f) for nb in found]) for f in NEIGHBOUR_FIELDS}

    def null_draws(self, epoch: int, n: int | None = None) -> np.ndarray:
        """(R, n, 2) fresh draws from each member's data-generating distribution (a perfect generator)."""
        n = self.config.n_generate_points if n is None else n
        return np.stack([
            sample_data_distribution(self.config, ts, n, numpy_rng(self.config.seed, r, Stream.NULL, epoch))
            for r, ts in zip(self.repeats, self.train_sets)
        ])

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "repeats": self.repeats}

    def load_state_dict(self, state: dict) -> None:
        if list(state["repeats"]) != self.repeats:
            raise ValueError(f"checkpoint holds repeats {state['repeats']}, this ensemble has {self.repeats}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


__all__ = ["Ensemble", "resolve_device", "GROUPS", "NEIGHBOUR_FIELDS"]
