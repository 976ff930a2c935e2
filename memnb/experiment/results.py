"""Stored results of one run: `Results` reads a run directory through the run store (memnb.experiment.store).

The layout and file names are the store's (memnb.experiment.store.layout). An epoch file holds, for the samples
drawn at the start of that epoch, ``samples`` (R, n, d) float16 and their neighbours ``d1``, ``d2``, ``d_test``,
``d_mean50`` (R, n) float32 distances (``d_mean50``: mean distance to the 50 nearest distinct training locations,
for the ``relative`` criterion) and ``index`` (R, n) int32 nearest training point; the same five arrays prefixed
``null_`` for the null draws; ``summary``: the tabulated rates; ``zu`` (R, source, group+all) Meehan et al.'s Z_U
of the generated (source 0) and null (source 1) draws, ``zu_n`` (R, 3, group+all) int64 the numbers of generated,
null and test points in each group's cell; ``epoch`` its own number and, for a monitored run, ``loss`` (R,).

``loss.parquet``: mean training loss per repeat and epoch (``epoch`` k = loss while training from k-1 to k
completed epochs, aligned with the samples drawn at epoch k); ``table.parquet``: one row per repeat x epoch x
group x criterion x threshold (TABLE_COLUMNS); ``zu.parquet``: one row per repeat x epoch x group (``inlier``,
``outlier``, ``duplicate``: the cell of points whose nearest training point is in that group; ``all``: the global
test), columns ZU_COLUMNS (Z_U is NaN where a cell has no test point); ``manifest.json``: whether the run is
complete, its files' records and timings; a run stopped early by a callback says ``complete: false`` and
``stopped_at_epoch``, and its ``callbacks.json`` holds what each callback saw.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.registry import CRITERIA
from ..core.storage import CorruptRunError, check_record
from ..core.validate import fail, is_real
from .grids import SLIDER_THRESHOLDS, RateGrid, TableGrid
from .store.advice import advice
from .store.configs import config_kind, read_config
from .store.files import read_data, read_epoch
from .store.layout import CHECKPOINT, CONFIG, DATA, EPOCHS, LOSS, TABLE, ZU, epoch_file, epoch_of, stored_epochs
from .store.manifest import read_manifest
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
    tables,
)

__all__ = [
    "Results",
    "RateGrid",
    "TableGrid",
    "SLIDER_THRESHOLDS",
    "TablesOnlyError",
    "CorruptRunError",
    "TABLE_COLUMNS",
    "ZU_COLUMNS",
    "epoch_file",
    "table_thresholds",
    "summarize",
]

TABLE_KEYS = ("summary", "zu", "zu_n", "loss")  # what building the tables reads of an epoch file


class TablesOnlyError(ValueError):
    """The run holds its tables only (a copy brought back from another machine: memnb.experiment.archive); what needs
    the per-sample arrays (epoch files, data.npz) is unavailable here."""


class Results:
    """Read access to one run directory; nothing here trains or searches.

    Opening reads config.json and manifest.json once each. A complete run is self-verifying: its manifest records
    the size and SHA-256 of every file and the config's fingerprint; opening checks that every recorded file is
    there with its size and that config.json is the one the run was written with; a file's checksum is checked
    the first time it is read; an epoch file also checks its own epoch number and its arrays' CRC-32. Any mismatch
    raises `CorruptRunError` naming the file and what to do (memnb.experiment.store.advice). Runs stored before the
    records existed open as before. A monitored run's epochs are the epoch files it holds.
    """

    def __init__(self, path: Path | str, verify: bool = True):
        self.path = Path(path)
        self.config = read_config(self.path, lambda name: advice(self.path, name, config_kind(self.path)))
        self.kind = self.config.kind
        self.manifest = read_manifest(self.path, self.advice)
        self._checked: set[str] = set()
        if self.kind == "monitor":  # a monitored run learns its epochs from what is stored
            self.config = self.config.with_observed(self.evaluated_epochs)
        self.labels = self.config.group_names  # group labels by code (memnb's three, or a monitored run's own)
        if verify:
            self.verify(checksums=False)

    # -- files ---------------------------------------------------------------------------
    def advice(self, name: str) -> str:
        """What to do about this run's damaged file `name` (memnb.experiment.store.advice)."""
        return advice(self.path, name, self.kind, self.tables_only)

    @property
    def records(self) -> dict[str, dict]:
        """{file relative to the run: {"size", "sha256"}} from the manifest (empty: not recorded)."""
        return self.manifest.files

    def damaged(self, checksums: bool = False) -> dict[str, str]:
        """{file relative to the run: what is wrong with it} (empty: the run is what its manifest records).

        Recorded runs: every recorded file present with its size (and SHA-256 with `checksums`), no epoch
        file beyond the recorded ones (a trained run), config.json with the run's fingerprint. Complete runs
        stored before the records existed: their tables and data.npz can be opened.
        """
        out: dict[str, str] = {}
        m = self.manifest
        if m.fingerprint is not None and m.fingerprint != self.config.fingerprint():
            out[CONFIG] = (
                f"is not the config this run was written with (its fingerprint is "
                f"{self.config.fingerprint()}, the run's {m.fingerprint})"
            )
        for name, rec in self.records.items():
            problem = check_record(self.path / name, rec, checksum=checksums)
            if problem:
                out.setdefault(name, problem)  # an edited config.json: the fingerprint says it best
        if self.kind == "monitor" and not self.tables_only:  # an observed epoch whose file is gone
            for e in sorted(set(m.get("observed_epochs", [])) - set(self.evaluated_epochs)):
                out[str(epoch_file(self.path, e).relative_to(self.path))] = "is missing (the manifest lists it)"
        if self.records and self.kind != "monitor":
            for e in stored_epochs(self.path):
                name = str(epoch_file(self.path, e).relative_to(self.path))
                if name not in self.records:
                    out[name] = "is not part of this run (its manifest does not list it): move it away"
        elif m.complete and not self.records:
            import pyarrow.parquet as pq

            for name in (TABLE, ZU, LOSS):
                try:
                    pq.read_metadata(self.path / name)
                except FileNotFoundError:
                    out[name] = "is missing"
                except Exception as e:
                    out[name] = f"is unreadable ({type(e).__name__}: {e})"
            try:
                with np.load(self.path / DATA) as z:
                    z.files  # noqa: B018 (reads the zip's directory)
            except FileNotFoundError:
                out[DATA] = "is missing"
            except Exception as e:
                out[DATA] = f"is unreadable ({type(e).__name__}: {e})"
        return out

    def verify(self, checksums: bool = True) -> None:
        """Raise CorruptRunError naming the first damaged file (see `damaged`) and what to do about it.

        checksums: also compare every file's SHA-256 (reads every file); else sizes and presence only.
        """
        for name, problem in self.damaged(checksums).items():
            raise CorruptRunError(f"{self.path / name} {problem}; {self.advice(Path(name).name)}")
        if checksums:
            self._checked.update(self.records)

    def _check(self, f: Path) -> None:
        """Verify `f`'s checksum against the manifest, once per file and Results (a no-op when unrecorded)."""
        name = str(f.relative_to(self.path))
        if name in self._checked:
            return
        rec = self.records.get(name)
        if rec is not None:
            problem = check_record(f, rec)
            if problem:
                raise CorruptRunError(f"{f} {problem}; {self.advice(f.name)}")
        self._checked.add(name)

    @property
    def complete(self) -> bool:
        """Whether the run is done: a trained run's manifest says so; a monitored run always is, up to its last
        observed epoch (its tables are assembled from the epoch files when they are behind)."""
        return self.kind == "monitor" or bool(self.manifest.get("complete"))

    @property
    def tables_only(self) -> bool:
        """Whether this is a tables-only copy (memnb.experiment.archive): tables, config and manifest, no epoch files."""
        m = self.__dict__.get("manifest")  # None while the manifest itself is being read
        return bool(m is not None and m.is_tables_only)

    def _per_sample(self, what: str) -> None:
        if self.tables_only:
            raise TablesOnlyError(
                f"{self.path} holds the tables of a run made on {self.manifest.get('made_on', 'another machine')} "
                f"only; {what} needs its per-sample arrays (epoch files, data.npz), which stayed there: use the "
                "tables (table(), zu(), loss()) or open the full run on that machine"
            )

    @property
    def stopped_at_epoch(self) -> int | None:
        """The epoch at which a callback stopped this run (None: not stopped; see memnb.analysis.early_stopping)."""
        return self.manifest.stopped_at_epoch

    @cached_property
    def evaluated_epochs(self) -> list[int]:
        if self.tables_only:
            return [int(e) for e in self.manifest.get("evaluated_epochs", [])]
        listed = [n for n in self.records if n.startswith("epochs/")] if self.kind != "monitor" else []
        return sorted(epoch_of(n) for n in listed) if listed else stored_epochs(self.path)

    @cached_property
    def data(self) -> dict[str, np.ndarray]:
        self._per_sample("the training data")
        f = self.path / DATA
        if not f.exists():
            raise CorruptRunError(f"{f} is missing; {self.advice(DATA)}")
        self._check(f)
        data = read_data(self.path, self.advice)
        R = self.config.n_repeats
        # a monitored run may store a set shared by every repeat once, as (1, ...): readers see (R, ...)
        return {k: np.broadcast_to(v, (R, *v.shape[1:])) if len(v) == 1 and R > 1 else v for k, v in data.items()}

    @cached_property
    def locations(self) -> np.ndarray:
        return np.stack([location_ids(p) for p in self.data["train_points"]])

    def epoch_arrays(self, epoch: int, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Stored arrays of evaluated `epoch` (see the module docstring; only `keys` when given)."""
        self._per_sample(f"epoch {epoch}'s arrays")
        f = epoch_file(self.path, epoch)
        if not f.exists():
            if epoch in self.evaluated_epochs:
                raise CorruptRunError(f"{f} is missing; {self.advice(f.name)}")
            raise KeyError(f"epoch {epoch} was not evaluated; evaluated epochs: {self.evaluated_epochs}")
        self._check(f)
        return read_epoch(self.path, epoch, self.advice, keys)

    # -- tables --------------------------------------------------------------------------
    def _tables_current(self, name: str) -> bool:
        """Whether the stored table `name` describes every stored epoch (else it is assembled)."""
        if not (self.path / name).exists():
            return False
        if self.tables_only:
            return True
        if self.kind == "monitor":
            return self.manifest.get("observed_epochs") == self.evaluated_epochs and name in self.records
        return self.complete

    def table(self) -> pd.DataFrame:
        """The tidy results table (complete runs read table.parquet; partial runs assemble what exists)."""
        return self._read_parquet(self.path / TABLE) if self._tables_current(TABLE) else self.assemble_table()

    def zu(self) -> pd.DataFrame:
        """Meehan et al.'s Z_U per repeat x epoch x cell (columns ZU_COLUMNS; see the module docstring)."""
        return self._read_parquet(self.path / ZU) if self._tables_current(ZU) else self.assemble_zu()

    def _read_parquet(self, f: Path) -> pd.DataFrame:
        self._check(f)
        try:
            return pd.read_parquet(f)
        except Exception as e:  # truncated: pyarrow's ArrowInvalid
            raise CorruptRunError(f"{f} is unreadable ({type(e).__name__}: {e}); {self.advice(f.name)}") from None

    def table_arrays(self, epoch: int) -> dict[str, np.ndarray]:
        """What the tables need of `epoch` (summary, zu, zu_n, loss), recomputed from its distances where it was
        stored with other criteria or thresholds, or without Z_U (runs written before they existed)."""
        arrays = self.epoch_arrays(epoch, TABLE_KEYS)
        thresholds = table_thresholds(self.config)
        shape = summary_shape(self.config.n_repeats, len(thresholds), self.labels)[1:]
        if arrays["summary"].shape[1:] != shape or "zu" not in arrays or "zu_n" not in arrays:
            full = self.epoch_arrays(epoch)
            if arrays["summary"].shape[1:] != shape:
                arrays["summary"] = summarize(full, self.data["groups"], self.locations, thresholds, self.labels)
            if "zu" not in arrays or "zu_n" not in arrays:
                arrays["zu"], arrays["zu_n"] = data_copying(
                    full, *self.held_out_neighbours, self.data["groups"], self.labels
                )
        return arrays

    @cached_property
    def _assembled(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        epochs = {e: self.table_arrays(e) for e in self.evaluated_epochs}
        sizes = group_sizes(self.data["groups"], self.labels) if epochs else None
        return tables(epochs, self.config, sizes)

    def assemble_table(self) -> pd.DataFrame:
        return self._assembled[0].copy()

    def assemble_zu(self) -> pd.DataFrame:
        return self._assembled[1].copy()

    @cached_property
    def held_out_neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, m) distance of every test point to its nearest training point, and that point's group."""
        return held_out_neighbours(
            self.data["train_points"], self.data["test_points"], self.data["groups"], self.config.neighbors
        )

    def loss(self) -> pd.DataFrame:
        """Training loss per repeat and epoch (columns repeat, epoch, loss); a monitored run's from its epoch files."""
        f = self.path / LOSS
        if self.kind == "monitor" and not self.tables_only:
            rows = [(e, self.epoch_arrays(e, ("loss",)).get("loss")) for e in self.evaluated_epochs]
            legacy = {e for e, v in rows if v is None}  # epoch files written before the loss was committed with them
            old = self._read_parquet(f) if legacy and f.exists() else None
            if old is not None:
                old = old[old.epoch.isin(legacy)]
                rows += [(int(e), g.sort_values("repeat").loss.to_numpy()) for e, g in old.groupby("epoch")]
            return loss_rows([(e, v) for e, v in rows if v is not None and np.isfinite(v).all()])
        return self._read_parquet(f) if f.exists() else pd.DataFrame(columns=["repeat", "epoch", "loss"])

    def rates_at(self, criterion: str, threshold: float, epochs: list[int] | None = None) -> pd.DataFrame:
        """Rates at any threshold, recomputed from the stored per-sample distances (no search, no training).

        Same columns as table(), for one criterion and threshold.
        """
        CRITERIA.get(criterion)  # a clear error for an unknown criterion
        self._per_sample(f"rates at threshold {threshold}")
        if not (is_real(threshold) and threshold >= 1.0):
            fail("threshold", threshold, "a finite ratio >= 1")
        evaluated = self.evaluated_epochs
        if epochs is not None:
            epochs = list(epochs)
            bad = [e for e in epochs if e not in evaluated]
            if not epochs or bad:
                fail(
                    "epochs",
                    epochs,
                    f"None (every evaluated epoch) or a non-empty list of evaluated epochs "
                    f"({evaluated[:3]}...{evaluated[-1:]})",
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

    def detector_scores(self, q: float = 0.05, per: str = "group", epochs=None) -> pd.DataFrame:
        """The generation-free membership scores of a config with `detectors`, as a tidy frame per group (the
        decision at null rate q) or per point (the trajectories); memnb.experiment.detection_frames.detector_frame."""
        from .detection_frames import detector_frame

        return detector_frame(self, q, per, epochs)

    def disk_usage(self) -> dict[str, int]:
        """Bytes on disk by part of the run: epochs, data, tables, checkpoint, other (set-aside files included)."""
        parts = {"epochs": 0, "data": 0, "tables": 0, "checkpoint": 0, "other": 0}
        for f in self.path.rglob("*"):
            if f.is_file():
                name = f.relative_to(self.path).parts[0]
                part = {EPOCHS: "epochs", DATA: "data", CHECKPOINT: "checkpoint"}.get(name)
                parts[part or ("tables" if name in (TABLE, ZU, LOSS) else "other")] += f.stat().st_size
        return parts

    def __repr__(self) -> str:
        state = "complete" if self.complete else "partial"
        du = self.disk_usage()
        sizes = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in du.items() if v)
        return (
            f"Results({str(self.path)!r}, {state}, {len(self.evaluated_epochs)} epochs evaluated, "
            f"{sum(du.values()) / 2**20:.1f} MiB on disk: {sizes})"
        )


def loss_rows(losses) -> pd.DataFrame:
    """The loss table from [(epoch, (R,) losses)]: columns repeat, epoch, loss (float64), by epoch then repeat."""
    losses = sorted(losses, key=lambda x: x[0])
    if not losses:
        return pd.DataFrame({"repeat": np.zeros(0, np.int64), "epoch": np.zeros(0, np.int64), "loss": np.zeros(0)})
    R = len(losses[0][1])
    return pd.DataFrame(
        {
            "repeat": np.tile(np.arange(R), len(losses)),
            "epoch": np.repeat(np.array([e for e, _ in losses], np.int64), R),
            "loss": np.concatenate([np.asarray(v, np.float64) for _, v in losses]),
        }
    )
