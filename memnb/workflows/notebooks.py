"""The four figure notebooks, generated from one template: `python -m memnb.workflows.notebooks`.

notebooks/figure1.ipynb ... figure4.ipynb are written from `figure_notebook(n)`: the same cells,
with the figure's number, its configuration (`profiles.FIGURES[n]`) as the defaults of the
papermill parameters (every `ExperimentConfig` field, in the dataclass's order, then the notebook
controls) and its caption. To change a figure notebook, change this template and run the command;
tests/test_notebooks.py fails when a committed notebook differs from the generated one
(``--check`` does the same from the command line).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import nbformat

from ..core.config import ExperimentConfig
from ..core.registry import DATASETS, DENOISERS
from . import profiles

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# the notebook controls after the config fields: name -> (default, comment)
CONTROLS = {
    "profile": (
        "laptop",
        "paper: exactly the above | laptop: at most about 5 min on 2 CPU cores | smoke: seconds (CI)",
    ),
    "interactive": (True, "False: static figures only, no widgets (papermill, CI)"),
    "runs_root": (None, "None: $MEMNB_RUNS, else outputs/runs/ of this project"),
    "out_dir": (None, "a folder: write figureN.html, .png, .svg there (make figures: outputs/figures/)"),
}


def _field_comments() -> dict[str, str]:
    return {
        "dataset": " | ".join(DATASETS.names()),
        "n_base": "base training points",
        "n_outliers": "injected outliers (a cluster 2 std from the data mean)",
        "n_duplicates": "injected near-duplicates (copies of base points)",
        "n_test": "None: n_base",
        "denoiser": " | ".join(DENOISERS.names()),
        "epochs": "training epochs",
        "eval_every": "samples drawn every k epochs (1: every epoch, the paper's)",
        "eval_schedule": "linear: every eval_every epochs | log: n_evals log-spaced epochs",
        "n_evals": "None with linear; with log: how many log-spaced epochs",
        "n_generate": "None: the training-set size (the paper's)",
        "ratio": "the paper criterion: memorized iff d_test is at least ratio times d_train",
        "train_ratio": "train-only criterion: memorized iff d2 > train_ratio * d1",
        "n_repeats": "independent repeats (data draw, init, noise)",
        "device": "auto | cpu | cuda",
        "sampler": "ddpm | ddim (deterministic DDIM)",
        "sample_steps": "None: all num_timesteps steps; S: a strided sampler on S of them",
        "detectors": "() | generation-free membership scores per epoch, e.g. ('sima', 'pia') (docs/detection.md)",
    }


def caption(config: ExperimentConfig) -> str:
    return (
        f"{config.n_duplicates} near-duplicates / {config.n_outliers} outliers injected, {config.epochs} epochs, "
        f"{config.n_base} points, ratio {config.ratio:g}"
    )


def parameters_source(figure: int | None, config: ExperimentConfig | None = None, header: str = "") -> str:
    """The papermill parameters cell of Figure `figure` (or of `config`, with `header`): every config field (its
    default), then the controls."""
    config = profiles.figure_config(figure) if config is None else config
    notes = _field_comments()
    lines = header.splitlines() or [
        f"# Papermill parameters. ExperimentConfig fields, defaults = Figure {figure} of the paper:",
        f"# {caption(config)}, {config.n_repeats} repeats, {config.dataset}.",
    ]
    for f in fields(ExperimentConfig):
        value = getattr(config, f.name)
        note = f"  # {notes[f.name]}" if f.name in notes else ""
        lines.append(f"{f.name} = {value!r}{note}")
    lines.append("# notebook controls")
    lines += [f"{name} = {default!r}  # {comment}" for name, (default, comment) in CONTROLS.items()]
    return "\n".join(lines)


def _cells(figure: int) -> list[tuple[str, str]]:
    config = profiles.figure_config(figure)
    return [
        (
            "markdown",
            f"""# Figure {figure} of *Outliers memorized last*

**{caption(config)}**, {config.n_repeats} repeats, {config.dataset}.

When does the toy DDPM start memorizing its training points, and which group first: inliers, injected outliers or \
injected near-duplicates? Every number is drawn beside its **null baseline** (the same metric for fresh draws of the \
data distribution, i.e. a perfect generator).

