"""A feature space for memnb.Monitor: ``features=callable`` maps points to the embedding they are compared in.

Images are often compared in an embedding rather than in pixels: SSCD (Pizzi et al. 2022, the copy-detection
descriptor of Somepalli et al. 2023's diffusion-copying study), DINOv2 (Oquab et al. 2023) or Inception-v3's
pool features (the FID network; Carlini et al. 2023 and Stein et al. 2023 compare against them). memnb downloads
none of them: the user passes the callable (a torch module in eval mode, a fixed projection, anything).

The same callable is applied to the training, test and null points and to every sample, in batches of
`FEATURE_BATCH` points (numpy in; numpy or torch out, on any device), under ``torch.no_grad()``. It must be
deterministic: the training points' features are hashed into the run's config (``features_sha256``), and a
Monitor reopened with an embedding whose features differ is refused. Exact copies are found by identity in
the feature space (memnb.metric.rows): a deterministic embedding maps a copy to its original's features; one
whose output depends on the batch it is computed in may not (its copies are then found by distance only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.validate import fail
from .monitor_inputs import as_numpy, data_sha256, describe, points

__all__ = ["FEATURE_BATCH", "embed", "feature_name", "Embedding"]

FEATURE_BATCH = 1024  # points per call of the user's features(x)


def feature_name(features: Callable | None, name: str | None) -> str | None:
    """The name stored for `features` (the given `name`, else the callable's qualified name; None: no embedding)."""
    if features is None:
        if name is not None:
            fail("features_name", name, "None when no features= callable is given")
        return None
    if not callable(features):
        fail("features", features, "a callable mapping (n, d) points to (n, f) features, or None")
    if name is None:
        name = getattr(features, "__qualname__", None) or type(features).__name__
    if not isinstance(name, str) or not name:
        fail("features_name", name, "a non-empty name for the embedding")
    return name


def embed(features: Callable, x: np.ndarray, what: str, dim: int | None = None) -> np.ndarray:
    """(R, n, f) features of points `x` (R, n, d), `FEATURE_BATCH` points per call; ValueError naming `what` when
    the callable returns anything but (batch, f) finite numbers (of dimension `dim` when given)."""
    import torch

    out = None
    R, n = x.shape[:2]
    with torch.no_grad():
        for r in range(R):
            for lo in range(0, n, FEATURE_BATCH):
                chunk = x[r, lo : lo + FEATURE_BATCH]
                f = as_numpy(features(chunk), f"features({what})")
                if f.ndim != 2 or len(f) != len(chunk):
                    fail(f"features({what})", describe(f), f"({len(chunk)}, f): one feature vector per point")
                f = points(f, f"features({what})", dim)[0]
                if out is None:
                    dim = f.shape[1]
                    out = np.empty((R, n, dim), f.dtype)
                out[r, lo : lo + len(f)] = f
    return out


class Embedding:
    """A Monitor's feature space: `of(x, what)` the features of points x (R, n, d) (x itself without one); `dim`
    the features' dimension (set by the training points' features); `sha256` of the training points' features."""

    def __init__(self, features: Callable | None, name: str | None):
        self.fn, self.name = features, feature_name(features, name)
        self.dim: int | None = None
        self.sha256: str | None = None

    def of(self, x: np.ndarray, what: str) -> np.ndarray:
        if self.fn is None:
            return x
        return embed(self.fn, x, what, self.dim)

    def of_training(self, train: np.ndarray) -> np.ndarray:
        """The training points' features (or the points), recording their dimension and hash."""
        if self.fn is None:
            return train
        f = embed(self.fn, train, "train")
        self.dim, self.sha256 = f.shape[2], data_sha256(f)
        return f

    def config_fields(self) -> dict:
        """The MonitorConfig fields describing this embedding (empty without one)."""
        if self.fn is None:
            return {}
        return {"features": self.name, "feature_dim": self.dim, "features_sha256": self.sha256}
