"""benchmarks/gpu.sh and benchmarks/gpu_protocol.py: the CPU dry run (--device cpu --tiny) of the GPU protocol.

Run as on the bare GPU machine: without pytest (the step says so and is skipped) and with faiss, plotly,
kaleido, papermill and dask unimportable, so memnb must import and run_experiment work without them.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BARE = ("faiss", "plotly", "kaleido", "papermill", "dask", "distributed", "nbval", "ipywidgets", "anywidget")
RUN_BARE = f"""
import importlib.abc, runpy, sys
class Bare(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {BARE!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the bare GPU machine)")
sys.meta_path.insert(0, Bare())
sys.argv = ["gpu_protocol.py", *sys.argv[1:]]
runpy.run_path("benchmarks/gpu_protocol.py", run_name="__main__")
missing = [m for m in sys.modules if m.split(".")[0] in {BARE!r}]
assert not missing, missing
"""


QUIET = ["--device", "cpu", "--tiny", "--skip-tests", "--skip-bench", "--skip-compare"]  # figures only


def _protocol():
    spec = importlib.util.spec_from_file_location("gpu_protocol", ROOT / "benchmarks" / "gpu_protocol.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_without_pytest_or_optional_packages_writes_report_and_one_archive(tmp_path):
    out, runs = tmp_path / "out", tmp_path / "runs"
    env = {**os.environ, "MEMNB_GPU_NO_PYTEST": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    args = ["--device", "cpu", "--tiny", "--skip-bench", "--figures", "3", "4", "--out", str(out), "--runs", str(runs)]
    p = subprocess.run(
        [sys.executable, "-c", RUN_BARE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "pytest is not installed" in p.stdout
    r = json.loads((out / "gpu-timings.json").read_text())
    assert r["tests"] == {"status": "skipped", "reason": "pytest not installed"}
    assert r["machine"]["torch"] and r["machine"]["device"] == "cpu" and r["tiny"] is True
    assert sorted(r["figures"]) == ["3", "4"]
    for rec in r["figures"].values():
        assert rec["status"] == "complete"
        assert sum(rec["shares"].values()) == pytest.approx(1.0, abs=1e-3)
        cal = rec["calibration"]
        assert rec["estimate_s"] == pytest.approx(
            cal["setup_s"] + rec["epochs"] * cal["train_epoch_s"] + rec["evaluations"] * cal["eval_epoch_s"], abs=0.01
        )
    # the CPU-against-device comparison (here the CPU against itself: the second run is the first, loaded)
    cmp = r["compare"]
    assert cmp["devices"] == ["cpu", "cpu"]
    for key in ("paper/memorized", "paper/copied", "train_only/memorized", "train_only/copied"):
        assert cmp[key]["cells"] > 0 and cmp[key]["within_95"] == 1.0 and cmp[key]["max_abs_diff"] == 0.0
    assert r["archive"] == ["gpu-runs.tar.gz"] and len(list(out.iterdir())) <= 8
    with tarfile.open(out / "gpu-runs.tar.gz") as tar:
        files = sorted(n for n in tar.getnames() if "/" in n)
    runs_in = sorted({n.split("/")[0] for n in files})
    assert runs_in == sorted(rec["run"] for rec in r["figures"].values())
    from memnb import run_experiment
    from memnb.experiment.archive import TABLE_FILES, unpack

    assert {n.split("/")[1] for n in files} == set(TABLE_FILES) and len(files) == 2 * len(TABLE_FILES)
    # here: the tables-only copies open, and run_experiment with the same config returns them as they are
    from memnb.experiment.results import Results, TablesOnlyError

    for path in unpack(out / "gpu-runs.tar.gz", tmp_path / "here"):
        copy, full = Results(path), Results(runs / path.name)
        assert copy.tables_only and copy.complete and copy.evaluated_epochs == full.evaluated_epochs
        pd.testing.assert_frame_equal(copy.table(), full.table())
        pd.testing.assert_frame_equal(copy.zu(), full.zu())
        pd.testing.assert_frame_equal(copy.loss(), full.loss())
        assert run_experiment(copy.config, tmp_path / "here", progress=False).table().equals(full.table())
        with pytest.raises(TablesOnlyError, match="per-sample arrays"):
            copy.rates_at("paper", 2.2)


def test_figures_that_do_not_fit_the_budget_are_extrapolated_from_the_calibration(tmp_path, monkeypatch):
    gp = _protocol()
    monkeypatch.setattr(gp, "SAFETY", 1e9)  # no estimate fits
    monkeypatch.setenv("MEMNB_GPU_NO_PYTEST", "1")
    r = gp.main([*QUIET, "--figures", "4"] + ["--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")])
    rec = r["figures"][4]
    assert rec["status"] == "extrapolated" and rec["wall_s"] == rec["estimate_s"] > 0
    assert (tmp_path / "runs" / "calibration").is_dir() and not (tmp_path / "runs" / rec["run"]).exists()
    with tarfile.open(tmp_path / "out" / "gpu-runs.tar.gz") as tar:
        assert tar.getnames() == []
    # and with no time left at all, nothing is started
    r = gp.main(
        [
            *QUIET,
            "--figures",
            "3",
            "--budget-s",
            "1",
        ]
        + ["--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]
    )
    assert r["figures"][3]["status"] == "not started"


def test_gpu_sh_vendors_pytest_for_the_bare_machine(tmp_path):
    vendor = tmp_path / "vendor"
    env = {**os.environ, "MEMNB_GPU_VENDOR": str(vendor), "PYTHON": sys.executable}
    p = subprocess.run(["bash", "benchmarks/gpu.sh", "--vendor"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert {"pytest", "_pytest", "pluggy", "iniconfig"} <= {f.name for f in vendor.iterdir()}
    # an interpreter that only sees the copy imports pytest from it
    code = f"import sys; sys.path.insert(0, {str(vendor)!r}); import pytest, pluggy; print(pytest.__file__, pluggy.__file__)"
    files = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert files.split() and all(f.startswith(str(vendor)) for f in files.split())


def test_continue_runs_stops_at_the_deadline_and_a_later_call_finishes_to_the_same_numbers(tmp_path, monkeypatch):
    from memnb.experiment.runner import run_experiment

    gp = _protocol()
    args = [
        *QUIET,
        "--figures",
        "4",
        "--continue-runs",
    ]
    args += ["--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]
    with monkeypatch.context() as m:
        m.setattr(gp, "SAFETY", 1e9)  # does not fit: started anyway
        m.setattr(gp.Deadline, "__call__", lambda self, epoch, arrays, context: epoch >= 1)  # time is up at epoch 1
        first = gp.main(args)["figures"][4]
    assert first["status"] == "partial" and first["trained_epochs"] == 1 and "estimate_s" in first
    second = gp.main(args)["figures"][4]
    assert second["status"] == "complete" and "calibration" not in second
    with tarfile.open(tmp_path / "out" / "gpu-runs.tar.gz") as tar:
        assert {n.split("/")[0] for n in tar.getnames()} == {second["run"]}
    alone = run_experiment(gp.figure_configs("cpu", True)[4], tmp_path / "alone", progress=False)
    resumed = pd.read_parquet(tmp_path / "runs" / second["run"] / "table.parquet")
    pd.testing.assert_frame_equal(resumed, alone.table(), check_exact=True)
