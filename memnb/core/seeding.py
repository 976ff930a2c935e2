"""Explicit randomness: every generator is derived from (seed, repeat, stream, epoch), never global state.

Streams are independent by construction (numpy's SeedSequence spawning), so one repeat's data
draw never shares random numbers with another repeat's, or with its own sampling noise, and a run
resumed at epoch e draws exactly what an uninterrupted run draws at epoch e.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch


class Stream(IntEnum):
    DATA = 0  # base training draw and injection
    TEST = 1  # independent test set
    INIT = 2  # network initialisation
    TRAIN = 3  # per-epoch shuffling, timesteps and noise
    SAMPLE = 4  # per-epoch generation noise
    NULL = 5  # per-epoch fresh draws from the data distribution (the null baseline)
    SPLIT = 6  # a real dataset's pool split into training, test and null parts (once per repeat)
    DETECT = 7  # fixed noise per point of the membership detectors (memnb.metric.membership_scores; epoch 0)


def _entropy(seed: int, repeat: int, stream: Stream, epoch: int) -> list[int]:
    return [int(seed), int(repeat), int(stream), int(epoch)]


def numpy_rng(seed: int, repeat: int, stream: Stream, epoch: int = 0) -> np.random.Generator:
    """A numpy Generator unique to (seed, repeat, stream, epoch)."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(seed, repeat, stream, epoch)))


def torch_generator(
    seed: int, repeat: int, stream: Stream, epoch: int = 0, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A torch Generator unique to (seed, repeat, stream, epoch), on `device`."""
    state = np.random.SeedSequence(_entropy(seed, repeat, stream, epoch)).generate_state(2, dtype=np.uint32)
    g = torch.Generator(device=device)
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g
