"""All repeats of one configuration as one batched ensemble: the model side (denoiser, schedule, optimizer).

Member i is repeat `repeats[i]`: its initialisation, shuffling and noise all come from generators
derived from (seeds[i], repeats[i]) (seeds default to config.seed for every member), so an ensemble
of repeats (0, 1) reproduces, to float tolerance, ensembles (0,) and (1,) run separately, and
several configurations that share shapes can train as one ensemble (memnb.experiment.packed).

On CUDA the training step and the sampler's chunks run as CUDA graphs (memnb.models.graphs;
`cuda_graphs=False` or MEMNB_CUDA_GRAPHS=0 for eager); the CPU always runs the eager reference.
The data side (training and test sets, neighbour searches, null draws) is
`memnb.experiment.repeats.RepeatData`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..core.config import ExperimentConfig
from ..core.device import resolve_device
from ..core.seeding import Stream, torch_generator
from . import make_denoiser
from .graphs import GraphedTrainer, use_cuda_graphs
from .sampling import generate
from .schedule import NoiseSchedule
from .train import make_optimizer, train_epoch


class Ensemble:
    """The config's denoiser with one member per repeat, its optimizer and schedule, training on `data`.

    data: (R, N, d) training points, one set per member (float64 or float32; stored as float32 on the device).
    """

    def __init__(
        self,
        config: ExperimentConfig,
        data: np.ndarray,
        repeats: Sequence[int] | None = None,
        seeds: Sequence[int] | None = None,
        cuda_graphs: bool | None = None,
    ):
        self.config = c = config
        self.repeats = list(range(c.n_repeats)) if repeats is None else [int(r) for r in repeats]
        self.seeds = [c.seed] * len(self.repeats) if seeds is None else [int(s) for s in seeds]
        if len(self.seeds) != len(self.repeats):
            raise ValueError(f"seeds = {list(seeds)!r} is invalid; allowed: one seed per member ({len(self.repeats)})")
        self.device = resolve_device(c.device)
        self.graphs = use_cuda_graphs(self.device, cuda_graphs)
        data = np.asarray(data)
        if data.ndim != 3 or len(data) != len(self.repeats):
            raise ValueError(f"data has shape {data.shape}; allowed: (R, N, d) with R = {len(self.repeats)} repeats")
        self.schedule = NoiseSchedule.linear(c.num_timesteps, c.beta_start, c.beta_end).to(self.device)
        # initialise on the CPU so every device starts from the same weights
        init_gens = [torch_generator(s, r, Stream.INIT) for s, r in zip(self.seeds, self.repeats)]
        self.model = make_denoiser(c, init_gens).to(self.device)
        self.optimizer = make_optimizer(self.model, c.learning_rate, c.weight_decay)
        self.data = torch.tensor(data, dtype=torch.float32, device=self.device)
        self.trainer = None
        if self.graphs:
            self.trainer = GraphedTrainer(
                self.model,
                self.optimizer,
                self.schedule,
                len(self.repeats),
                c.batch_size,
                self.data.shape[-1],
                c.grad_clip,
                self.device,
                graph=True,
            )

    def _generators(self, stream: Stream, epoch: int) -> list[torch.Generator]:
        return [torch_generator(s, r, stream, epoch, self.device) for s, r in zip(self.seeds, self.repeats)]

    def train_epoch(self, epoch: int) -> np.ndarray:
        """Train epoch `epoch` (0-based) for every member; returns the (R,) mean training loss."""
        c = self.config
        if self.trainer is not None:
            gens = self._generators(Stream.TRAIN, epoch)
            return self.trainer.train_epoch(self.data, c.batch_size, gens).cpu().numpy()
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

        Defaults: n = config.n_generate_points, precision = config.precision; the config's sampler and sample_steps.
        """
        n = self.config.n_generate_points if n is None else n
        precision = self.config.precision if precision is None else precision
        gens = self._generators(Stream.SAMPLE, epoch)
        c = self.config
        kw = {"precision": precision, "graph": self.graphs, "sampler": c.sampler, "steps": c.sample_steps}
        return generate(self.model, self.schedule, n, gens, **kw).cpu().numpy()

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "repeats": self.repeats}

    def load_state_dict(self, state: dict) -> None:
        if list(state["repeats"]) != self.repeats:
            raise ValueError(f"checkpoint holds repeats {state['repeats']}, this ensemble has {self.repeats}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.trainer is not None:  # new optimizer state tensors: the captured step no longer points at them
            self.trainer.reset()


def member_state(state: dict, lo: int, hi: int, repeats: Sequence[int]) -> dict:
    """Members lo..hi-1 of an Ensemble.state_dict(), as the state_dict of an ensemble of those members alone.

    Every parameter (and AdamW's exp_avg, exp_avg_sq) carries the member axis first; AdamW's step count is
    shared (all members step together). Slices are copied, so saving one does not save the whole ensemble.
    """
    optimizer = state["optimizer"]
    return {
        "model": {k: v[lo:hi].clone() for k, v in state["model"].items()},
        "optimizer": {
            "state": {
                i: {k: (v[lo:hi].clone() if k != "step" else v.clone()) for k, v in s.items()}
                for i, s in optimizer["state"].items()
            },
            "param_groups": [dict(g) for g in optimizer["param_groups"]],
        },
        "repeats": [int(r) for r in repeats],
    }


def stack_states(states: Sequence[dict], repeats: Sequence[int]) -> dict:
    """The state_dict of one ensemble whose members are those of `states` in order (member_state's inverse).

    Every state must have the same optimizer step count (ValueError otherwise).
    """
    first = states[0]
    opt_state = {}
    for i, s in first["optimizer"]["state"].items():
        for other in states[1:]:
            if not torch.equal(other["optimizer"]["state"][i]["step"].cpu(), s["step"].cpu()):
                raise ValueError("ensembles stacked together must have taken the same number of optimizer steps")
        opt_state[i] = {
            k: (torch.cat([st["optimizer"]["state"][i][k] for st in states]) if k != "step" else v.clone())
            for k, v in s.items()
        }
    return {
        "model": {k: torch.cat([st["model"][k] for st in states]) for k in first["model"]},
        "optimizer": {"state": opt_state, "param_groups": [dict(g) for g in first["optimizer"]["param_groups"]]},
        "repeats": [int(r) for r in repeats],
    }


__all__ = ["Ensemble", "member_state", "resolve_device", "stack_states"]
