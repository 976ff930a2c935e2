"""Interactive explorer of a run: ipywidgets controls and a plotly FigureWidget, redrawn from stored arrays.

`Explorer(results)` computes the run's rates at every threshold of the slider grid once
(`RateGrid`, from the stored per-sample distances: no search, no training), then every control
change only indexes that array, recomputes the means and bands, and updates the figure's traces
in place (`Explorer.last_redraw_s` says how long it took). `RunBrowser(root)` adds a dropdown
over the runs under a folder and shows each run's configuration beside it.

Controls: ratio (threshold k, 1.0 to 5.0), epoch range, criterion (one button per registered
criterion, memnb.metric.criteria; switching criterion resets k to the run's own value for it),
normalisation (% of the generated set, or % of the group's points copied), repeats shown.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go

from ..core.registry import CRITERIA
from ..experiment.results import RateGrid, Results, TableGrid
from ..experiment.store import list_runs as store_list_runs
from ..metric.null import analytic_null, chance_level
from . import figures as plots

_NOT_UPDATED = {"type", "xaxis", "yaxis"}


def run_title(c) -> str:
    """A run in one line: memnb's own (dataset and injected groups) or a monitored one (model, data, groups)."""
    if c.kind == "monitor":
        groups = ", ".join(f"{n} {g}" for g, n in zip(c.group_names, c.group_counts))
        return (
            f"{c.model} on {c.dataset}: {c.n_train} training points ({groups}), {len(c.eval_epochs)} epochs observed "
            f"up to {c.epochs}, {c.n_repeats} repeat(s)"
        )
    return (
        f"{c.dataset}, {c.n_base} points + {c.n_duplicates} near-duplicates + {c.n_outliers} "
        f"outliers, {c.epochs} epochs, {c.n_repeats} repeats"
    )


def is_image_run(results) -> bool:
    from .images import image_shape

    try:
        image_shape(results)
    except ValueError:
        return False
    return True


