"""Tables-only copies (memnb.experiment.archive): what comes back from a GPU machine renders here."""

import gzip
import json
import re
import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest
from helpers import run_notebook_smoke

from memnb import ExperimentConfig, Results, run_experiment
from memnb.core.storage import CorruptRunError, StorageError, write_bytes_of
from memnb.experiment import archive
from memnb.experiment.archive import (
    MIN_PART_BYTES,
    TABLE_FILES,
    CorruptArchiveError,
    main,
    pack,
    piece_name,
    tables_only_copy,
    unpack,
)
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
    assert files == [piece_name(tmp_path / "out" / "runs.tar.gz", k, len(files)) for k in range(1, len(files) + 1)]
    assert not (tmp_path / "out" / "runs.tar.gz").exists() and not list((tmp_path / "out").glob(".*"))
    (path,) = unpack(files[0], tmp_path / "runs")
    pd.testing.assert_frame_equal(Results(path).table(), full.table())
    # already there, the same copy: returned quietly, whichever piece (or the archive's own name) is given
    for given in (files[0], files[-1], tmp_path / "out" / "runs.tar.gz"):
        assert unpack(given, tmp_path / "runs") == [path]
    # the pieces, concatenated in name order, are the archive
    whole = b"".join(f.read_bytes() for f in sorted(files))
    (tmp_path / "cat.tar.gz").write_bytes(whole)
    assert unpack(tmp_path / "cat.tar.gz", tmp_path / "cat") == [tmp_path / "cat" / full.path.name]
    # packed again at the same target in one file: the earlier pieces go, once the new archive is written
    assert pack([full.path], tmp_path / "out" / "runs.tar.gz") == [tmp_path / "out" / "runs.tar.gz"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["runs.tar.gz"]
    # the command line does the same
    assert main(["pack", str(full.path), "--out", str(tmp_path / "cli.tar.gz")]) == 0
    assert main(["unpack", str(tmp_path / "cli.tar.gz"), "--root", str(tmp_path / "cli")]) == 0
    assert Results(tmp_path / "cli" / full.path.name).tables_only
    with pytest.raises(ValueError, match="exists"):
        tables_only_copy(full.path, tmp_path / "runs")


@pytest.mark.parametrize("bad", [0, -4000, 1, MIN_PART_BYTES - 1, 4000.0, "4000", True, [4000]])
def test_part_bytes_is_checked_before_anything_is_written(full, tmp_path, bad):
    target = tmp_path / "runs.tar.gz"
    (before,) = pack([full.path], target)
    stored = before.read_bytes()
    with pytest.raises(ValueError, match=r"part_bytes = .* is invalid; allowed: an integer >= 1024"):
        pack([full.path], target, part_bytes=bad)
    assert sorted(tmp_path.iterdir()) == [target] and target.read_bytes() == stored  # the earlier archive intact
    assert unpack(target, tmp_path / "runs") == [tmp_path / "runs" / full.path.name]


def test_a_pack_that_fails_midway_keeps_the_earlier_archive(full, tmp_path, monkeypatch):
    target = tmp_path / "runs.tar.gz"
    (before,) = pack([full.path], target)
    stored = before.read_bytes()
    calls = []

    def disk_full_at_the_second_piece(path, write):
        calls.append(path)
        if len(calls) == 2:
            raise StorageError(28, f"could not write {path}: No space left on device")
        return write_bytes_of(path, write)

    monkeypatch.setattr(archive, "write_bytes_of", disk_full_at_the_second_piece)
    with pytest.raises(StorageError, match="No space"):
        pack([full.path], target, part_bytes=2000)
    assert len(calls) == 2 and sorted(tmp_path.iterdir()) == [target] and target.read_bytes() == stored
    monkeypatch.undo()  # space freed: packing again works
    files = pack([full.path], target, part_bytes=2000)
    assert sorted(tmp_path.iterdir()) == files and len(files) > 2


def test_pack_refuses_bad_runs_before_any_work(full, tmp_path):
    for runs, match in (
        (str(full.path), "runs = .* allowed: a list of run directories"),
        ([tmp_path], "no config.json"),
        ([full.path, full.path], "distinct folder names"),
    ):
        with pytest.raises(ValueError, match=match):
            pack(runs, tmp_path / "x.tar.gz")
        assert not (tmp_path / "x.tar.gz").exists()
    with pytest.raises(ValueError, match="target = .* a file name"):
        pack([full.path], tmp_path)


def _files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_unpack_never_returns_another_run_than_the_archive_s(full, tmp_path):
    (archive_file,) = pack([full.path], tmp_path / "runs.tar.gz", made_on="the GPU box")
    # the folder holds the full run of that name: refused, naming the folder; the full run is left as it is
    here = full.path.parent
    before = {f: (here / f).read_bytes() for f in _files_under(here) if (here / f).is_file()}
    with pytest.raises(ValueError, match=f"root = .*{full.path.name}.* holds another run") as err:
        unpack(archive_file, here)
    assert "epochs" in str(err.value) and "another root=" in str(err.value) and "move" in str(err.value)
    assert {f: (here / f).read_bytes() for f in _files_under(here) if (here / f).is_file()} == before
    # another copy (made on another machine) is another run too
    other = tables_only_copy(full.path, tmp_path / "runs", made_on="another box")
    with pytest.raises(ValueError, match="manifest.json differ"):
        unpack(archive_file, tmp_path / "runs")
    assert Results(other).manifest["made_on"] == "another box"
    # what an interrupted copy left there: refused as well
    (tmp_path / "half" / full.path.name).mkdir(parents=True)
    shutil.copy2(full.path / "config.json", tmp_path / "half" / full.path.name / "config.json")
    with pytest.raises(ValueError, match="it lacks loss.parquet, manifest.json, table.parquet and 1 more"):
        unpack(archive_file, tmp_path / "half")
    # the advice, followed: another root ...
    (path,) = unpack(archive_file, tmp_path / "elsewhere")
    assert Results(path).manifest["made_on"] == "the GPU box"
    # ... or the folder moved away first
    other.rename(tmp_path / "moved")
    assert unpack(archive_file, tmp_path / "runs") == [tmp_path / "runs" / full.path.name]
    assert Results(tmp_path / "runs" / full.path.name).manifest["made_on"] == "the GPU box"
    assert Results(tmp_path / "moved").manifest["made_on"] == "another box"


def _assert_nothing_extracted(root):
    assert _files_under(root) == [], _files_under(root)


def test_a_damaged_archive_is_named_and_nothing_is_extracted(full, tmp_path):
    (good,) = pack([full.path], tmp_path / "runs.tar.gz")
    data = good.read_bytes()
    bad = tmp_path / "bad.tar.gz"

    def flipped(at):
        b = bytearray(data)
        b[at] ^= 0xFF
        return bytes(b)

    cases = [
        (data[: len(data) // 2], "truncated"),
        (data[:-3], "truncated"),
        (b"", "empty"),
        (flipped(len(data) // 2), "damaged"),
        (flipped(len(data) - 6), "damaged"),  # the CRC
        (flipped(0), "damaged"),  # gzip's magic number
        (b"not an archive" * 10, "damaged"),
        (gzip.compress(b"not a tar" * 100), "not a tar archive"),
    ]
    for content, what in cases:
        bad.write_bytes(content)
        with pytest.raises(CorruptArchiveError, match=f"{bad}.*{what}.*copy it again from the machine") as err:
            unpack(bad, tmp_path / "runs")
        assert isinstance(err.value, ValueError) and isinstance(err.value, CorruptRunError)
        _assert_nothing_extracted(tmp_path / "runs")
    # the advice, followed: a good copy unpacks
    bad.write_bytes(data)
    assert unpack(bad, tmp_path / "runs") == [tmp_path / "runs" / full.path.name]


def test_a_damaged_run_inside_an_archive_is_refused(full, tmp_path):
    copy = tables_only_copy(full.path, tmp_path / "copy")
    table = copy / "table.parquet"
    b = bytearray(table.read_bytes())
    b[len(b) // 2] ^= 0xFF  # same size, another checksum: written into a well-formed archive
    table.write_bytes(bytes(b))
    with tarfile.open(tmp_path / "edited.tar.gz", "w:gz") as tar:
        tar.add(copy, arcname=copy.name)
    (tmp_path / "runs").mkdir()
    with pytest.raises(CorruptArchiveError, match=f"edited.tar.gz is damaged: its {copy.name}/table.parquet has"):
        unpack(tmp_path / "edited.tar.gz", tmp_path / "runs")
    _assert_nothing_extracted(tmp_path / "runs")
    assert (tmp_path / "runs").is_dir()  # a folder that was there stays


def test_a_missing_piece_is_named(full, tmp_path):
    files = pack([full.path], tmp_path / "out" / "runs.tar.gz", part_bytes=1500)
    n = len(files)
    assert n >= 4
    saved = {f: f.read_bytes() for f in files}
    for k in (3, n):  # a middle piece, the last piece
        files[k - 1].unlink()
        for given in (files[0], tmp_path / "out" / "runs.tar.gz"):
            with pytest.raises(CorruptArchiveError, match=f"piece {k} of {n} .*{files[k - 1].name}.* missing"):
                unpack(given, tmp_path / "runs")
            _assert_nothing_extracted(tmp_path / "runs")
        files[k - 1].write_bytes(saved[files[k - 1]])  # copied again: it unpacks
        assert unpack(files[0], tmp_path / "runs") == [tmp_path / "runs" / full.path.name]
        shutil.rmtree(tmp_path / "runs")
    # a piece cut short
    files[1].write_bytes(saved[files[1]][:100])
    with pytest.raises(CorruptArchiveError, match=f"runs.tar.gz \\({n} pieces\\) is (damaged|truncated)"):
        unpack(files[0], tmp_path / "runs")
    _assert_nothing_extracted(tmp_path / "runs")


def test_pieces_of_earlier_memnb_still_unpack(full, tmp_path):
    (good,) = pack([full.path], tmp_path / "runs.tar.gz")
    data = good.read_bytes()
    good.unlink()
    for i in range(0, len(data), 2000):
        (tmp_path / f"runs.tar.gz.part{i // 2000:02d}").write_bytes(data[i : i + 2000])
    assert unpack(tmp_path / "runs.tar.gz.part00", tmp_path / "runs") == [tmp_path / "runs" / full.path.name]
    (tmp_path / "runs.tar.gz.part01").unlink()
    with pytest.raises(CorruptArchiveError, match=r"piece\(s\) .part01 missing"):
        unpack(tmp_path / "runs.tar.gz.part00", tmp_path / "other")
    _assert_nothing_extracted(tmp_path / "other")


def test_the_command_line_names_its_flags_and_reads_memnb_runs(full, tmp_path, monkeypatch, capsys):
    (archive_file,) = pack([full.path], tmp_path / "runs.tar.gz")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMNB_RUNS", str(tmp_path / "env-runs"))
    assert main(["unpack", str(archive_file)]) == 0
    assert Results(tmp_path / "env-runs" / full.path.name).tables_only and not (tmp_path / "outputs").exists()
    capsys.readouterr()
    for argv, says in (
        (["pack", str(full.path), "--out", str(tmp_path / "x.tar.gz"), "--part-bytes", "0"], "--part-bytes = 0"),
        (["unpack", str(archive_file), "--root", str(full.path.parent)], "--root = .* with another --root or move"),
    ):
        with pytest.raises(SystemExit) as err:
            main(argv)
        assert err.value.code == 2
        stderr = capsys.readouterr().err
        assert stderr.count("\n") == 1 and stderr.startswith("python -m memnb.experiment.archive: error: ")
        assert re.search(says, stderr) and "root=" not in stderr and "part_bytes" not in stderr, stderr
    (tmp_path / "cut.tar.gz").write_bytes(archive_file.read_bytes()[:500])
    with pytest.raises(SystemExit, match="cut.tar.gz is truncated"):
        main(["unpack", str(tmp_path / "cut.tar.gz"), "--root", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()


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
