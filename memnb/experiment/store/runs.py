"""Where runs live and how they are found: one runs-root policy, one discovery, one resolver.

Runs root: the `root` given, else $MEMNB_RUNS (read at the call) when set and non-empty, else the
``outputs/runs`` folder of the memnb checkout holding the working directory (notebooks run in notebooks/ and still
write to the project's outputs/), else ``./outputs/runs``. Every entry point (run_experiment, memnb.Monitor, the
verdict, the explorer, sweeps, the command lines) resolves it here.

Discovery: a run is a folder holding config.json (`layout.is_run`); `list_runs` opens each, and one that cannot be
opened (damaged, half-written, holding no run) is reported and left out: it never breaks listing the others.
Resolution: every function that takes runs takes a `Results`, a run directory or a run name under the root alike.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ...core.storage import CorruptRunError
from .layout import is_run, stored_score_epochs

__all__ = ["runs_root", "project_root", "list_runs", "resolve_run", "RUNS_ENV"]

RUNS_ENV = "MEMNB_RUNS"


def project_root(start: Path | str | None = None) -> Path:
    """The memnb checkout holding `start` (default: the working directory), else the working directory."""
    here = Path.cwd() if start is None else Path(start)
    for d in (here.resolve(), *here.resolve().parents):
        if (d / "pyproject.toml").exists() and (d / "memnb").is_dir():
            return d
    return here.resolve()


def runs_root(root: Path | str | None = None) -> Path:
    """`root` if given, else $MEMNB_RUNS if set and non-empty, else <project>/outputs/runs (see the module docstring)."""
    if root not in (None, ""):
        return Path(root)
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env)
    return project_root() / "outputs" / "runs"


def list_runs(root: Path | str | None = None, skipped: list[str] | None = None) -> list:
    """`Results` of every run under `root` (see runs_root) that can be opened and holds an evaluated epoch, newest
    first.

    A folder that cannot be opened, or holds no evaluated epoch yet, is left out; its error is appended to `skipped` when a list is given, else
    reported in one warning. A Monitor run scored only without samples is left out too (nothing to tabulate) and
    named as such, with the call that opens its scores.
    """
    from ..results import Results

    folder = runs_root(root)
    if not folder.is_dir():
        return []
    found, bad = [], []
    for p in sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_run(p)):
        try:
            res = Results(p)
        except (CorruptRunError, OSError, ValueError) as e:
            bad.append(f"{p.name}: {e}")
            continue
        if res.evaluated_epochs:
            found.append(res)
        elif scored := stored_score_epochs(p):  # a Monitor's observations without samples: nothing to tabulate
            bad.append(
                f"{p.name}: holds detector scores only ({len(scored)} epoch{'s' * (len(scored) != 1)} scored without samples, no sampled "
                f"epoch to tabulate); open it with memnb.Results({str(p)!r}).detector_scores()"
            )
        else:  # nothing to show or judge yet: started (or killed) before its first evaluated epoch
            bad.append(f"{p.name}: holds no evaluated epoch yet (being started, or stopped before its first epoch)")
    if skipped is not None:
        skipped.extend(bad)
    elif bad:
        warnings.warn(f"skipped {len(bad)} unreadable run(s) under {folder}:\n  " + "\n  ".join(bad), stacklevel=2)
    return sorted(found, key=lambda r: (r.path / "config.json").stat().st_mtime, reverse=True)


def resolve_run(run, root: Path | str | None = None):
    """A `Results` of `run`: a Results (returned as it is), a run directory, or a run name under `root`."""
    from ...core.validate import fail
    from ..results import Results

    if isinstance(run, Results):
        return run
    if not isinstance(run, (str, os.PathLike)) or str(run) == "":
        fail("run", run, "a memnb.Results, a run directory or a run name under the runs root")
    p = Path(run)
    if is_run(p):
        return Results(p)
    under = runs_root(root) / p
    if not p.is_absolute() and is_run(under):
        return Results(under)
    fail(
        "run",
        str(run),
        f"a memnb.Results, a run directory (a folder holding config.json) or a run name under {runs_root(root)}",
    )
