"""The benchmark runs end to end and writes a consistent report (a tiny version; its speed is not judged here:
performance is shown by the benchmark's side-by-side ratios, never by a timed test)."""

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_writes_its_report(tmp_path):
    subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads((tmp_path / "latest-quick.json").read_text())
    m, n, s = report["memnb"], report["naive"], report["summary"]
    assert set(report["matmul_gflops"]) == {"fp32", "bf16"}
    # the memnb arm measured what the config asks, and its derived numbers follow from its timings
    assert (m["repeats"], m["n_train"], m["device"]) == (2, 420, "cpu")
    assert m["epoch_s"] == pytest.approx(m["train_s"] + m["generate_s"] + m["metric_s"])
    assert m["model_epochs_per_s"] == pytest.approx(m["repeats"] / m["epoch_s"])
    assert n["model_epoch_s"] == pytest.approx(n["train_s"] + n["generate_s"] + n["metric_s"])
    # the summary's ratios are the arms' ratios
    assert s["speedup_vs_naive"] == pytest.approx(m["model_epochs_per_s"] / n["model_epochs_per_s"])
    assert s["train_plus_metric_over_generation"] == pytest.approx((m["train_s"] + m["metric_s"]) / m["generate_s"])
    assert s["bf16_speedup_generation"] == pytest.approx(m["generate_fp32_s"] / m["generate_bf16_s"])
    assert s["bf16_max_share_diff_pp"] == max(m["bf16_share_diff_pp"].values())
    # the digits row: the smoke digits config, 64-D, its time split into its parts
    g = report["digits"]
    assert (g["repeats"], g["device"]) == (2, "cpu") and g["n_train"] == 68
    assert g["epoch_s"] == pytest.approx(g["train_s"] + g["generate_s"] + g["metric_s"])
    # shares are percentages, and the three groups make up all of them
    shares = m["fp32_shares_pct"]
    assert all(0 <= v <= 100 for v in shares.values())
    assert shares["inlier"] + shares["outlier"] + shares["duplicate"] == pytest.approx(shares["all"], abs=0.01)


def test_quick_sweep_benchmark_writes_its_report(tmp_path):
    subprocess.run(
        [sys.executable, "benchmarks/sweep_bench.py", "--quick", "--workers", "1", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads((tmp_path / "sweep-latest-quick.json").read_text())
    for arm in ("serial", "dask", "dask_default_env"):
        assert report[arm]["wall_s"] > 0 and report[arm]["configs"] == 2
    assert report["dask"]["malloc_trim_threshold"] == ["None"]
    assert report["dask_default_env"]["malloc_trim_threshold"] == ["65536"]
    assert report["summary"]["results_identical"] is True


def test_quick_store_benchmark_writes_its_report(tmp_path):
    subprocess.run(
        [sys.executable, "benchmarks/store_bench.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads((tmp_path / "store-latest-quick.json").read_text())
    assert {"cpu", "nproc", "numpy", "torch"} <= set(report["machine"])
    s, r = report["settings"], report["result"]
    assert s["quick"] is True and s["epochs"] == 40
    # one time per observed epoch 0..40, every one positive; the medians are those of epochs 5-15 and the last 11
    assert len(r["observe_s"]) == s["epochs"] + 1 == r["observed_epochs"] and min(r["observe_s"]) > 0
    assert r["early_epochs"] == list(range(5, 16)) and r["late_epochs"] == list(range(30, 41))
    for key, epochs in (("early_median_ms", r["early_epochs"]), ("late_median_ms", r["late_epochs"])):
        assert r[key] == pytest.approx(1e3 * statistics.median(r["observe_s"][e] for e in epochs), abs=1e-3)
    # the ratio is reported, never judged: positive and finite is all that is asked of it
    ratio = r["ratio_late_over_early"]
    assert math.isfinite(ratio) and ratio > 0
    assert ratio == pytest.approx(r["late_median_ms"] / r["early_median_ms"], rel=1e-3)
    assert r["results_s"] > 0


def test_quick_monitor_benchmark_writes_a_consistent_report(tmp_path):
    """benchmarks/monitor_bench.py --quick: its ratios follow from its timings, its bound from the arrays, and the
    known answer is found (speed and memory are not judged: a benchmark reports)."""
    subprocess.run(
        [sys.executable, "benchmarks/monitor_bench.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads((tmp_path / "monitor-latest-quick.json").read_text())
    (r,) = report["sizes"]
    assert r["n_train"] == 2000 and r["dim"] == 256
    assert math.isclose(r["ratio_first"], r["observe_first_s"] / r["bare_first_s"], rel_tol=0.01)
    assert math.isclose(r["ratio_second"], r["observe_later_median_s"] / r["bare_second_s"], rel_tol=0.01)
    assert len(r["observe_later_s"]) == len(r["bare_later_s"]) == 2
    assert r["bound_bytes"] == 3 * r["user_bytes"] and r["peak_rss_above_imports"] > 0
    disk = r["epoch_file_bytes"]
    assert disk["none"] < disk["all"] and disk["1000"] <= disk["all"]
    assert r["answer_ok"] and r["memorized_share"] == pytest.approx(0.5, abs=0.02)
    for v in r["approximate"].values():
        assert 0 <= v["recall@1"] <= 1 and v["max_share_error"] >= 0
