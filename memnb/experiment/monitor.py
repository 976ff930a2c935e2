"""Monitor: memnb's per-epoch protocol for a model memnb does not train (a diffusers U-Net, an EDM, anything that samples).

    monitor = memnb.Monitor(train, groups, test, null=held_out, root="outputs/runs", name="my-unet")
    for epoch in range(epochs):
        if epoch % 5 == 0:
            monitor.observe(epoch, lambda: pipeline.sample(len(train)))   # or an (n, d) / (R, n, d) array
        train_one_epoch()

Each `observe` searches the samples' neighbours among the training and test points (and the null points'),
tabulates every criterion at every threshold, computes Meehan et al.'s Z_U, and writes the epoch, the tables and
the manifest, each file atomically: the run directory is the format `run_experiment` writes (see
memnb.experiment.results), with a `MonitorConfig` in ``config.json`` in place of an ExperimentConfig, so
`memnb.Results`, the figure views, the explorer, the statistics and the verdict read it unchanged.

Arrays: ``train`` (N, d) or, one training set per repeat (seed), (R, N, d); ``groups`` (N,) or (R, N): group
codes into ``labels`` or the labels themselves (memnb's inlier / outlier / duplicate, or any names of the
user's); ``test`` (m, d) or (R, m, d): held-out points of the training distribution; ``null`` (n0, d) or
(R, n0, d), or a callable of the epoch returning them (fresh draws per epoch): what a perfect generator would
produce, held out from the training data and never seen by the model (None: no null baseline; the curves
are then drawn without one, and say so). Samples: (n, d) or (R, n, d), numpy or torch on any device. Points
are vectors: flatten images first (``x.reshape(len(x), -1)``).

Bad input (a shape, NaN, a dimension or repeat count that does not match, an unknown label, a bad threshold)
raises ValueError naming the argument, the value and what is allowed, before anything is written. An epoch
already stored is not observed again (its sample function is not called) unless ``overwrite=True``. A process
killed while observing loses at most that epoch: opening the monitor again keeps every complete epoch file and
rebuilds the tables and the manifest.
"""

from __future__ import annotations

import hashlib
import numbers
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..core.config import NEIGHBOR_AUTO_MAX_DIM, NEIGHBOR_BACKENDS, THRESHOLD_GRID, ExperimentConfig
from ..core.monitor_config import MonitorConfig
from ..core.registry import CRITERIA
from ..core.storage import (
    CorruptRunError,
    check_record,
    file_record,
    stale_temporaries,
    write_json,
    write_npz,
    write_parquet,
)
from ..core.vocabulary import GROUPS
from ..metric.neighbors import NEIGHBOUR_FIELDS, NeighbourSearch
from .results import TABLE_COLUMNS, ZU_COLUMNS, Results, epoch_file, load_npz, read_config, read_manifest
from .runner import SAMPLE_LIMIT, default_root, run_lock
from .tabulate import (
    data_copying,
    group_sizes,
    summarize,
    summary_rows,
    table_thresholds,
    zu_rows,
)

__all__ = ["Monitor", "MONITOR_ARRAYS"]

MONITOR_ARRAYS = ("samples", "d1", "d2", "d_test", "index", "summary", "zu", "zu_n")  # every epoch file holds these
_DEFAULTS = {f: ExperimentConfig.__dataclass_fields__[f].default for f in ("ratio", "train_ratio", "relative_alpha")}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _fail(name: str, value: Any, allowed: str) -> None:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    raise ValueError(f"{name} = {text} is invalid; allowed: {allowed}")


