"""One writer per run: an exclusive lock per run directory, released by the OS when its process dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from .layout import LOCKS

__all__ = ["run_lock", "RunLockedError"]


class RunLockedError(RuntimeError):
    """Another process holds the run (run_experiment(..., wait=False))."""


_HELD: set[str] = set()  # run locks this process holds (run_lock is re-entrant within a process)


@contextlib.contextmanager
def run_lock(root: Path | str, name: str, wait: bool = True):
    """Exclusive lock on run `name` under `root` (``root/.locks/<name>.lock``).

    Yields the seconds spent waiting. wait=False: RunLockedError naming the holder's pid instead of waiting.
    Re-entrant within a process (a sweep's task holds it around run_experiment, which takes it too).
    """
    lock_dir = Path(root) / LOCKS
    lock_dir.mkdir(parents=True, exist_ok=True)
    key = str((lock_dir / f"{name}.lock").resolve())
    if key in _HELD:
        yield 0.0
        return
    t0 = time.perf_counter()
    with open(key, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            if not wait:
                raise RunLockedError(
                    f"run {name} is being written by process {holder} (lock {key}); wait for it, or call "
                    "run_experiment with wait=True to wait"
                ) from None
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        _HELD.add(key)
        try:
            yield time.perf_counter() - t0
        finally:
            _HELD.discard(key)
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
