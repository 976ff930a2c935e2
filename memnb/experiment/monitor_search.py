"""memnb.Monitor's searches: one exact neighbour search per distinct (training, test) pair of its repeats, built
once per Monitor, and the fixed test-to-train distances of the Z_U test through the same searches."""

from __future__ import annotations

import sys

import numpy as np

from ..core.monitor_config import MonitorConfig
from ..metric.neighbors import NEIGHBOUR_FIELDS, RELATIVE_NEIGHBOURS, NeighbourSearch
from .tabulate import group_sizes, table_thresholds

__all__ = ["Searches", "CHUNK", "SEARCH_MEMORY", "progress_bar"]

CHUNK = 4096  # at most this many points per query: the progress bar's step
SEARCH_MEMORY = 256 * 2**20  # bytes: the default bound on one chunk's working memory (search_memory=)


class Searches:
    """train (R or 1, N, d), test (R or 1, m, d), codes (R or 1, N); groups, locations (R, N); test_d, test_group
    (R, m) (distances in data units, group codes); thresholds (K,); sizes (R, group+all)."""

    def __init__(
        self,
        train: np.ndarray,
        test: np.ndarray,
        codes: np.ndarray,
        config: MonitorConfig,
        device="cpu",
        memory: int = SEARCH_MEMORY,
    ):
        R, backend = config.n_repeats, config.neighbors
        self.backend = backend
        if backend == "torch":
            from ..metric.neighbors import _torch_device

            device = _torch_device(device)
        else:
            device = "cpu"

        def of(a: np.ndarray, r: int) -> np.ndarray:  # repeat r's rows of a (R, ...) or shared (1, ...) array
            return a[r if len(a) > 1 else 0]

        self.groups = np.broadcast_to(codes, (R, codes.shape[1]))
        shared = len(train) == 1 and len(test) == 1
        first = NeighbourSearch(of(train, 0), of(test, 0), backend, device)
        self.searches = [first if shared or r == 0 else NeighbourSearch(of(train, r), of(test, r), backend, device)
                         for r in range(R)]  # fmt: skip
        self.device = device
        self.chunk = chunk_size(first, train.shape[-1], memory)
        self.locations = np.stack([s.locations.location for s in self.searches])
        found = {}  # id(search) -> the test points' nearest training location: once per distinct search
        for r, search in enumerate(self.searches):
            if id(search) not in found:
                found[id(search)] = search.nearest_training(of(test, r))
        self.test_d = np.stack([found[id(s)][0] for s in self.searches])
        self.test_group = np.stack([self.groups[r][found[id(s)][1]] for r, s in enumerate(self.searches)])
        self.thresholds = table_thresholds(config)
        self.sizes = group_sizes(self.groups, config.group_names)

    def search(self, x: np.ndarray, prefix: str = "", bar=None) -> dict[str, np.ndarray]:
        """Neighbour arrays (R, n) of points x (R, n, d), their names prefixed (``null_`` for the null's).

        Queries go in chunks of CHUNK points (each row's neighbours do not depend on the others'), so that `bar`
        (a tqdm bar, optional) advances by the points searched. x may be a torch tensor on the torch search's
        device (`on_device`): it is searched there."""
        out = {f: [] for f in NEIGHBOUR_FIELDS}
        for s, q in zip(self.searches, x):
            parts = []
            for lo in range(0, len(q), self.chunk):
                parts.append(s.query(q[lo : lo + self.chunk]))
                if bar is not None:
                    bar.update(len(parts[-1].d1))
            for f in NEIGHBOUR_FIELDS:
                out[f].append(np.concatenate([getattr(nb, f) for nb in parts]))
        return {prefix + f: np.stack(v) for f, v in out.items()}

    def on_device(self, samples):
        """`samples` as an (R, n, d) torch tensor to search where it lies (the torch search, a tensor on its device:
        no copy to the CPU and back), else None."""
        if self.backend != "torch" or not hasattr(samples, "detach") or samples.device != self.device:
            return None
        return samples.detach()[None] if samples.dim() == 2 else samples.detach()


def chunk_size(search: NeighbourSearch, d: int, memory: int) -> int:
    """Query points per chunk so that one chunk's working memory stays within `memory` bytes: per query point,
    its float64 copy (d), the k neighbours' distances and indices, and, for the torch search, its row of the
    (queries x locations) distance matrix; between 1 and CHUNK."""
    k = RELATIVE_NEIGHBOURS
    per_point = 8 * (d + 4 * k + (len(search.locations.points) if search.backend == "torch" else 0))
    return int(min(CHUNK, max(1, memory // per_point)))


PROGRESS_AFTER_S = 3.0  # an observation shows a progress bar once it has taken this long


def progress_bar(epoch: int, points: int, enabled: bool):
    """A tqdm bar (terminal or notebook) of the points an observation searches, shown once it takes over
    PROGRESS_AFTER_S seconds; `enabled` False: none."""
    from tqdm.auto import tqdm

    return tqdm(total=points, desc=f"observe {epoch}", unit="pt", disable=not enabled, delay=PROGRESS_AFTER_S)


def say_once(seconds: float, searches: Searches, config: MonitorConfig) -> None:
    """One line (stderr, through tqdm so that a bar is not broken) naming the one-time set-up and its cost."""
    from tqdm.auto import tqdm

    n_loc = len(searches.searches[0].locations.points)
    distinct = len({id(s) for s in searches.searches})
    tqdm.write(
        f"memnb.Monitor: search set up once in {seconds:.1f} s ({config.n_train} training points hashed, "
        f"{n_loc} distinct locations, {config.neighbors} index over them and the {config.n_test_points} test points, "
        f"x{distinct}); every observation of this Monitor reuses it",
        file=sys.stderr,
    )