The next cell holds the papermill parameters: every `memnb.ExperimentConfig` field (defaults: the paper's \
configuration of this figure) and `profile` (`paper` | `laptop` | `smoke`, default `laptop`: what it reduces is \
printed first), `interactive`, `runs_root`, `out_dir`. The run is reused from `outputs/runs/` when it exists and \
resumed when it was interrupted. This notebook is generated from one template for all four figures \
(`python -m memnb.workflows.notebooks`).""",
        ),
        ("parameters", parameters_source(figure)),
        (
            "code",
            f"""from memnb.views import figures
from memnb.workflows import profiles
from memnb.workflows.parameters import check_parameters

check_parameters(globals())  # a misspelled papermill parameter (-p ration 2) fails here, before any work
FIGURE = {figure}
given = profiles.config_from(globals(), profiles.figure_config(FIGURE))  # the parameters above
config, reductions = profiles.apply_profile(given, profile, "figure", profiles.figure_config(FIGURE))
print(profiles.describe_profile(profile, reductions, config, FIGURE, given))""",
        ),
        (
            "code",
            """results = profiles.run(config, runs_root, text_progress=not interactive)  # trains, resumes, or just loads
table = results.table()  # every repeat x epoch x group x criterion x threshold
view = figures.select(table, "paper", config.ratio)  # the paper's criterion at its ratio
title = profiles.figure_title(config, profile, FIGURE, reductions)
results""",
        ),
        (
            "markdown",
            """## 1. The paper's view

Memorized samples attributed to each group, as a percentage of the generated set, over epochs: mean over repeats \
with a 95% Student-t band, faint individual repeats, the null baseline dashed, and on the *all groups* panel the \
analytic chance level n/(n + k²m). One panel per group, each with its own y-axis.""",
        ),
        (
            "code",
            """fig_paper = figures.paper_view(view, config, title=title)
fig_paper.show()""",
        ),
        (
            "markdown",
            """## 2. The per-group view

The share of each group's training points copied by at least one memorized sample. The paper's normalisation (by \
the generated set) hides the small groups; this one compares groups on an equal footing.""",
        ),
        (
            "code",
            """fig_groups = figures.group_view(view, title=title)
fig_groups.show()""",
        ),
        ("markdown", "## 3. Summary"),
        ("code", "print(figures.summary_text(view, config))"),
        (
            "code",
            """# Sanity assertions: a wrong result fails here (and nbval with it), not only an exception.
shares = table[["memorized", "memorized_null", "copied", "copied_null"]]
assert (shares.isna() | ((shares >= 0) & (shares <= 1))).all().all(), "a share outside [0, 1]"
assert set(table.group) == {"inlier", "outlier", "duplicate", "all"}, set(table.group)
null = view[view.group == "all"].memorized_null.mean()
assert abs(null - figures.expected_null(config)) < 0.03, (null, figures.expected_null(config))
print(figures.check_sanity(table, config))  # all checks at once; raises AssertionError listing every failure""",
        ),
        (
            "markdown",
            """## Export

`out_dir` set (as `make figures` does): a standalone HTML page with both views and the summary, and PNG and SVG \
images of each view.""",
        ),
        (
            "code",
            """if out_dir:
    text = profiles.describe_profile(profile, reductions, config, FIGURE, given) + "\\n\\n" + figures.summary_text(view, config)
    written = figures.export({"memorized": fig_paper, "copied": fig_groups}, out_dir, f"figure{FIGURE}", title=title, text=text)
    print("\\n".join(map(str, written)))
else:
    print("out_dir is None: nothing exported")""",
        ),
        (
            "markdown",
            """## Interactive exploration

Ratio k, epoch range, criterion (one button per criterion: the paper's d_test ≥ k·d_train, the train-only d2 > k·d1 \
rule, Carlini et al.'s relative rule), normalisation and repeats shown. Redrawn from the stored per-sample \
distances: no search, no training.""",
        ),
        (
            "code",
            """if interactive:
    from memnb.views.widgets import Explorer

    explorer = Explorer(results, title=title)
    display(explorer)
else:
    print("interactive = False: static figures only")""",
        ),
    ]