class Explorer:
    """Controls + FigureWidget + summary for one run. Display it, or use `.widget`."""

    def __init__(
        self,
        results: Results | str | Path,
        title: str | None = None,
        grid: RateGrid | None = None,
        progress: bool = True,
    ):
        self.results = results if isinstance(results, Results) else Results(results)
        self.config = c = self.results.config
        if not self.results.evaluated_epochs:
            raise ValueError(f"{self.results.path} has no evaluated epoch yet: nothing to explore")
        if grid is None:  # a tables-only copy (memnb.experiment.archive): the table's thresholds, nothing between
            grid = TableGrid(self.results) if self.results.tables_only else RateGrid(self.results, progress=progress)
        self.grid = grid
        self.title = title or run_title(c)
        epochs = [int(e) for e in self.grid.epochs]
        style = {"description_width": "110px"}
        # ipywidgets' default button width cuts these labels ("paper: d_test ≥ k..."), and the default
        # widget width then wraps the buttons under their description: size both to the labels.
        buttons = dict(style={**style, "button_width": "250px"}, layout=W.Layout(width="auto"))
        self.criterion = W.ToggleButtons(
            options=[(crit.button, crit.name) for crit in CRITERIA], value="paper", description="criterion", **buttons
        )
        # the slider spans 1 to 5, or to the criterion's own threshold when that is larger (relative: 1/alpha = 10)
        self.k_max = max(5.0, c.own_threshold("paper"))
        self.ratio = W.FloatSlider(
            value=c.ratio,
            min=1.0,
            max=self.k_max,
            step=0.05,
            readout_format=".2f",
            description="ratio k",
            continuous_update=True,
            style=style,
            layout=W.Layout(width="420px"),
        )
        self.normalisation = W.ToggleButtons(
            options=[("% of generated set (paper)", "memorized"), ("% of group's points copied", "copied")],
            value="memorized",
            description="normalisation",
            **buttons,
        )
        self.epoch_range = W.SelectionRangeSlider(
            options=[(str(e), e) for e in epochs],
            index=(0, len(epochs) - 1),
            description="epochs",
            continuous_update=False,
            style=style,
            layout=W.Layout(width="420px"),
        )
        self.repeats = W.SelectMultiple(
            options=[(f"repeat {r}", int(r)) for r in self.grid.repeats],
            value=tuple(int(r) for r in self.grid.repeats),
            description="repeats shown",
            rows=min(6, len(self.grid.repeats)),
            style=style,
        )
        self.status = W.HTML()
        self.summary = W.HTML()
        self.last_redraw_s = float("nan")
        self._resetting = False
        self.figure = plots.rates_figure(
            self._table(),
            self.normalisation.value,
            title=self.title,
            chance=self._chance(),
            figure_class=go.FigureWidget,
            width=1000,
            height=700,
        )
        self.redraw()
        for w in (self.ratio, self.normalisation, self.epoch_range, self.repeats):
            w.observe(self.redraw, names="value")
        self.criterion.observe(self._criterion_changed, names="value")

    # -- state -------------------------------------------------------------------------------
    def _threshold(self) -> float:
        return round(float(self.ratio.value), 2)

    def _table(self) -> pd.DataFrame:
        k = self._threshold()
        try:
            return self.grid.rates(self.criterion.value, k)
        except ValueError:  # a value off the grid (e.g. set programmatically): recompute from the distances
            if isinstance(self.grid, TableGrid):  # nothing to recompute from: the table's nearest threshold
                return self.grid.rates(self.criterion.value, self.grid.nearest(k))
            return self.results.rates_at(self.criterion.value, k)

    def _chance(self) -> float | None:
        if self.criterion.value != "paper" or self.normalisation.value != "memorized" or not analytic_null(self.config):
            return None
        return chance_level(self.config.n_train, self.config.n_test_points, self._threshold(), self.config.dim)

    def _criterion_changed(self, change) -> None:
        own = self.config.own_threshold(change["new"])
        self._resetting = True
        try:
            self.k_max = max(5.0, own)
            if own > self.ratio.max:
                self.ratio.max = self.k_max
            self.ratio.value = max(1.0, own)
            self.ratio.max = self.k_max
        finally:
            self._resetting = False
        self.redraw()

    # -- drawing -----------------------------------------------------------------------------
    def redraw(self, *_) -> float:
        """Update the figure and summary for the current controls; returns the seconds it took."""
        if self._resetting:
            return 0.0
        t0 = time.perf_counter()
        table = self._table()
        value = self.normalisation.value
        lo, hi = self.epoch_range.value
        shown = list(self.repeats.value)
        specs = plots.trace_specs(
            table,
            value,
            repeats=shown,
            all_repeats=[int(r) for r in self.grid.repeats],
            chance=self._chance(),
            epoch_range=(lo, hi),
        )
        window = table[(table.epoch >= lo) & (table.epoch <= hi) & table.repeat.isin(shown)]
        with self.figure.batch_update():
            for trace, spec in zip(self.figure.data, specs):
                trace.update({k: v for k, v in spec.items() if k not in _NOT_UPDATED})
            sub = plots.subtitle(table, value, len(shown))
            self.figure.layout.title.text = plots.title_html(self.title, sub)
            self.figure.update_yaxes(title_text=plots.VALUE_AXIS[value])
        if window.empty:
            self.summary.value = "<i>no repeat selected</i>"
        else:
            s = plots.readable_summary(plots.summary(window))
            table_html = s.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-", border=0)
            # long column names (first_epoch_memorized_above_null) may wrap after an underscore, so the
            # table fits the notebook's width instead of being cut at its edge
            self.summary.value = re.sub(
                r"(<th[^>]*>)([^<]*)(</th>)", lambda m: m[1] + m[2].replace("_", "_<wbr>") + m[3], table_html
            )
        self.last_redraw_s = time.perf_counter() - t0
        source = "stored arrays"
        if isinstance(self.grid, TableGrid):
            k_shown = self.grid.nearest(self._threshold())
            source = (
                f"the table at k = {k_shown:g} (a tables-only copy: only the table's thresholds "
                f"{', '.join(f'{v:g}' for v in self.grid.thresholds)})"
            )
        self.status.value = (
            f"<small>k = {self._threshold():.2f}, {len(shown)} repeat(s), epochs {lo}-{hi}; "
            f"redrawn in {1000 * self.last_redraw_s:.0f} ms from {source}</small>"
        )
        return self.last_redraw_s

    @property
    def controls(self) -> W.Widget:
        return W.VBox([self.criterion, self.ratio, self.normalisation, self.epoch_range, self.repeats, self.status])

    def compose(self, side: W.Widget | None = None) -> W.Widget:
        """Controls (with `side` to their right), then the figure across the full width, then the summary."""
        top = self.controls if side is None else W.HBox([self.controls, side])
        return W.VBox([top, self.figure, W.HTML("<b>At the last epoch of the range</b>"), self.summary])

    @property
    def widget(self) -> W.Widget:
        return self.compose()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# -- run browser --------------------------------------------------------------------------------
