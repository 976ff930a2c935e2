"""What memnb.Monitor accepts: points, group labels, criteria and thresholds, checked before anything is written.

Each check raises ValueError naming the argument, the value and what is allowed (memnb.core.validate).
"""

from __future__ import annotations

import hashlib
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.config import NEIGHBOR_AUTO_MAX_DIM, NEIGHBOR_BACKENDS, THRESHOLD_GRID, ExperimentConfig
from ..core.registry import CRITERIA
from ..core.validate import fail
from ..core.vocabulary import GROUPS

__all__ = [
    "check_arguments",
    "Given",
    "as_numpy",
    "points",
    "group_codes",
    "own_thresholds",
    "threshold_grid",
    "data_sha256",
    "describe",
    "check_observation",
    "check_epoch",
    "MAX_EPOCH",
]

MAX_EPOCH = 10**12  # epochs (or steps) are counted in int64 inside the epoch file

_DEFAULTS = {f: ExperimentConfig.__dataclass_fields__[f].default for f in ("ratio", "train_ratio", "relative_alpha")}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
POINT_LIMIT = 1e15  # largest |coordinate|: 3072-D squared distances of 1e15 stay below float32's 3.4e38


def describe(a: Any) -> str:
    shape = getattr(a, "shape", None)
    return f"an array of shape {tuple(shape)}" if shape is not None else f"a {type(a).__name__}"


