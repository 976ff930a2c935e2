"""Stored results of one run, and the tidy table built from them.

A run directory (``outputs/runs/<config.run_name()>/``) holds:

- ``config.json``: the ExperimentConfig that produced it;
- ``data.npz``: per repeat, ``train_points`` (R, N, d), ``groups`` (R, N) (0 inlier, 1 outlier,
  2 duplicate), ``test_points`` (R, m, d), ``cluster_centre`` (R, d), ``cluster_std`` (R,);
- ``epochs/epoch_XXXXXX.npz``: for the samples drawn at the start of that epoch, ``samples``
  (R, n, d) float16 and their neighbours ``d1``, ``d2``, ``d_test``, ``d_mean50`` (R, n) float32
  distances (``d_mean50``: mean distance to the 50 nearest distinct training locations, for the
  ``relative`` criterion) and ``index`` (R, n) int32 nearest training point; the same five arrays
  prefixed ``null_`` for n fresh draws from the data distribution; ``summary``: the tabulated
  rates; ``zu`` (R, source, group+all) Meehan et al.'s Z_U of the generated (source 0) and null
  (source 1) draws, and ``zu_n`` (R, 3, group+all) int64 the numbers of generated, null and test
  points in each group's cell (see data_copying);
- ``loss.parquet``: mean training loss per repeat and epoch (``epoch`` k = loss while training
  from k-1 to k completed epochs, aligned with the samples drawn at epoch k);
- ``table.parquet``: one row per repeat x epoch x group x criterion x threshold;
- ``zu.parquet``: Meehan et al. (2020)'s data-copying statistic, one row per repeat x epoch x
  group (``inlier``, ``outlier``, ``duplicate``: the cell of points whose nearest training point
  is in that group; ``all``: the global test), columns ``ZU_COLUMNS``: ``z_u`` (generated samples),
  ``z_u_null`` (the null draws, its chance level), ``n_generated``, ``n_null``, ``n_test`` (points
  in the cell; Z_U is NaN where a cell has no test point, e.g. the outliers' with test_set "base");
- ``checkpoint.pt``: latest ensemble weights and optimizer state (the resume point);
- ``manifest.json``: whether the run is complete, and how long it took; a run stopped early by a
  callback (`memnb.early_stopping`) says ``complete: false``, ``stopped_at_epoch`` and the
  callbacks' settings, and its ``callbacks.json`` holds what each callback saw, epoch by epoch.
"""

from __future__ import annotations

import json
import numbers
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import ExperimentConfig
from ..core.monitor_config import KIND as MONITOR_KIND
from ..core.monitor_config import MonitorConfig
from ..core.registry import CRITERIA
from ..core.storage import CorruptRunError, check_record
from ..core.vocabulary import SOURCE_PREFIX, SOURCES, VALUES
from ..metric.neighbors import NEIGHBOUR_FIELDS
from .tabulate import (
    TABLE_COLUMNS,
    ZU_COLUMNS,
    data_copying,
    group_sizes,
    held_out_neighbours,
    location_ids,
    summarize,
    summary_rows,
    summary_shape,
    table_thresholds,
    zu_rows,
)

__all__ = [
    "Results",
    "RateGrid",
    "TableGrid",
    "TablesOnlyError",
    "CorruptRunError",
    "TABLE_COLUMNS",
    "ZU_COLUMNS",
    "epoch_file",
    "read_config",
    "load_npz",
    "table_thresholds",
    "summarize",
]


class TablesOnlyError(ValueError):
    """The run holds its tables only (a copy brought back from another machine: memnb.experiment.archive); what needs
    the per-sample arrays (epoch files, data.npz) is unavailable here."""


def epoch_file(path: Path, epoch: int) -> Path:
    return Path(path) / "epochs" / f"epoch_{epoch:06d}.npz"


def read_config(path: Path) -> ExperimentConfig | MonitorConfig:
    """The run's config.json: an ExperimentConfig, or a MonitorConfig for a run memnb observed (its "kind")."""
    f = Path(path) / "config.json"
    try:
        d = json.loads(f.read_text())
        if isinstance(d, dict) and d.get("kind") == MONITOR_KIND:
            return MonitorConfig.from_dict(d)
        return ExperimentConfig.from_dict(d)
    except FileNotFoundError:
        raise CorruptRunError(f"{path} has no config.json: not a memnb run directory") from None
    except (json.JSONDecodeError, ValueError, TypeError) as e:
        raise CorruptRunError(f"{f} is unreadable or invalid ({e}); delete {path} to start this run again") from None


