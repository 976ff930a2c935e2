"""Sweeps: a grid of configurations, each one (all its repeats batched) run as one Dask task.

A study is a grid (datasets x sizes x injections x seeds). `expand_grid` turns a base
configuration and a grid into configurations; `run_sweep` runs every one that is not finished
through `run_experiment`, on an embedded `LocalCluster` sized to the machine, on an existing
Dask cluster (a scheduler address or a `Client`), or on SLURM (`slurm_cluster`), and aggregates
every finished run into one tidy table.

Fault tolerance comes from the two layers, each doing what it already does:

- a run directory is resumable (`run_experiment` writes atomically and checkpoints), so a task
  started again, anywhere, continues where the last attempt stopped and ends with the numbers
  of an uninterrupted run;
- Dask reschedules the tasks of a worker that dies (up to ``distributed.scheduler.allowed-failures``
  times) and retries tasks that raise (`retries`).

A sweep started again after a crash of its driver skips finished configurations and resumes
partial ones. Two attempts at the same run never write at once: each task holds an exclusive
`flock` on ``<root>/.locks/<run>.lock`` (released by the OS when its process dies).

Modules: the grid and the runs' status (`sweep_grid`), the Dask task, the workers' environment and the clusters
(`sweep_workers`, see its docstring for ``MALLOC_TRIM_THRESHOLD_``), the aggregate tables (`sweep_tables`); this one
runs a sweep (`run_sweep`) and names the public API (every name above can be imported from here).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..core.config import CONFIG_FIELDS, ExperimentConfig
from ..core.storage import write_json, write_parquet
from ..core.validate import check_int
from ..experiment.results import Results
from ..experiment.runner import run_dir
from ..experiment.store import is_run
from .sweep_grid import STATUSES, config_frame, expand_grid, run_status, sweep_name
from .sweep_tables import grid_summary, sweep_table
from .sweep_workers import (
    connect,
    dask_config,
    local_cluster,
    machine_cores,
    malloc_trim_threshold_at_start,
    run_one,
    slurm_cluster,
    worker_environ,
)

__all__ = [
    "CONFIG_FIELDS",
    "EXECUTORS",
    "STATUSES",
    "Sweep",
    "SweepError",
    "config_frame",
    "dask_config",
    "expand_grid",
    "grid_summary",
    "local_cluster",
    "machine_cores",
    "malloc_trim_threshold_at_start",
    "run_one",
    "run_status",
    "run_sweep",
    "slurm_cluster",
    "sweep_name",
    "sweep_table",
    "worker_environ",
]

EXECUTORS = ("dask", "serial")


class SweepError(RuntimeError):
    """Some configurations of a sweep failed after their retries; the others are finished and aggregated
    (`.sweep` holds the Sweep, its log and its table)."""

    def __init__(self, message: str, sweep: Sweep):
        super().__init__(message)
        self.sweep = sweep


# -- the sweep ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Sweep:
    """What a sweep ran and where its table is; `table()` reads the aggregate."""

    name: str
    root: Path
    out_dir: Path
    configs: list[ExperimentConfig]
    log: pd.DataFrame  # one row per configuration: run, status_before, and what its task reported
    failed: dict[str, str]
    wall_s: float

    @property
    def runs(self) -> list[Path]:
        return [run_dir(c, self.root) for c in self.configs]

    def table(self) -> pd.DataFrame:
        return pd.read_parquet(self.out_dir / "table.parquet")

    def results(self) -> list[Results]:
        return [Results(p) for p in self.runs if is_run(p)]


def _check_sweep(configs, executor: str, torch_threads: int, retries: int) -> list[ExperimentConfig]:
    """The configurations as a list, every argument validated before any work."""
    configs = list(configs)
    if not configs or not all(isinstance(c, ExperimentConfig) for c in configs):
        raise ValueError("configs is invalid; allowed: a non-empty list of ExperimentConfig (see expand_grid)")
    if executor not in EXECUTORS:
        raise ValueError(f"executor = {executor!r} is invalid; allowed: one of {EXECUTORS}")
    worker_environ(torch_threads)  # validates torch_threads
    check_int("retries", retries, 0)
    if len({c.run_name() for c in configs}) != len(configs):
        raise ValueError("configs is invalid: the same configuration appears twice; allowed: distinct configurations")
    return configs


def _run_serial(todo, root: Path, torch_threads: int, bar) -> tuple[dict, dict, dict]:
    """(reports, failures, cluster info) of running `todo` one after another in this process."""
    import torch

    reports, failed = {}, {}
    threads = torch.get_num_threads()
    try:
        for c in todo:
            try:
                reports[c.run_name()] = run_one(c.to_dict(), str(root), torch_threads)
            except Exception as e:  # the others still run
                failed[c.run_name()] = f"{type(e).__name__}: {e}"
            bar.update(1)
    finally:
        torch.set_num_threads(threads)
    return reports, failed, {}


def _run_dask(
    todo, root: Path, torch_threads: int, retries: int, bar, client, address, n_workers, cluster_kwargs
) -> tuple[dict, dict, dict]:
    """(reports, failures, cluster info) of running `todo` as one Dask task each."""
    from distributed import as_completed

    reports, failed, info = {}, {}, {}
    if not todo:
        return reports, failed, info
    dask_client, close = connect(client, address, n_workers, torch_threads, cluster_kwargs)
    try:
        info = {
            "scheduler": dask_client.scheduler.address,
            "workers": len(dask_client.scheduler_info(n_workers=-1)["workers"]),
        }
        futures = {
            dask_client.submit(
                run_one,
                c.to_dict(),
                str(root),
                torch_threads,
                key=f"memnb-run-{c.run_name()}",
                retries=retries,
                pure=False,
            ): c.run_name()
            for c in todo
        }
        for future in as_completed(futures):
            run = futures[future]
            try:
                reports[run] = future.result()
            except Exception as e:  # includes KilledWorker: the task killed its workers too often
                failed[run] = f"{type(e).__name__}: {e}"
            bar.update(1)
            bar.set_postfix_str(run, refresh=True)
    finally:
        close()
    return reports, failed, info


def _sweep_log(configs, status: dict, reports: dict, failed: dict, root: Path) -> pd.DataFrame:
    """One row per configuration: config fields, status before, what its task reported, error, complete now."""
    log = config_frame(configs)
    log.insert(1, "status_before", [status[c.run_name()] for c in configs])
    extra = pd.DataFrame(
        [{"run": r, **{k: v for k, v in rep.items() if k != "run"}} for r, rep in reports.items()],
        columns=[
            "run",
            "status_before",
            "complete",
            "resumed_from_epoch",
            "wall_s",
            "lock_wait_s",
            "host",
            "pid",
            "torch_threads",
            "malloc_trim_threshold",
        ],
    )
    log = log.merge(extra.drop(columns="status_before"), on="run", how="left")
    log["error"] = log["run"].map(failed)
    log["complete"] = [run_status(c, root) == "complete" for c in configs]
    trimmed = sorted({rep["malloc_trim_threshold"] for rep in reports.values() if rep.get("malloc_trim_threshold")})
    if trimmed:
        warnings.warn(
            f"some workers ran with MALLOC_TRIM_THRESHOLD_={trimmed[0]} (Dask's default), which slows torch; "
            "start them with memnb.workflows.sweep.dask_config() set (see docs/sweeps.md)",
            stacklevel=3,
        )
    return log


def run_sweep(
    configs: Sequence[ExperimentConfig],
    root: Path | str | None = None,
    *,
    out_dir: Path | str | None = None,
    executor: str = "dask",
    client=None,
    address: str | None = None,
    n_workers: int | None = None,
    torch_threads: int = 1,
    retries: int = 2,
    progress: bool = True,
    cluster_kwargs: dict | None = None,
) -> Sweep:
    """Run every configuration not yet finished, then aggregate all finished runs.

    configs: from `expand_grid`. root: where runs live (as run_experiment's). out_dir: where the
    sweep writes ``table.parquet`` (every finished run, with config columns), ``runs.parquet`` (one
    row per configuration: config, status and its task's report) and ``sweep.json``; default
    ``<root>/../sweeps/<sweep_name>`` (``outputs/sweeps/...`` beside ``outputs/runs``).
    executor: ``dask`` (default): each configuration is one task, on `client`, else on the cluster
    at `address`, else on an embedded LocalCluster of `n_workers` (None: cores // torch_threads)
    processes; ``serial``: one after another in this process, with `torch_threads` threads.
    retries: re-runs of a task that raised (a dead worker's tasks are rescheduled by Dask anyway).
    A configuration that still fails does not stop the others: every other one is finished and
    aggregated, then SweepError names the failures.
    """
    from tqdm.auto import tqdm

    configs = _check_sweep(configs, executor, torch_threads, retries)
    root = run_dir(configs[0], root).parent
    name = sweep_name(configs)
    out_dir = Path(out_dir) if out_dir is not None else root.parent / "sweeps" / name
    status = {c.run_name(): run_status(c, root) for c in configs}
    todo = [c for c in configs if status[c.run_name()] != "complete"]

    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), disable=not progress, desc=name, unit="config")
    t0 = time.perf_counter()
    if executor == "serial":
        reports, failed, info = _run_serial(todo, root, torch_threads, bar)
    else:
        reports, failed, info = _run_dask(
            todo, root, torch_threads, retries, bar, client, address, n_workers, cluster_kwargs
        )
    bar.close()
    wall = time.perf_counter() - t0

    log = _sweep_log(configs, status, reports, failed, root)
    write_parquet(out_dir / "table.parquet", sweep_table(configs, root))
    write_parquet(out_dir / "runs.parquet", log)
    write_json(
        out_dir / "sweep.json",
        {
            "name": name,
            "runs_root": str(root),
            "n_configs": len(configs),
            "skipped": len(configs) - len(todo),
            "ran": len(todo) - len(failed),
            "failed": failed,
            "wall_s": round(wall, 3),
            "executor": executor,
            "torch_threads": torch_threads,
            **info,
            "runs": [c.run_name() for c in configs],
        },
    )
    sweep = Sweep(name, Path(root), out_dir, configs, log, failed, wall)
    if failed:
        raise SweepError(
            f"{len(failed)} of {len(configs)} configurations failed (the other runs are finished and "
            f"aggregated in {out_dir}): " + "; ".join(f"{k}: {v}" for k, v in failed.items()),
            sweep,
        )
    return sweep
