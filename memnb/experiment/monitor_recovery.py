"""memnb.Monitor's run folder on opening: a folder left without its config adopted, and a stored run recovered
(stale temporaries removed, data.npz written again when it is not the given data, damaged epoch files set aside,
the tables and the manifest rebuilt when damaged or behind the stored epochs). Functions of the Monitor `m`, whose
caller holds the run's lock.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core.storage import CorruptRunError, check_record
from ..core.validate import fail
from .monitor_inputs import config_from_files
from .results import TABLE_KEYS
from .store import (
    Manifest,
    read_data,
    read_epoch,
    read_manifest,
    remove_stale,
    set_aside,
    stored_epochs,
    write_config,
    write_data,
)
from .store.layout import CONFIG, DATA, EPOCHS, LOSS, MANIFEST, TABLE, ZU, epoch_file, epoch_name

__all__ = ["adopt_leftovers", "config_again", "recover"]


def adopt_leftovers(m) -> None:
    """A folder without config.json: empty, or left by a first observation killed before its config was written
    (data.npz, temporaries; no epoch): started anew; holding this data's epochs: its config is written again
    (`config_from_files`). One holding other files is refused."""
    if not m.path.exists():
        return
    remove_stale(m.path)
    held = sorted(p.name for p in m.path.iterdir() if not p.name.startswith("."))
    if stored_epochs(m.path) and config_again(m):
        return m._reopen()
    if stored_epochs(m.path) or set(held) - {DATA, EPOCHS}:
        fail(
            "name",
            m.path.name,
            f"a new folder or a monitored run's: {m.path} holds {held[:4]} but no {CONFIG}; move it away or "
            "pass another name",
        )
    if DATA in held:
        (m.path / DATA).unlink()  # the given arrays, written by a start that a kill ended: written again


def config_again(m) -> bool:
    """Write config.json again from the stored epochs when data.npz holds the given data; whether it was."""
    config = config_from_files(m.path, m._template, m._data_arrays(), m.null_fn is not None)
    if config is None:
        return False
    if (m.path / CONFIG).exists():
        set_aside(m.path, CONFIG)
    write_config(m.path, config)
    warnings.warn(f"{m.path / CONFIG}: written again from the given data and the stored epochs", stacklevel=4)
    return True


def recover(m) -> None:
    """Stale temporaries removed; data.npz written again when it is not the given data; a damaged epoch file set
    aside; the tables and the manifest written again when damaged or behind the stored epochs."""
    remove_stale(m.path)
    try:
        manifest = read_manifest(m.path)
    except CorruptRunError:
        set_aside(m.path, MANIFEST)
        manifest = Manifest(present=False)
    given = m._data_arrays()
    if DATA in manifest.files and (m.path / DATA).exists():
        # the config's data_sha256 is the given data's (checked by _reopen); the file's checksum is the record's:
        # data.npz need not be read back (600 MB for a CIFAR-sized set)
        same = check_record(m.path / DATA, manifest.files[DATA]) is None
    else:
        try:
            data = read_data(m.path)
            same = set(given) <= set(data) and all(np.array_equal(data[k], v) for k, v in given.items())
        except CorruptRunError:
            same = False
    if not same:
        write_data(m.path, given)
        warnings.warn(f"{m.path / DATA}: written again from the given data", stacklevel=3)
    keys = None if m.verify else TABLE_KEYS
    for e in stored_epochs(m.path):
        try:
            n = read_epoch(m.path, e, keys=keys)["summary"].shape[0]
            if n != m.n_repeats:
                raise CorruptRunError(f"{epoch_file(m.path, e)} holds {n} repeats, the run {m.n_repeats}")
        except CorruptRunError as err:
            dest = set_aside(m.path, epoch_name(e))
            warnings.warn(f"{err}: set aside as {dest}; observe epoch {e} again", stacklevel=3)
    gone = sorted(set(manifest.get("observed_epochs", [])) - set(stored_epochs(m.path)))
    if gone:
        warnings.warn(f"{m.path}: the epoch files of epochs {gone} are gone; observe them again", stacklevel=3)
    m._observe_s, m._previous_observe_s = 0.0, float(manifest.get("observe_s", 0.0))
    derived_ok = all(check_record(m.path / n, manifest.files[n]) is None for n in (TABLE, ZU, LOSS, DATA)
                     if n in manifest.files)  # fmt: skip
    if not same or not derived_ok or manifest.get("observed_epochs") != stored_epochs(m.path):
        m._consolidate()
