"""Reliability: no silent wrong result from a bad input, a damaged file, a diverged run, a full disk or two
processes starting one run. One section per case of issue #14; each test failed on the code before it."""

import errno
import json
import os
import stat
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import papermill as pm
import pytest
import torch
from helpers import ROOT, SMALL, assert_same_results, small_reference

from memnb import CorruptRunError, ExperimentConfig, Results, run_experiment
from memnb.analysis.verdict import check_arguments, find_runs
from memnb.core import storage
from memnb.core.storage import StorageError
from memnb.experiment.results import epoch_file
from memnb.experiment.runner import DivergedError, RunLockedError, run_dir
from memnb.experiment.store import read_checkpoint
from memnb.views.widgets import list_runs
from memnb.workflows.parameters import assigned_names, check_parameters


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of SMALL: what every recovered run must equal."""
    return small_reference(tmp_path_factory)


def fresh_run(tmp_path, **changes):
    return run_experiment(ExperimentConfig(**{**SMALL, **changes}), root=tmp_path, progress=False)


# -- 1. a diverged run --------------------------------------------------------------------------------
@pytest.mark.parametrize("lr,cause", [(10.0, "samples drawn at"), (1e6, "")])
def test_a_diverged_run_stops_naming_epoch_repeat_and_value(tmp_path, lr, cause):
    config = ExperimentConfig(**{**SMALL, "learning_rate": lr, "eval_every": 1})
    with pytest.raises(DivergedError, match=rf"repeat \d+: .*{cause}.*epoch \d.*learning_rate = {lr}") as e:
        run_experiment(config, root=tmp_path, progress=False)
    assert "stored" in str(e.value) and "lower learning_rate" in str(e.value)
    path = run_dir(config, tmp_path)
    assert not (path / "manifest.json").exists()  # not stored as complete
    stored = Results(path).evaluated_epochs
    assert 0 in stored  # every epoch before the divergence is kept
    if (path / "checkpoint.pt").exists():  # never a poisoned checkpoint
        ckpt = read_checkpoint(path / "checkpoint.pt")
        assert all(torch.isfinite(v).all() for v in ckpt["ensemble"]["model"].values())
    # running again fails the same clear way (not from inside scipy), at the same place
    with pytest.raises(DivergedError) as again:
        run_experiment(config, root=tmp_path, progress=False)
    assert str(again.value) == str(e.value)


# -- 2. a self-verifying run ------------------------------------------------------------------------
def test_a_deleted_epoch_file_of_a_complete_run_is_named_and_recomputed_alone(tmp_path, reference):
    res = fresh_run(tmp_path)
    f = epoch_file(res.path, 2)
    f.unlink()
    others = {e: epoch_file(res.path, e).stat().st_mtime_ns for e in (0, 1, 3)}
    with pytest.raises(CorruptRunError, match=rf"{f} is missing; .*recomputes that epoch alone"):
        Results(res.path)
    with pytest.warns(UserWarning, match="recomputed"):  # the advice, followed
        assert_same_results(run_experiment(res.config, root=tmp_path, progress=False), reference)
    assert {e: epoch_file(res.path, e).stat().st_mtime_ns for e in (0, 1, 3)} == others  # kept, not redone
    Results(res.path).verify(checksums=True)


def test_an_edited_config_is_detected(tmp_path):
    res = fresh_run(tmp_path)
    c = json.loads((res.path / "config.json").read_text())
    (res.path / "config.json").write_text(json.dumps({**c, "ratio": 1.7}))
    with pytest.raises(CorruptRunError, match=r"config.json is not the config this run was written with.*writes"):
        Results(res.path).table()
    with pytest.warns(UserWarning, match="set aside"):  # the advice, followed
        again = run_experiment(ExperimentConfig(**SMALL), root=tmp_path, progress=False)
    again.verify(checksums=True)
    assert again.config.ratio == 1.5 and (res.path / ".damaged" / "config.json").exists()


def test_a_changed_byte_is_caught_by_the_checksum_when_read(tmp_path):
    res = fresh_run(tmp_path)
    f = epoch_file(res.path, 1)
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size: only the checksum can tell
    f.write_bytes(bytes(raw))
    again = Results(res.path)  # sizes match: opens
    with pytest.raises(CorruptRunError, match=rf"{f} has another checksum than the manifest says"):
        again.epoch_arrays(1)
    with pytest.raises(CorruptRunError, match="another checksum"):
        again.verify(checksums=True)


# -- 3. the runs root is read when a run starts ------------------------------------------------------
def test_memnb_runs_set_after_import_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMNB_RUNS", str(tmp_path / "elsewhere"))
    res = run_experiment(ExperimentConfig(**{**SMALL, "epochs": 0}), progress=False)
    assert res.path.parent == tmp_path / "elsewhere"


# -- 4. notebooks reject unknown parameter names ------------------------------------------------------
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_checks_its_parameters_first(path):
    """The first code cell after the parameters calls check_parameters(globals()) before anything else runs."""
    import nbformat

    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    i = next(k for k, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    params, first = cells[i].source, cells[i + 1].source
    body = [line for line in first.splitlines() if line and not line.startswith(("from ", "import ", " "))]
    assert body[0].startswith("check_parameters(globals())"), first
    # what the kernel's history holds under papermill: the parameters cell, then the injected one
    known = assigned_names(params)
    misspelt = known[0][:-1] + known[0][-1] * 2  # e.g. 'datasett'
    injected = f"# Parameters\n{misspelt} = 1\n"
    with pytest.raises(
        ValueError, match=rf"unknown notebook parameter\(s\) '{misspelt}' \(did you mean '{known[0]}'\?\)"
    ):
        check_parameters({"In": ["", params, injected]})
    check_parameters({"In": ["", params, f"# Parameters\n{known[0]} = {known[0]!r}\n"]})  # a known name passes
    check_parameters({"In": ["", params]})  # run by hand: nothing injected, nothing to check


def test_papermill_with_a_misspelt_parameter_fails_before_any_work(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match=r"'ration' \(did you mean 'ratio'\?\)"):
        pm.execute_notebook(
            str(ROOT / "notebooks" / "figure4.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"ration": 2.0, "profile": "smoke", "runs_root": str(tmp_path / "runs"), "interactive": False},
            kernel_name="python3",
            progress_bar=False,
        )
    assert not (tmp_path / "runs").exists()  # nothing ran


# -- 5. the verdict's inputs ---------------------------------------------------------------------------
def test_verdict_runs_and_roots_that_find_nothing_are_errors(tmp_path, reference):
    root = reference.path.parent
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (dict(runs="does-not-exist", runs_root=root), "'does-not-exist' is not a directory here nor a run"),
        (dict(runs=None, runs_root=a_file), "runs_root = .* is a file"),
        (dict(runs=None, runs_root=tmp_path / "nothing"), "runs_root = .* is nothing"),
        (dict(runs=None, runs_root=tmp_path), "holds no memnb run"),
        (dict(runs=str(tmp_path / "x*"), runs_root=root), "matches no directory"),
        (dict(runs=[], runs_root=root), r"runs = \[\] is invalid"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            find_runs(**kwargs)
    # a bare run name is looked up under runs_root, whatever the working directory
    (found,) = find_runs(reference.path.name, runs_root=root)
    assert found.path == reference.path


@pytest.mark.parametrize(
    "name,value",
    [
        ("alpha", 2),
        ("alpha", 0),
        ("margin", -1),
        ("z", -2),
        ("margin_zu", float("nan")),
        ("n_bootstrap", -3),
        ("n_bootstrap", 1.5),
        ("value", "copies"),
    ],
)
def test_verdict_settings_are_checked(name, value):
    with pytest.raises(ValueError, match=rf"{name} = {value!r} is invalid; allowed"):
        check_arguments(**{name: value})


def test_the_verdict_notebook_fails_for_a_run_that_does_not_exist(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="'does-not-exist' is not a directory here nor a run"):
        pm.execute_notebook(
            str(ROOT / "notebooks" / "verdict.ipynb"),
            str(tmp_path / "v.ipynb"),
            parameters={"runs": "does-not-exist", "runs_root": str(tmp_path)},
            kernel_name="python3",
            progress_bar=False,
        )


# -- 6., 7. clear errors for numpy scalars and odd arguments --------------------------------------------
def test_numpy_scalars_are_the_numbers_they_hold(reference):
    c = ExperimentConfig(n_base=np.int64(500), ratio=np.float32(1.5), seed=np.int64(3))
    assert c == ExperimentConfig(n_base=500, ratio=1.5, seed=3) and json.loads(c.to_json())["n_base"] == 500
    assert c.run_name() == ExperimentConfig(n_base=500, ratio=1.5, seed=3).run_name()
    pd.testing.assert_frame_equal(reference.rates_at("paper", np.float32(2.0)), reference.rates_at("paper", 2.0))


def test_odd_arguments_get_errors_naming_them(reference):
    with pytest.raises(ValueError, match=r"epochs = \[\] is invalid; allowed"):
        reference.rates_at("paper", 2, epochs=[])
    with pytest.raises(ValueError, match=r"epochs = \[7\] is invalid"):
        reference.rates_at("paper", 2, epochs=[7])
    with pytest.raises(TypeError, match=r"config = \{'n_base': 500\} is invalid; allowed: an ExperimentConfig"):
        run_experiment({"n_base": 500})
    with pytest.raises(TypeError, match=r"callbacks = 5 is invalid; allowed: None or a list"):
        run_experiment(reference.config, callbacks=5)


# -- 8. unreadable manifests and tables ------------------------------------------------------------------
@pytest.mark.parametrize("garbage", ["{not json", "", "[1, 2]"])
def test_an_unreadable_manifest_is_named_and_listings_skip_it(tmp_path, garbage):
    good = fresh_run(tmp_path)
    bad = fresh_run(tmp_path, seed=1)
    (bad.path / "manifest.json").write_text(garbage)
    with pytest.raises(CorruptRunError, match=rf"{bad.path / 'manifest.json'}"):
        Results(bad.path)
    skipped = []
    assert list_runs(tmp_path, skipped) == [good.path] and "manifest.json" in skipped[0]
    with pytest.warns(UserWarning, match="skipped 1 unreadable run"):
        assert [r.path for r in find_runs(runs_root=tmp_path)] == [good.path]


def test_a_truncated_table_is_named_and_rebuilt(tmp_path):
    res = fresh_run(tmp_path)
    want = res.table()
    f = res.path / "table.parquet"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(CorruptRunError, match=rf"{f} has 100 bytes.*run_experiment\(config\).*rebuilds table.parquet"):
        Results(res.path)
    with pytest.warns(UserWarning, match="rebuilt table.parquet"):
        again = run_experiment(res.config, root=tmp_path, progress=False)
    pd.testing.assert_frame_equal(again.table(), want)
    Results(res.path).verify(checksums=True)  # the manifest records the rebuilt file


def test_a_truncated_table_of_an_unrecorded_run_is_unreadable_not_arrow(tmp_path):
    res = fresh_run(tmp_path)
    m = json.loads((res.path / "manifest.json").read_text())
    (res.path / "manifest.json").write_text(
        json.dumps({k: v for k, v in m.items() if k not in ("files", "fingerprint")})
    )
    f = res.path / "table.parquet"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(CorruptRunError, match=rf"{f} is unreadable"):
        Results(res.path).table()


# -- 9. a full disk ------------------------------------------------------------------------------------
def test_a_full_disk_names_the_file_and_the_run_resumes(tmp_path, monkeypatch, reference):
    calls = {"n": 0}
    real = os.fsync

    def full_after_5(fd):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(storage.os, "fsync", full_after_5)
    with pytest.raises(
        StorageError,
        match=r"could not write .*: No space left on device; everything stored before is "
        r"intact: free space .* run again to resume",
    ):
        fresh_run(tmp_path)
    assert not list(tmp_path.rglob("*.tmp"))
    monkeypatch.setattr(storage.os, "fsync", real)
    assert_same_results(fresh_run(tmp_path), reference)


def test_torch_saves_full_disk_error_names_the_checkpoint(tmp_path, monkeypatch):
    def boom(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1024 vs 512")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(StorageError, match=r"could not write .*checkpoint.pt: .*unexpected pos"):
        fresh_run(tmp_path)


# -- 10. advice that works ------------------------------------------------------------------------------
def test_a_deleted_data_file_of_a_complete_run_is_rebuilt(tmp_path, reference):
    res = fresh_run(tmp_path)
    (res.path / "data.npz").unlink()
    with pytest.warns(UserWarning, match="rebuilt data.npz"):
        assert_same_results(run_experiment(res.config, root=tmp_path, progress=False), reference)
    Results(res.path).verify(checksums=True)


def test_following_the_advice_for_a_truncated_epoch_file_gives_a_correct_run(tmp_path, reference):
    res = fresh_run(tmp_path)
    f = epoch_file(res.path, 1)
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(CorruptRunError) as e:
        Results(res.path)
    assert "call memnb.run_experiment(config) with this run's config" in str(e.value)
    with pytest.warns(UserWarning, match="recomputed"):  # the advice
        assert_same_results(run_experiment(res.config, root=tmp_path, progress=False), reference)
    assert (res.path / ".damaged" / "epochs__epoch_000001.npz").exists()  # set aside, not deleted


def test_a_changed_byte_in_an_epoch_file_is_recomputed_with_verify(tmp_path, reference):
    res = fresh_run(tmp_path)
    f = epoch_file(res.path, 1)
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(CorruptRunError, match=r"another checksum.*verify=True"):
        Results(res.path).epoch_arrays(1)
    with pytest.warns(UserWarning, match="recomputed"):  # the advice
        again = run_experiment(res.config, root=tmp_path, progress=False, verify=True)
    assert_same_results(again, reference)
    again.verify(checksums=True)


def test_a_flipped_byte_in_the_checkpoint_of_a_partial_run_is_not_trusted(tmp_path, monkeypatch, reference):
    config, path = _partial_run(tmp_path, monkeypatch, stop_after=2)
    f = path / "checkpoint.pt"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # torch.load would read this without a word
    f.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="cannot be trusted.*starts again from epoch 0"):
        assert_same_results(run_experiment(config, root=tmp_path, progress=False), reference)


def test_swapped_epoch_files_are_refused_and_recomputed(tmp_path, monkeypatch, reference):
    config, path = _partial_run(tmp_path, monkeypatch, stop_after=2)
    a, b = epoch_file(path, 0), epoch_file(path, 1)
    tmp = a.with_name("x.npz")
    a.rename(tmp), b.rename(a), tmp.rename(b)
    with pytest.raises(CorruptRunError, match="holds epoch 1, not 0"):
        Results(path).epoch_arrays(0)
    with pytest.warns(UserWarning, match="holds epoch"):
        assert_same_results(run_experiment(config, root=tmp_path, progress=False), reference)


def _partial_run(tmp_path, monkeypatch, stop_after: int):
    """A run killed (an exception) while training epoch `stop_after`; its checkpoint is at epoch stop_after."""
    from memnb.models.ensemble import Ensemble

    real = Ensemble.train_epoch

    def crash(self, epoch):
        if epoch == stop_after:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(Ensemble, "train_epoch", crash)
    config = ExperimentConfig(**SMALL)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, root=tmp_path, progress=False)
    monkeypatch.setattr(Ensemble, "train_epoch", real)
    return config, run_dir(config, tmp_path)


def test_a_damaged_epoch_before_the_checkpoint_is_recomputed_keeping_the_others(tmp_path, monkeypatch, reference):
    config, path = _partial_run(tmp_path, monkeypatch, stop_after=2)
    epoch_file(path, 0).write_bytes(b"garbage")
    kept = epoch_file(path, 1).stat().st_mtime_ns
    with pytest.warns(UserWarning, match="epoch 0 is evaluated again"):
        assert_same_results(run_experiment(config, root=tmp_path, progress=False), reference)
    assert epoch_file(path, 1).stat().st_mtime_ns == kept


def test_a_damaged_epoch_at_the_resume_point_is_recomputed(tmp_path, monkeypatch, reference):
    config, path = _partial_run(tmp_path, monkeypatch, stop_after=2)
    epoch_file(path, 2).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="epoch 2 is evaluated again"):
        assert_same_results(run_experiment(config, root=tmp_path, progress=False), reference)


# -- 11. two processes at once -------------------------------------------------------------------------
START = (
    "import sys, time, memnb; from memnb.workflows.parameters import *; "
    "t = float(sys.argv[1]); time.sleep(max(0, t - time.time())); "
    "r = memnb.run_experiment(memnb.ExperimentConfig(**{cfg!r}), root=sys.argv[2], progress=False); "
    "print(r.manifest['wall_s_this_session'], r.lock_wait_s)"
)


def test_two_processes_started_together_run_once(tmp_path, reference):
    cfg = {**SMALL, "epochs": 6}
    at = time.time() + 8.0  # both import memnb first (seconds on a busy machine), then start at the same instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START.format(cfg=cfg), str(at), str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    waits = sorted(float(o[0].split()[1]) for o in outs)
    assert waits[0] < 0.5 < waits[1]  # one ran; the other waited for it, then loaded its result
    walls = {o[0].split()[0] for o in outs}
    assert len(walls) == 1  # the same manifest: trained once
    res = Results(run_dir(ExperimentConfig(**cfg), tmp_path))
    assert res.complete


def test_wait_false_names_the_process_holding_the_run(tmp_path):
    config = ExperimentConfig(**SMALL)
    path = run_dir(config, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from memnb.experiment.runner import run_lock\n"
                f"with run_lock({str(tmp_path)!r}, {path.name!r}):\n    print('held', flush=True); time.sleep(30)"
            ),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"being written by process {holder.pid}"):
            run_experiment(config, root=tmp_path, progress=False, wait=False)
    finally:
        holder.kill()
        holder.wait()


# -- 12. temporary files of a killed write ----------------------------------------------------------------
def test_temporaries_of_a_killed_write_are_removed_on_resume(tmp_path, monkeypatch, reference):
    config, path = _partial_run(tmp_path, monkeypatch, stop_after=2)
    left = [path / ".checkpoint.pt.abc123.tmp", path / "epochs" / ".epoch_000002.npz.xyz.tmp"]
    for f in left:
        f.write_bytes(b"half a file")
    assert_same_results(run_experiment(config, root=tmp_path, progress=False), reference)
    assert not any(f.exists() for f in left)


# -- 13. permissions follow the umask ---------------------------------------------------------------------
def test_result_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        res = fresh_run(tmp_path)
    finally:
        os.umask(old)
    for f in [res.path / "table.parquet", res.path / "manifest.json", epoch_file(res.path, 0)]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


# -- the battery of bad inputs ------------------------------------------------------------------------------
def test_bad_input_battery_counts():
    """The counts the testing docs give: every bad input tried gets a clear error (field, value, allowed)."""
    from test_config import BAD

    assert len(BAD) >= 39
    assert len(NOTEBOOKS) == 13  # docs/testing.md counts a misspelt parameter in each
