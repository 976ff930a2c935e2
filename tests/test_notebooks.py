"""The figure notebooks: parameters mirror the config, committed without outputs, and they run.

Each figure notebook is executed with papermill at the smoke profile through `memnb.workflows.render`
(the main job's code path) into a temporary folder, and the files `make figures` promises must
appear. `make test` additionally runs every notebook under nbval (--nbval-lax) from the
smoke-parameterized copies that `python -m memnb.workflows.render --prepare-only build/nbval` writes.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from memnb import ExperimentConfig
from memnb.views.figures import find_browser
from memnb.workflows import notebooks, profiles, render

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURE_NOTEBOOKS = {n: NOTEBOOKS / f"figure{n}.ipynb" for n in profiles.FIGURES}
MY_NOTEBOOKS = [
    *FIGURE_NOTEBOOKS.values(),
    NOTEBOOKS / "digits.ipynb",
    NOTEBOOKS / "explore.ipynb",
    NOTEBOOKS / "bring_your_own_model.ipynb",
]  # the ones memnb.workflows.render prepares for nbval
# The one notebook that is a user's code by design: a diffusers model and its training loop under memnb.Monitor.
USER_CODE = NOTEBOOKS / "bring_your_own_model.ipynb"
USER_CODE_IMPORTS = {"memnb", "numpy", "torch", "diffusers"}
ALL_NOTEBOOKS = sorted(NOTEBOOKS.glob("*.ipynb"))  # every committed notebook must be stripped
NOTEBOOK_CONTROLS = {"profile": "laptop", "interactive": True, "runs_root": None, "out_dir": None}
EXPLORE_PARAMETERS = {"runs_root": None, "run": None, "interactive": True}


def test_every_figure_and_the_explorer_have_a_notebook():
    assert all(p.exists() for p in MY_NOTEBOOKS) and len(FIGURE_NOTEBOOKS) == 4


def test_figure_notebooks_are_generated_from_one_template(tmp_path):
    """The four committed figure notebooks are exactly what the one template writes (no hand-edited copy)."""
    assert notebooks.stale() == [], "run: python -m memnb.workflows.notebooks"
    assert (tmp_path / "digits.ipynb") in notebooks.write(tmp_path)  # the digits notebook comes from the module too
    written = notebooks.write(tmp_path, figures=tuple(profiles.FIGURES))
    for path in written:
        assert path.read_text() == (NOTEBOOKS / path.name).read_text()
    # they differ only where the figures differ: a cell holding the figure's number or configuration
    cells = [nbformat.read(p, as_version=4).cells for p in written]
    same = [all(c[i].source == cells[0][i].source for c in cells) for i in range(len(cells[0]))]
    assert same.count(False) == 3  # the title cell, the parameters, the FIGURE = N cell
    # a stale copy is caught, from Python and from the command line
    (tmp_path / "figure2.ipynb").write_text((tmp_path / "figure2.ipynb").read_text().replace("ratio", "ratios", 1))
    assert notebooks.stale(tmp_path) == [tmp_path / "figure2.ipynb"]
    assert notebooks.main(["--check", "--dir", str(tmp_path)]) == 1


@pytest.mark.parametrize("n", sorted(FIGURE_NOTEBOOKS))
def test_parameters_mirror_the_config(n):
    params = pm.inspect_notebook(str(FIGURE_NOTEBOOKS[n]))
    fields = list(ExperimentConfig.__dataclass_fields__)
    assert list(params)[: len(fields)] == fields, "config fields, in the dataclass's order, come first"
    assert set(params) == set(fields) | set(NOTEBOOK_CONTROLS)
    defaults = {k: ast.literal_eval(v["default"]) for k, v in params.items()}
    assert {k: defaults[k] for k in fields} == profiles.figure_config(n).to_dict()
    assert {k: defaults[k] for k in NOTEBOOK_CONTROLS} == NOTEBOOK_CONTROLS


def test_explore_parameters():
    params = pm.inspect_notebook(str(NOTEBOOKS / "explore.ipynb"))
    assert {k: ast.literal_eval(v["default"]) for k, v in params.items()} == EXPLORE_PARAMETERS


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: a cell has outputs"
    assert "widgets" not in nb.metadata
    assert nb.metadata.kernelspec.name == "python3"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


def test_nbstripout_would_change_nothing():
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "nbstripout"), "--verify", *map(str, ALL_NOTEBOOKS)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", [p for p in ALL_NOTEBOOKS if p != USER_CODE], ids=lambda p: p.name)
def test_notebooks_only_call_memnb(path):
    """No training loops or heavy logic in cells: imports are memnb's, and no cell defines functions or loops over epochs."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] == "memnb" for a in node.names), cell.source
            elif isinstance(node, ast.ImportFrom):
                assert node.module.split(".")[0] == "memnb", cell.source
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.While)), cell.source
            assert not (isinstance(node, ast.Name) and node.id == "torch"), cell.source  # no tensor work in a cell
        assert "train_epoch" not in cell.source