# What to do about a damaged file, by the file (a run's results are deterministic in its config).
REPAIRED_BY_RUNNER = ("data.npz", "table.parquet", "zu.parquet")  # run_experiment(config) rebuilds these


def _is_monitored(path: Path) -> bool:
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("kind") == MONITOR_KIND
    except Exception:
        return False


def advice(path: Path, name: str) -> str:
    """Advice that, followed, gives a correct run again (tests/test_reliability.py follows each)."""
    run = Path(path)
    if _is_monitored(run):
        if name.startswith("epoch_"):
            return (
                f"open the run with memnb.Monitor on the same data ({run}): it keeps every complete epoch file and "
                f"rebuilds the tables and the manifest; if {name} is damaged, delete it first and observe that epoch again"
            )
        if name == "config.json":
            return f"restore {run / 'config.json'} or delete {run} and observe the epochs again with memnb.Monitor"
        return (
            f"open the run with memnb.Monitor on the same data ({run}): it rebuilds {name} from the run's other files"
        )
    if name in REPAIRED_BY_RUNNER:
        return f"call memnb.run_experiment(config) with this run's config: it rebuilds {name} from what is stored"
    if name == "config.json":
        return (
            f"restore {run / 'config.json'} (it names the run; its fingerprint is in the folder's name) or delete {run}"
        )
    return (
        f"the run cannot be repaired in place: delete {run} and call memnb.run_experiment(config) again "
        "(the same config recomputes the same numbers)"
    )


def load_npz(f: Path, required: tuple[str, ...], run: Path | None = None) -> dict[str, np.ndarray]:
    try:
        with np.load(f) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # truncated or foreign file
        tip = advice(run, f.name) if run is not None else "delete the run and run it again"
        raise CorruptRunError(f"{f} is unreadable ({type(e).__name__}: {e}); {tip}") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        tip = advice(run, f.name) if run is not None else "delete the run and run it again"
        raise CorruptRunError(f"{f} lacks arrays {missing}; {tip}")
    return arrays


def read_manifest(path: Path) -> dict:
    """The run's manifest.json ({"complete": False} when absent: a run being written); CorruptRunError naming
    the file when it is unreadable or not a JSON object."""
    f = Path(path) / "manifest.json"
    try:
        m = json.loads(f.read_text())
    except FileNotFoundError:
        return {"complete": False}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptRunError(f"{f} is unreadable ({type(e).__name__}: {e}); {advice(path, 'manifest.json')}") from None
    if not isinstance(m, dict):
        raise CorruptRunError(f"{f} holds a {type(m).__name__}, not a JSON object; {advice(path, 'manifest.json')}")
    return m


