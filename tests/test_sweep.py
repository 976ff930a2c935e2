"""Sweeps on Dask: grid expansion, worker environment, a killed worker, a restarted sweep, SLURM job scripts.

The reference for every distributed result is the same grid run serially in this process."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import ROOT, assert_same_results

from memnb import ExperimentConfig, Results
from memnb.experiment.runner import run_dir
from memnb.workflows.sweep import (
    CONFIG_FIELDS,
    SweepError,
    dask_config,
    expand_grid,
    grid_summary,
    local_cluster,
    machine_cores,
    run_status,
    run_sweep,
    slurm_cluster,
    sweep_name,
    sweep_table,
    worker_environ,
)

distributed = pytest.importorskip("distributed")

# ~2-4 s per configuration on one thread: long enough to kill a worker in the middle of one
BASE = ExperimentConfig(n_base=800, n_outliers=20, n_duplicates=20, epochs=24, eval_every=8, n_repeats=2, device="cpu")
GRID = {"dataset": ["moons", "circle"], "seed": [0, 1]}


@pytest.fixture(scope="module")
def configs():
    return expand_grid(BASE, GRID)


@pytest.fixture(scope="module")
def serial(configs, tmp_path_factory):
    """The grid run one configuration after another in this process: the reference."""
    root = tmp_path_factory.mktemp("serial")
    sweep = run_sweep(configs, root, out_dir=root / "sweep", executor="serial", progress=False)
    return sweep


# -- the grid -------------------------------------------------------------------------------------------
def test_expand_grid_is_the_product_in_grid_order():
    configs = expand_grid(BASE, {"n_outliers": [10, 20], "seed": [0, 1, 2]})
    assert [(c.n_outliers, c.seed) for c in configs] == [(10, 0), (10, 1), (10, 2), (20, 0), (20, 1), (20, 2)]
    assert all(c.replace(n_outliers=BASE.n_outliers, seed=BASE.seed) == BASE for c in configs)
    assert expand_grid(BASE, {}) == [BASE]
    # a value equal to the base's, listed twice, is one configuration
    assert len(expand_grid(BASE, {"seed": [0, 0, 1]})) == 2
    assert sweep_name(configs) == sweep_name(configs[::-1]) != sweep_name(configs[:5])


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"n_outlier": [1]}, "grid field 'n_outlier' is invalid; allowed: ExperimentConfig fields"),
        ({"seed": []}, "grid field 'seed' = [] is invalid; allowed: a non-empty list"),
        ({"seed": 3}, "grid field 'seed' = 3 is invalid; allowed: a non-empty list"),
        ({"dataset": "moons"}, "grid field 'dataset' = 'moons' is invalid; allowed: a non-empty list"),
        (
            {"seed": [0], "ratio": [1.5, 0.5]},
            "grid point {'seed': 0, 'ratio': 0.5}: config field 'ratio' = 0.5 is invalid",
        ),
        ([("seed", [0])], "grid = [('seed', [0])] is invalid; allowed: a mapping"),
    ],
)
def test_bad_grids_fail_early_naming_the_field(grid, message):
    with pytest.raises(ValueError) as e:
        expand_grid(BASE, grid)
    assert message in str(e.value)


def test_bad_sweep_arguments_fail_before_any_work(tmp_path, configs):
    for kwargs, message in [
        ({"executor": "threads"}, "executor = 'threads' is invalid"),
        ({"torch_threads": 0}, "torch_threads = 0 is invalid"),
        ({"retries": -1}, "retries = -1 is invalid"),
    ]:
        with pytest.raises(ValueError, match=message):
            run_sweep(configs, tmp_path, **kwargs)
    with pytest.raises(ValueError, match="appears twice"):
        run_sweep([BASE, BASE], tmp_path)
    with pytest.raises(ValueError, match="configs is invalid"):
        run_sweep([], tmp_path)
    assert not any(tmp_path.iterdir())


# -- the workers' environment --------------------------------------------------------------------------
def test_worker_environ_unsets_malloc_trim_threshold():
    env = worker_environ(3)
    assert env["MALLOC_TRIM_THRESHOLD_"] is None and env["OMP_NUM_THREADS"] == "3"
    merged = dask_config(1)["distributed.nanny.pre-spawn-environ"]
    assert merged["MALLOC_TRIM_THRESHOLD_"] is None and merged["OMP_NUM_THREADS"] == "1"


def test_local_cluster_is_sized_to_the_machine_and_its_workers_have_no_malloc_trim():
    from distributed import Client, LocalCluster

    def env():
        return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")

    with local_cluster() as cluster, Client(cluster) as client:
        assert len(cluster.workers) == machine_cores()
        assert set(client.run(env).values()) == {(None, "1")}
    # the reference: Dask's own default does set it (what the config above undoes)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert set(v[0] for v in client.run(env).values()) == {"65536"}


# -- sweeps -------------------------------------------------------------------------------------------
def test_serial_sweep_aggregates_one_tidy_table(serial, configs):
    table = serial.table()
    assert list(table.columns[: 1 + len(CONFIG_FIELDS)]) == ["run", *CONFIG_FIELDS]
    assert set(table.run) == {c.run_name() for c in configs}
    for c in configs:  # each run's rows are its own table.parquet, with its configuration beside them
        mine = table[table.run == c.run_name()]
        assert (mine.dataset == c.dataset).all() and (mine.seed == c.seed).all()
        own = Results(run_dir(c, serial.root)).table()
        pd.testing.assert_frame_equal(
            mine[own.columns].reset_index(drop=True), own, check_categorical=False, check_dtype=False
        )
    # opens without memnb; the config columns round-trip (None stays missing)
    plain = pd.read_parquet(serial.out_dir / "table.parquet")
    assert plain.n_test.isna().all() and len(plain) == len(table)
    log = pd.read_parquet(serial.out_dir / "runs.parquet")
    assert list(log.status_before) == ["new"] * 4 and log.complete.all()
    meta = json.loads((serial.out_dir / "sweep.json").read_text())
    assert meta["runs"] == [c.run_name() for c in configs] and meta["ran"] == 4 and meta["failed"] == {}


def test_grid_summary_matches_a_direct_computation(serial, configs):
    from scipy import stats

    from memnb.views.figures import sweep_view

    summary = grid_summary(serial.table(), list(GRID), "paper", value="copied")
    assert len(summary) == 4 * len(configs) and list(summary.group[:4]) == ["all", "inlier", "outlier", "duplicate"]
    c = configs[2]
    t = Results(run_dir(c, serial.root)).table()
    t = t[(t.criterion == "paper") & (t.threshold == c.ratio) & (t.epoch == c.epochs) & (t.group == "outlier")]
    diff = 100 * (t.copied - t.copied_null).to_numpy()
    row = summary[(summary.run == c.run_name()) & (summary.group == "outlier")].iloc[0]
    assert (row.dataset, row.seed, row.n_repeats, row.final_epoch) == (c.dataset, c.seed, c.n_repeats, c.epochs)
    assert row.excess_pp == pytest.approx(diff.mean())
    assert row.excess_ci95_pp == pytest.approx(stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / len(diff) ** 0.5)
    assert row["null_%"] == pytest.approx(100 * t.copied_null.mean())
    fig = sweep_view(summary, list(GRID))
    assert len(fig.data) == 4 and list(fig.data[2].x) == [f"dataset={c.dataset} · seed={c.seed}" for c in configs]
    with pytest.raises(ValueError, match="grid fields \\['sed'\\] are not columns"):
        grid_summary(serial.table(), ["sed"])


def _kill_a_busy_worker(client, root: Path, killed: dict, stop: threading.Event):
    """Kill (SIGKILL) the process of a worker that is in the middle of a run: it has written an epoch file."""
    while not stop.is_set():
        for address, keys in client.processing().items():
            for key in keys:
                run = str(key).removeprefix("memnb-run-")
                epochs = root / run / "epochs"
                written = len(list(epochs.glob("epoch_*.npz"))) if epochs.exists() else 0
                if 0 < written < len(BASE.eval_epochs):  # started, with at least one evaluation and its training to go
                    pid = client.run(os.getpid, workers=[address])[address]
                    os.kill(pid, signal.SIGKILL)
                    killed.update(run=run, pid=pid, epochs=written)
                    return
        time.sleep(0.02)


@pytest.mark.slow
def test_killed_worker_is_retried_and_the_sweep_equals_the_serial_run(configs, serial, tmp_path):
    from distributed import Client

    root = tmp_path / "runs"
    killed: dict = {}
    stop = threading.Event()
    with local_cluster(n_workers=2) as cluster, Client(cluster) as client:
        killer = threading.Thread(target=_kill_a_busy_worker, args=(client, root, killed, stop), daemon=True)
        killer.start()
        sweep = run_sweep(configs, root, out_dir=tmp_path / "sweep", client=client, progress=False)
        stop.set()
        killer.join()
    assert killed, "no worker was caught in the middle of a run"
    row = sweep.log.set_index("run").loc[killed["run"]]
    assert row.complete and row.pid != killed["pid"]  # finished by another worker process
    assert sweep.log.malloc_trim_threshold.isna().all() and (sweep.log.torch_threads == 1).all()
    for c in configs:
        assert_same_results(Results(run_dir(c, root)), Results(run_dir(c, serial.root)))
    pd.testing.assert_frame_equal(sweep.table(), serial.table())


_DRIVER = """
import json
import sys
from memnb import ExperimentConfig
from memnb.workflows.sweep import run_sweep
if __name__ == "__main__":
    configs = [ExperimentConfig.from_dict(json.loads(line)) for line in open(sys.argv[1])]
    run_sweep(configs, sys.argv[2], out_dir=sys.argv[3], executor="serial", progress=False)
