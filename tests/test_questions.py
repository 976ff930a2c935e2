"""The open-questions workflow (memnb.workflows.questions): profiles, grids, the statistics of a smoke run checked
against direct computations from the stored runs, the figures, the command line and the notebook."""

import ast
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import papermill as pm
import pytest

from memnb.analysis.early_stopping import quality_by_epoch
from memnb.analysis.verdict import VERDICTS
from memnb.experiment.results import Results
from memnb.experiment.runner import run_dir
from memnb.workflows import profiles, questions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "questions.ipynb"
CONTROLS = {"profile": "laptop", "runs_root": None, "out_dir": None}


def test_full_profile_is_the_issues_grid_and_the_others_say_what_they_reduce():
    grid, red = questions.apply_profile(questions.FULL, "full")
    assert grid == questions.FULL and red == {}
    assert grid["sizes"] == [64, 128, 256, 512, 1024, 2048, 4096] and grid["widths"] == [32, 64, 128, 256, 512]
    assert grid["depths"] == [1, 2, 3, 6] and grid["learning_rates"] == [1e-4, 3e-4, 1e-3, 3e-3]
    assert grid["batch_sizes"] == [8, 32, 128] and grid["n_repeats"] >= 5 and grid["datasets"] == ["moons", "gmm_d"]
    grid, red = questions.apply_profile(questions.FULL, "laptop")
    laptop = profiles.PROFILES["laptop"].settings["questions"]
    assert set(red) == set(laptop) and all(grid[k] == v for k, v in laptop.items())
    assert "reduced:" in questions.describe("laptop", red, grid)
    # a parameter set apart from the full grid is kept by a profile
    mine = dict(questions.FULL, sizes=[64, 96])
    assert questions.apply_profile(mine, "smoke")[0]["sizes"] == [64, 96]
    with pytest.raises(ValueError, match=r"profile 'fast' is unknown; allowed: paper \| laptop \| smoke"):
        questions.apply_profile(questions.FULL, "fast")
    with pytest.raises(ValueError, match=r"parameters \['sizes'\] are missing"):
        questions.apply_profile({k: v for k, v in questions.FULL.items() if k != "sizes"}, "paper")
    with pytest.raises(ValueError, match=r"parameters \['size'\] are unknown"):
        questions.apply_profile({**questions.FULL, "size": [1]}, "paper")
    with pytest.raises(ValueError, match=r"n_repeats = 1 is invalid; allowed: an integer >= 2"):
        questions.apply_profile({**questions.FULL, "n_repeats": 1}, "paper")
    with pytest.raises(ValueError, match=r"cells_repeats = 1 is invalid; allowed: an integer >= 2"):
        questions.apply_profile({**questions.FULL, "cells_repeats": 1}, "paper")


