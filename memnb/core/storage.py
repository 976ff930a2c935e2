"""Atomic file writes: a run killed at any moment leaves either the old file or the new one, never half of one.

A write that fails (a full disk, a read-only folder) raises `StorageError` naming the file and the
cause, and leaves what was stored before untouched: the run resumes when started again. Files get
the permissions of the process's umask (as `open` would give them), so others sharing a runs
folder can read them. `file_record` and `check_record` are how a run verifies its files (sizes and
SHA-256 checksums kept in its manifest).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class CorruptRunError(RuntimeError):
    """A results directory that cannot be trusted: missing or unreadable files, or another config's."""


class StorageError(OSError):
    """A file could not be written (its path and the cause are in the message); nothing stored before is lost."""


TMP_SUFFIX = ".tmp"  # temporary files are ".<name>.<random>.tmp" beside their target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the rename would keep it
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, (KeyboardInterrupt, SystemExit, StorageError)):
            raise
        if isinstance(e, OSError) or "inline_container" in str(e) or "unexpected pos" in str(e):
            # torch.save reports a full disk as "[enforce fail at inline_container.cc] unexpected pos"
            cause = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else f"{type(e).__name__}: {e}"
            if not isinstance(e, OSError) and _free_bytes(path.parent) < 1 << 20:
                cause = f"{os.strerror(errno.ENOSPC)} ({type(e).__name__}: {e})"
            raise StorageError(
                getattr(e, "errno", None) or errno.EIO,
                f"could not write {path}: {cause}; everything stored before is intact: "
                "free space (or fix the folder's permissions) and run again to resume",
            ) from e
        raise


def _free_bytes(folder: Path) -> int:
    try:
        st = os.statvfs(folder)
        return st.f_bavail * st.f_frsize
    except OSError:
        return 0


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files left by writes that a kill interrupted (".<name>.<random>.tmp"), under `folder`."""
    return sorted(p for p in Path(folder).rglob(f".*{TMP_SUFFIX}") if p.is_file())


def file_record(path: Path) -> dict[str, Any]:
    """{"size": bytes, "sha256": hex digest} of a file, as a run's manifest keeps it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"size": os.path.getsize(path), "sha256": h.hexdigest()}


def check_record(path: Path, record: dict[str, Any], checksum: bool = True) -> str | None:
    """Why `path` is not what `record` says (missing, other size, other checksum), or None when it is."""
    path = Path(path)
    if not path.is_file():
        return "is missing"
    size = os.path.getsize(path)
    if size != record.get("size"):
        return f"has {size} bytes, the manifest says {record.get('size')}"
    if checksum and file_record(path)["sha256"] != record.get("sha256"):
        return "has another checksum than the manifest says (its content changed)"
    return None


def write_json(path: Path, obj: Any) -> None:
    _atomic(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    _atomic(path, lambda f: np.savez(f, **arrays))


def write_parquet(path: Path, df) -> None:
    _atomic(path, lambda f: df.to_parquet(f, index=False))


def write_bytes_of(path: Path, serialize: Callable[[], bytes]) -> None:
    """Write the bytes `serialize()` returns atomically; its failures (torch.save's full disk) are StorageErrors."""
    _atomic(path, lambda f: f.write(serialize()))


def write_torch(path: Path, obj: Any) -> None:
    import torch

    _atomic(path, lambda f: torch.save(obj, f))
