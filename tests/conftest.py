import os

import pytest

os.environ.setdefault("MEMNB_RUNS", "")  # tests always pass an explicit root

from memnb import ExperimentConfig  # noqa: E402


@pytest.fixture
def tiny_config() -> ExperimentConfig:
    """A configuration that trains and evaluates in about a second."""
    return ExperimentConfig(n_base=400, n_outliers=20, n_duplicates=20, epochs=3, n_repeats=2, batch_size=32, device="cpu")