def _digits_cells() -> list[tuple[str, str]]:
    from .digits import DIGITS

    c = DIGITS
    header = (
        "# Papermill parameters. ExperimentConfig fields, defaults = the digits finding (docs/findings.md):\n"
        f"# {c.n_base} digits + {c.n_outliers} watermarked + {c.n_duplicates} near-duplicates, {c.epochs} epochs, "
        f"{c.n_repeats} repeats."
    )
    return [
        (
            "markdown",
            """# Memorization over epochs on real 64-D images: scikit-learn's 8x8 digits

The paper's first item of future work asks for "more varied distributions, as well as datasets with more \
features". This notebook runs memnb's whole protocol on handwritten digits (1797 images of 8x8 pixels, shipped \
with scikit-learn: no download): a small training set (small training sets are memorized, Gu et al. 2023), \
**watermarked outliers** (copies of training digits with a bright corner block: the paper's section 5.1 example) \
and near-duplicates, the matched test set, and the **null baseline from held-out real images** (real data has no \
fresh draws; the analytic n/(n + k^d m) holds only for smooth full-dimensional densities and is not drawn). \
Every number is drawn beside that null. Then the images: memorized samples beside their nearest training and test \
images, and samples over training.

Parameters: every `memnb.ExperimentConfig` field (defaults: the measured finding's configuration) and `profile` \
(`paper` | `laptop` | `smoke`), `interactive`, `runs_root`, `out_dir`. Generated by \
`python -m memnb.workflows.notebooks`.""",
        ),
        ("parameters", parameters_source(None, c, header)),
        (
            "code",
            """from memnb.views import figures, images
from memnb.workflows import digits, profiles
from memnb.workflows.parameters import check_parameters

check_parameters(globals())  # a misspelled papermill parameter fails here, before any work
given = profiles.config_from(globals(), digits.DIGITS)  # the parameters above
config, reductions = digits.apply_profile(given, profile)
print(digits.describe(config, profile, reductions))""",
        ),
        (
            "code",
            """results = profiles.run(config, runs_root, text_progress=not interactive)  # trains, resumes, or just loads
table = results.table()
view = figures.select(table, "paper", config.ratio)
title = f"Digits [profile {profile}]: " + digits.describe(config, profile, reductions).splitlines()[-2].strip()
results""",
        ),
        ("markdown", "## 1. The paper's view and the per-group view, each beside its null (held-out real images)"),
        (
            "code",
            """fig_paper = figures.paper_view(view, config, title=title)
fig_paper.show()
fig_groups = figures.group_view(view, title=title)
fig_groups.show()
print(figures.summary_text(view, config))""",
        ),
        (
            "markdown",
            """## 2. The images

For the last evaluated epoch: per group, memorized samples (paper's criterion at the run's ratio), each beside its \
nearest training image and its nearest test image, with d1 and d_test under them; then the same sample slots over \
the evaluated epochs.""",
        ),
        (
            "code",
            """last = results.evaluated_epochs[-1]
fig_images = images.memorized_grid(results, last)
fig_images.show()
fig_samples = images.samples_over_epochs(results)
fig_samples.show()""",
        ),
        (
            "code",
            """# Sanity assertions: a wrong result fails here (and nbval with it).
assert results.data["train_points"].shape[-1] == 64 and config.dim == 64
outliers = results.data["train_points"][results.data["groups"] == 1]
mask = images.watermark_mask(config.watermark, (8, 8))
assert (outliers[:, mask] == 1.0).all(), "every watermarked outlier carries the pattern"
print(figures.check_sanity(table, config))""",
        ),
        ("markdown", "## Export\n\n`out_dir` set (as `make figures` does): HTML page and PNG/SVG of every figure."),
        (
            "code",
            """if out_dir:
    text = digits.describe(config, profile, reductions) + "\\n\\n" + figures.summary_text(view, config)
    written = figures.export({"memorized": fig_paper, "copied": fig_groups, "images": fig_images,
                              "samples": fig_samples}, out_dir, "digits", title=title, text=text)
    print("\\n".join(map(str, written)))
else:
    print("out_dir is None: nothing exported")""",
        ),
        (
            "markdown",
            "## Interactive exploration\n\nThe explorer (ratio, criterion, epochs, repeats) and the image "
            "browser (an evaluated-epoch slider over the memorized-image grid).",
        ),
        (
            "code",
            """if interactive:
    from memnb.views.widgets import Explorer

    display(Explorer(results, title=title))
    display(images.image_browser(results))
else:
    print("interactive = False: static figures only")""",
        ),
    ]


def _notebook(cells_spec) -> nbformat.NotebookNode:
    cells = []
    for i, (kind, source) in enumerate(cells_spec):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell["id"] = str(i)
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def digits_notebook() -> nbformat.NotebookNode:
    """notebooks/digits.ipynb, without outputs."""
    return _notebook(_digits_cells())


def figure_notebook(figure: int) -> nbformat.NotebookNode:
    """The notebook of Figure `figure` (1-4), without outputs, as `nbstripout` leaves it."""
    return _notebook(_cells(figure))


def notebook_text(figure) -> str:
    """The text of figure`figure`.ipynb, or of digits.ipynb for figure="digits"."""
    nb = digits_notebook() if figure == "digits" else figure_notebook(figure)
    return nbformat.writes(nb) + "\n"


def _name(figure) -> str:
    return "digits.ipynb" if figure == "digits" else f"figure{figure}.ipynb"


GENERATED = (*profiles.FIGURES, "digits")  # the notebooks this module writes


def write(directory: Path | str = NOTEBOOKS, figures=GENERATED) -> list[Path]:
    """Write figureN.ipynb for every figure (and digits.ipynb) into `directory`; returns the paths."""
    out = []
    for n in figures:
        path = Path(directory) / _name(n)
        path.write_text(notebook_text(n), encoding="utf-8")
        out.append(path)
    return out


def stale(directory: Path | str = NOTEBOOKS, figures=GENERATED) -> list[Path]:
    """The committed generated notebooks that differ from the template's (missing ones included)."""
    paths = [(Path(directory) / _name(n), n) for n in figures]
    return [p for p, n in paths if not p.is_file() or p.read_text(encoding="utf-8") != notebook_text(n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m memnb.workflows.notebooks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed notebook differs")
    ap.add_argument("--dir", default=str(NOTEBOOKS), help="notebooks folder (default: the project's notebooks/)")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale(args.dir)
        for p in bad:
            print(f"{p} differs from the template; run python -m memnb.workflows.notebooks")
        return 1 if bad else 0
    for p in write(args.dir):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