def _describe(a: Any) -> str:
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
        _fail(name, _describe(a) + f" of {a.dtype}", "real numbers (float or int arrays)")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] == 0 or a.shape[2] == 0:
        _fail(
            name,
            _describe(a if a.ndim != 3 else a[0]),
            "(n, d) or (R, n, d) points with n, d >= 1 (flatten images first: x.reshape(len(x), -1))",
        )
    if dim is not None and a.shape[2] != dim:
        _fail(f"{name}'s dimension", a.shape[2], f"{dim}, the training points' d")
    bad = ~np.isfinite(a)
    if bad.any():
        r, i, j = (int(v[0]) for v in np.nonzero(bad))
        _fail(name, _describe(a), f"finite numbers (repeat {r}, point {i}, coordinate {j} is {a[r, i, j]})")
    # float32 stays float32 (a large image set need not double in data.npz); anything else is float64. The search
    # itself always computes in float64 (memnb.metric.neighbors).
    return a if a.dtype == np.float32 else a.astype(np.float64, copy=False)


def group_codes(groups: Any, labels: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """(R, N) int64 codes and the labels they index, from codes or label strings; ValueError for an unknown one."""
    a = as_numpy(groups, "groups")
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        _fail("groups", _describe(a), "(N,) or (R, N) group codes or labels, one per training point")
    if labels is not None:
        if isinstance(labels, str) or not all(isinstance(g, str) and g for g in labels) or not len(labels):
            _fail("labels", labels, "a non-empty list of group names (strings)")
        if len(set(labels)) != len(labels) or "all" in labels:
            _fail("labels", labels, "distinct names, none of them 'all' (the tables' name for every point)")
        labels = tuple(labels)
    if a.dtype.kind in "USO":  # label strings
        values = a.astype(str)
        present = list(dict.fromkeys(values.reshape(-1).tolist()))
        if labels is None:
            if "all" in present:
                _fail("groups", "all", "any label but 'all' (the tables' name for every point)")
            # memnb's own names keep memnb's codes (so its figures and verdict read them as its groups)
            labels = GROUPS if set(present) <= set(GROUPS) else tuple(present)
        unknown = [g for g in present if g not in labels]
        if unknown:
            _fail("groups", unknown[0], f"one of the labels {list(labels)}")
        uniq, inverse = np.unique(values, return_inverse=True)
        code_of = np.array([labels.index(g) for g in uniq.tolist()], np.int64)
        return code_of[inverse].reshape(values.shape), labels
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            _fail("groups", _describe(a) + f" of {a.dtype}", "integer group codes or label strings")
    labels = GROUPS if labels is None else labels
    bad = (a < 0) | (a >= len(labels))
    if bad.any():
        _fail("groups", int(a[bad][0]), f"a code 0..{len(labels) - 1} of the labels {list(labels)} (or pass labels=)")
    return a.astype(np.int64), labels


def _own_thresholds(criteria: Mapping[str, float] | None) -> dict[str, float]:
    """{config field: value} of each criterion's own threshold k (paper: ratio, train_only: train_ratio,
    relative: relative_alpha = 1/k), from {criterion: k}."""
    out = dict(_DEFAULTS)
    if criteria is None:
        return out
    if not isinstance(criteria, Mapping):
        _fail("criteria", criteria, f"a mapping criterion -> its threshold k >= 1, criteria {list(CRITERIA.names())}")
    for name, k in criteria.items():
        if name not in CRITERIA:
            _fail("criteria", name, f"a registered criterion: {' | '.join(CRITERIA.names())}")
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not (np.isfinite(k) and k >= 1):
            _fail(f"criteria[{name!r}]", k, "a finite threshold k >= 1")
        rec = CRITERIA.get(name)
        out[rec.threshold_field] = 1.0 / float(k) if rec.inverse else float(k)
    return out


def _grid(thresholds: Sequence[float] | None) -> tuple[float, ...]:
    if thresholds is None:
        return THRESHOLD_GRID
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence) or not len(thresholds):
        _fail("thresholds", thresholds, "a non-empty list of finite thresholds k >= 1")
    for k in thresholds:
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not (np.isfinite(k) and k >= 1):
            _fail("thresholds", list(thresholds), "a non-empty list of finite thresholds k >= 1")
    return tuple(sorted({float(k) for k in thresholds}))