def test_the_user_code_notebook_imports_only_what_a_user_has_and_calls_the_monitor():
    """bring_your_own_model.ipynb is a user's code (issue #16): its model and loop are diffusers' and torch's, and it
    reaches memnb only through the public Monitor and the views (no memnb trainer)."""
    nb = nbformat.read(USER_CODE, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    tree = ast.parse(source)
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert modules <= USER_CODE_IMPORTS, modules
    assert "memnb.Monitor(" in source and ".observe(" in source
    assert "train_epoch" not in source and "Ensemble" not in source and "run_experiment" not in source


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type == "error":
                raise AssertionError(f"{out.ename}: {out.evalue}")
    return "".join(parts)


@pytest.mark.parametrize("n", sorted(FIGURE_NOTEBOOKS))
def test_render_smoke_writes_every_file(n, tmp_path):
    out, runs = tmp_path / "figures", tmp_path / "runs"
    times = render.render("smoke", out=out, figures=[n], runs_root=runs, log_output=False, progress_bar=False)
    assert set(times) == {n}
    expected = {f"figure{n}.ipynb", f"figure{n}.html"}
    if find_browser() is not None:
        expected |= {f"figure{n}.png", f"figure{n}.svg", f"figure{n}_copied.png", f"figure{n}_copied.svg"}
    else:
        print("no Chromium: PNG/SVG export not checked")
    assert expected <= {p.name for p in out.iterdir()}
    for p in out.iterdir():
        assert p.stat().st_size > 1000, p
    if find_browser() is not None:
        assert (out / f"figure{n}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / f"figure{n}.svg").read_bytes()[:2000]
    nb = nbformat.read(out / f"figure{n}.ipynb", as_version=4)
    text = _outputs_text(nb)
    first = next(o.text for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    assert first.startswith(f"Figure {n}: profile 'smoke' -- NOT the paper's protocol; reduced:")
    assert "sanity checks passed" in text
    # the static figures are in the executed notebook; no widget was created headless
    mimes = {k for c in nb.cells for o in c.get("outputs", []) for k in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes
    assert "application/vnd.jupyter.widget-view+json" not in mimes
    # the run went to runs_root (run_experiment's tests check that an existing run is reused)
    (run_dir,) = [p for p in runs.iterdir() if not p.name.startswith(".")]  # .locks: the runs' locks
    assert json.loads((run_dir / "manifest.json").read_text())["complete"]


def test_explore_notebook_runs_headless(tmp_path):
    """interactive="false" (a string, as papermill -r passes it; check_parameters makes it False): static figures and
    no widget; nbval runs the same notebook with interactive=True (widgets)."""
    out = tmp_path / "explore.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "explore.ipynb"),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        parameters=dict(runs_root=str(tmp_path / "runs"), interactive="false"),  # as papermill -r gives it
        cwd=str(NOTEBOOKS),
    )
    nb = nbformat.read(out, as_version=4)
    text = _outputs_text(nb)
    assert "running Figure 4 at the smoke profile" in text and "sanity checks passed" in text
    mimes = {k for c in nb.cells for o in c.get("outputs", []) for k in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes
    assert "application/vnd.jupyter.widget-view+json" not in mimes


def test_render_command_line(tmp_path, capsys):
    bad = subprocess.run(
        [sys.executable, "-m", "memnb.workflows.render", "--profile", "fast"], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 2 and "profile 'fast' is unknown; allowed: paper | laptop | smoke" in bad.stderr
    with pytest.raises(SystemExit) as exit_:
        render.main(["--figures", "7"])
    assert exit_.value.code == 2 and "figure(s) [7] unknown" in capsys.readouterr().err
    prep = tmp_path / "nbval"
    assert render.main(["--prepare-only", str(prep), "--profile", "smoke"]) == 0
    assert sorted(p.name for p in prep.glob("*.ipynb")) == sorted(p.name for p in MY_NOTEBOOKS)
    for n in profiles.FIGURES:
        nb = nbformat.read(prep / f"figure{n}.ipynb", as_version=4)
        injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        assert 'profile = "smoke"' in injected.source and str(prep / "runs" / f"figure{n}") in injected.source
        assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    # preparing again replaces the folder; a foreign non-empty folder is refused
    (prep / "runs").mkdir()
    assert render.main(["--prepare-only", str(prep)]) == 0 and not (prep / "runs").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        render.main(["--prepare-only", str(foreign)])
    assert exit_.value.code == 2 and "not made by --prepare-only" in capsys.readouterr().err
    assert (foreign / "keep.txt").exists()


def test_reductions_are_printed_by_render():
    text = render.reductions_text(1, "laptop")
    assert "NOT the paper's protocol" in text and "epochs" in text and "n_repeats" in text
    assert "nothing reduced" in render.reductions_text(1, "paper")


def test_render_smoke_writes_the_digits_files(tmp_path):
    """make figures renders digits.ipynb after the four figures: its HTML and the images of its four views."""
    out, runs = tmp_path / "figures", tmp_path / "runs"
    times = render.render("smoke", out=out, figures=["digits"], runs_root=runs, log_output=False, progress_bar=False)
    assert set(times) == {"digits"} and "digits" in render.RENDERED
    expected = {"digits.ipynb", "digits.html"}
    if find_browser() is not None:
        expected |= {f"digits{v}.{ext}" for v in ("", "_copied", "_images", "_samples") for ext in ("png", "svg")}
    assert expected <= {p.name for p in out.iterdir()}
    text = _outputs_text(nbformat.read(out / "digits.ipynb", as_version=4))
    assert text.startswith("Digits: profile 'smoke' -- NOT the measured protocol") and "sanity checks passed" in text
    assert "no analytic level" in text


# -- profiles: one record, one rule, every workflow ------------------------------------------------------------
def _workflow_entries():
    """(workflow, defaults, the workflow's own entry point) of every workflow that applies a profile."""
    from memnb.workflows import applications, digits, questions

    figures = [("figure", c, lambda g, p, c=c: profiles.apply_profile(g, p)) for c in profiles.FIGURES.values()]
    return [
        *figures,
        ("digits", digits.DIGITS, digits.apply_profile),
        ("applications", applications.FULL, applications.apply_profile),
        ("questions", questions.FULL, questions.apply_profile),
        ("bring_your_own_model", digits.LOOP, None),
    ]


@pytest.mark.parametrize("profile", ["paper", "laptop", "smoke"])
def test_every_workflow_applies_a_profile_through_the_one_rule(profile):
    record = profiles.PROFILES[profile]
    assert record.name == profile and set(record.settings) <= set(profiles.WORKFLOWS)
    for workflow, defaults, entry in _workflow_entries():
        one = profiles.apply_profile(defaults, profile, workflow, defaults)
        if entry is not None:
            assert entry(defaults, profile) == one, workflow  # the workflow's entry is the one rule, bound
        applied, reductions = one
        keys = defaults if isinstance(defaults, dict) else defaults.to_dict()
        settings = record.settings.get(workflow, {})
        assert set(settings) <= set(keys), f"{workflow}: the profile names a parameter the workflow lacks"
        assert set(reductions) <= set(settings) and (reductions == {}) == (profile == "paper")
        out = applied if isinstance(applied, dict) else applied.to_dict()
        assert all(out[k] == b and keys[k] == a for k, (a, b) in reductions.items())
        # the same profile sets the same fields in every workflow that has them
        if profile == "smoke" and "n_repeats" in keys:
            assert out["n_repeats"] == 2 and out.get("eval_every", 1) == 1, workflow
        if profile == "laptop" and workflow in ("figure", "digits"):
            assert out["n_repeats"] == profiles.LAPTOP_REPEATS, workflow
    # render prints what the figure notebooks apply
    _, reductions = profiles.apply_profile(profiles.figure_config(1), profile, "figure", profiles.figure_config(1))
    text = render.reductions_text(1, profile)
    assert all(f"{k:<13} {a!s:>6} -> {b!s:<6}" in text for k, (a, b) in reductions.items()) and text.count("->") == len(
        reductions
    )


def test_the_rule_keeps_what_was_set_apart_and_derives_from_what_was_given():
    paper = profiles.figure_config(1)
    mine = paper.replace(n_repeats=5, n_base=5000)
    applied, red = profiles.apply_profile(mine, "laptop", "figure", paper)
    assert applied.n_repeats == 5 and "n_repeats" not in red  # set apart: kept
    # epochs are the laptop's budget of optimizer steps for the points given (5800 of them, 181 steps per epoch)
    assert red["epochs"] == (400, 350) and applied.eval_every == 35 and applied.n_base == 5000
    smoke, red = profiles.apply_profile(mine, "smoke", "figure", paper)
    assert smoke.n_base == 5000 and smoke.n_outliers == 400 and smoke.epochs == profiles.SMOKE_EPOCHS
    # without defaults every parameter is taken as the default: the profile sets them all
    assert profiles.apply_profile(mine, "smoke")[0].n_base == profiles.SMOKE_BASE


def test_an_unknown_profile_or_workflow_fails_naming_the_allowed_ones(tmp_path):
    from memnb.workflows import applications, digits, questions

    allowed = r"profile 'fast' is unknown; allowed: paper \| laptop \| smoke"
    for call in (
        lambda: profiles.apply_profile(profiles.figure_config(1), "fast"),
        lambda: digits.apply_profile(digits.DIGITS, "fast"),
        lambda: applications.apply_profile(applications.FULL, "fast"),
        lambda: questions.apply_profile(questions.FULL, "fast"),
        lambda: render.render("fast", out=tmp_path),
        lambda: render.prepare(tmp_path / "p", "fast"),
        lambda: profiles.check_profile(None),
    ):
        with pytest.raises(ValueError, match=allowed.replace("'fast'", "('fast'|None)")):
            call()
    assert profiles.check_profile("full") == "paper"  # the application notebooks' old name
    with pytest.raises(ValueError, match=r"workflow = 'figures' is invalid; allowed: figure \| digits \|"):
        profiles.apply_profile(profiles.figure_config(1), "smoke", "figures")


# -- booleans: a string is not a boolean ----------------------------------------------------------------------
def test_boolean_parameters_take_a_bool_or_true_false_and_refuse_the_rest():
    from memnb.workflows import parameters

    cell = "profile = 'laptop'\ninteractive = True  # comment\nruns_root = None\nn: int = 3"
    assert parameters.boolean_parameters(cell) == ["interactive"]
    for given, want in ((True, True), (False, False), ("true", True), ("True", True), ("false", False)):
        ns = {"In": ["", cell, f"# Parameters\ninteractive = {given!r}\n"], "interactive": given}
        parameters.check_parameters(ns)
        assert ns["interactive"] is want
    for bad in ("no", "yes", "FALSE", "0", 0, 1, None, ""):
        ns = {"In": ["", cell, f"# Parameters\ninteractive = {bad!r}\n"], "interactive": bad}
        with pytest.raises(ValueError, match=r"interactive = .* is invalid; allowed: True or False"):
            parameters.check_parameters(ns)
    with pytest.raises(ValueError, match=r"text_progress = 'no' is invalid; allowed: True or False"):
        profiles.run(profiles.figure_config(4), "unused", text_progress="no")


def test_papermill_r_interactive_no_fails_before_any_work(tmp_path):
    """`papermill -r interactive no` (a raw string) stops at the parameter check, naming it, and trains nothing."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), str(NOTEBOOKS / "explore.ipynb"), str(tmp_path / "out.ipynb")]
        + ["-r", "interactive", "no", "-r", "runs_root", str(tmp_path / "runs"), "--cwd", str(NOTEBOOKS)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "interactive = 'no' is invalid; allowed: True or False" in proc.stdout + proc.stderr
    assert not (tmp_path / "runs").exists()
