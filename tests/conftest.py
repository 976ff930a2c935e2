import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One BLAS/OpenMP thread per xdist worker: two workers with two threads each on two cores
    # oversubscribe them, and OpenMP's spin-waiting then slows every matmul by an order of magnitude.
    # Subprocesses and notebook kernels started by the tests inherit this.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

import torch  # noqa: E402

from memnb import ExperimentConfig  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> ExperimentConfig:
    """A configuration that trains and evaluates in about a second."""
    return ExperimentConfig(
        n_base=400, n_outliers=20, n_duplicates=20, epochs=3, n_repeats=2, batch_size=32, device="cpu"
    )


def pytest_terminal_summary(terminalreporter):
    """List the screenshots the browser tests saved (tests/test_browser.py), so that the CI log shows where they are,
    and which comparison the 2-D reference test ran (exact or tolerant, tests/test_reference.py).

    user_properties travel from pytest-xdist workers with the reports, unlike a test's printed output.
    """

    def recorded(key: str) -> list[str]:
        return [
            value
            for reports in terminalreporter.stats.values()
            for r in reports
            for name, value in getattr(r, "user_properties", [])
            if name == key and getattr(r, "when", "") == "call"
        ]

    shots = recorded("screenshot")
    if shots:
        terminalreporter.section("browser screenshots")
        for path in dict.fromkeys(shots):
            terminalreporter.write_line(path)
    compared = recorded("reference_comparison")
    if compared:  # tests/test_reference.py: exact on the recording CPU, within stated tolerances elsewhere
        terminalreporter.section("2-D reference comparison")
        for line in sorted(set(compared)):
            terminalreporter.write_line(line)