def _sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Monitor:
    """Per-epoch memorization of any model's samples, stored as a memnb run (see the module docstring).

    train, groups, test, null: the arrays of the module docstring; root: the runs folder (default $MEMNB_RUNS
    or outputs/runs); name: the run's folder (default ``monitor-<model>-<data hash>``); criteria: {criterion:
    its own threshold k} (defaults: memnb's, paper 1.5, train_only 3, relative 10 = 1/alpha); thresholds: the
    grid the table is tabulated at (default memnb's); labels: the group names when `groups` holds codes;
    model, dataset: names for the figures (a registered dataset's name, e.g. "digits", also gives the image
    views its image shape; else pass `image_shape`); neighbors: kdtree | faiss | torch | auto (k-d tree for
    d <= 3, FAISS above); repeats: R when `train` is one (N, d) set shared by R seeds (default: read from the
    first samples).
    """

    def __init__(
        self,
        train,
        groups,
        test,
        root: Path | str | None = None,
        name: str | None = None,
        null=None,
        criteria: Mapping[str, float] | None = None,
        thresholds: Sequence[float] | None = None,
        *,
        labels: Sequence[str] | None = None,
        model: str = "model",
        dataset: str = "custom",
        image_shape: Sequence[int] | None = None,
        neighbors: str = "auto",
        repeats: int | None = None,
    ):
        train = points(train, "train")
        self.dim = d = train.shape[2]
        test = points(test, "test", d)
        codes, self.labels = group_codes(groups, labels)
        if codes.shape[-1] != train.shape[1]:
            _fail("groups", _describe(codes), f"one group per training point ({train.shape[1]} of them)")
        per_repeat = [a.shape[0] for a in (train, codes, test) if a.shape[0] > 1]
        if repeats is not None:
            if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
                _fail("repeats", repeats, "a positive integer (the number of seeds observed at once)")
            per_repeat.append(int(repeats))
        if len(set(per_repeat)) > 1:
            _fail("repeats", per_repeat, "one number of repeats R for train, groups, test and repeats= (or 1)")
        self.n_repeats = per_repeat[0] if per_repeat else None  # None: read from the first samples
        self.null_fn: Callable | None = None
        null_points = None
        if callable(null):
            self.null_fn, null_kind = null, "per_epoch"
        elif null is not None:
            null_points, null_kind = points(null, "null", d), "fixed"
            if null_points.shape[0] > 1:
                if self.n_repeats not in (None, null_points.shape[0]):
                    _fail("null", _describe(null_points), f"(n0, d) or ({self.n_repeats}, n0, d) points")
                self.n_repeats = null_points.shape[0]
        else:
            null_kind = "none"
        if neighbors == "auto":
            neighbors = "kdtree" if d <= NEIGHBOR_AUTO_MAX_DIM else "faiss"
        if neighbors not in NEIGHBOR_BACKENDS:
            _fail("neighbors", neighbors, " | ".join(("auto", *NEIGHBOR_BACKENDS)))
        for arg, v in (("model", model), ("dataset", dataset)):
            if not isinstance(v, str) or not v:
                _fail(arg, v, "a non-empty name")
        if image_shape is not None:
            shape = tuple(image_shape) if isinstance(image_shape, Sequence) else ()
            if not shape or not all(isinstance(s, numbers.Integral) and s > 0 for s in shape) or np.prod(shape) != d:
                _fail("image_shape", image_shape, f"positive sizes (C, H, W) or (H, W) whose product is d = {d}")
            image_shape = tuple(int(s) for s in shape)
        own = _own_thresholds(criteria)
        grid = _grid(thresholds)
        sha = _sha256(train, codes, test, *(() if null_points is None else (null_points,)))
        if name is None:
            name = f"monitor-{re.sub(r'[^A-Za-z0-9._+-]', '-', model)}-{sha[:10]}"
        if not isinstance(name, str) or not _NAME.match(name):
            _fail("name", name, "a folder name: letters, digits and . _ + - (not starting with . _ + -)")
        self.root = default_root() if root is None else Path(root)
        self.path = self.root / name
        self._train, self._codes, self._test, self._null_points = train, codes, test, null_points
        self._template = dict(
            name=name,
            model=model,
            dataset=dataset,
            dim=d,
            n_train=train.shape[1],
            n_test_points=test.shape[1],
            group_names=self.labels,
            group_counts=tuple(np.bincount(codes[0], minlength=len(self.labels)).tolist()),
            data_sha256=sha,
            null=null_kind,
            n_null_points=0 if null_points is None else null_points.shape[1],
            neighbors=neighbors,
            thresholds=grid,
            image_shape=image_shape,
            **own,
        )
        self.config: MonitorConfig | None = None
        self._searches = None
        self._frames: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = {}
        self._losses: dict[int, np.ndarray] = {}  # epoch -> (R,) loss given to observe (kept in loss.parquet)
        self._observe_s = 0.0  # seconds spent observing, over every session (the manifest's observe_s)
        self._records: dict[str, dict] = {}
        if (self.path / "config.json").exists():
            self._reopen()
        elif self.path.exists() and any(self.path.iterdir()):
            _fail("name", name, f"a new folder or a monitored run's: {self.path} holds files but no config.json")

    # -- the run on disk -------------------------------------------------------------------------
    def _reopen(self) -> None:
        """Check that the stored run is this data's; keep its complete epochs; rebuild tables and manifest if needed."""
        try:
            stored = read_config(self.path)
        except CorruptRunError as e:
            raise ValueError(f"name = {self.path.name!r}: {e}") from None
        if not isinstance(stored, MonitorConfig):
            _fail("name", self.path.name, f"a new folder or a monitored run's ({self.path} is a run of run_experiment)")
        theirs = stored.to_dict()
        diff = {
            k: (theirs.get(k), v)
            for k, v in MonitorConfig(n_repeats=0, n_generate_points=0, **self._template).to_dict().items()
            if k not in ("n_repeats", "n_generate_points", "n_null_points") and theirs.get(k) != v
        }
        if self.n_repeats is not None and stored.n_repeats != self.n_repeats:
            diff["n_repeats"] = (stored.n_repeats, self.n_repeats)
        if diff:
            raise ValueError(
                f"{self.path} holds a monitored run of other data or settings (stored vs given: {diff}); "
                "pass another name= or delete it"
            )
        self.config = stored
        self.n_repeats = stored.n_repeats
        with run_lock(self.root, self.path.name):
            self._recover()

    def _recover(self) -> None:
        stale = stale_temporaries(self.path)
        for tmp in stale:
            tmp.unlink()
        manifest = read_manifest(self.path)
        listed = {n for n in (manifest.get("files") or {}) if n.startswith("epochs/")}
        on_disk = {str(f.relative_to(self.path)) for f in (self.path / "epochs").glob("epoch_*.npz")}
        self._records = dict(manifest.get("files") or {})
        self._observe_s = float(manifest.get("observe_s", 0.0))
        try:
            loss = Results(self.path, verify=False).loss()
        except CorruptRunError:
            loss = pd.DataFrame(columns=["repeat", "epoch", "loss"])
        for e, rows in loss.groupby("epoch"):
            self._losses[int(e)] = rows.sort_values("repeat").loss.to_numpy(np.float64)
        dropped = []
        for name in sorted(on_disk):
            f = self.path / name
            try:
                arrays = load_npz(f, MONITOR_ARRAYS)
                if arrays["samples"].shape[:2] != (self.n_repeats, self.config.n_generate_points):
                    raise CorruptRunError(f"{f} holds samples of shape {arrays['samples'].shape}")
            except CorruptRunError:
                f.unlink()
                dropped.append(name)
                self._records.pop(name, None)
                continue
            if name not in listed or self._records.get(name, {}).get("size") != f.stat().st_size:
                self._records[name] = file_record(f)  # written whole (atomically) before a kill reached the manifest
            self._add_frames(int(Path(name).stem.split("_")[1]), arrays)
        for name in listed - on_disk:
            self._records.pop(name, None)
        self._losses = {e: v for e, v in self._losses.items() if e in self._frames}
        if dropped:
            warnings.warn(f"{self.path}: dropped unreadable epoch files {dropped}; observe them again", stacklevel=3)
        rebuilt = self._repair_files()
        if stale or dropped or rebuilt or listed != on_disk - set(dropped) or not manifest.get("complete"):
            self._write_tables()

    def _repair_files(self) -> list[str]:
        """data.npz rewritten from the given arrays (the stored config says they are the run's) when it is missing,
        truncated or unreadable; the tables marked for rewriting when damaged. Returns what was damaged."""
        damaged = []
        f = self.path / "data.npz"
        rec = self._records.get("data.npz")
        try:
            bad = (rec is not None and check_record(f, rec, checksum=False)) or not f.exists()
            if not bad:
                load_npz(f, ("train_points", "groups", "test_points"))
        except CorruptRunError:
            bad = True
        if bad:
            write_npz(f, self._data_arrays())
            self._records.pop("data.npz", None)
            damaged.append("data.npz")
        for name in ("table.parquet", "zu.parquet", "loss.parquet"):
            rec = self._records.get(name)
            if rec is not None and check_record(self.path / name, rec, checksum=False):
                damaged.append(name)
        if damaged:
            warnings.warn(f"{self.path}: rebuilt {', '.join(damaged)} from the run's other files", stacklevel=4)
        return damaged

    def _start(self, n_repeats: int, n_generate: int) -> None:
        """The first observation fixes R and n: write config.json and data.npz."""
        self.n_repeats = n_repeats
        self.config = MonitorConfig(n_repeats=n_repeats, n_generate_points=n_generate, **self._template)
        self.path.mkdir(parents=True, exist_ok=True)
        write_npz(self.path / "data.npz", self._data_arrays())
        write_json(self.path / "config.json", self.config.to_dict())
        self._records = {}

    def _data_arrays(self) -> dict[str, np.ndarray]:
        R = self.n_repeats
        out = {
            "train_points": np.broadcast_to(self._train, (R, *self._train.shape[1:])).copy(),
            "groups": np.broadcast_to(self._codes, (R, self._codes.shape[1])).copy(),
            "test_points": np.broadcast_to(self._test, (R, *self._test.shape[1:])).copy(),
        }
        if self._null_points is not None:
            out["null_points"] = np.broadcast_to(self._null_points, (R, *self._null_points.shape[1:])).copy()
        return out

    def _set_up_search(self) -> None:
        """One exact search per distinct (training, test) pair of the repeats (one for all when they share them),
        and the fixed test-to-train distances of the Z_U test through the same searches."""
        R, backend = self.n_repeats, self.config.neighbors

        def of(a: np.ndarray, r: int) -> np.ndarray:  # repeat r's rows of a (R, ...) or shared (1, ...) array
            return a[r if len(a) > 1 else 0]

        self._groups = np.broadcast_to(self._codes, (R, self._codes.shape[1]))
        shared = len(self._train) == 1 and len(self._test) == 1
        first = NeighbourSearch(of(self._train, 0), of(self._test, 0), backend)
        self._searches = [first if shared or r == 0 else NeighbourSearch(of(self._train, r), of(self._test, r), backend)
                          for r in range(R)]  # fmt: skip
        self._locations = np.stack([s.locations.location for s in self._searches])
        found = {}  # id(search) -> its neighbours of the test points: once per distinct search
        for r, search in enumerate(self._searches):
            if id(search) not in found:
                found[id(search)] = search.query(of(self._test, r))
        self._test_d = np.stack([found[id(s)].d1 for s in self._searches])
        self._test_group = np.stack([self._groups[r][found[id(s)].index] for r, s in enumerate(self._searches)])
        self._thresholds = table_thresholds(self.config)
        self._sizes = group_sizes(self._groups, self.labels)

    # -- observing ---------------------------------------------------------------------------------
    @property
    def epochs(self) -> list[int]:
        """The observed epochs, in order."""
        return sorted(self._frames)

    def results(self) -> Results:
        """The run as `memnb.Results` (every view, statistic and the verdict read it)."""
        if self.config is None:
            raise ValueError(f"{self.path}: nothing observed yet; call observe(epoch, samples) first")
        return Results(self.path)

    def observe(self, epoch: int, samples, *, loss=None, overwrite: bool = False) -> pd.DataFrame:
        """Search, tabulate and store the samples drawn at `epoch`; this epoch's summary.

        samples: (n, d) or (R, n, d) array (numpy or torch, any device), or a callable returning one (not called
        when the epoch is already stored and overwrite is False). loss: optional training loss at this epoch,
        a number or (R,) (stored in loss.parquet). Returns, per criterion at its own threshold and group, the
        memorized and copied shares and their null levels, means over repeats.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            _fail("epoch", epoch, "a non-negative integer (training epochs, or steps, completed)")
        epoch = int(epoch)
        if epoch in self._frames and not overwrite:
            return self._epoch_summary(epoch)
        if callable(samples):
            samples = samples()
        x = points(samples, "samples", self.dim)
        R = self.n_repeats if self.n_repeats is not None else x.shape[0]
        if x.shape[0] != R:
            _fail("samples", _describe(x), f"(n, d) or ({R}, n, d): {R} repeat(s), as the run's data")
        n = x.shape[1]
        if self.config is not None and n != self.config.n_generate_points:
            _fail("samples", _describe(x), f"{self.config.n_generate_points} samples per repeat (the first epoch's n)")
        magnitude = float(np.abs(x).max())
        if magnitude > SAMPLE_LIMIT:
            _fail("samples", f"values up to {magnitude:g}", f"|x| <= {SAMPLE_LIMIT:g} (stored as float16): rescale")
        null = None
        if self.null_fn is not None:
            null = points(self.null_fn(epoch), "null(epoch)", self.dim)
            if null.shape[0] not in (1, R):
                _fail("null(epoch)", _describe(null), f"(n0, d) or ({R}, n0, d) points")
            null = np.broadcast_to(null, (R, *null.shape[1:]))
            if self.config is not None and self.config.n_null_points and null.shape[1] != self.config.n_null_points:
                _fail("null(epoch)", _describe(null), f"{self.config.n_null_points} points per repeat, as before")
        elif self._null_points is not None:
            null = np.broadcast_to(self._null_points, (R, *self._null_points.shape[1:]))
        loss_values = None
        if loss is not None:
            values = np.asarray(as_numpy(loss, "loss"), np.float64).reshape(-1)
            if values.size not in (1, R) or not np.all(np.isfinite(values)):
                _fail("loss", loss, f"a finite number or {R} finite numbers (one per repeat)")
            # stored as float32 and read as float64, as run_experiment stores its loss history
            loss_values = np.broadcast_to(values, (R,)).astype(np.float32).astype(np.float64)
        # everything checked: from here on the run is written
        with run_lock(self.root, self.path.name):
            t0 = time.perf_counter()
            if self.config is None:
                self._start(R, n)
                if null is not None and self.null_fn is not None:
                    self.config = self.config.replace(n_null_points=null.shape[1])
                    write_json(self.path / "config.json", self.config.to_dict())
            if self._searches is None:
                self._set_up_search()
            arrays = {"samples": x.astype(np.float16), **self._search(x)}
            if null is not None:
                arrays.update(self._search(null, "null_"))
            arrays["summary"] = summarize(arrays, self._groups, self._locations, self._thresholds, self.labels)
            arrays["zu"], arrays["zu_n"] = data_copying(
                arrays, self._test_d, self._test_group, self._groups, self.labels
            )
            f = epoch_file(self.path, epoch)
            write_npz(f, arrays)
            self._records[str(f.relative_to(self.path))] = file_record(f)
            self._add_frames(epoch, arrays)
            if loss_values is not None:
                self._losses[epoch] = loss_values
            else:
                self._losses.pop(epoch, None)
            self._write_tables(time.perf_counter() - t0)
        return self._epoch_summary(epoch)

    def _search(self, x: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
        found = [s.query(q) for s, q in zip(self._searches, x)]
        return {prefix + f: np.stack([getattr(nb, f) for nb in found]) for f in NEIGHBOUR_FIELDS}

    def _add_frames(self, epoch: int, arrays: dict[str, np.ndarray]) -> None:
        c = self.config
        repeats = list(range(c.n_repeats))
        if self._searches is None:
            self._set_up_search()
        table = summary_rows(
            arrays["summary"], epoch, repeats, self._thresholds, c.n_generate_points, self._sizes, self.labels
        )
        zu = zu_rows(arrays["zu"], arrays["zu_n"], epoch, repeats, self.labels)
        self._frames[epoch] = (table, zu)

    def _write_tables(self, observe_s: float = 0.0) -> None:
        """table.parquet, zu.parquet, loss.parquet (when losses were given) and the manifest, from what is stored."""
        epochs = self.epochs
        frames = [self._frames[e] for e in epochs]
        table = (
            pd.concat([t for t, _ in frames], ignore_index=True).sort_values(
                ["repeat", "epoch", "criterion", "group", "threshold"], ignore_index=True
            )
            if frames
            else pd.DataFrame(columns=TABLE_COLUMNS)
        )
        zu = (
            pd.concat([z for _, z in frames], ignore_index=True).sort_values(
                ["repeat", "epoch", "group"], ignore_index=True
            )
            if frames
            else pd.DataFrame(columns=ZU_COLUMNS)
        )
        for fname, df in (("table.parquet", table), ("zu.parquet", zu)):
            write_parquet(self.path / fname, df)
            self._records[fname] = file_record(self.path / fname)
        losses = sorted(self._losses.items())
        if losses:
            R = self.config.n_repeats
            write_parquet(
                self.path / "loss.parquet",
                pd.DataFrame(
                    {
                        "repeat": np.tile(np.arange(R), len(losses)),
                        "epoch": np.repeat([e for e, _ in losses], R),
                        "loss": np.concatenate([lv for _, lv in losses]).astype(np.float64),
                    }
                ),
            )
            self._records["loss.parquet"] = file_record(self.path / "loss.parquet")
        for fname in ("config.json", "data.npz"):
            if fname not in self._records or self._records[fname]["size"] != (self.path / fname).stat().st_size:
                self._records[fname] = file_record(self.path / fname)
        self._observe_s += observe_s
        write_json(
            self.path / "manifest.json",
            {
                "kind": "monitor",
                "fingerprint": self.config.fingerprint(),
                "files": dict(sorted(self._records.items())),
                "complete": True,  # the tables hold every stored epoch
                "stopped_at_epoch": None,
                "observed_epochs": epochs,
                "memnb_version": __version__,
                "observe_s": round(self._observe_s, 3),
            },
        )

    def _epoch_summary(self, epoch: int) -> pd.DataFrame:
        table = self._frames[epoch][0]
        own = {c.name: c.own_threshold(self.config) for c in CRITERIA}
        rows = table[np.isclose(table.threshold, table.criterion.map(own))]
        out = rows.groupby(["criterion", "group"], sort=False)[
            ["memorized", "memorized_null", "copied", "copied_null"]
        ].mean()
        return out.reset_index().assign(epoch=epoch, threshold=lambda d: d.criterion.map(own))

    def __repr__(self) -> str:
        return f"Monitor({str(self.path)!r}, {len(self._frames)} epoch(s) observed, groups {list(self.labels)})"