class Results:
    """Read access to one run directory; nothing here trains or searches.

    A complete run is self-verifying: its manifest records the size and SHA-256 of every file and
    the config's fingerprint. Opening it checks that every recorded file is there with its size and
    that config.json is the one the run was written with; a file's checksum is checked the first
    time it is read. Any mismatch raises `CorruptRunError` naming the file and what to do.
    Runs stored before the records existed open as before, unverified.
    """

    def __init__(self, path: Path | str, verify: bool = True):
        self.path = Path(path)
        self.config = read_config(self.path)
        self._checked: set[str] = set()
        self._records: dict[str, dict] | None = None  # the manifest's file records, as _check first read them
        if isinstance(self.config, MonitorConfig):  # a monitored run learns its epochs from what is stored
            self.config = self.config.with_observed(self.evaluated_epochs)
        self.labels = self.config.group_names  # group labels by code (memnb's three, or a monitored run's own)
        if verify:
            self.verify(checksums=False)

    # -- files ---------------------------------------------------------------------------
    @property
    def manifest(self) -> dict:
        return read_manifest(self.path)

    @property
    def records(self) -> dict[str, dict]:
        """{file relative to the run: {"size", "sha256"}} from the manifest (empty: not recorded)."""
        files = self.manifest.get("files") or {}
        return files if isinstance(files, dict) else {}

    def damaged(self, checksums: bool = False) -> dict[str, str]:
        """{file relative to the run: what is wrong with it} (empty: the run is what its manifest records).

        Recorded runs: every recorded file present with its size (and SHA-256 with `checksums`), no epoch
        file beyond the recorded ones, config.json with the run's fingerprint. Complete runs stored before
        the records existed: their tables and data.npz can be opened.
        """
        out: dict[str, str] = {}
        m = self.manifest
        want = m.get("fingerprint")
        if want is not None and want != self.config.fingerprint():
            out["config.json"] = (
                f"is not the config this run was written with (its fingerprint is "
                f"{self.config.fingerprint()}, the run's {want})"
            )
        records = self.records
        for name, rec in records.items():
            problem = check_record(self.path / name, rec, checksum=checksums)
            if problem:
                out.setdefault(name, problem)  # an edited config.json: the fingerprint says it best
        if records:
            for f in sorted((self.path / "epochs").glob("epoch_*.npz")):
                name = str(f.relative_to(self.path))
                if name not in records:
                    out[name] = "is not part of this run (its manifest does not list it): move it away"
        elif m.get("complete"):
            import pyarrow.parquet as pq

            for name in ("table.parquet", "zu.parquet"):
                try:
                    pq.read_metadata(self.path / name)
                except FileNotFoundError:
                    out[name] = "is missing"
                except Exception as e:
                    out[name] = f"is unreadable ({type(e).__name__}: {e})"
            try:
                with np.load(self.path / "data.npz") as z:
                    z.files  # noqa: B018 (reads the zip's directory)
            except FileNotFoundError:
                out["data.npz"] = "is missing"
            except Exception as e:
                out["data.npz"] = f"is unreadable ({type(e).__name__}: {e})"
        return out

    def verify(self, checksums: bool = True) -> None:
        """Raise CorruptRunError naming the first damaged file (see `damaged`) and what to do about it.

        checksums: also compare every file's SHA-256 (reads every file); else sizes and presence only.
        """
        for name, problem in self.damaged(checksums).items():
            raise CorruptRunError(f"{self.path / name} {problem}; {advice(self.path, Path(name).name)}")
        if checksums:
            self._checked.update(self.records)

    def _check(self, f: Path) -> None:
        """Verify `f`'s checksum against the manifest, once per file and Results (a no-op when unrecorded)."""
        name = str(f.relative_to(self.path))
        if name in self._checked:
            return
        if self._records is None:  # read once: parsing a paper run's manifest per epoch file would be O(E^2)
            self._records = self.records
        rec = self._records.get(name)
        if rec is not None:
            problem = check_record(f, rec)
            if problem:
                raise CorruptRunError(f"{f} {problem}; {advice(self.path, f.name)}")
        self._checked.add(name)

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    @property
    def tables_only(self) -> bool:
        """Whether this is a tables-only copy (memnb.experiment.archive): tables, config and manifest, no epoch files."""
        return bool(self.manifest.get("tables_only"))

    def _per_sample(self, what: str) -> None:
        if self.tables_only:
            m = self.manifest
            raise TablesOnlyError(
                f"{self.path} holds the tables of a run made on {m.get('made_on', 'another machine')} only; {what} "
                "needs its per-sample arrays (epoch files, data.npz), which stayed there: use the tables "
                "(table(), zu(), loss()) or open the full run on that machine"
            )

    @property
    def stopped_at_epoch(self) -> int | None:
        """The epoch at which a callback stopped this run (None: not stopped; see memnb.early_stopping)."""
        return self.manifest.get("stopped_at_epoch")

    @property
    def evaluated_epochs(self) -> list[int]:
        if self.tables_only:
            return [int(e) for e in self.manifest.get("evaluated_epochs", [])]
        listed = [n for n in self.records if n.startswith("epochs/")]
        files = listed or [f.name for f in (self.path / "epochs").glob("epoch_*.npz")]
        return sorted(int(Path(f).stem.split("_")[1]) for f in files)

    @cached_property
    def data(self) -> dict[str, np.ndarray]:
        self._per_sample("the training data")
        f = self.path / "data.npz"
        if not f.exists():
            raise CorruptRunError(f"{f} is missing; {advice(self.path, 'data.npz')}")
        self._check(f)
        return load_npz(f, ("train_points", "groups", "test_points"), self.path)

    @cached_property
    def locations(self) -> np.ndarray:
        return np.stack([location_ids(p) for p in self.data["train_points"]])

    def epoch_arrays(self, epoch: int) -> dict[str, np.ndarray]:
        """Stored arrays of evaluated `epoch` (see the module docstring for names and shapes)."""
        self._per_sample(f"epoch {epoch}'s arrays")
        f = epoch_file(self.path, epoch)
        if not f.exists():
            if epoch in self.evaluated_epochs:
                raise CorruptRunError(f"{f} is missing; {advice(self.path, f.name)}")
            raise KeyError(f"epoch {epoch} was not evaluated; evaluated epochs: {self.evaluated_epochs}")
        self._check(f)
        return load_npz(f, ("samples", "d1", "d2", "d_test", "index", "summary"), self.path)

    # -- tables --------------------------------------------------------------------------
    def table(self) -> pd.DataFrame:
        """The tidy results table (complete runs read table.parquet; partial runs assemble what exists)."""
        f = self.path / "table.parquet"
        if (self.complete or self.tables_only) and f.exists():
            return self._read_parquet(f)
        return self.assemble_table()

    def _read_parquet(self, f: Path) -> pd.DataFrame:
        self._check(f)
        try:
            return pd.read_parquet(f)
        except Exception as e:  # truncated: pyarrow's ArrowInvalid
            raise CorruptRunError(f"{f} is unreadable ({type(e).__name__}: {e}); {advice(self.path, f.name)}") from None

    def _summary(self, epoch: int, thresholds: np.ndarray) -> np.ndarray:
        """The stored summary of `epoch`, recomputed from its distances if it was stored with other
        criteria or thresholds (a run written before the relative criterion existed)."""
        arrays = self.epoch_arrays(epoch)
        s = arrays["summary"]
        if s.shape[1:] != summary_shape(self.config.n_repeats, len(thresholds), self.labels)[1:]:
            s = summarize(arrays, self.data["groups"], self.locations, thresholds, self.labels)
        return s

    def assemble_table(self) -> pd.DataFrame:
        thresholds = table_thresholds(self.config)
        sizes = group_sizes(self.data["groups"], self.labels)
        repeats = list(range(self.config.n_repeats))
        frames = [
            summary_rows(
                self._summary(e, thresholds), e, repeats, thresholds, self.config.n_generate_points, sizes, self.labels
            )
            for e in self.evaluated_epochs
        ]
        if not frames:
            return pd.DataFrame(columns=TABLE_COLUMNS)
        return pd.concat(frames, ignore_index=True).sort_values(
            ["repeat", "epoch", "criterion", "group", "threshold"], ignore_index=True
        )

    @cached_property
    def held_out_neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, m) distance of every test point to its nearest training point, and that point's group."""
        return held_out_neighbours(
            self.data["train_points"], self.data["test_points"], self.data["groups"], self.config.neighbors
        )

    def zu(self) -> pd.DataFrame:
        """Meehan et al.'s Z_U per repeat x epoch x cell (columns ZU_COLUMNS; see the module docstring).

        Complete runs read zu.parquet; otherwise it is assembled from the epoch files, and computed
        from the stored d1 and index where an epoch file has no ``zu`` (runs written before it existed).
        """
        f = self.path / "zu.parquet"
        if (self.complete or self.tables_only) and f.exists():
            return self._read_parquet(f)
        return self.assemble_zu()

    def assemble_zu(self) -> pd.DataFrame:
        repeats = list(range(self.config.n_repeats))
        frames = []
        for e in self.evaluated_epochs:
            arrays = self.epoch_arrays(e)
            if "zu" in arrays and "zu_n" in arrays:
                z, n = arrays["zu"], arrays["zu_n"]
            else:
                z, n = data_copying(arrays, *self.held_out_neighbours, self.data["groups"], self.labels)
            frames.append(zu_rows(z, n, e, repeats, self.labels))
        if not frames:
            return pd.DataFrame(columns=ZU_COLUMNS)
        return pd.concat(frames, ignore_index=True).sort_values(["repeat", "epoch", "group"], ignore_index=True)

    def loss(self) -> pd.DataFrame:
        f = self.path / "loss.parquet"
        return self._read_parquet(f) if f.exists() else pd.DataFrame(columns=["repeat", "epoch", "loss"])

    def rates_at(self, criterion: str, threshold: float, epochs: list[int] | None = None) -> pd.DataFrame:
        """Rates at any threshold, recomputed from the stored per-sample distances (no search, no training).

        Same columns as table(), for one criterion and threshold.
        """
        CRITERIA.get(criterion)  # a clear error for an unknown criterion
        self._per_sample(f"rates at threshold {threshold}")
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, numbers.Real)
            or not (np.isfinite(threshold) and threshold >= 1.0)
        ):
            raise ValueError(f"threshold = {threshold!r} is invalid; allowed: a finite ratio >= 1")
        evaluated = self.evaluated_epochs
        if epochs is not None:
            epochs = list(epochs)
            bad = [e for e in epochs if e not in evaluated]
            if not epochs or bad:
                raise ValueError(
                    f"epochs = {epochs!r} is invalid; allowed: None (every evaluated epoch) or a non-empty "
                    f"list of evaluated epochs ({evaluated[:3]}...{evaluated[-1:]})"
                )
        if not evaluated:
            raise ValueError(f"{self.path} has no evaluated epoch yet: no rates to compute")
        thresholds = np.array([float(threshold)])
        sizes = group_sizes(self.data["groups"], self.labels)
        repeats = list(range(self.config.n_repeats))
        frames = []
        for e in evaluated if epochs is None else epochs:
            s = summarize(self.epoch_arrays(e), self.data["groups"], self.locations, thresholds, self.labels)
            frames.append(summary_rows(s, e, repeats, thresholds, self.config.n_generate_points, sizes, self.labels))
        df = pd.concat(frames, ignore_index=True)
        return df[df.criterion == criterion].reset_index(drop=True)

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"partial ({len(self.evaluated_epochs)} epochs evaluated)"
        return f"Results({str(self.path)!r}, {state})"


