"""The checkpoint of a trained run: written whole with its own SHA-256, so a resume trusts only what it verified.

torch.load reads a checkpoint with a flipped byte without a word (its zip container keeps no checksum that torch
checks), and a resume from it would give other numbers marked complete. So the checkpoint is saved as
``{"format": 2, "sha256": digest, "payload": bytes of torch.save(state)}`` and `read_checkpoint` recomputes the
digest before loading the payload. Checkpoints written before (a plain state dict) still load, unverified.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from ...core.storage import CorruptRunError, write_bytes_of

__all__ = ["write_checkpoint", "read_checkpoint"]

FORMAT = 2


def write_checkpoint(file: Path | str, state: dict[str, Any]) -> None:
    import torch

    def serialize() -> bytes:  # inside the atomic write: a failing torch.save is reported as a StorageError
        buf = io.BytesIO()
        torch.save(state, buf)
        payload = buf.getvalue()
        outer = io.BytesIO()
        torch.save({"format": FORMAT, "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}, outer)
        return outer.getvalue()

    write_bytes_of(file, serialize)


def read_checkpoint(file: Path | str, map_location=None) -> dict[str, Any]:
    """The state saved by `write_checkpoint`; CorruptRunError when the file is unreadable or its digest is wrong."""
    import torch

    try:
        outer = torch.load(file, map_location=map_location, weights_only=False)
    except Exception as e:
        raise CorruptRunError(f"{file} is unreadable ({type(e).__name__}: {e})") from None
    if not (isinstance(outer, dict) and outer.get("format") == FORMAT):
        return outer  # written before checkpoints carried their digest
    payload = outer.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != outer.get("sha256"):
        raise CorruptRunError(f"{file} has another checksum than it was written with (its content changed)")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)
    except Exception as e:
        raise CorruptRunError(f"{file} is unreadable ({type(e).__name__}: {e})") from None