def test_grids_train_for_the_horizon_in_steps_at_log_spaced_epochs():
    p, _ = questions.apply_profile(questions.FULL, "paper")
    part1 = questions.part1_configs(p)
    assert len(part1) == 2 * 7
    for c in part1:
        steps = questions.horizon(p, c.n_train)
        spe = c.n_train // c.batch_size
        assert c.epochs == math.ceil(steps / spe) and c.eval_schedule == "log" and c.n_evals == p["n_evals"]
        assert c.test_set == "matched" and c.n_outliers == c.n_duplicates == max(2, round(0.1 * c.n_base))
        assert c.train_ratio == 3.0 and (c.dim == 8) == (c.dataset == "gmm_d")
    assert questions.horizon(p, 4915) == 200 * 4915 and questions.horizon(p, 76) == 50_000
    cells = questions.cell_configs(p)
    assert [f for f, _ in cells].count("model") == 20 and [f for f, _ in cells].count("training") == 12
    # the cells run cells_repeats repeats (20: under Holm over 32 cells 6 repeats can never pass, issue 25); the
    # cell of the default model and training is the part-1 run at that n apart from its repeats, and is that run
    # (stored once, reused) when the repeats agree
    assert p["cells_repeats"] == 20 and all(c.n_repeats == 20 for _, c in cells)
    base = next(c for c in part1 if c.dataset == "moons" and c.n_base == p["cells_n_base"])
    assert sum(c == base.replace(n_repeats=20) for _, c in cells) == 2 and not any(c == base for _, c in cells)
    same = questions.cell_configs({**p, "cells_repeats": p["n_repeats"]})
    assert sum(c == base for _, c in same) == 2
    b8 = next(c for f, c in cells if f == "training" and c.batch_size == 8)
    assert b8.epochs * (b8.n_train // 8) >= questions.horizon(p, b8.n_train) > (b8.epochs - 1) * (b8.n_train // 8)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("questions") / "runs"
    return questions.answer(questions.FULL, "smoke", root), root


@pytest.mark.slow
def test_smoke_statistics_equal_direct_computations_from_the_runs(smoke):
    a, root = smoke
    p = a.params
    t = a.tables
    assert set(t) >= {"times", "group_times", "scaling", "ordering", "cells", "windows", "trajectories", "marks"}
    assert len(t["ordering"]) == len(p["sizes"]) and a.dependence in ("architecture", "training", "both", "neither")
    for c in questions.part1_configs(p):
        res = Results(run_dir(c, root))
        spe = c.n_train // c.batch_size
        rows = res.table()
        rows = rows[(rows.group == "all") & (rows.criterion == "train_only") & np.isclose(rows.threshold, 3.0)]
        q = quality_by_epoch(res, p["seed"])
        got = t["times"][(t["times"].run == res.path.name) & (t["times"].factor == "part1")].set_index("repeat")
        for r in range(c.n_repeats):
            m = rows[rows.repeat == r].sort_values("epoch")
            null = m.memorized_null.mean()
            se = math.sqrt(null * (1 - null) / c.n_generate_points)
            hit = [e for e, v in zip(m.epoch, m.memorized) if v - null > p["margin"] and v - null > p["z"] * se]
            assert got.loc[r, "tau_mem"] == pytest.approx(hit[0] * spe) if hit else math.isnan(got.loc[r, "tau_mem"])
            e = q[q.repeat == r].sort_values("epoch")
            good = [ep for ep, d, d0 in zip(e.epoch, e.energy, e.energy_reference) if d < p["factor"] * d0]
            assert got.loc[r, "tau_gen"] == pytest.approx(good[0] * spe) if good else math.isnan(got.loc[r, "tau_gen"])
            assert got.loc[r, "horizon"] == c.epochs * spe
    # the paired comparison of each cell is the mean over repeats of the outliers' minus the inliers' onsets (steps)
    g = t["group_times"]
    for _, row in t["cells"].iterrows():
        mine = g[(g.run == row.run) & (g.factor == row.factor)].pivot(
            index="repeat", columns="group", values="onset_filled"
        )
        assert row.out_minus_inl == pytest.approx((mine.outlier - mine.inlier).mean())
        assert row.verdict in VERDICTS and row.verdict_holm in VERDICTS
    # Holm over the cells and over part 1's runs, per comparison: a loop of its definition
    for table, g in itertools.product(("cells", "ordering"), ("inl", "dup")):
        p_raw = t[table][f"p_{g}"].to_numpy()
        order, m, running = np.argsort(p_raw, kind="stable"), len(p_raw), 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_raw[i]))
            assert t[table][f"p_{g}_holm"].iloc[i] == pytest.approx(running)
        assert t[table].verdict_holm.isin(VERDICTS).all()


@pytest.mark.slow
def test_smoke_figures_tables_and_files(smoke, tmp_path):
    a, _ = smoke
    figs = a.figures()
    assert set(figs) == {"scaling", "cells", "quality"}
    assert figs["scaling"].layout.xaxis.type == "log" and len(figs["cells"].data) == 2
    # each cell names its verdict under Holm-adjusted p and its repeats
    shown = sorted(t for tr in figs["cells"].data for row in tr.text for t in row if t)
    cells = a.tables["cells"]
    assert len(shown) == len(cells) and "Holm-adjusted" in figs["cells"].layout.title.text
    assert sorted(t.split("<br>")[-1] for t in shown) == sorted(
        f"{v} ({r} rep.)" for v, r in zip(cells.verdict_holm, cells.n_repeats)
    )
    assert len(figs["quality"].data) >= len(a.tables["trajectories"].run.unique())
    readable = questions.readable(a)
    assert {"scaling", "ordering", "windows", "cells"} == set(readable)
    text = questions.markdown(readable["ordering"])
    assert text.splitlines()[0].startswith("| dataset | n |") and len(text.splitlines()) == 2 + len(a.params["sizes"])
    written = questions.write(a, tmp_path, images=False)
    assert {p.name for p in written} >= {"times.csv", "tables.md", "questions.html"}
    assert pd.read_csv(tmp_path / "times.csv").shape[0] == len(a.tables["times"])
    assert "Q1 moons" in a.text() and "Q2" in a.text() and "Q3" in a.text()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "memnb.workflows.questions", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_command_line_rejects_an_unknown_profile():
    bad = _cli("--profile", "fast")
    assert bad.returncode == 2 and "profile 'fast' is unknown" in bad.stderr
    bad = _cli("--executor", "threads")
    assert bad.returncode == 2 and "invalid choice: 'threads'" in bad.stderr


