"""Tables-only copies (memnb.experiment.archive): what comes back from a GPU machine renders here."""

import json
import tarfile

import numpy as np
import pandas as pd
import pytest
from helpers import run_notebook_smoke

from memnb import ExperimentConfig, Results, run_experiment
from memnb.experiment.archive import TABLE_FILES, main, pack, tables_only_copy, unpack
from memnb.experiment.results import TableGrid, TablesOnlyError
from memnb.views import figures, images
from memnb.views.widgets import Explorer
from memnb.workflows import profiles


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    cfg = ExperimentConfig(n_base=120, n_outliers=12, n_duplicates=12, epochs=3, n_repeats=2, device="cpu")
    return run_experiment(cfg, tmp_path_factory.mktemp("there"), progress=False)


def test_a_tables_only_copy_opens_with_the_run_s_tables(full, tmp_path):
    path = tables_only_copy(full.path, tmp_path, made_on="an H200 box")
    assert sorted(p.name for p in path.iterdir()) == sorted(TABLE_FILES)
    copy = Results(path)
    copy.verify(checksums=True)
    assert copy.tables_only and copy.complete and copy.evaluated_epochs == full.evaluated_epochs
    pd.testing.assert_frame_equal(copy.table(), full.table())
    pd.testing.assert_frame_equal(copy.zu(), full.zu())
    pd.testing.assert_frame_equal(copy.loss(), full.loss())
    assert copy.config == full.config
    # the views that need only the table
    view = figures.select(copy.table(), "paper", 1.5)
    figures.paper_view(view, copy.config)
    assert "paper" in figures.summary_text(view, copy.config)
    # what needs per-sample arrays says why, naming the machine
    for call in (lambda: copy.rates_at("paper", 2.2), lambda: copy.data, lambda: copy.epoch_arrays(0)):
        with pytest.raises(TablesOnlyError, match="an H200 box"):
            call()
    # run_experiment with the same config returns the copy as it is: nothing is trained or written
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    got = run_experiment(full.config, tmp_path, progress=False)
    assert got.tables_only and {p.name: p.read_bytes() for p in path.iterdir() if p.name in before} == before


def test_the_explorer_reads_the_table_s_thresholds(full, tmp_path):
    copy = Results(tables_only_copy(full.path, tmp_path))
    ex = Explorer(copy, progress=False)
    assert isinstance(ex.grid, TableGrid)
    grid = TableGrid(copy)
    for crit, k in (("paper", 1.5), ("train_only", 3.0)):
        a = grid.rates(crit, k)
        b = full.table().query("criterion == @crit and threshold == @k")
        pd.testing.assert_frame_equal(a, b.sort_values(["repeat", "epoch", "group"], ignore_index=True))
    ex.ratio.value = 2.2  # between the table's 2.0 and 2.5: drawn at the nearest, and the status says so
    assert "the table at k = 2" in ex.status.value and "tables-only" in ex.status.value
    ex.criterion.value = "train_only"
    with pytest.raises(TablesOnlyError):
        images.memorized_examples(copy, 0)


class StopAt:
    """A callback (memnb.core.callbacks) that stops a run at evaluated epoch `at`."""

    def __init__(self, at: int):
        self.at = at

    def reset(self) -> None:
        pass

    def __call__(self, epoch, arrays, context) -> bool:
        return epoch >= self.at

    def record(self) -> dict:
        return {"name": "StopAt", "at": self.at}

    def settings(self) -> dict:
        return {"at": self.at}


def test_a_partial_run_s_copy_cannot_be_resumed(tmp_path):
    cfg = ExperimentConfig(n_base=80, n_outliers=8, n_duplicates=8, epochs=6, n_repeats=2, device="cpu")
    stopped = run_experiment(cfg, tmp_path / "there", progress=False, callbacks=[StopAt(2)])
    assert not stopped.complete and stopped.evaluated_epochs == [0, 1, 2]
    copy = Results(tables_only_copy(stopped.path, tmp_path / "here"))
    assert not copy.complete and copy.evaluated_epochs == [0, 1, 2]
    pd.testing.assert_frame_equal(copy.table(), stopped.table())  # assembled there from the epoch files
    with pytest.raises(TablesOnlyError, match="cannot be resumed here"):
        run_experiment(cfg, tmp_path / "here", progress=False)


def test_pack_in_pieces_and_unpack(full, tmp_path):
    files = pack([full.path], tmp_path / "out" / "runs.tar.gz", part_bytes=4000)
    assert len(files) > 1 and all(f.stat().st_size <= 4000 for f in files)
    (path,) = unpack(files[0], tmp_path / "runs")
    pd.testing.assert_frame_equal(Results(path).table(), full.table())
    assert unpack(files[0], tmp_path / "runs") == [path]  # already there: left as it is
    # the command line does the same
    assert main(["pack", str(full.path), "--out", str(tmp_path / "cli.tar.gz")]) == 0
    assert main(["unpack", str(tmp_path / "cli.tar.gz"), "--root", str(tmp_path / "cli")]) == 0
    assert Results(tmp_path / "cli" / full.path.name).tables_only
    with pytest.raises(ValueError, match="exists"):
        tables_only_copy(full.path, tmp_path / "runs")


def test_unpack_refuses_members_outside_the_root(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    (tmp_path / "x.txt").write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(tmp_path / "x.txt", arcname="../escaped.txt")
    with pytest.raises(ValueError, match="escaped"):
        unpack(evil, tmp_path / "runs")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_figure_notebook_renders_a_tables_only_run(tmp_path):
    """What benchmarks/gpu.sh brings back renders here: the smoke run of Figure 4 made 'there', only its tables
    unpacked 'here', then the figure notebook at the smoke profile (interactive: the explorer on the table)."""
    config, _ = profiles.apply_profile(profiles.figure_config(4), "smoke")
    there = run_experiment(config, tmp_path / "there", progress=False)
    (archive,) = pack([there.path], tmp_path / "gpu-runs.tar.gz")
    unpack(archive, tmp_path / "runs")
    text = run_notebook_smoke("figure4.ipynb", tmp_path, interactive=True, out_dir=None)
    assert "sanity checks passed" in text
    copy = Results(tmp_path / "runs" / there.path.name)
    assert copy.tables_only and not list((tmp_path / "runs" / there.path.name).glob("epochs"))
    manifest = json.loads((copy.path / "manifest.json").read_text())
    assert manifest["evaluated_epochs"] == there.evaluated_epochs
    np.testing.assert_array_equal(copy.table().memorized, there.table().memorized)