"""


@pytest.mark.slow
def test_restarted_sweep_skips_finished_runs_and_resumes_partial_ones(configs, serial, tmp_path):
    root = tmp_path / "runs"
    (tmp_path / "configs.jsonl").write_text("".join(json.dumps(c.to_dict()) + "\n" for c in configs))
    (tmp_path / "driver.py").write_text(_DRIVER)
    driver = subprocess.Popen(
        [
            sys.executable,
            str(tmp_path / "driver.py"),
            str(tmp_path / "configs.jsonl"),
            str(root),
            str(tmp_path / "sweep"),
        ],
        cwd=ROOT,
    )
    second = root / configs[1].run_name() / "epochs"
    deadline = time.time() + 120
    while not (second.exists() and any(second.glob("epoch_*.npz"))):  # the first run finished, the second started
        assert driver.poll() is None and time.time() < deadline, "the driver ended before it could be killed"
        time.sleep(0.02)
    driver.kill()
    driver.wait()
    assert [run_status(c, root) for c in configs] == ["complete", "partial", "new", "new"]

    sweep = run_sweep(configs, root, out_dir=tmp_path / "sweep", n_workers=2, progress=False)
    assert list(sweep.log.status_before) == ["complete", "partial", "new", "new"]
    assert pd.isna(sweep.log.wall_s[0]), "a finished configuration is not submitted again"
    for c in configs:
        assert_same_results(Results(run_dir(c, root)), Results(run_dir(c, serial.root)))


def test_a_failing_configuration_does_not_stop_the_others(tmp_path):
    configs = expand_grid(BASE.replace(n_base=200, epochs=2, eval_every=1), {"seed": [0, 1]})
    bad = run_dir(configs[0], tmp_path)
    bad.mkdir(parents=True)
    (bad / "notes.txt").write_text("not a memnb run")  # run_experiment refuses to overwrite it
    with pytest.raises(
        SweepError, match=f"1 of 2 configurations failed .*{configs[0].run_name()}: CorruptRunError"
    ) as e:
        run_sweep(configs, tmp_path, out_dir=tmp_path / "sweep", executor="serial", progress=False)
    sweep = e.value.sweep
    assert list(sweep.log.complete) == [False, True] and "CorruptRunError" in sweep.log.error[0]
    assert set(sweep.table().run) == {configs[1].run_name()}
    assert (bad / "notes.txt").read_text() == "not a memnb run"


def test_sweep_table_leaves_out_unfinished_runs(tmp_path):
    assert sweep_table([BASE], tmp_path).empty


# -- SLURM ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_slurm_job_script_starts_memnb_workers(tmp_path):
    """Build a SLURMCluster (no SLURM here), then run its job script with bash as sbatch would:
    its workers join the cluster with one torch thread each and without MALLOC_TRIM_THRESHOLD_."""
    pytest.importorskip("dask_jobqueue")
    from distributed import Client

    def worker_report():  # nested: pickled by value, the workers cannot import this test module
        return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}

    with pytest.raises(ValueError, match="cores = 1 is invalid"):
        slurm_cluster(cores=1, memory="1GB", torch_threads=2)
    cluster = slurm_cluster(
        cores=2,
        memory="2GB",
        torch_threads=1,
        walltime="00:10:00",
        account="memnb",
        scheduler_options={"host": "127.0.0.1"},
    )
    job = None
    try:
        script = cluster.job_script()
        assert "#SBATCH --cpus-per-task=2" in script and "--nworkers 2" in script and "--nthreads 1" in script
        assert "unset MALLOC_TRIM_THRESHOLD_" in script
        (tmp_path / "job.sh").write_text(script)
        env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}  # as if the login shell had it: the job unsets it
        job = subprocess.Popen(["bash", str(tmp_path / "job.sh")], env=env, start_new_session=True)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            report = client.submit(worker_report, pure=False).result(timeout=60)
            assert report == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}
            configs = expand_grid(BASE.replace(n_base=200, epochs=2, eval_every=1), {"seed": [0, 1]})
            # by address, as for any existing cluster: run_sweep connects its own client and closes it
            sweep = run_sweep(
                configs,
                tmp_path / "runs",
                out_dir=tmp_path / "sweep",
                address=cluster.scheduler_address,
                progress=False,
            )
            assert sweep.log.complete.all() and sweep.log.malloc_trim_threshold.isna().all()
            assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["scheduler"] == cluster.scheduler_address
    finally:
        if job is not None:
            os.killpg(job.pid, signal.SIGTERM)
            job.wait(timeout=30)
        cluster.close()


# -- the notebook and the verdict -------------------------------------------------------------------------
SWEEP_CONTROLS = {
    "grid": {"dataset": ["moons", "circle"], "n_outliers": [20, 40]},
    "executor": "dask",
    "scheduler_address": None,
    "n_workers": None,
    "torch_threads": 1,
    "retries": 2,
    "runs_root": None,
    "out_dir": None,
    "criterion": "paper",
    "value": "copied",
}


def test_sweep_notebook_parameters_mirror_the_config():
    import ast

    import papermill as pm

    params = pm.inspect_notebook(str(ROOT / "notebooks" / "sweep.ipynb"))
    assert list(params)[: len(CONFIG_FIELDS)] == list(CONFIG_FIELDS), (
        "config fields, in the dataclass's order, come first"
    )
    defaults = {k: ast.literal_eval(v["default"]) for k, v in params.items()}
    ExperimentConfig.from_dict({k: defaults[k] for k in CONFIG_FIELDS})  # a valid base configuration
    assert {k: defaults[k] for k in params if k not in CONFIG_FIELDS} == SWEEP_CONTROLS


@pytest.mark.slow
def test_sweep_notebook_runs_and_its_folder_feeds_the_verdict(tmp_path):
    import papermill as pm

    from memnb.analysis.verdict import find_runs, verdict

    small = {**BASE.replace(n_base=200, epochs=4, eval_every=2).to_dict(), "device": "cpu"}
    # papermill passes lists, not tuples (a tuple arrives as its text): the config takes a list of detectors
    small = {k: list(v) if isinstance(v, tuple) else v for k, v in small.items()}
    out = tmp_path / "sweep.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "sweep.ipynb"),
        str(out),
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
        parameters={**small, "grid": {"seed": [0, 1]}, "n_workers": 1, "runs_root": str(tmp_path / "runs")},
    )
    text = out.read_text()
    assert "checks passed" in text and "2 configurations x 2 repeats" in text
    folder = tmp_path / "sweeps"
    (sweep_dir,) = folder.iterdir()  # beside runs_root
    table = pd.read_parquet(sweep_dir / "table.parquet")
    assert table.seed.unique().tolist() == [0, 1]
    found = find_runs(str(sweep_dir))
    assert [r.path.name for r in found] == table.run.unique().tolist()
    assert [r.path for r in find_runs(str(sweep_dir / "runs.parquet"))] == [r.path for r in found]
    assert [r.path for r in find_runs(table.run.unique().tolist(), tmp_path / "runs")] == [r.path for r in found]
    v, _ = verdict(str(sweep_dir), n_bootstrap=200)
    assert set(v.run) == set(table.run.unique())
