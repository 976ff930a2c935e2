"""Helpers shared by several test files (pytest puts tests/ on sys.path)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def assert_same_results(a, b):
    """Two memnb Results hold identical epochs, arrays, tables and losses (a monitored run's epoch files also hold
    the epoch's loss, compared through loss())."""
    assert a.evaluated_epochs == b.evaluated_epochs
    for e in a.evaluated_epochs:
        x, y = a.epoch_arrays(e), b.epoch_arrays(e)
        if (a.kind == "monitor") != (b.kind == "monitor"):
            x.pop("loss", None), y.pop("loss", None)
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"epoch {e} array {k}")
    pd.testing.assert_frame_equal(a.table(), b.table())
    pd.testing.assert_frame_equal(a.loss(), b.loss())


def run_notebook_smoke(name: str, tmp_path: Path, **parameters) -> str:
    """Execute notebooks/<name> with papermill at the smoke profile (runs under tmp_path); returns the executed file's text.

    Also checks that the committed notebook holds no outputs."""
    import papermill as pm

    nb = ROOT / "notebooks" / name
    src = json.loads(nb.read_text())
    assert all(not c.get("outputs") for c in src["cells"] if c["cell_type"] == "code"), "commit without outputs"
    out = tmp_path / name
    pm.execute_notebook(
        str(nb),
        str(out),
        parameters={"profile": "smoke", "runs_root": str(tmp_path / "runs"), **parameters},
        cwd=str(ROOT),
        progress_bar=False,
        kernel_name="python3",
    )
    return out.read_text()


def cpu_name() -> str:
    """The processor's model name (/proc/cpuinfo), e.g. "Intel(R) Xeon(R) Processor" or "AMD EPYC"."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kernel_signature() -> dict[str, str]:
    """What decides float kernels' last bits: the CPU's name, torch's CPU capability (AVX2, AVX512, ...), torch."""
    import torch

    return {"cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


# A run of a few seconds (tests/test_reliability.py, tests/test_store_faults.py): what recovered runs must equal.
SMALL = dict(
    n_base=200, n_outliers=10, n_duplicates=10, epochs=3, n_repeats=2, device="cpu", hidden_size=32,
    embedding_size=16, hidden_layers=1,
)  # fmt: skip


def small_reference(tmp_path_factory):
    """An uninterrupted run of SMALL in a fresh folder."""
    from memnb import ExperimentConfig, run_experiment

    return run_experiment(ExperimentConfig(**SMALL), root=tmp_path_factory.mktemp("reference"), progress=False)
