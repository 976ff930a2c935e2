"""A run's config.json: written once, read once per open, dispatched on its "kind"."""

from __future__ import annotations

import json
from pathlib import Path

from ...core.config import ExperimentConfig
from ...core.monitor_config import KIND as MONITOR_KIND
from ...core.monitor_config import MonitorConfig
from ...core.run_config import RunConfig
from ...core.storage import CorruptRunError, write_json
from .advice import advice as store_advice
from .layout import CONFIG, DATA, EPOCHS, MANIFEST

__all__ = ["read_config", "write_config", "config_from_dict", "config_kind"]


def config_from_dict(d: dict) -> RunConfig:
    """An ExperimentConfig, or a MonitorConfig when ``d["kind"]`` says "monitor"."""
    if isinstance(d, dict) and d.get("kind") == MONITOR_KIND:
        return MonitorConfig.from_dict(d)
    return ExperimentConfig.from_dict(d)


def read_config(path: Path | str, advice=None) -> RunConfig:
    """The config of run `path`; CorruptRunError naming the file (and `advice(name)`, optional) when it cannot be read."""
    f = Path(path) / CONFIG
    try:
        return config_from_dict(json.loads(f.read_text()))
    except FileNotFoundError:
        held = [n for n in (DATA, EPOCHS, MANIFEST) if (Path(path) / n).exists()]
        if not held:
            raise CorruptRunError(f"{path} has no {CONFIG}: not a memnb run directory") from None
        tip = advice(CONFIG) if advice is not None else store_advice(path, CONFIG, config_kind(path))
        raise CorruptRunError(f"{f} is missing (the folder holds a run's {', '.join(held)}); {tip}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as e:
        tip = advice(CONFIG) if advice is not None else store_advice(path, CONFIG, config_kind(path))
        raise CorruptRunError(f"{f} is unreadable or invalid ({type(e).__name__}: {e}); {tip}") from None


def config_kind(path: Path | str) -> str | None:
    """The "kind" of run `path` ("experiment" or "monitor") from its config.json, else its manifest; None: neither."""
    for name in (CONFIG, MANIFEST):  # an unreadable config.json: a monitored run's manifest says its kind too
        try:
            d = json.loads((Path(path) / name).read_text())
        except Exception:
            continue
        if isinstance(d, dict):
            return MONITOR_KIND if d.get("kind") == MONITOR_KIND else "experiment"
    return None


def write_config(path: Path | str, config: RunConfig) -> None:
    """Write run `path`'s config.json atomically (before any other file of a new run)."""
    write_json(Path(path) / CONFIG, config.to_dict())
