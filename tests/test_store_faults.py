"""The run store's faults, as a user battery found them (issue 22), each tried again: a test per case.

Every piece of advice an error gives is followed here to a correct run (the advice is a promise); nothing a run
computed or was given is lost to a fault or to its repair.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SMALL, assert_same_results, small_reference

from memnb import CorruptRunError, ExperimentConfig, Monitor, Results, run_experiment
from memnb.analysis.runs import find_runs
from memnb.experiment import archive
from memnb.experiment.store import list_runs, read_manifest, resolve_run, runs_root


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return small_reference(tmp_path_factory)


def fresh(tmp_path):
    return run_experiment(ExperimentConfig(**SMALL), root=tmp_path, progress=False)


def flip(f: Path, at: float = 0.5) -> None:
    """Change one byte of `f`, keeping its size (only a checksum can tell)."""
    raw = bytearray(f.read_bytes())
    raw[int(len(raw) * at)] ^= 0xFF
    f.write_bytes(bytes(raw))


def snapshot(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# -- a changed byte in a file that run_experiment rebuilds: the advice, followed, ends (it never loops) -----------
@pytest.mark.parametrize("name", ["data.npz", "table.parquet", "zu.parquet", "loss.parquet"])
def test_a_changed_byte_in_a_rebuilt_file_is_rebuilt_by_following_the_advice(tmp_path, reference, name):
    res = fresh(tmp_path)
    flip(res.path / name)
    with pytest.raises(CorruptRunError, match=rf"{name} has another checksum.*run_experiment\(config\)"):
        Results(res.path).verify(checksums=True)
    with pytest.warns(UserWarning, match=f"rebuilt {name}"):
        again = run_experiment(res.config, root=tmp_path, progress=False)  # the advice
    again.verify(checksums=True)
    assert_same_results(again, reference)
    assert read_manifest(res.path).training["repaired"] == [name]
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # and the next call finds nothing to do
        run_experiment(res.config, root=tmp_path, progress=False)


def test_a_damaged_manifest_of_a_complete_run_is_written_again(tmp_path, reference):
    res = fresh(tmp_path)
    (res.path / "manifest.json").write_text("{half")
    with pytest.raises(CorruptRunError, match=r"manifest.json is unreadable.*run_experiment\(config\)"):
        Results(res.path)
    with pytest.warns(UserWarning, match="set aside"):
        again = run_experiment(res.config, root=tmp_path, progress=False)
    assert again.complete and again.manifest.training["trained_epochs"] == 3
    again.verify(checksums=True)
    assert_same_results(again, reference)


# -- a tables-only copy: nothing to rebuild from; the advice is to unpack again ----------------------------------
def test_a_damaged_tables_only_copy_is_restored_by_unpacking_again(tmp_path, reference):
    (target,) = archive.pack([reference.path], tmp_path / "runs.tar.gz")
    root = tmp_path / "here"
    (copy,) = archive.unpack(target, root)
    want = Results(copy).table()
    flip(copy / "table.parquet")
    with pytest.raises(CorruptRunError, match="tables-only copy.*unpack its archive again"):
        run_experiment(reference.config, root=root, progress=False)
    shutil.move(copy, tmp_path / "moved-away")  # the advice: move the copy away, unpack again
    (copy,) = archive.unpack(target, root)
    pd.testing.assert_frame_equal(run_experiment(reference.config, root=root, progress=False).table(), want)


# -- memnb.Monitor ----------------------------------------------------------------------------------------------
def monitor_data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(60, 3)), np.zeros(60, int), rng.normal(size=(40, 3)), rng.normal(size=(30, 3))


def test_a_monitored_run_with_a_damaged_manifest_reopens_whole(tmp_path):
    train, groups, test, null = monitor_data()
    mon = Monitor(train, groups, test, root=tmp_path, name="m", null=null)
    for e in range(3):
        mon.observe(e, np.random.default_rng(e).normal(size=(30, 3)), loss=1.0 / (e + 1))
    want = mon.results()
    table, loss = want.table(), want.loss()
    (tmp_path / "m" / "manifest.json").write_text("[]")
    with pytest.raises(CorruptRunError, match="open the run with memnb.Monitor on the same data"):
        Results(tmp_path / "m")
    Monitor(train, groups, test, root=tmp_path, name="m", null=null)  # the advice
    res = Results(tmp_path / "m")
    res.verify(checksums=True)
    pd.testing.assert_frame_equal(res.table(), table)
    pd.testing.assert_frame_equal(res.loss(), loss)


def test_a_first_observation_killed_before_its_config_leaves_a_folder_a_new_monitor_takes(tmp_path):
    train, groups, test, null = monitor_data()
    run = tmp_path / "m"
    run.mkdir()
    np.savez(run / "data.npz", train_points=train[None])  # what an older memnb's killed start left
    (run / "epochs").mkdir()
    mon = Monitor(train, groups, test, root=tmp_path, name="m", null=null)
    mon.observe(0, np.random.default_rng(0).normal(size=(30, 3)))
    assert mon.results().evaluated_epochs == [0]


def test_a_first_observation_killed_after_its_config_is_taken_up_again(tmp_path, monkeypatch):
    import memnb.experiment.monitor as monitor_module

    train, groups, test, null = monitor_data()
    mon = Monitor(train, groups, test, root=tmp_path, name="m", null=null)
    monkeypatch.setattr(monitor_module, "write_data", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        mon.observe(0, np.zeros((30, 3)))
    monkeypatch.undo()
    assert (tmp_path / "m" / "config.json").exists() and not (tmp_path / "m" / "data.npz").exists()
    with pytest.warns(UserWarning, match="data.npz: written again"):
        again = Monitor(train, groups, test, root=tmp_path, name="m", null=null)
    again.observe(0, np.zeros((30, 3)))
    np.testing.assert_array_equal(again.results().data["train_points"][0], train)


def test_a_folder_holding_other_files_is_refused_before_anything_is_written(tmp_path):
    train, groups, test, null = monitor_data()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="name = 'm' is invalid.*notes.txt.*pass another name"):
        Monitor(train, groups, test, root=tmp_path, name="m", null=null)
    assert snapshot(tmp_path / "m") == {"notes.txt": b"mine"}


OBSERVER = """
import sys, time, numpy as np, memnb
t, root, first = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
train, test, null = rng.normal(size=(60, 3)), rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
time.sleep(max(0, t - time.time()))
mon = memnb.Monitor(train, np.zeros(60, int), test, root=root, name="shared", null=null)
for e in range(first, 12, 2):
    mon.observe(e, np.random.default_rng(e).normal(size=(30, 3)), loss=float(e))
