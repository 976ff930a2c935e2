"""memnb.Monitor's searches: one exact neighbour search per distinct (training, test) pair of its repeats, built
once per Monitor, and the fixed test-to-train distances of the Z_U test through the same searches."""

from __future__ import annotations

import numpy as np

from ..core.monitor_config import MonitorConfig
from ..metric.neighbors import NEIGHBOUR_FIELDS, NeighbourSearch
from .tabulate import group_sizes, table_thresholds

__all__ = ["Searches", "CHUNK", "progress_bar"]

CHUNK = 4096  # points per query: the progress bar's step (and a bound on the search's working memory)


class Searches:
    """train (R or 1, N, d), test (R or 1, m, d), codes (R or 1, N); groups, locations (R, N); test_d, test_group
    (R, m) (distances in data units, group codes); thresholds (K,); sizes (R, group+all)."""

    def __init__(self, train: np.ndarray, test: np.ndarray, codes: np.ndarray, config: MonitorConfig):
        R, backend = config.n_repeats, config.neighbors

        def of(a: np.ndarray, r: int) -> np.ndarray:  # repeat r's rows of a (R, ...) or shared (1, ...) array
            return a[r if len(a) > 1 else 0]

        self.groups = np.broadcast_to(codes, (R, codes.shape[1]))
        shared = len(train) == 1 and len(test) == 1
        first = NeighbourSearch(of(train, 0), of(test, 0), backend)
        self.searches = [first if shared or r == 0 else NeighbourSearch(of(train, r), of(test, r), backend)
                         for r in range(R)]  # fmt: skip
        self.locations = np.stack([s.locations.location for s in self.searches])
        found = {}  # id(search) -> its neighbours of the test points: once per distinct search
        for r, search in enumerate(self.searches):
            if id(search) not in found:
                found[id(search)] = search.query(of(test, r))
        self.test_d = np.stack([found[id(s)].d1 for s in self.searches])
        self.test_group = np.stack([self.groups[r][found[id(s)].index] for r, s in enumerate(self.searches)])
        self.thresholds = table_thresholds(config)
        self.sizes = group_sizes(self.groups, config.group_names)

    def search(self, x: np.ndarray, prefix: str = "", bar=None) -> dict[str, np.ndarray]:
        """Neighbour arrays (R, n) of points x (R, n, d), their names prefixed (``null_`` for the null's).

        Queries go in chunks of CHUNK points (each row's neighbours do not depend on the others'), so that `bar`
        (a tqdm bar, optional) advances by the points searched."""
        out = {f: [] for f in NEIGHBOUR_FIELDS}
        for s, q in zip(self.searches, x):
            parts = []
            for lo in range(0, len(q), CHUNK):
                parts.append(s.query(q[lo : lo + CHUNK]))
                if bar is not None:
                    bar.update(len(parts[-1].d1))
            for f in NEIGHBOUR_FIELDS:
                out[f].append(np.concatenate([getattr(nb, f) for nb in parts]))
        return {prefix + f: np.stack(v) for f, v in out.items()}


PROGRESS_AFTER_S = 3.0  # an observation shows a progress bar once it has taken this long


def progress_bar(epoch: int, points: int, enabled: bool):
    """A tqdm bar (terminal or notebook) of the points an observation searches, shown once it takes over
    PROGRESS_AFTER_S seconds; `enabled` False: none."""
    from tqdm.auto import tqdm

    return tqdm(total=points, desc=f"observe {epoch}", unit="pt", disable=not enabled, delay=PROGRESS_AFTER_S)