def as_numpy(x: Any, name: str) -> np.ndarray:
    """`x` (numpy, torch on any device, or nested lists) as a numpy array; ValueError naming `name` otherwise."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor (bfloat16 has no numpy dtype)
        t = x.detach().cpu()
        x = t.float().numpy() if t.dtype.is_floating_point and t.element_size() < 4 else t.numpy()
    try:
        a = np.asarray(x)
    except Exception as e:
        raise ValueError(f"{name} ({type(x).__name__}) is not an array ({e}); allowed: numpy or torch arrays") from None
    return a


def points(x: Any, name: str, dim: int | None = None) -> np.ndarray:
    """(R, n, d) float32 or float64 points from (n, d) or (R, n, d) `x`, checked: real, finite, dimension `dim`."""
    a = as_numpy(x, name)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        fail(name, describe(a) + f" of {a.dtype}", "real numbers (float or int arrays)")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] == 0 or a.shape[2] == 0:
        fail(
            name,
            describe(a if a.ndim != 3 else a[0]),
            "(n, d) or (R, n, d) points with n, d >= 1 (flatten images first: x.reshape(len(x), -1))",
        )
    if dim is not None and a.shape[2] != dim:
        fail(f"{name}'s dimension", a.shape[2], f"{dim}, the training points' d")
    # the extremes first (no array-sized temporaries: a CIFAR-sized set is 600 MB); a NaN or inf makes them so
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        r, i, j = next((r, *(int(v[0]) for v in np.nonzero(~np.isfinite(a[r])))) for r in range(len(a))
                       if not np.isfinite(a[r]).all())  # fmt: skip
        fail(name, describe(a), f"finite numbers (repeat {r}, point {i}, coordinate {j} is {a[r, i, j]})")
    big = max(-lo, hi)
    if big > POINT_LIMIT:  # squared distances of such points overflow the search's float32 (FAISS) to inf
        fail(name, f"values up to {big:g}", f"|x| <= {POINT_LIMIT:g} (squared distances must stay finite): rescale")
    # float32 stays float32 (a large image set need not double in data.npz); anything else is float64. The search
    # itself always computes in float64 (memnb.metric.neighbors).
    return a if a.dtype == np.float32 else a.astype(np.float64, copy=False)


def group_codes(groups: Any, labels: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """(R, N) int64 codes and the labels they index, from codes or label strings; ValueError for an unknown one."""
    a = as_numpy(groups, "groups")
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        fail("groups", describe(a), "(N,) or (R, N) group codes or labels, one per training point")
    if labels is not None:
        if isinstance(labels, str) or not all(isinstance(g, str) and g for g in labels) or not len(labels):
            fail("labels", labels, "a non-empty list of group names (strings)")
        if len(set(labels)) != len(labels) or "all" in labels:
            fail("labels", labels, "distinct names, none of them 'all' (the tables' name for every point)")
        labels = tuple(labels)
    if a.dtype.kind in "USO":  # label strings
        values = a.astype(str)
        present = list(dict.fromkeys(values.reshape(-1).tolist()))
        if labels is None:
            if "all" in present:
                fail("groups", "all", "any label but 'all' (the tables' name for every point)")
            # memnb's own names keep memnb's codes (so its figures and verdict read them as its groups)
            labels = GROUPS if set(present) <= set(GROUPS) else tuple(present)
        unknown = [g for g in present if g not in labels]
        if unknown:
            fail("groups", unknown[0], f"one of the labels {list(labels)}")
        uniq, inverse = np.unique(values, return_inverse=True)
        code_of = np.array([labels.index(g) for g in uniq.tolist()], np.int64)
        return code_of[inverse].reshape(values.shape), labels
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            fail("groups", describe(a) + f" of {a.dtype}", "integer group codes or label strings")
    labels = GROUPS if labels is None else labels
    bad = (a < 0) | (a >= len(labels))
    if bad.any():
        fail("groups", int(a[bad][0]), f"a code 0..{len(labels) - 1} of the labels {list(labels)} (or pass labels=)")
    return a.astype(np.int64), labels


def own_thresholds(criteria: Mapping[str, float] | None) -> dict[str, float]:
    """{config field: value} of each criterion's own threshold k (paper: ratio, train_only: train_ratio,
    relative: relative_alpha = 1/k), from {criterion: k}."""
    out = dict(_DEFAULTS)
    if criteria is None:
        return out
    if not isinstance(criteria, Mapping):
        fail("criteria", criteria, f"a mapping criterion -> its threshold k >= 1, criteria {list(CRITERIA.names())}")
    for name, k in criteria.items():
        if name not in CRITERIA:
            fail("criteria", name, f"a registered criterion: {' | '.join(CRITERIA.names())}")
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not (np.isfinite(k) and k >= 1):
            fail(f"criteria[{name!r}]", k, "a finite threshold k >= 1")
        rec = CRITERIA.get(name)
        out[rec.threshold_field] = 1.0 / float(k) if rec.inverse else float(k)
    return out


def threshold_grid(thresholds: Sequence[float] | None) -> tuple[float, ...]:
    if thresholds is None:
        return THRESHOLD_GRID
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence) or not len(thresholds):
        fail("thresholds", thresholds, "a non-empty list of finite thresholds k >= 1")
    for k in thresholds:
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not (np.isfinite(k) and k >= 1):
            fail("thresholds", list(thresholds), "a non-empty list of finite thresholds k >= 1")
    return tuple(sorted({float(k) for k in thresholds}))


def data_sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a.reshape(-1)).cast("B"))  # the buffer itself: no bytes copy of a large array
    return h.hexdigest()


@dataclass(frozen=True)
class Given:
    """memnb.Monitor's arguments, checked: arrays (R or 1, n, d), codes (R or 1, N), the MonitorConfig's fields."""

    train: np.ndarray
    codes: np.ndarray
    test: np.ndarray
    null_points: np.ndarray | None
    null_fn: Callable | None
    labels: tuple[str, ...]
    n_repeats: int | None  # None: read from the first samples
    dim: int
    name: str
    template: dict


def check_arguments(
    train, groups, test, name, null, criteria, thresholds, labels, model, dataset, image_shape, neighbors, repeats
) -> Given:
    """Every argument of memnb.Monitor checked, before anything is written (ValueError naming the argument)."""
    train = points(train, "train")
    dim = d = train.shape[2]
    test = points(test, "test", d)
    codes, labels = group_codes(groups, labels)
    if codes.shape[-1] != train.shape[1]:
        fail("groups", describe(codes), f"one group per training point ({train.shape[1]} of them)")
    per_repeat = [a.shape[0] for a in (train, codes, test) if a.shape[0] > 1]
    if repeats is not None:
        if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
            fail("repeats", repeats, "a positive integer (the number of seeds observed at once)")
        per_repeat.append(int(repeats))
    if len(set(per_repeat)) > 1:
        fail("repeats", per_repeat, "one number of repeats R for train, groups, test and repeats= (or 1)")
    n_repeats = per_repeat[0] if per_repeat else None  # None: read from the first samples
    null_fn: Callable | None = None
    null_points = None
    if callable(null):
        null_fn, null_kind = null, "per_epoch"
    elif null is not None:
        null_points, null_kind = points(null, "null", d), "fixed"
        if null_points.shape[0] > 1:
            if n_repeats not in (None, null_points.shape[0]):
                fail("null", describe(null_points), f"(n0, d) or ({n_repeats}, n0, d) points")
            n_repeats = null_points.shape[0]
    else:
        null_kind = "none"
    if neighbors == "auto":
        neighbors = "kdtree" if d <= NEIGHBOR_AUTO_MAX_DIM else "faiss"
    if neighbors not in NEIGHBOR_BACKENDS:
        fail("neighbors", neighbors, " | ".join(("auto", *NEIGHBOR_BACKENDS)))
    for arg, v in (("model", model), ("dataset", dataset)):
        if not isinstance(v, str) or not v:
            fail(arg, v, "a non-empty name")
    if image_shape is not None:
        shape = tuple(image_shape) if isinstance(image_shape, Sequence) else ()
        if not shape or not all(isinstance(s, numbers.Integral) and s > 0 for s in shape) or np.prod(shape) != d:
            fail("image_shape", image_shape, f"positive sizes (C, H, W) or (H, W) whose product is d = {d}")
        image_shape = tuple(int(s) for s in shape)
    own = own_thresholds(criteria)
    grid = threshold_grid(thresholds)
    sha = data_sha256(train, codes, test, *(() if null_points is None else (null_points,)))
    if name is None:
        name = f"monitor-{re.sub(r'[^A-Za-z0-9._+-]', '-', model)}-{sha[:10]}"
    if not isinstance(name, str) or not _NAME.match(name):
        fail("name", name, "a folder name: letters, digits and . _ + - (not starting with . _ + -)")
    template = dict(
        name=name,
        model=model,
        dataset=dataset,
        dim=d,
        n_train=train.shape[1],
        n_test_points=test.shape[1],
        group_names=labels,
        group_counts=tuple(np.bincount(codes[0], minlength=len(labels)).tolist()),
        data_sha256=sha,
        null=null_kind,
        n_null_points=0 if null_points is None else null_points.shape[1],
        neighbors=neighbors,
        thresholds=grid,
        image_shape=image_shape,
        **own,
    )
    return Given(train, codes, test, null_points, null_fn, labels, n_repeats, dim, name, template)


def config_from_files(path, template: dict, given: dict, per_epoch_null: bool):
    """The MonitorConfig of run `path` from its stored files, when its config.json is lost: data.npz must hold the
    `given` arrays (so the run is this data's) and an epoch file tells R and n (and n0 of a per-epoch null); else
    None."""
    from ..core.monitor_config import MonitorConfig
    from ..core.storage import CorruptRunError
    from .store import read_data, read_epoch, stored_epochs

    try:
        data = read_data(path)
        if set(given) - set(data) or not all(np.array_equal(data[k], v) for k, v in given.items()):
            return None
        arrays = read_epoch(path, stored_epochs(path)[0], keys=("d1", "null_d1"))
    except (CorruptRunError, IndexError):
        return None
    R, n = arrays["d1"].shape[:2]  # d1: every sample's, whatever store_samples kept
    fields = dict(template)
    if per_epoch_null and "null_d1" in arrays:
        fields["n_null_points"] = arrays["null_d1"].shape[1]
    return MonitorConfig(n_repeats=R, n_generate_points=n, **fields)


def check_epoch(epoch) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or not 0 <= epoch <= MAX_EPOCH:
        fail("epoch", epoch, f"an integer 0..{MAX_EPOCH} (training epochs, or steps, completed)")
    return int(epoch)


def check_loss(loss) -> np.ndarray | None:
    """(k,) float64 losses of `loss` (a number or one per repeat), None when not given."""
    if loss is None:
        return None
    raw = as_numpy(loss, "loss")
    if raw.dtype.kind not in "biuf" or raw.dtype.kind == "b":
        fail("loss", loss, "a finite number or one finite number per repeat")
    return np.asarray(raw, np.float64).reshape(-1)


def check_observation(samples, null, loss_values, loss, dim: int, n_repeats: int | None, config):
    """One observation's arrays checked before anything is written: samples (R, n, d), null (R, n0, d) or None,
    and the (R,) loss row (NaN where none was given; rounded through float32, as run_experiment stores it)."""
    from .checks import SAMPLE_LIMIT

    x = points(samples, "samples", dim)
    R = n_repeats if n_repeats is not None else x.shape[0]
    if x.shape[0] != R:
        fail("samples", describe(x), f"(n, d) or ({R}, n, d): {R} repeat(s), as the run's data")
    if config is not None and config.n_generate_points and x.shape[1] != config.n_generate_points:
        fail("samples", describe(x), f"{config.n_generate_points} samples per repeat (the first epoch's n)")
    magnitude = max(-float(x.min()), float(x.max()))
    if magnitude > SAMPLE_LIMIT:
        fail("samples", f"values up to {magnitude:g}", f"|x| <= {SAMPLE_LIMIT:g} (stored as float16): rescale")
    if null is not None:
        if null.shape[0] not in (1, R):
            fail("null(epoch)", describe(null), f"(n0, d) or ({R}, n0, d) points")
        null = np.broadcast_to(null, (R, *null.shape[1:]))
        if config is not None and config.n_null_points and null.shape[1] != config.n_null_points:
            fail("null(epoch)", describe(null), f"{config.n_null_points} points per repeat, as before")
    return x, null, loss_row(loss_values, loss, R)


def loss_row(loss_values: np.ndarray | None, loss, R: int) -> np.ndarray:
    """(R,) the loss of one observation (NaN where none was given), checked: one number or one per repeat;
    rounded through float32, as run_experiment stores it."""
    if loss_values is not None and (loss_values.size not in (1, R) or not np.all(np.isfinite(loss_values))):
        fail("loss", loss, f"a finite number or {R} finite numbers (one per repeat)")
    row = np.full(R, np.nan) if loss_values is None else np.broadcast_to(loss_values, (R,))
    return row.astype(np.float32).astype(np.float64)
