"""Images where people would rather look than read: memorized samples beside their nearest training and test
images, and samples over epochs, for runs of an image dataset (its `image_shape`, e.g. digits' 8x8).

Each grid is ONE plotly heatmap of a mosaic (tiles of h x w pixels separated by a 1-pixel gap), with the
distances written under the tiles as annotations: fast to draw, and exported to PNG like any figure.
Pixel values are the data's ([-1, 1] for digits), drawn in grey from black (-1) to white (1).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..core.registry import CRITERIA, DATASETS
from ..core.vocabulary import group_name
from ..data.injection import watermark_mask  # noqa: F401 (the digits notebook checks the pattern with it)
from ..experiment.samples import missing_note, stored_samples
from ..metric.criteria import is_memorized, ratio_from
from ..metric.neighbors import NEIGHBOUR_FIELDS

COLUMNS = ("sample", "nearest training", "nearest test")


def image_shape(results) -> tuple[int, int]:
    """The run's (h, w) image shape; ValueError naming the dataset when it is not an image dataset.

    A monitored run's own `image_shape` (grey images: (h, w) or (1, h, w)) comes first; else its dataset's."""
    c = results.config
    shape = c.image_shape  # a monitored run's own, or its registered dataset's
    if shape is None and c.dataset in DATASETS:
        shape = DATASETS.get(c.dataset).image_shape
    if shape is not None:
        shape = tuple(shape)[-2:] if int(np.prod(shape[:-2])) == 1 else None
    if shape is None:
        raise ValueError(
            f"dataset {results.config.dataset!r} is not images; allowed: an image dataset ("
            + " | ".join(d.name for d in DATASETS if d.image_shape is not None)
            + ")"
        )
    return shape


def mosaic(tiles: np.ndarray, shape: tuple[int, int], fill: float = np.nan) -> np.ndarray:
    """(rows, cols, h*w) tiles -> (rows*(h+1)-1, cols*(w+1)-1) image with 1-pixel gaps of `fill` (NaN: blank)."""
    rows, cols, _ = tiles.shape
    h, w = shape
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), fill)
    for i in range(rows):
        for j in range(cols):
            out[i * (h + 1) : i * (h + 1) + h, j * (w + 1) : j * (w + 1) + w] = tiles[i, j].reshape(h, w)
    return out


def _heatmap(img: np.ndarray) -> go.Heatmap:
    """A mosaic drawn in grey from black (-1) to white (1); gaps (NaN) blank."""
    return go.Heatmap(
        z=img,
        colorscale="gray",
        zmin=-1,
        zmax=1,
        showscale=False,
        hoverongaps=False,
        hovertemplate="%{z:.2f}<extra></extra>",
    )


def _title(head: str, sub: str) -> dict:
    return dict(text=f"{head}<br><span style='font-size:12px'>{sub}</span>", font=dict(size=15), x=0.01, xanchor="left")


def _height(shape, width: int, left: int, extra: int) -> int:
    """Figure height that shows a (rows, cols) mosaic at square pixels across the plot's width."""
    rows, cols = shape
    return int(extra + (width - left - 20) * rows / cols)


def memorized_examples(
    results,
    epoch: int,
    criterion: str = "paper",
    threshold: float | None = None,
    repeat: int = 0,
    per_group: int = 4,
    seed: int = 0,
) -> dict[str, list[dict]]:
    """Per group, up to `per_group` memorized samples of one evaluated epoch and repeat, chosen at random
    (`default_rng(seed)`): {group: [{"sample", "train", "test" (d,) images, "d1", "d_test", "index"}]}.

    A sample belongs to the group of its nearest training point; its nearest test image is found again here
    (exactly, by brute force over the repeat's test points: only the shown samples). A run that kept a subsample
    (store_samples=k) shows memorized samples among those kept; one that kept none gives "sample" and "test"
    None (the nearest training image, d1 and d_test are still known).
    """
    c = results.config
    k = c.own_threshold(criterion) if threshold is None else float(threshold)
    arrays = results.epoch_arrays(epoch)
    nb = {f: arrays[f][repeat] for f in NEIGHBOUR_FIELDS if f in arrays}
    memorized = is_memorized(criterion, ratio_from(criterion, nb), k)
    train, test = results.data["train_points"][repeat], results.data["test_points"][repeat]
    groups = results.data["groups"][repeat][nb["index"]]
    stored = stored_samples(results, epoch)
    row = stored.position()  # -1: a sample the run did not keep (store_samples)
    if stored.mode == "subsample":
        memorized &= row >= 0  # show the memorized samples that are stored
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict]] = {}
    for g, name in enumerate(results.labels):
        hits = np.flatnonzero(memorized & (groups == g))
        chosen = np.sort(rng.choice(hits, size=min(per_group, len(hits)), replace=False)) if len(hits) else hits
        rows = []
        for i in chosen:
            sample = stored.points[repeat][row[i]] if row[i] >= 0 else None  # None: not stored
            j = None if sample is None else int(np.argmin(((test - sample) ** 2).sum(axis=1)))
            rows.append(
                {
                    "sample": sample,
                    "train": train[nb["index"][i]],
                    "test": None if j is None else test[j],
                    "d1": float(nb["d1"][i]),
                    "d_test": float(nb["d_test"][i]),
                    "index": int(i),
                }
            )
        out[name] = rows
    return out


