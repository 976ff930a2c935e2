"""The benchmark runs end to end and writes its report (a tiny version; its speed is not judged here)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_writes_its_report(tmp_path):
    subprocess.run([sys.executable, "benchmarks/bench.py", "--quick", "--out", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "latest-quick.json").read_text())
    for arm in ("memnb", "naive"):
        assert report[arm]["model_epochs_per_s"] > 0 and report[arm]["peak_rss_gib"] > 0
    assert set(report["matmul_gflops"]) == {"fp32", "bf16"}
    s = report["summary"]
    assert s["speedup_vs_naive"] > 0 and s["bf16_speedup_generation"] > 0
    assert 0 <= s["bf16_max_share_diff_pp"] <= 100
    assert report["memnb"]["generate_s"] > 0 and report["memnb"]["train_s"] > 0 and report["memnb"]["metric_s"] > 0


def test_quick_sweep_benchmark_writes_its_report(tmp_path):
    subprocess.run([sys.executable, "benchmarks/sweep_bench.py", "--quick", "--workers", "1", "--out", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "sweep-latest-quick.json").read_text())
    for arm in ("serial", "dask", "dask_default_env"):
        assert report[arm]["wall_s"] > 0 and report[arm]["configs"] == 2
    assert report["dask"]["malloc_trim_threshold"] == ["None"]
    assert report["dask_default_env"]["malloc_trim_threshold"] == ["65536"]
    assert report["summary"]["results_identical"] is True
