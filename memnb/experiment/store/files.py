"""The files of a run: epoch files and data.npz (written and read here only), and the size-and-SHA-256 records.

An epoch file is one commit: written whole (atomically) with every array of its epoch and its own epoch number,
so a kill loses at most the epoch in progress and a renamed or swapped file is refused. Its zip container checks
a CRC-32 per array, so a changed byte is found when it is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.storage import CorruptRunError, file_record, write_npz
from .layout import DATA, DATA_ARRAYS, EPOCH_ARRAYS, NOT_RECORDED, SCORE_ARRAYS, epoch_file, epoch_stamp, score_file

__all__ = ["write_epoch", "read_epoch", "write_data", "read_data", "records", "load_npz", "set_aside", "remove_stale"]


def load_npz(f: Path, required: tuple[str, ...], advice=None, keys: tuple[str, ...] | None = None) -> dict:
    """The arrays of npz file `f` (only `keys` when given); CorruptRunError naming the file, with `advice(name)`."""
    tip = f"; {advice(f.name)}" if advice is not None else ""
    try:
        with np.load(f) as z:
            names = z.files if keys is None else [k for k in keys if k in z.files]
            arrays = {k: z[k] for k in names}
    except FileNotFoundError:
        raise CorruptRunError(f"{f} is missing{tip}") from None
    except Exception as e:  # truncated, a changed byte (Bad CRC-32), or a foreign file
        raise CorruptRunError(f"{f} is unreadable ({type(e).__name__}: {e}){tip}") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CorruptRunError(f"{f} lacks arrays {missing}{tip}")
    return arrays


def _write_stamped(f: Path, epoch: int, arrays: dict[str, np.ndarray]) -> Path:
    """One atomic file of `arrays` with its own epoch number."""
    write_npz(f, {**arrays, "epoch": epoch_stamp(epoch)})
    return f


def _check_stamp(f: Path, stamp, epoch: int, advice=None) -> None:
    """CorruptRunError when file `f` holds another epoch than `epoch` (its stamp; None: a file older than stamps)."""
    if stamp is not None and int(stamp) != int(epoch):
        tip = f"; {advice(f.name)}" if advice is not None else ""
        raise CorruptRunError(f"{f} holds epoch {int(stamp)}, not {epoch} (renamed or swapped){tip}")


def write_epoch(path: Path | str, epoch: int, arrays: dict[str, np.ndarray]) -> Path:
    """Commit evaluated `epoch` of run `path`: every array in one atomic file, with its epoch number."""
    return _write_stamped(epoch_file(path, epoch), epoch, arrays)


def read_epoch(path: Path | str, epoch: int, advice=None, keys: tuple[str, ...] | None = None) -> dict:
    """The arrays of evaluated `epoch` (only `keys` when given, plus the required ones' check when keys is None).

    CorruptRunError when the file is missing, unreadable, lacks a required array or holds another epoch.
    """
    f = epoch_file(path, epoch)
    wanted = None if keys is None else tuple(dict.fromkeys((*keys, "epoch")))
    arrays = load_npz(f, EPOCH_ARRAYS if keys is None else (), advice, wanted)
    stamp = arrays.get("epoch") if keys is not None and "epoch" in keys else arrays.pop("epoch", None)
    _check_stamp(f, stamp, epoch, advice)
    return arrays


def write_scores(path: Path | str, epoch: int, arrays: dict[str, np.ndarray]) -> Path:
    """Commit the generation-free scores of `epoch` of run `path` (an epoch observed without samples)."""
    return _write_stamped(score_file(path, epoch), epoch, arrays)


def read_scores(path: Path | str, epoch: int, advice=None) -> dict:
    """The scores of `epoch` observed without samples; CorruptRunError when missing, unreadable or another epoch's."""
    f = score_file(path, epoch)
    arrays = load_npz(f, SCORE_ARRAYS, advice)
    _check_stamp(f, arrays.pop("epoch", None), epoch, advice)
    return arrays


def write_data(path: Path | str, arrays: dict[str, np.ndarray]) -> None:
    write_npz(Path(path) / DATA, arrays)


def read_data(path: Path | str, advice=None) -> dict[str, np.ndarray]:
    return load_npz(Path(path) / DATA, DATA_ARRAYS, advice)


def records(path: Path | str) -> dict[str, dict]:
    """{file relative to the run: {"size", "sha256"}} of every result file of a run (the manifest's "files")."""
    out = {}
    path = Path(path)
    for f in sorted(path.rglob("*")):
        name = str(f.relative_to(path))
        if f.is_file() and name not in NOT_RECORDED and not any(p.startswith(".") for p in Path(name).parts):
            out[name] = file_record(f)
    return out


def set_aside(path: Path | str, name: str) -> Path:
    """Move run `path`'s damaged file `name` into its ``.damaged/`` folder (never deleted: it may still be of use);
    the new path. The folder is hidden: readers and records skip it."""
    from .advice import DAMAGED

    src = Path(path) / name
    folder = Path(path) / DAMAGED
    folder.mkdir(exist_ok=True)
    stem = name.replace("/", "__")
    dest, i = folder / stem, 1
    while dest.exists():
        dest, i = folder / f"{stem}.{i}", i + 1
    src.replace(dest)
    return dest


def remove_stale(path: Path | str) -> int:
    """Remove the temporaries that writes cut short by a kill left in run `path` (the caller holds its lock: no
    write of another process is in progress); how many."""
    from ...core.storage import stale_temporaries

    stale = stale_temporaries(Path(path)) if Path(path).exists() else []
    for tmp in stale:
        tmp.unlink()
    return len(stale)
