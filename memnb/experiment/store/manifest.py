"""The manifest: one record of a run's state, read once per open and written by one function.

``manifest.json`` is a flat JSON object (as every memnb version wrote it, so old runs keep loading). `Manifest`
gives it a shape: the fields every run has (complete, fingerprint, files, stopped_at_epoch) and optional
sections, each a dict of the keys below (absent keys are absent, never invented):

- training (run_experiment): trained_epochs, callbacks, previous_stop, repaired, memnb_version, torch_version,
  device, resumed_from_epoch, wall_s_this_session, train_s, generate_s, metric_s;
- monitoring (memnb.Monitor): kind, observed_epochs, observe_s;
- tables_only (memnb.experiment.archive): tables_only, made_on, evaluated_epochs, source;
- packed (memnb.experiment.packed): packed.

Keys of no section (written by a later memnb) are kept in ``extra`` and written back unchanged. A Manifest is a
read-only Mapping of the flat keys, so ``manifest["train_s"]`` and ``manifest.get(...)`` read it as the file does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...core.storage import CorruptRunError, write_json
from .layout import MANIFEST

__all__ = ["Manifest", "read_manifest", "write_manifest", "SECTIONS"]

SECTIONS = {
    "training": (
        "trained_epochs",
        "callbacks",
        "previous_stop",
        "repaired",
        "memnb_version",
        "torch_version",
        "device",
        "resumed_from_epoch",
        "wall_s_this_session",
        "train_s",
        "generate_s",
        "metric_s",
    ),
    "monitoring": ("kind", "observed_epochs", "observe_s"),
    "tables_only": ("tables_only", "made_on", "evaluated_epochs", "source"),
    "packed": ("packed",),
}
CORE = ("complete", "fingerprint", "files", "stopped_at_epoch")


@dataclass(frozen=True)
class Manifest(Mapping):
    """A run's manifest (see the module docstring); `present`: whether manifest.json exists."""

    complete: bool = False
    fingerprint: str | None = None
    files: dict[str, dict] = field(default_factory=dict)
    stopped_at_epoch: int | None = None
    training: dict[str, Any] = field(default_factory=dict)
    monitoring: dict[str, Any] = field(default_factory=dict)
    tables_only: dict[str, Any] = field(default_factory=dict)
    packed: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    present: bool = True

    # -- the flat form of the file ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "complete": bool(self.complete),
            "fingerprint": self.fingerprint,
            "files": dict(sorted(self.files.items())),
            "stopped_at_epoch": self.stopped_at_epoch,
        }
        for name in SECTIONS:
            out.update(getattr(self, name))
        out.update(self.extra)
        if out["fingerprint"] is None:
            del out["fingerprint"]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        files = d.get("files") or {}
        sections = {name: {k: d[k] for k in keys if k in d} for name, keys in SECTIONS.items()}
        known = set(CORE).union(*SECTIONS.values())
        return cls(
            complete=bool(d.get("complete")),
            fingerprint=d.get("fingerprint"),
            files=dict(files) if isinstance(files, Mapping) else {},
            stopped_at_epoch=d.get("stopped_at_epoch"),
            extra={k: v for k, v in d.items() if k not in known},
            **sections,
        )

    def replace(self, **changes: Any) -> Manifest:
        """A copy with fields changed; section dicts given here are merged into the current ones."""
        merged = {k: {**getattr(self, k), **v} if k in SECTIONS else v for k, v in changes.items()}
        return replace(self, **merged)

    @property
    def is_tables_only(self) -> bool:
        return bool(self.tables_only.get("tables_only"))

    # -- Mapping of the flat keys -------------------------------------------------------------------
    def _flat(self) -> dict[str, Any]:
        return self.to_dict() if self.present else {"complete": False}

    def __getitem__(self, key: str) -> Any:
        return self._flat()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._flat())

    def __len__(self) -> int:
        return len(self._flat())


def read_manifest(path: Path | str, advice=None) -> Manifest:
    """The manifest of run `path` (an empty one, ``present=False``, when there is none: a run being written).

    CorruptRunError naming the file when it is unreadable or not a JSON object; `advice(name)` (optional) adds
    what to do.
    """
    f = Path(path) / MANIFEST
    tip = f"; {advice(MANIFEST)}" if advice is not None else ""
    try:
        d = json.loads(f.read_text())
    except FileNotFoundError:
        return Manifest(present=False)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptRunError(f"{f} is unreadable ({type(e).__name__}: {e}){tip}") from None
    if not isinstance(d, dict):
        raise CorruptRunError(f"{f} holds a {type(d).__name__}, not a JSON object{tip}")
    return Manifest.from_dict(d)


def write_manifest(path: Path | str, manifest: Manifest) -> None:
    """Write run `path`'s manifest.json atomically: the one place a manifest is written."""
    write_json(Path(path) / MANIFEST, manifest.to_dict())
