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

Workers get one torch thread each (`torch_threads`) and no ``MALLOC_TRIM_THRESHOLD_``: Dask's
nanny sets it in the workers it starts (``distributed.nanny.pre-spawn-environ``), which makes
glibc serve torch's large temporary buffers with fresh mmaps; `worker_environ` unsets it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.curves import first_epoch_above_null, t_halfwidth
from ..core.config import CONFIG_FIELDS, ExperimentConfig
from ..core.registry import CRITERIA
from ..core.storage import write_json, write_parquet
from ..core.vocabulary import DISPLAY_GROUPS, VALUES
from ..experiment.results import TABLE_COLUMNS, Results
from ..experiment.runner import run_dir, run_experiment, run_lock

EXECUTORS = ("dask", "serial")
STATUSES = ("new", "partial", "complete")


class SweepError(RuntimeError):
    """Some configurations of a sweep failed after their retries; the others are finished and aggregated
    (`.sweep` holds the Sweep, its log and its table)."""

    def __init__(self, message: str, sweep: Sweep):
        super().__init__(message)
        self.sweep = sweep


# -- the grid ---------------------------------------------------------------------------------------
def expand_grid(base: ExperimentConfig, grid: Mapping[str, Sequence[Any]]) -> list[ExperimentConfig]:
    """Every combination of `grid`'s values applied to `base`, in grid order, without repeats.

    grid: config field -> non-empty list of values, e.g. ``{"n_outliers": [20, 40], "seed": [0, 1]}``
    (4 configurations; the last field varies fastest). An empty grid is `[base]`. Each configuration
    is validated before anything runs; an invalid one raises ValueError naming the grid point.
    """
    if not isinstance(base, ExperimentConfig):
        raise TypeError(f"base must be an ExperimentConfig, got {type(base).__name__}")
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid = {grid!r} is invalid; allowed: a mapping of config field -> list of values")
    for name, values in grid.items():
        if name not in CONFIG_FIELDS:
            raise ValueError(f"grid field {name!r} is invalid; allowed: ExperimentConfig fields {list(CONFIG_FIELDS)}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid field {name!r} = {values!r} is invalid; allowed: a non-empty list of values")
    configs: dict[str, ExperimentConfig] = {}
    names = list(grid)
    for point in itertools.product(*(grid[n] for n in names)):
        changes = dict(zip(names, point))
        try:
            config = base.replace(**changes)
        except ValueError as e:
            raise ValueError(f"grid point {changes}: {e}") from None
        configs.setdefault(config.fingerprint(), config)
    return list(configs.values())


def sweep_name(configs: Sequence[ExperimentConfig]) -> str:
    """A name for the set of configurations (order-free): ``sweep-<count>-<hash>``."""
    digest = hashlib.sha256("".join(sorted(c.fingerprint() for c in configs)).encode()).hexdigest()[:10]
    return f"sweep-{len(configs)}-{digest}"


def run_status(config: ExperimentConfig, root: Path | str | None = None) -> str:
    """``complete`` (finished), ``partial`` (started: resumes from its checkpoint) or ``new``.

    A run stopped early by a callback (memnb.early_stopping) is ``partial``: a sweep, which runs
    without callbacks, trains it on to its configured epochs."""
    path = run_dir(config, root)
    if (path / "config.json").exists() and Results(path).complete:
        return "complete"
    return "partial" if path.exists() and any(path.iterdir()) else "new"


def config_frame(configs: Sequence[ExperimentConfig]) -> pd.DataFrame:
    """One row per configuration: ``run`` (its directory name) and every config field.

    Fields left to their default meaning (``n_test``, ``n_generate``, ``n_evals`` = None) are nullable
    integers, so the frame round-trips through parquet."""
    rows = [{"run": c.run_name(), **c.to_dict()} for c in configs]
    frame = pd.DataFrame(rows, columns=["run", *CONFIG_FIELDS])
    for name in ("n_test", "n_generate", "n_evals"):
        frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
    return frame


def _check_int(name: str, value: Any, lo: int, allowed: str | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name} = {value!r} is invalid; allowed: {allowed or f'an integer >= {lo}'}")


# -- the task ---------------------------------------------------------------------------------------
def worker_environ(torch_threads: int = 1) -> dict[str, Any]:
    """Environment for Dask's nanny to set before it starts a worker (``distributed.nanny.pre-spawn-environ``).

    Dask's default sets ``MALLOC_TRIM_THRESHOLD_=65536``; a None value unsets it (Nanny drops None
    entries). OpenMP/BLAS threads match the torch threads per worker."""
    _check_int("torch_threads", torch_threads, 1)
    n = str(torch_threads)
    return {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def dask_config(torch_threads: int = 1) -> dict[str, Any]:
    """The dask config memnb's workers need, for ``dask.config.set(...)`` around cluster creation."""
    import dask  # noqa: F401  (distributed's defaults must be loaded before they are merged)
    import distributed  # noqa: F401

    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **worker_environ(torch_threads)}
    return {"distributed.nanny.pre-spawn-environ": environ}