def list_runs(root: Path | str | None, skipped: list[str] | None = None) -> list[Path]:
    """Run directories under `root` that can be opened, newest first: the run store's discovery
    (memnb.experiment.store.runs.list_runs); one that cannot be opened is left out, named in `skipped` or a warning."""
    return [r.path for r in store_list_runs(root, skipped)]


def run_label(path: Path) -> str:
    r = Results(path)
    state = "complete" if r.complete else f"partial, {len(r.evaluated_epochs)} epochs evaluated"
    return f"{path.name} ({state})"


def config_html(results: Results) -> str:
    """The run's configuration and manifest as an HTML table."""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(repr(v))}</code></td></tr>"
        for k, v in results.config.to_dict().items()
    )
    m = results.manifest
    extra = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(m[k]))}</td></tr>"
        for k in ("complete", "device", "train_s", "generate_s", "metric_s")
        if k in m
    )
    return (
        f"<b>{html.escape(results.path.name)}</b><table style='font-size:12px'>{rows}"
        f"<tr><td colspan=2><b>manifest</b></td></tr>{extra}</table>"
    )


class RunBrowser:
    """A dropdown over the runs under `root`; the chosen run's Explorer beside its configuration."""

    def __init__(self, root: Path | str, run: str | None = None):
        self.root = Path(root)
        runs = list_runs(self.root)
        if not runs:
            raise ValueError(f"no runs under {self.root}; run a figure notebook or memnb.run_experiment first")
        names = [p.name for p in runs]
        if run is not None and run not in names:
            raise ValueError(f"run {run!r} is not under {self.root}; runs there: {names}")
        self.dropdown = W.Dropdown(
            options=[(run_label(p), p.name) for p in runs],
            value=run or names[0],
            description="run",
            layout=W.Layout(width="900px"),
        )
        self.area = W.Box()
        self.explorer: Explorer | None = None
        self.show(self.dropdown.value)
        self.dropdown.observe(lambda ch: self.show(ch["new"]), names="value")

    def show(self, name: str) -> None:
        results = Results(self.root / name)
        self.explorer = Explorer(results)
        # beside the controls, not beside the 1000-px figure: there it pushed the figure past the
        # notebook's width (clipped on a laptop screen); a framed box that scrolls, as tall as the controls
        side = W.HTML(
            config_html(results),
            layout=W.Layout(
                width="360px", max_height="260px", overflow="auto", margin="0 0 12px 24px", border="1px solid #ddd"
            ),
        )
        parts = [self.explorer.compose(side)]
        if is_image_run(results):  # images: the memorized-image browser too
            from .images import image_browser

            parts.append(image_browser(results))
        self.area.children = tuple(parts)

    @property
    def widget(self) -> W.Widget:
        return W.VBox([self.dropdown, self.area])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


__all__ = ["Explorer", "RunBrowser", "list_runs", "config_html"]
