"""The data side of a run: per repeat, its training set, test set, neighbour search and null draws.

Arrays are stacked over repeats: (R, N, d) training points, (R, m, d) test points, (R, N) groups.
Each repeat's data comes from its own random streams (memnb.core.seeding), so repeat r's numbers
do not depend on which other repeats run beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.config import ExperimentConfig
from ..core.device import resolve_device
from ..core.seeding import Stream, numpy_rng
from ..core.vocabulary import DUPLICATE, INLIER, OUTLIER
from ..data.injection import make_test_set, make_training_set, sample_data_distribution
from ..metric.membership_scores import STORED, score_points
from ..metric.neighbors import NEIGHBOUR_FIELDS, NeighbourSearch


class RepeatData:
    """Training and test sets of every repeat of `config`, and exact searches against them (built once)."""

    def __init__(self, config: ExperimentConfig, repeats: Sequence[int] | None = None):
        self.config = c = config
        self.repeats = list(range(c.n_repeats)) if repeats is None else [int(r) for r in repeats]
        self.train_sets = [make_training_set(c, r) for r in self.repeats]
        self.test_sets = [make_test_set(c, r, ts) for r, ts in zip(self.repeats, self.train_sets)]
        device = resolve_device(c.device) if c.neighbors == "torch" else "cpu"  # only the torch search uses it
        self.searches = [
            NeighbourSearch(ts.points, test, c.neighbors, device=device)
            for ts, test in zip(self.train_sets, self.test_sets)
        ]

    @property
    def train_points(self) -> np.ndarray:
        """(R, N, d) float64 training points."""
        return np.stack([ts.points for ts in self.train_sets])

    @property
    def test_points(self) -> np.ndarray:
        """(R, m, d) float64 test points."""
        return np.stack(self.test_sets)

    @property
    def groups(self) -> np.ndarray:
        """(R, N) group codes of the training points."""
        return np.stack([ts.groups for ts in self.train_sets])

    @property
    def test_groups(self) -> np.ndarray:
        """(R, m) int8 group codes of the test points, as make_test_set lays them out: the base part inliers, then
        the matched set's outliers (cluster draws or watermarked copies), then its near-duplicates."""
        c = self.config
        codes = np.repeat(
            np.array([INLIER, OUTLIER, DUPLICATE], np.int8), [c.n_test_base, c.n_test_outliers, c.n_test_duplicates]
        )
        return np.broadcast_to(codes, (len(self.repeats), len(codes))).copy()

    def membership(self, model, alphas_cumprod, device) -> dict[str, np.ndarray]:
        """The config's detectors' scores of every training and test point under `model` (an ε̂ callable on
        (R, n, d), memnb's ensemble) at the schedule ᾱ (memnb.metric.membership_scores.score_points; fixed noise
        from the run's seed and each repeat): the arrays an epoch file stores, and detector_seconds."""
        c = self.config
        out = score_points(
            model, alphas_cumprod, self.train_points, self.test_points, self.groups, self.test_groups,
            c.detectors, c.seed, n_groups=len(c.group_names), repeats=self.repeats, device=device, batched=True,
        )  # fmt: skip
        return {k: out[k] for k in (*STORED, "detector_seconds")}

    @property
    def locations(self) -> np.ndarray:
        """(R, N) distinct-location id of every training point."""
        return np.stack([s.locations.location for s in self.searches])

    def arrays(self) -> dict[str, np.ndarray]:
        """What data.npz stores (see memnb.experiment.results)."""
        return {
            "train_points": self.train_points,
            "groups": self.groups,
            "test_points": self.test_points,
            "cluster_centre": np.stack([t.cluster.centre for t in self.train_sets]),
            "cluster_std": np.array([t.cluster.std for t in self.train_sets]),
        }

    def search(self, samples: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
        """Neighbours of (R, n, d) points, each repeat against its own training and test sets.

        Returns {prefix + field: (R, n)} for every field of NEIGHBOUR_FIELDS.
        """
        found = [s.query(x) for s, x in zip(self.searches, samples)]
        return {prefix + f: np.stack([getattr(nb, f) for nb in found]) for f in NEIGHBOUR_FIELDS}

    def held_out_neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """Per repeat, each test point's distance to its nearest training point and that point's group.

        Returns (R, m) float32 distances and (R, m) group codes (L(P_n) and the cells of Meehan et al.'s
        test), as memnb.experiment.tabulate.held_out_neighbours, through this object's searches (so the torch
        backend computes on the config's device).
        """
        d, g = [], []
        for search, test, ts in zip(self.searches, self.test_sets, self.train_sets):
            nb = search.query(test)
            d.append(nb.d1)
            g.append(ts.groups[nb.index])
        return np.stack(d), np.stack(g)

    def null_draws(self, epoch: int, n: int | None = None) -> np.ndarray:
        """(R, n, d) fresh draws from each repeat's data-generating distribution (a perfect generator); for a real
        dataset its held-out null part (the same points at every epoch; n is then config.n_null_points)."""
        n = self.config.n_null_points if n is None else n
        return np.stack(
            [
                sample_data_distribution(self.config, ts, n, numpy_rng(self.config.seed, r, Stream.NULL, epoch))
                for r, ts in zip(self.repeats, self.train_sets)
            ]
        )
