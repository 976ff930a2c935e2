"""Render the figure notebooks with papermill: `python -m memnb.workflows.render --profile laptop|paper|smoke`.

For every figure N it executes notebooks/figureN.ipynb (kernel python3, i.e. the interpreter
running this command) with parameters `profile`, `interactive=False`, `out_dir` and `runs_root`,
writing into the output folder (default outputs/figures/):

- figureN.ipynb: the executed notebook (outputs included);
- figureN.html: both views and the summary, standalone (plotly.js inlined; any browser, no server);
- figureN.png / figureN.svg: the paper's view; figureN_copied.png / .svg: the per-group view
  (kaleido with Debian's chromium; skipped with a warning when no Chromium is installed).

Runs are reused from the runs folder (default $MEMNB_RUNS or outputs/runs/) when they exist and
resumed when interrupted. Progress: papermill's bar over cells, and memnb's text bar over epochs
(copied from the kernel as it runs).

`--prepare-only DIR` executes nothing: it writes parameterized copies of every notebook
(figures and explore) into DIR, each with its own runs folder under DIR/runs/, for
`pytest --nbval-lax DIR` (the Makefile's test target).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from ..core.validate import check_bool
from . import digits, profiles

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FIGURE_NUMBERS = tuple(profiles.FIGURES)
RENDERED = (*FIGURE_NUMBERS, "digits")  # what make figures renders: the four figures, then digits
PREPARED_MARKER = ".memnb-prepared"


def _papermill():
    import papermill

    return papermill


def reductions_text(figure, profile: str) -> str:
    """What the profile reduces, for Figure `figure` (1-4) or "digits"."""
    if figure == "digits":
        config, reductions = digits.apply_profile(digits.DIGITS, profile)
        return digits.describe(config, profile, reductions)
    paper = profiles.figure_config(figure)
    config, reductions = profiles.apply_profile(paper, profile, "figure", paper)
    return profiles.describe_profile(profile, reductions, config, figure, paper)


def notebook_stem(figure) -> str:
    """figureN for a figure number, digits for "digits"."""
    return "digits" if figure == "digits" else f"figure{figure}"


def _figure_arg(text: str):
    return "digits" if text == "digits" else int(text) if text.isdigit() else text


def check_figures(figures) -> list:
    bad = [n for n in figures if n not in RENDERED]
    if bad:
        raise ValueError(f"figure(s) {bad} unknown; allowed: {' '.join(map(str, RENDERED))}")
    return list(figures)


def render(
    profile: str = "laptop",
    out: Path | str = "outputs/figures",
    figures=RENDERED,
    runs_root: Path | str | None = None,
    log_output: bool = True,
    progress_bar: bool = True,
) -> dict[int, float]:
    """Execute the figure notebooks (and digits.ipynb) into `out`; returns {figure: wall seconds}."""
    profile = profiles.check_profile(profile)  # a clear error for a bad profile, before any work
    check_bool("log_output", log_output)
    check_bool("progress_bar", progress_bar)
    figures = check_figures(figures)
    pm = _papermill()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    root = profiles.resolve_runs_root(runs_root).resolve()
    print(f"memnb.workflows.render: profile {profile!r}, figures {list(figures)} -> {out} (runs: {root})", flush=True)
    times: dict[int, float] = {}
    for n in figures:
        stem = notebook_stem(n)
        print(f"\n=== {stem} ===\n{reductions_text(n, profile)}", flush=True)
        t0 = time.perf_counter()
        pm.execute_notebook(
            str(NOTEBOOKS / f"{stem}.ipynb"),
            str(out / f"{stem}.ipynb"),
            parameters=dict(profile=profile, interactive=False, out_dir=str(out), runs_root=str(root)),
            kernel_name="python3",
            progress_bar=progress_bar,
            log_output=log_output,
            cwd=str(NOTEBOOKS),
        )
        times[n] = time.perf_counter() - t0
        print(
            f"{stem} done in {times[n]:.0f} s: {', '.join(sorted(p.name for p in out.glob(f'{stem}[._]*')))}",
            flush=True,
        )
    print(
        f"\nWall time per figure (profile {profile}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}): "
        + ", ".join(f"{notebook_stem(n)}: {t:.0f} s" for n, t in times.items()),
        flush=True,
    )
    return times


def prepare(
    directory: Path | str, profile: str = "smoke", figures=RENDERED, explore: bool = True, byo: bool | None = None
) -> list[Path]:
    """Parameterized, unexecuted copies of the notebooks in `directory` (emptied first), for nbval.

    byo: also the diffusers example, bring_your_own_model.ipynb (None: when diffusers can be imported).

    The figure notebooks keep `interactive = True` (nbval then builds the widgets in a real
    kernel) and export nothing (`out_dir = None`; the papermill tests check the exported files).
    """
    profile = profiles.check_profile(profile)
    check_bool("explore", explore)
    pm = _papermill()
    if byo is None:
        import importlib.util

        byo = importlib.util.find_spec("diffusers") is not None
    check_bool("byo", byo)
    d = Path(directory).resolve()
    if d.exists() and any(d.iterdir()):
        if not (d / PREPARED_MARKER).exists():
            raise ValueError(f"{d} is not empty and was not made by --prepare-only; choose an empty or new folder")
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / PREPARED_MARKER).write_text(
        "made by python -m memnb.workflows.render --prepare-only; deleted and rebuilt each time\n"
    )
    written = []

    def one(stem: str, parameters: dict) -> None:
        target = d / f"{stem}.ipynb"
        pm.execute_notebook(
            str(NOTEBOOKS / f"{stem}.ipynb"),
            str(target),
            prepare_only=True,
            kernel_name="python3",
            parameters=parameters,
            progress_bar=False,
            log_output=False,
        )
        written.append(target)

    for n in check_figures(figures):
        stem = notebook_stem(n)
        # each notebook its own runs folder: two figures' smoke configs may coincide, and nbval runs them in parallel
        one(stem, dict(profile=profile, runs_root=str(d / "runs" / stem), out_dir=None))
    if byo:  # the diffusers example (notebooks/bring_your_own_model.ipynb), where diffusers is installed
        one("bring_your_own_model", dict(profile=profile, runs_root=str(d / "runs" / "bring_your_own_model")))
    if explore:
        one("explore", dict(runs_root=str(d / "runs" / "explore")))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m memnb.workflows.render", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="laptop", help=f"one of {' | '.join(profiles.PROFILES)} (default laptop)")
    ap.add_argument("--out", default=None, help="output folder (default <project>/outputs/figures)")
    ap.add_argument(
        "--figures",
        type=_figure_arg,
        nargs="+",
        default=list(RENDERED),
        help="figure numbers and/or digits (default 1 2 3 4 digits)",
    )
    ap.add_argument("--runs-root", default=None, help="runs folder (default $MEMNB_RUNS or <project>/outputs/runs)")
    ap.add_argument(
        "--prepare-only",
        metavar="DIR",
        default=None,
        help="write parameterized notebooks (figures and explore) into DIR without executing them",
    )
    ap.add_argument("--no-log-output", action="store_true", help="do not copy the notebooks' output to the terminal")
    args = ap.parse_args(argv)
    try:
        args.profile = profiles.check_profile(args.profile)
    except ValueError as e:
        ap.error(str(e))
    bad = [n for n in args.figures if n not in RENDERED]
    if bad:
        ap.error(f"figure(s) {bad} unknown; allowed: {' '.join(map(str, RENDERED))}")
    if args.prepare_only:
        try:
            written = prepare(args.prepare_only, args.profile, args.figures)
        except ValueError as e:
            ap.error(str(e))
        print(
            f"memnb.workflows.render: {len(written)} notebooks at profile {args.profile!r}, not executed, in {args.prepare_only}"
        )
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    out = Path(args.out) if args.out else profiles.project_root() / "outputs" / "figures"
    render(args.profile, out, args.figures, args.runs_root, log_output=not args.no_log_output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
