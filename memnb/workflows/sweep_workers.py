"""A sweep's workers: the Dask task (`run_one`), the environment memnb's workers need (one torch thread each, no
``MALLOC_TRIM_THRESHOLD_``), and the clusters (an embedded `LocalCluster`, SLURM, or an existing one's client).

Workers get one torch thread each (`torch_threads`) and no ``MALLOC_TRIM_THRESHOLD_``: Dask's
nanny sets it in the workers it starts (``distributed.nanny.pre-spawn-environ``), which makes
glibc serve torch's large temporary buffers with fresh mmaps; `worker_environ` unsets it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.config import ExperimentConfig
from ..core.validate import check_int, fail, is_int
from ..experiment.runner import run_experiment, run_lock
from .sweep_grid import run_status


# -- the task ---------------------------------------------------------------------------------------
def worker_environ(torch_threads: int = 1) -> dict[str, Any]:
    """Environment for Dask's nanny to set before it starts a worker (``distributed.nanny.pre-spawn-environ``).

    Dask's default sets ``MALLOC_TRIM_THRESHOLD_=65536``; a None value unsets it (Nanny drops None
    entries). OpenMP/BLAS threads match the torch threads per worker."""
    check_int("torch_threads", torch_threads, 1)
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
    if not (is_int(n_workers) and n_workers >= 1):
        fail("n_workers", n_workers, "None or an integer >= 1")
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

    if not (is_int(cores) and cores >= torch_threads):
        fail("cores", cores, f"an integer >= torch_threads ({torch_threads})")
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


def connect(client, address, n_workers, torch_threads, cluster_kwargs):
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