print("ok")
"""


def test_two_monitors_on_one_folder_keep_what_each_observed(tmp_path):
    at = time.time() + 6.0  # both import memnb first, then start at the same instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OBSERVER, str(at), str(tmp_path), str(first)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in (0, 1)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    train, groups, test, null = monitor_data()
    res = Monitor(train, groups, test, root=tmp_path, name="shared", null=null).results()
    res.verify(checksums=True)
    assert res.evaluated_epochs == list(range(12))
    assert res.loss().groupby("epoch").loss.first().tolist() == [float(e) for e in range(12)]  # no loss lost


def test_bad_observations_fail_naming_the_argument_and_write_nothing(tmp_path):
    train, groups, test, null = monitor_data()
    mon = Monitor(train, groups, test, root=tmp_path, name="m", null=null)
    mon.observe(0, np.zeros((30, 3)))
    before = snapshot(tmp_path / "m")
    for call, match in [
        (lambda: mon.observe(2**70, np.zeros((30, 3))), r"epoch = 1180591620717411303424 is invalid"),
        (lambda: mon.observe(1, np.zeros((30, 3)), loss="abc"), r"loss = 'abc' is invalid"),
        (lambda: mon.observe(1, np.zeros((30, 3)), overwrite="no"), r"overwrite = 'no' is invalid; allowed: True"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()
    assert snapshot(tmp_path / "m") == before
    assert mon.observe(1, np.zeros((30, 3))).epoch.eq(1).all()  # and the run is still usable
    with pytest.raises(ValueError, match=r"train = 'values up to .*e\+200' is invalid.*rescale"):
        Monitor(train * 1e200, groups, test, root=tmp_path, name="other", null=null)
    assert not (tmp_path / "other").exists()


# -- run_experiment's arguments and resources, checked before any work -------------------------------------------
def test_strings_are_not_booleans(tmp_path):
    for kwargs, name in (({"wait": "no"}, "wait"), ({"progress": "no"}, "progress"), ({"verify": "yes"}, "verify")):
        with pytest.raises(ValueError, match=rf"{name} = '.*' is invalid; allowed: True or False"):
            run_experiment(ExperimentConfig(**SMALL), root=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("change", [{"n_base": 10**12}, {"epochs": 10**9}])
def test_a_run_this_machine_cannot_hold_is_refused_before_any_work(tmp_path, monkeypatch, change):
    monkeypatch.setenv("MEMNB_MEMORY_BYTES", str(16 << 30))
    with pytest.raises(ValueError, match=r"GiB"):
        run_experiment(ExperimentConfig(**{**SMALL, **change}), root=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_a_folder_that_holds_no_run_never_breaks_listing_the_others(tmp_path, reference):
    shutil.copytree(reference.path, tmp_path / reference.path.name)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{cut sh")
    (tmp_path / "empty").mkdir()
    skipped = []
    assert [r.path.name for r in list_runs(tmp_path, skipped)] == [reference.path.name]
    assert len(skipped) == 1 and "half" in skipped[0]
    with pytest.warns(UserWarning, match="skipped 1 unreadable run"):
        assert [r.path.name for r in find_runs(runs_root=tmp_path)] == [reference.path.name]


# -- one resolver, one runs root ---------------------------------------------------------------------------------
def test_every_function_that_takes_runs_takes_results_paths_and_names(tmp_path, monkeypatch, reference):
    monkeypatch.setenv("MEMNB_RUNS", str(reference.path.parent))
    assert runs_root() == reference.path.parent
    for given in (reference, reference.path, str(reference.path), reference.path.name):
        assert resolve_run(given).path == reference.path
        assert [r.path for r in find_runs([given])] == [reference.path]
    assert find_runs(reference)[0] is reference
    assert [r.path for r in find_runs()] == [reference.path]  # the verdict's default root is $MEMNB_RUNS too
    from memnb.analysis.verdict import verdict

    assert verdict([reference], n_bootstrap=50)[1].equals(verdict([reference.path], n_bootstrap=50)[1])
    with pytest.raises(ValueError, match="run = 'nothing-here' is invalid"):
        resolve_run("nothing-here")


# -- the store reads each file once ------------------------------------------------------------------------------
def test_opening_a_complete_run_reads_config_and_manifest_once(reference, monkeypatch):
    reads: dict[str, int] = {}
    real = Path.read_text

    def counted(self, *a, **k):
        reads[self.name] = reads.get(self.name, 0) + 1
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", counted)
    res = Results(reference.path)
    res.table(), res.zu(), res.loss(), res.complete, res.evaluated_epochs, res.stopped_at_epoch, res.records
    assert reads == {"config.json": 1, "manifest.json": 1}


def test_results_json_files_are_plain(reference):
    """Self-describing: manifest and config are plain JSON objects readable without memnb."""
    m = json.loads((reference.path / "manifest.json").read_text())
    assert m["complete"] is True and m["trained_epochs"] == 3 and set(m["files"]) >= {"data.npz", "table.parquet"}
    assert json.loads((reference.path / "config.json").read_text())["n_base"] == 200


# -- runs written before the store (commit 3f8b80c: tests/fixtures/record_previous.py) keep opening --------------
PREVIOUS = Path(__file__).resolve().parent / "fixtures" / "previous"


def test_a_trained_run_of_the_previous_layout_opens_and_is_returned_as_it_is(tmp_path):
    (old,) = (PREVIOUS / "trained").iterdir()
    shutil.copytree(old, tmp_path / old.name)
    res = Results(tmp_path / old.name)
    res.verify(checksums=True)
    pd.testing.assert_frame_equal(res.table(), res.assemble_table())
    pd.testing.assert_frame_equal(res.zu(), res.assemble_zu())
    before = snapshot(res.path)
    again = run_experiment(res.config, root=tmp_path, progress=False)
    assert again.complete and snapshot(res.path) == before  # nothing rewritten
    longer = run_experiment(res.config.replace(epochs=3), root=tmp_path, progress=False)  # another run: its own
    assert longer.evaluated_epochs == [0, 1, 2, 3]


def test_a_partial_run_of_the_previous_layout_resumes_from_its_old_checkpoint(tmp_path):
    (old,) = (PREVIOUS / "trained").iterdir()
    run = tmp_path / old.name
    shutil.copytree(old, run)
    want = Results(run).table()
    (run / "manifest.json").unlink()  # as if killed after its last epoch: resumes from the old-format checkpoint
    (run / "epochs" / "epoch_000002.npz").unlink()
    res = run_experiment(Results(run).config, root=tmp_path, progress=False)
    pd.testing.assert_frame_equal(res.table(), want)


def test_a_monitored_run_of_the_previous_layout_reopens_and_goes_on(tmp_path):
    sys.path.insert(0, str(PREVIOUS.parent))
    from record_previous import monitor_data

    train, groups, test, null, samples = monitor_data()
    shutil.copytree(PREVIOUS / "monitored", tmp_path, dirs_exist_ok=True)
    old = Results(tmp_path / "monitored")
    table, loss = old.table(), old.loss()
    assert loss.loss.round(6).tolist() == [1.0, 0.5, 0.333333]
    mon = Monitor(train, groups, test, root=tmp_path, name="monitored", null=null)
    assert mon.epochs == [0, 1, 2]
    assert mon.observe(1, samples[1]).epoch.eq(1).all()  # stored: not observed again
    mon.observe(3, samples[2], loss=0.25)
    res = mon.results()
    res.verify(checksums=True)
    assert res.evaluated_epochs == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(res.table()[res.table().epoch < 3].reset_index(drop=True), table)
    assert res.loss().loss.round(6).tolist() == [1.0, 0.5, 0.333333, 0.25]  # the old epochs' losses kept


def test_a_tables_only_copy_of_the_previous_layout_opens(tmp_path):
    (old,) = (PREVIOUS / "copy").iterdir()
    shutil.copytree(old, tmp_path / old.name)
    res = Results(tmp_path / old.name)
    assert res.tables_only and res.complete and not res.table().empty
    assert run_experiment(res.config, root=tmp_path, progress=False).path == res.path


@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_a_monitored_run_that_lost_its_config_gets_it_back_from_the_same_data(tmp_path, damage):
    train, groups, test, null = monitor_data()
    mon = Monitor(train, groups, test, root=tmp_path, name="m", null=null)
    for e in range(2):
        mon.observe(e, np.random.default_rng(e).normal(size=(30, 3)), loss=float(e))
    want = mon.results().table()
    f = tmp_path / "m" / "config.json"
    if damage == "missing":
        f.unlink()
    else:
        f.write_text("{cut")
        with pytest.raises(CorruptRunError, match="open memnb.Monitor on the same data with name='m'"):
            Results(tmp_path / "m")
    with pytest.warns(UserWarning, match="written again from the given data"):
        again = Monitor(train, groups, test, root=tmp_path, name="m", null=null)  # the advice
    assert again.epochs == [0, 1]
    pd.testing.assert_frame_equal(again.results().table(), want)
    other = monitor_data(seed=1)
    (tmp_path / "m" / "config.json").unlink()
    with pytest.raises(ValueError, match="but no config.json"):  # other data: not this run's
        Monitor(*other[:3], root=tmp_path, name="m", null=other[3])


def test_a_damaged_loss_of_a_run_without_checkpoint_is_trained_again_keeping_its_epochs(tmp_path):
    (old,) = (Path(__file__).resolve().parent / "fixtures" / "old_run").iterdir()  # stored without its checkpoint
    run = tmp_path / old.name
    shutil.copytree(old, run)
    want, epochs = Results(run).loss(), snapshot(run / "epochs")
    (run / "loss.parquet").write_bytes(b"not parquet")
    with pytest.warns(UserWarning, match="trained again for its loss history"):
        res = run_experiment(Results(run, verify=False).config, root=tmp_path, progress=False)
    assert snapshot(run / "epochs") == epochs  # no stored epoch evaluated again
    # trained again on this CPU: the float kernels' last bits may differ from the recording CPU's
    np.testing.assert_allclose(res.loss().loss.to_numpy(), want.loss.to_numpy(), rtol=1e-5)
    res.verify(checksums=True)


def test_a_run_killed_before_its_first_epoch_never_breaks_the_verdict_of_the_others(tmp_path, reference):
    from memnb.analysis.verdict import verdict
    from memnb.experiment.store import write_config

    shutil.copytree(reference.path, tmp_path / reference.path.name)
    big = ExperimentConfig(n_base=10**6)
    (tmp_path / big.run_name()).mkdir()
    write_config(tmp_path / big.run_name(), big)  # what a start killed before its first epoch leaves
    with pytest.warns(UserWarning, match="holds no evaluated epoch yet"):
        _, timing = verdict(runs_root=tmp_path, n_bootstrap=50)
    assert set(timing.run) == {reference.path.name}


def test_a_fixed_null_is_searched_once_per_monitor(tmp_path, monkeypatch):
    from memnb.experiment.monitor_search import Searches

    calls = []
    real = Searches.search
    monkeypatch.setattr(
        Searches, "search", lambda self, x, prefix="", bar=None: calls.append(prefix) or real(self, x, prefix, bar)
    )
    train, groups, test, null = monitor_data()
    mon = Monitor(train, groups, test, root=tmp_path, name="m", null=null)
    for e in range(4):
        mon.observe(e, np.random.default_rng(e).normal(size=(30, 3)))
    assert calls.count("null_") == 1 and calls.count("") == 4
    res = mon.results()
    a, b = res.epoch_arrays(0), res.epoch_arrays(3)
    for k in ("null_d1", "null_index", "null_d_test"):
        np.testing.assert_array_equal(a[k], b[k])
    # the same numbers as a search of every epoch's null
    fresh = Monitor(train, groups, test, root=tmp_path / "b", name="m", null=null)
    fresh.observe(3, np.random.default_rng(3).normal(size=(30, 3)))
    np.testing.assert_array_equal(fresh.results().epoch_arrays(3)["null_d1"], b["null_d1"])


def test_a_long_observation_shows_progress_unless_asked_not_to(tmp_path, monkeypatch, capsys):
    import memnb.experiment.monitor_search as search_module

    train, groups, test, null = monitor_data()
    monkeypatch.setattr(search_module, "CHUNK", 7)  # several chunks per search: the same neighbours
    monkeypatch.setattr(search_module, "PROGRESS_AFTER_S", 0.0)  # "long": shown at once
    chunked = Monitor(train, groups, test, root=tmp_path / "a", name="m", null=null)
    chunked.observe(0, np.random.default_rng(0).normal(size=(30, 3)))
    assert "observe 0" in capsys.readouterr().err
    quiet = Monitor(train, groups, test, root=tmp_path / "b", name="m", null=null, progress=False)
    monkeypatch.setattr(search_module, "CHUNK", 4096)
    quiet.observe(0, np.random.default_rng(0).normal(size=(30, 3)))
    assert "observe 0" not in capsys.readouterr().err
    a, b = chunked.results().epoch_arrays(0), quiet.results().epoch_arrays(0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with pytest.raises(ValueError, match="progress = 'no' is invalid"):
        Monitor(train, groups, test, root=tmp_path / "c", name="m", null=null, progress="no")


def test_a_run_says_what_it_holds_on_disk(reference):
    du = reference.disk_usage()
    files = [p for p in reference.path.rglob("*") if p.is_file()]
    assert sum(du.values()) == sum(p.stat().st_size for p in files)
    assert du["epochs"] == sum(p.stat().st_size for p in (reference.path / "epochs").iterdir())
    assert du["data"] == (reference.path / "data.npz").stat().st_size and du["checkpoint"] > 0
    text = repr(reference)
    assert "complete, 4 epochs evaluated" in text and "MiB on disk: epochs" in text