def run_one(config: dict, root: str, torch_threads: int = 1) -> dict[str, Any]:
    """Run (or resume, or load) one configuration; the Dask task. Returns what happened, for the sweep log.

    config: an ExperimentConfig as a dict (plain data travels to any worker). Holds an exclusive
    lock on the run while it works, so a second attempt at the same run waits for the first and
    then finds it finished.
    """
    import torch

    torch.set_num_threads(torch_threads)
    cfg = ExperimentConfig.from_dict(config)
    name = cfg.run_name()
    t0 = time.perf_counter()
    with run_lock(Path(root), name) as waited:  # the runner's lock: released by the OS if this process dies
        status = run_status(cfg, root)
        results = run_experiment(cfg, root, progress=False)
        manifest = results.manifest
    return {
        "run": name,
        "status_before": status,
        "complete": results.complete,
        "resumed_from_epoch": manifest.get("resumed_from_epoch") if status != "complete" else None,
        "wall_s": round(time.perf_counter() - t0, 3),
        "lock_wait_s": round(waited, 3),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads(),
        "malloc_trim_threshold": malloc_trim_threshold_at_start(),
    }


def malloc_trim_threshold_at_start() -> str | None:
    """MALLOC_TRIM_THRESHOLD_ as this process started with it (glibc reads it once, at start-up), or None.

    Read from /proc/self/environ, the environment at exec: os.environ may have changed since (a Nanny
    in this process sets it there for its children)."""
    try:
        initial = Path("/proc/self/environ").read_bytes().split(b"\0")
    except OSError:  # not Linux
        return os.environ.get("MALLOC_TRIM_THRESHOLD_")
    for entry in initial:
        if entry.startswith(b"MALLOC_TRIM_THRESHOLD_="):
            return entry.split(b"=", 1)[1].decode()
    return None