def memorized_grid(
    results,
    epoch: int,
    criterion: str = "paper",
    threshold: float | None = None,
    repeat: int = 0,
    per_group: int = 4,
    seed: int = 0,
    figure_class=go.Figure,
) -> go.Figure:
    """Figure: per group (rows), memorized samples of `epoch` (each a triple: sample | nearest training image |
    nearest test image), d1 and d_test written under each triple."""
    shape = image_shape(results)
    h, w = shape
    examples = memorized_examples(results, epoch, criterion, threshold, repeat, per_group, seed)
    d = h * w
    labels = results.labels
    tiles = np.full((len(labels), per_group * 3, d), np.nan)
    notes = []
    for gi, name in enumerate(labels):
        for ei, ex in enumerate(examples[name]):
            for ci, key in enumerate(("sample", "train", "test")):
                if ex[key] is not None:  # a sample not stored: a blank tile
                    tiles[gi, ei * 3 + ci] = ex[key]
            notes.append(
                dict(
                    x=(ei * 3 + 1) * (w + 1) + (w - 1) / 2,
                    y=gi * (h + 1) + h + 0.1,
                    text=f"d1 {ex['d1']:.2f} · d_test {ex['d_test']:.2f}",
                )
            )
        if not examples[name]:
            notes.append(dict(x=per_group * 3 * (w + 1) / 2, y=gi * (h + 1) + h / 2, text=f"no memorized {name}"))
    img = mosaic(tiles, shape)
    k = results.config.own_threshold(criterion) if threshold is None else float(threshold)
    missing = missing_note(stored_samples(results, epoch))
    fig = go.Figure(_heatmap(img))
    for n in notes:
        fig.add_annotation(x=n["x"], y=n["y"], text=n["text"], showarrow=False, yanchor="top", font=dict(size=9))
    fig.update_yaxes(
        autorange="reversed",
        tickvals=[i * (h + 1) + h / 2 for i in range(len(labels))],
        ticktext=[group_name(g) for g in labels],
        scaleanchor="x",
        showgrid=False,
        zeroline=False,
    )
    fig.update_xaxes(
        tickvals=[(j * 3 + c) * (w + 1) + (w - 1) / 2 for j in range(per_group) for c in range(3)],
        ticktext=[COLUMNS[c].replace("nearest ", "") for _ in range(per_group) for c in range(3)],
        showgrid=False,
        zeroline=False,
        tickfont=dict(size=9),
        side="top",  # under the tiles go the distances
    )
    width = max(700, 75 * per_group * 3)
    fig.update_layout(
        title=_title(
            f"Memorized samples at epoch {epoch}, repeat {repeat}",
            f"{CRITERIA.get(criterion).text(k)}; each triple: sample | nearest training image | nearest test image"
            + (f"; {missing}" if missing else ""),
        ),
        template="plotly_white",
        width=width,
        height=_height(img.shape, width, left=110, extra=170),
        margin=dict(l=110, r=20, t=105, b=40),
    )
    return fig if figure_class is go.Figure else figure_class(fig)


def samples_over_epochs(results, epochs=None, n: int = 10, repeat: int = 0, seed: int = 0) -> go.Figure:
    """Figure: the same `n` sample slots (random, `default_rng(seed)`) at each evaluated epoch (rows)."""
    shape = image_shape(results)
    h, w = shape
    evaluated = results.evaluated_epochs
    epochs = evaluated if epochs is None else list(epochs)
    if len(epochs) > 12:  # at most 12 rows: evenly spaced, first and last included
        epochs = [epochs[i] for i in np.unique(np.linspace(0, len(epochs) - 1, 12).round().astype(int))]
    first = stored_samples(results, epochs[0])
    kept = first.slots  # every slot, a fixed subsample of them, or none (store_samples)
    slots = np.sort(np.random.default_rng(seed).choice(kept, size=min(n, len(kept)), replace=False))
    if not len(slots):
        fig = go.Figure()
        fig.add_annotation(text=missing_note(first), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(title=_title("Samples over training", missing_note(first)), template="plotly_white")
        return fig
    tiles = []
    for e in epochs:
        s = stored_samples(results, e)
        tiles.append(s.points[repeat][s.position()[slots]])
    tiles = np.stack(tiles)
    fig = go.Figure(_heatmap(mosaic(tiles, shape)))
    fig.update_yaxes(
        autorange="reversed",
        tickvals=[i * (h + 1) + h / 2 for i in range(len(epochs))],
        ticktext=[f"epoch {e}" for e in epochs],
        scaleanchor="x",
        showgrid=False,
        zeroline=False,
    )
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    width = max(600, 60 * len(slots))
    img = fig.data[0].z
    fig.update_layout(
        title=_title("Samples over training", f"repeat {repeat}; the same {len(slots)} sample slots in every row"),
        template="plotly_white",
        width=width,
        height=_height(np.shape(img), width, left=90, extra=110),
        margin=dict(l=90, r=20, t=80, b=20),
    )
    return fig


def image_browser(results, criterion: str = "paper", per_group: int = 4):
    """An ipywidgets box: an evaluated-epoch slider and criterion buttons over `memorized_grid` (redrawn in place)."""
    import ipywidgets as W

    epochs = results.evaluated_epochs
    slider = W.SelectionSlider(options=epochs, value=epochs[-1], description="epoch", continuous_update=False)
    crit = W.ToggleButtons(
        options=[(c.button, c.name) for c in CRITERIA],
        value=criterion,
        description="criterion",
        style={"button_width": "210px"},
    )
    fig = memorized_grid(results, epochs[-1], criterion, per_group=per_group, figure_class=go.FigureWidget)

    def redraw(*_):
        new = memorized_grid(results, slider.value, crit.value, per_group=per_group)
        with fig.batch_update():
            fig.data[0].z = new.data[0].z
            fig.layout.annotations = new.layout.annotations
            fig.layout.title.text = new.layout.title.text

    slider.observe(redraw, names="value")
    crit.observe(redraw, names="value")
    box = W.VBox([W.HBox([slider]), crit, fig])
    box.figure, box.slider, box.criterion = fig, slider, crit
    return box
