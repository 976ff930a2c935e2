"""The application benchmarks' grid and profiles: what each profile reduces, and the notebooks' parameters."""

import ast
from pathlib import Path

import papermill as pm
import pytest

from memnb.workflows import applications

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [ROOT / "notebooks" / "anomaly_detection.ipynb", ROOT / "notebooks" / "early_stopping.ipynb"]


def test_full_profile_reduces_nothing_and_the_grid_is_the_benchmark():
    grid, reductions = applications.apply_profile(applications.FULL, "full")
    assert grid == applications.FULL and reductions == {}
    configs = applications.configs(grid)
    assert len(configs) == 6 and {c.dataset for c in configs} == {"moons", "circle", "gmm"}
    assert all(c.n_duplicates == 0 and c.test_set == "matched" and c.n_repeats == 5 for c in configs)
    assert "the full benchmark" in applications.describe("X", "full", reductions, grid)


def test_laptop_and_smoke_say_what_they_reduce():
    grid, red = applications.apply_profile(applications.FULL, "laptop")
    assert red == {"epochs": (2000, 400), "eval_every": (100, 40)}
    assert grid["datasets"] == applications.FULL["datasets"] and grid["n_repeats"] == 5
    text = applications.describe("Anomaly detection", "laptop", red, grid)
    assert "NOT the full benchmark" in text and "2000 -> 400" in text
    grid, red = applications.apply_profile(applications.FULL, "smoke")
    assert grid["epochs"] == 4 and set(red) == set(applications.FULL)
    # a value set apart from the benchmark's is kept by a profile (smaller or larger), the others are the profile's
    small = dict(applications.FULL, epochs=100)
    assert applications.apply_profile(small, "laptop")[0]["epochs"] == 100
    mine, red = applications.apply_profile(dict(applications.FULL, datasets=["circle"], epochs=5000), "smoke")
    assert mine["datasets"] == ["circle"] and mine["epochs"] == 5000 and mine["n_base"] == 60
    assert "datasets" not in red and "epochs" not in red
    assert "differ from the full benchmark" in applications.describe("X", "full", {}, small)


def test_bad_profile_or_parameters_fail_early():
    with pytest.raises(ValueError, match=r"profile 'fast' is unknown; allowed: paper \| laptop \| smoke"):
        applications.apply_profile(applications.FULL, "fast")


def test_one_profile_vocabulary():
    """The application notebooks share the figure notebooks' profiles; their old name 'full' means 'paper'."""
    from memnb.workflows import profiles

    assert applications.PROFILES is profiles.PROFILES and tuple(profiles.PROFILES) == ("paper", "laptop", "smoke")
    assert applications.apply_profile(applications.FULL, "full") == applications.apply_profile(
        applications.FULL, "paper"
    )
    with pytest.raises(ValueError, match="missing"):
        applications.apply_profile({"datasets": ["moons"]}, "full")
    with pytest.raises(ValueError, match=r"parameters \['epoch'\] are unknown"):
        applications.apply_profile({**applications.FULL, "epoch": 3}, "laptop")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_parameters_default_to_the_full_grid_at_the_laptop_profile(path):
    params = pm.inspect_notebook(str(path))
    defaults = {k: ast.literal_eval(v["default"]) for k, v in params.items()}
    assert defaults["profile"] == "laptop"
    assert {k: defaults[k] for k in applications.FULL} == applications.FULL