# -- fast path for interactive thresholds ------------------------------------------------------
SLIDER_THRESHOLDS = np.round(np.arange(100, 501, 5) / 100, 2)  # 1.00, 1.05, ..., 5.00


def _grid_index(thresholds: np.ndarray, threshold: float, allowed: str) -> int:
    """Index of `threshold` in the sorted grid `thresholds` (to 1e-9); ValueError saying what is allowed otherwise."""
    k = int(np.argmin(np.abs(thresholds - threshold)))
    if not np.isclose(thresholds[k], threshold, rtol=0, atol=1e-9):
        raise ValueError(f"threshold {threshold} is not {allowed}")
    return k


class RateGrid:
    """A run's rates at a grid of thresholds, computed once from the stored distances; then read in milliseconds.

    `summarize` (the same code that writes the table) runs once per evaluated epoch for every
    threshold of the grid (default: 1.00 to 5.00 in steps of 0.05, plus the run's table
    thresholds); afterwards `rates(criterion, threshold)` only indexes an array, so an
    interactive control can redraw without reading files, searching or training. Values are
    stored as float32 (2e-8 off the table's float64 shares); memory is
    epochs x repeats x 32 x (thresholds) x 4 bytes (about 90 MB for a full paper run).
    """

    def __init__(self, results: Results, thresholds=None, progress: bool = False):
        results._per_sample("the rates at every threshold of a grid (RateGrid; TableGrid reads the table's)")
        self.results = results
        self.config = results.config
        grid = SLIDER_THRESHOLDS if thresholds is None else np.asarray(thresholds, np.float64)
        self.thresholds = np.unique(np.concatenate([grid, table_thresholds(self.config)]))
        self.epochs = np.array(results.evaluated_epochs, np.int64)
        self.repeats = np.arange(self.config.n_repeats)
        groups, locations = results.data["groups"], results.locations
        self.labels = labels = results.labels
        self.group_sizes = group_sizes(groups, labels)
        epochs = self.epochs
        if progress:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="rates at every threshold", unit="epoch")
        # a monitored run without a null set has no null arrays (its null rates are NaN)
        sources = [s for s in SOURCES if not (s == "null" and getattr(self.config, "null", None) == "none")]
        keys = [SOURCE_PREFIX[s] + k for s in sources for k in NEIGHBOUR_FIELDS]
        stack = []
        for e in epochs:
            f = epoch_file(results.path, int(e))
            results._check(f)
            try:
                with np.load(f) as z:  # only the neighbour arrays: samples are not needed
                    arrays = {k: z[k] for k in keys if k in z.files}  # d_mean50 is absent from older runs
            except Exception as exc:
                raise CorruptRunError(f"{f} is unreadable ({type(exc).__name__}: {exc})") from None
            missing = [k for k in keys if k not in arrays and not k.endswith("d_mean50")]
            if missing:
                raise CorruptRunError(f"{f} lacks arrays {missing}")
            stack.append(summarize(arrays, groups, locations, self.thresholds, labels).astype(np.float32))
        # (E, R, criterion, source, value, group+all, K): an epoch axis before the summary's axes
        self.summary = (
            np.stack(stack)
            if stack
            else np.zeros((0, *summary_shape(len(self.repeats), len(self.thresholds), labels)), np.float32)
        )

    def threshold_index(self, threshold: float) -> int:
        return _grid_index(
            self.thresholds,
            threshold,
            f"on this grid ({self.thresholds.min()} to {self.thresholds.max()}); use Results.rates_at for any other",
        )

    def rates(self, criterion: str, threshold: float) -> pd.DataFrame:
        """Same rows and columns as `Results.rates_at(criterion, threshold)`, sorted by repeat, epoch, group."""
        CRITERIA.get(criterion)  # a clear error for an unknown criterion
        c, k = CRITERIA.names().index(criterion), self.threshold_index(threshold)
        v = self.summary[:, :, c, :, :, :, k].astype(np.float64)  # (E, R, source, value, G)
        gen, null = SOURCES.index("generated"), SOURCES.index("null")
        mem, cop = VALUES.index("memorized"), VALUES.index("copied")
        E, R, G = v.shape[0], v.shape[1], v.shape[-1]
        rr, ee, gg = np.meshgrid(np.arange(R), np.arange(E), np.arange(G), indexing="ij")
        rr, ee, gg = rr.reshape(-1), ee.reshape(-1), gg.reshape(-1)
        return pd.DataFrame(
            {
                "repeat": self.repeats[rr],
                "epoch": self.epochs[ee],
                "group": np.asarray((*self.labels, "all"))[gg],
                "criterion": criterion,
                "threshold": float(self.thresholds[k]),
                "memorized": v[ee, rr, gen, mem, gg],
                "memorized_null": v[ee, rr, null, mem, gg],
                "copied": v[ee, rr, gen, cop, gg],
                "copied_null": v[ee, rr, null, cop, gg],
                "n_generated": self.config.n_generate_points,
                "n_group_points": self.group_sizes[rr, gg],
            }
        )


class TableGrid:
    """RateGrid's interface read from the stored table: its thresholds only (a tables-only run has nothing else).

    `rates(criterion, threshold)` gives the table's rows at one of the table's thresholds, with RateGrid's columns
    and order; `nearest(threshold)` the table threshold closest to any other.
    """

    def __init__(self, results: Results):
        self.results, self.config = results, results.config
        self.table = t = results.table()
        self.thresholds = np.unique(t.threshold.to_numpy(np.float64))
        self.epochs = np.unique(t.epoch.to_numpy(np.int64))
        self.repeats = np.unique(t.repeat.to_numpy(np.int64))

    def nearest(self, threshold: float) -> float:
        return float(self.thresholds[int(np.argmin(np.abs(self.thresholds - threshold)))])

    def threshold_index(self, threshold: float) -> int:
        return _grid_index(self.thresholds, threshold, f"one of the table's {self.thresholds.tolist()}")

    def rates(self, criterion: str, threshold: float) -> pd.DataFrame:
        CRITERIA.get(criterion)
        k = self.thresholds[self.threshold_index(threshold)]
        t = self.table
        rows = t[(t.criterion == criterion) & (t.threshold == k)]
        return rows.sort_values(["repeat", "epoch", "group"], ignore_index=True)