def test_p_values_keep_their_digits_below_a_thousandth():
    from memnb.workflows.questions_report import _p

    assert [_p(x) for x in (0.031, 0.001, 4.0e-5, 1.0, float("nan"))] == ["0.031", "0.001", "4.0e-05", "1.000", "n/a"]


def test_notebook_parameters_mirror_the_workflow():
    params = pm.inspect_notebook(str(NOTEBOOK))
    defaults = {k: ast.literal_eval(v["default"]) for k, v in params.items()}
    assert list(defaults)[: len(questions.FULL)] == list(questions.FULL)
    assert {k: defaults[k] for k in questions.FULL} == questions.FULL
    assert {k: defaults[k] for k in defaults if k not in questions.FULL} == CONTROLS


@pytest.mark.slow
def test_notebook_runs_at_the_smoke_profile(tmp_path):
    src = json.loads(NOTEBOOK.read_text())
    assert all(not c.get("outputs") for c in src["cells"] if c["cell_type"] == "code"), "commit without outputs"
    out = tmp_path / "questions.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"profile": "smoke", "runs_root": str(tmp_path / "runs"), "out_dir": str(tmp_path / "out")},
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "Questions: profile 'smoke'" in text and "The ordering depends on:" in text and "Q3 window" in text
    mimes = {k for c in nb["cells"] for o in c.get("outputs", []) for k in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes
    assert (tmp_path / "out" / "tables.md").exists() and (tmp_path / "out" / "questions.html").exists()
    with pytest.raises(pm.PapermillExecutionError, match=r"'size' \(did you mean 'sizes'\?\)"):
        pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "bad.ipynb"), parameters={"size": [1]}, kernel_name="python3")


def test_a_sweep_of_linear_and_log_schedules_keeps_n_evals_an_integer_column(tmp_path):
    from memnb import ExperimentConfig
    from memnb.core.storage import write_parquet
    from memnb.workflows.sweep import config_frame

    configs = [ExperimentConfig(), ExperimentConfig(eval_schedule="log", n_evals=5)]
    write_parquet(tmp_path / "c.parquet", config_frame(configs))
    back = pd.read_parquet(tmp_path / "c.parquet")
    assert str(back.n_evals.dtype) == "Int64" and back.n_evals.isna().tolist() == [True, False]
    assert ExperimentConfig.from_dict({**configs[1].to_dict(), "n_evals": int(back.n_evals[1])}) == configs[1]


def test_a_log_schedule_run_evaluates_exactly_its_epochs_and_is_reused(tmp_path):
    from memnb import ExperimentConfig, run_experiment
    from memnb.analysis.sanity import sanity_problems

    c = ExperimentConfig(
        n_base=40, n_outliers=2, n_duplicates=2, epochs=30, eval_schedule="log", n_evals=4, n_repeats=1, device="cpu"
    )
    assert c.eval_epochs == (0, 1, 3, 10, 30)
    res = run_experiment(c, tmp_path, progress=False)
    assert list(res.evaluated_epochs) == [0, 1, 3, 10, 30] and res.complete
    problems = [p for p in sanity_problems(res.table(), c) if "epoch" in p]
    assert problems == []  # the sanity check compares the stored epochs with config.eval_epochs
    again = run_experiment(c, tmp_path, progress=False)  # a finished run is loaded, not trained again
    assert again.path == res.path and list(again.evaluated_epochs) == [0, 1, 3, 10, 30]
