"""The run store: the one owner of a run directory (its layout, config, manifest, files, checks, advice, lock,
runs root and discovery). `memnb.Results` reads through it; run_experiment, memnb.Monitor, packing and archives
write through it.

- layout: every file name and the arrays of an epoch file and of data.npz;
- configs: config.json, read and written with the dispatch on its kind;
- manifest: the Manifest record, read once per open and written by one function;
- files: epoch files (one commit per epoch), data.npz, the files' size-and-checksum records;
- checkpoint: a checkpoint that verifies itself;
- advice: what to do about a damaged file (each piece tested by following it);
- lock: one writer per run;
- runs: the runs-root policy, run discovery and the resolver of Results / paths / names.
"""

from .advice import DAMAGED, REBUILT, advice
from .checkpoint import read_checkpoint, write_checkpoint
from .configs import config_kind, read_config, write_config
from .files import (
    load_npz,
    read_data,
    read_epoch,
    read_scores,
    records,
    remove_stale,
    set_aside,
    write_data,
    write_epoch,
    write_scores,
)
from .layout import epoch_file, epoch_name, epoch_of, is_run, score_file, stored_epochs, stored_score_epochs
from .lock import RunLockedError, run_lock
from .manifest import Manifest, read_manifest, write_manifest
from .runs import list_runs, project_root, resolve_run, runs_root

__all__ = [
    "DAMAGED",
    "REBUILT",
    "advice",
    "read_checkpoint",
    "write_checkpoint",
    "config_kind",
    "read_config",
    "write_config",
    "load_npz",
    "read_data",
    "read_epoch",
    "records",
    "set_aside",
    "remove_stale",
    "write_data",
    "write_epoch",
    "read_scores",
    "write_scores",
    "score_file",
    "stored_score_epochs",
    "epoch_file",
    "epoch_name",
    "epoch_of",
    "is_run",
    "stored_epochs",
    "RunLockedError",
    "run_lock",
    "Manifest",
    "read_manifest",
    "write_manifest",
    "list_runs",
    "project_root",
    "resolve_run",
    "runs_root",
]