# -- clusters ---------------------------------------------------------------------------------------
def machine_cores() -> int:
    """CPU cores this process may use (its affinity mask, which a SLURM job or a container restricts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_cluster(n_workers: int | None = None, torch_threads: int = 1, **kwargs):
    """A `distributed.LocalCluster` of worker processes, one task and `torch_threads` torch threads each.

    n_workers: None sizes it to the machine, cores // torch_threads. Extra keyword arguments go to
    LocalCluster (e.g. ``dashboard_address=":8787"``; the dashboard needs bokeh)."""
    import dask
    from distributed import LocalCluster

    if n_workers is None:
        n_workers = max(1, machine_cores() // torch_threads)
    _check_int("n_workers", n_workers, 1, "None or an integer >= 1")
    kwargs.setdefault("dashboard_address", None)
    # A Nanny copies its pre-spawn-environ into *this* process's os.environ before it spawns a worker
    # (distributed/nanny.py), and spawned workers inherit os.environ: any Nanny made earlier here with Dask's
    # defaults leaves MALLOC_TRIM_THRESHOLD_ behind for every later worker, whatever the config says. This
    # process's own allocator read its environment at start-up, so removing the variable only affects children.
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set(dask_config(torch_threads)):  # read by each Nanny when it is created
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, **kwargs)


def slurm_cluster(cores: int, memory: str, torch_threads: int = 1, job_script_prologue: Sequence[str] = (), **kwargs):
    """A dask-jobqueue `SLURMCluster` whose jobs run memnb's workers: cores // torch_threads worker
    processes per job, one task and `torch_threads` torch threads each, ``MALLOC_TRIM_THRESHOLD_`` unset.

    Nothing is submitted until ``cluster.scale(jobs=...)`` or ``cluster.adapt(...)``. Other keyword
    arguments (queue, account, walltime, job_extra_directives, ...) go to SLURMCluster.
    """
    from dask_jobqueue import SLURMCluster

    _check_int("cores", cores, torch_threads, f"an integer >= torch_threads ({torch_threads})")
    environ = dask_config(torch_threads)["distributed.nanny.pre-spawn-environ"]
    prologue = [
        "unset MALLOC_TRIM_THRESHOLD_",
        # dask reads its config from DASK_* variables (parsed as Python literals): the job's nanny then
        # starts its workers without MALLOC_TRIM_THRESHOLD_ and with torch_threads OpenMP threads
        f'export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON="{environ!r}"',
        *job_script_prologue,
    ]
    return SLURMCluster(
        cores=cores, processes=max(1, cores // torch_threads), memory=memory, job_script_prologue=prologue, **kwargs
    )


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
        return [Results(p) for p in self.runs if (p / "config.json").exists()]


def sweep_table(configs: Sequence[ExperimentConfig], root: Path | str | None = None) -> pd.DataFrame:
    """The tidy table of every finished run among `configs`: their ``table.parquet`` rows (repeat x
    epoch x group x criterion x threshold, see memnb.results) with ``run`` and every config field
    as columns. Unfinished runs are left out."""
    frames = []
    finished = [c for c in configs if run_status(c, root) == "complete"]
    for c in finished:
        t = Results(run_dir(c, root)).table()
        t.insert(0, "run", c.run_name())
        frames.append(t)
    if not frames:
        return pd.DataFrame(columns=["run", *CONFIG_FIELDS, *TABLE_COLUMNS])
    table = pd.concat(frames, ignore_index=True)
    table = config_frame(finished).merge(table, on="run", how="right", validate="one_to_many")
    for name in [
        c for c in table.columns if pd.api.types.is_string_dtype(table[c])
    ]:  # run, group, criterion, text fields
        table[name] = table[name].astype("category")
    return table[["run", *CONFIG_FIELDS, *TABLE_COLUMNS]]


def grid_summary(
    table: pd.DataFrame,
    grid_fields: Sequence[str],
    criterion: str = "paper",
    threshold: float | None = None,
    value: str = "copied",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per configuration x group: where each group ends, against its null, at the final epoch.

    table: `sweep_table` rows (config columns included). threshold None: each run's own (``ratio``,
    ``train_ratio`` or ``1/relative_alpha``). value: ``copied`` (share of the group's points) or
    ``memorized`` (share of the generated set). Columns: ``run``, the grid fields, ``group``,
    ``n_repeats``, ``final_epoch``, ``value_%`` and ``null_%`` (means over repeats), ``excess_pp``
    (mean over repeats of value - null, paired by repeat, percentage points) and ``excess_ci95_pp``
    (its Student-t half-width), ``first_epoch_above_null`` (plots.first_epoch_above_null; <NA>: never).
    """
    if value not in VALUES:
        raise ValueError(f"value = {value!r} is invalid; allowed: one of {VALUES}")
    missing = [f for f in grid_fields if f not in table.columns]
    if missing:
        raise ValueError(
            f"grid fields {missing} are not columns of the table; allowed: config fields {list(CONFIG_FIELDS)}"
        )
    rows = table[table.criterion == criterion]
    if rows.empty:
        raise ValueError(f"criterion = {criterion!r} is not in the table; present: {sorted(table.criterion.unique())}")
    own = (
        CRITERIA.get(criterion).own_threshold(rows) if threshold is None else float(threshold)
    )  # per row: each run's own
    rows = rows[np.isclose(rows.threshold.to_numpy(np.float64), np.asarray(own, np.float64), rtol=0, atol=1e-9)]
    out = []
    for run, r in rows.groupby("run", observed=True, sort=False):
        last = int(r.epoch.max())
        first = first_epoch_above_null(r, value)
        end = r[r.epoch == last]
        for group, g in end.groupby("group", observed=True, sort=False):
            diff = (g[value] - g[value + "_null"]).to_numpy(np.float64)
            out.append(
                {
                    "run": run,
                    **{f: g[f].iloc[0] for f in grid_fields},
                    "group": group,
                    "n_repeats": len(g),
                    "final_epoch": last,
                    "value_%": 100 * g[value].mean(),
                    "null_%": 100 * g[value + "_null"].mean(),
                    "excess_pp": 100 * diff.mean(),
                    "excess_ci95_pp": 100
                    * float(t_halfwidth(diff.std(ddof=1) if len(diff) > 1 else np.nan, len(diff), confidence)),
                    "first_epoch_above_null": first.get(str(group)),
                }
            )
    frame = pd.DataFrame(out)
    if not frame.empty:
        order = {g: i for i, g in enumerate(DISPLAY_GROUPS)}
        frame = frame.sort_values("group", key=lambda c: c.astype(str).map(order), kind="stable")
        frame = frame.sort_values(
            "run", key=lambda c: c.map({r: i for i, r in enumerate(dict.fromkeys(c))}), kind="stable"
        ).reset_index(drop=True)
        frame["first_epoch_above_null"] = frame["first_epoch_above_null"].astype("Int64")
    return frame


def _client(client, address, n_workers, torch_threads, cluster_kwargs):
    """(client, close): the given client, one connected to `address`, or one on an embedded LocalCluster."""
    from distributed import Client

    if client is not None:
        return client, lambda: None
    if address is not None:
        c = Client(address)
        return c, c.close
    cluster = local_cluster(n_workers, torch_threads, **(cluster_kwargs or {}))
    c = Client(cluster)

    def close():
        c.close()
        cluster.close()

    return c, close


def _check_sweep(configs, executor: str, torch_threads: int, retries: int) -> list[ExperimentConfig]:
    """The configurations as a list, every argument validated before any work."""
    configs = list(configs)
    if not configs or not all(isinstance(c, ExperimentConfig) for c in configs):
        raise ValueError("configs is invalid; allowed: a non-empty list of ExperimentConfig (see expand_grid)")
    if executor not in EXECUTORS:
        raise ValueError(f"executor = {executor!r} is invalid; allowed: one of {EXECUTORS}")
    worker_environ(torch_threads)  # validates torch_threads
    _check_int("retries", retries, 0)
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
    dask_client, close = _client(client, address, n_workers, torch_threads, cluster_kwargs)
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
