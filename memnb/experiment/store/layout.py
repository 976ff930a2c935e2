"""The run directory's layout: every file name, and the arrays of an epoch file and of data.npz, once.

A run directory (``<runs root>/<config.run_name()>/``) holds:

- ``config.json``: the run's config (an ExperimentConfig, or a MonitorConfig with ``"kind": "monitor"``);
- ``data.npz``: ``train_points`` (R, N, d), ``groups`` (R, N), ``test_points`` (R, m, d) and, by kind,
  ``cluster_centre`` (R, d), ``cluster_std`` (R,) or ``null_points`` (R, n0, d);
- ``epochs/epoch_XXXXXX.npz``: one evaluated epoch, one commit (EPOCH_ARRAYS; see memnb.experiment.results);
- ``scores/epoch_XXXXXX.npz``: a monitored epoch scored without samples (memnb.Monitor.observe with `eps` alone):
  the generation-free membership scores (SCORE_ARRAYS), one commit;
- ``loss.parquet``, ``table.parquet``, ``zu.parquet``: the tables (rebuilt from the epoch files and the checkpoint);
- ``checkpoint.pt``: the resume point of a trained run (memnb.experiment.store.checkpoint);
- ``callbacks.json``: what each callback saw (a run stopped early);
- ``manifest.json``: the run's state and its files' sizes and checksums (memnb.experiment.store.manifest).

This module is the only one that spells these names; every reader and writer asks it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CONFIG = "config.json"
MANIFEST = "manifest.json"
DATA = "data.npz"
TABLE = "table.parquet"
ZU = "zu.parquet"
LOSS = "loss.parquet"
CHECKPOINT = "checkpoint.pt"
CALLBACKS = "callbacks.json"
EPOCHS = "epochs"
SCORES = "scores"
LOCKS = ".locks"  # beside the runs, under the runs root: one lock file per run
TABLES = (TABLE, ZU, LOSS)

# An epoch file's arrays. Required: what every reader needs. Optional: d_mean50 (absent before the relative
# criterion), the null_ copies (absent for a monitored run without a null), zu and zu_n (absent before Z_U),
# "epoch" (the file's own epoch number: a file renamed or swapped is refused) and "loss" ((R,) the training loss
# at that epoch, NaN where none was given: a monitored run's loss is committed with its epoch).
EPOCH_ARRAYS = ("samples", "d1", "d2", "d_test", "index", "summary")
EPOCH_OPTIONAL = ("d_mean50", "zu", "zu_n", "epoch", "loss")
# the generation-free membership scores (a config's `detectors`; memnb.metric.membership_scores.STORED): names (K,),
# training (R, K, N) and held-out (R, K, m) scores, the held-out points' group codes (R, m)
EPOCH_OPTIONAL += ("detector_names", "detector_train", "detector_held", "detector_held_groups")
SCORE_ARRAYS = ("detector_names", "detector_train", "detector_held", "detector_held_groups")
DATA_ARRAYS = ("train_points", "groups", "test_points")
NOT_RECORDED = (MANIFEST, CHECKPOINT)  # the manifest itself; the checkpoint verifies itself (store.checkpoint)


def epoch_file(path: Path | str, epoch: int) -> Path:
    return Path(path) / EPOCHS / f"epoch_{int(epoch):06d}.npz"


def score_file(path: Path | str, epoch: int) -> Path:
    """The file of an epoch scored without samples (generation-free detectors only)."""
    return Path(path) / SCORES / f"epoch_{int(epoch):06d}.npz"


def stored_score_epochs(path: Path | str) -> list[int]:
    """The epochs scored without samples (their files in the run's scores folder), in order."""
    folder = Path(path) / SCORES
    return sorted(epoch_of(f.name) for f in folder.glob("epoch_*.npz") if not f.name.startswith("."))


def epoch_name(epoch: int) -> str:
    """The epoch file's name relative to the run, as the manifest records it."""
    return f"{EPOCHS}/epoch_{int(epoch):06d}.npz"


def epoch_of(name: str | Path) -> int:
    """The epoch of an epoch file's name (``epoch_000040.npz`` -> 40)."""
    return int(Path(name).stem.split("_")[1])


def stored_epochs(path: Path | str) -> list[int]:
    """The epochs whose files are in the run's epochs folder, in order (temporaries excluded)."""
    folder = Path(path) / EPOCHS
    return sorted(epoch_of(f.name) for f in folder.glob("epoch_*.npz") if not f.name.startswith("."))


def is_run(path: Path | str) -> bool:
    """Whether `path` is a folder holding a run's config.json (the one test of run discovery)."""
    return (Path(path) / CONFIG).is_file()


def epoch_stamp(epoch: int) -> np.ndarray:
    """The array an epoch file keeps as its "epoch": its own number, checked when read."""
    return np.array(int(epoch), np.int64)
