"""python -m memnb.monitor: errors come as one line on stderr naming the command line's flags, exit status 2."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from memnb import Results
from memnb.monitor import as_flags, main

PREFIX = "python -m memnb.monitor: error: "


@pytest.fixture
def files(tmp_path):
    """Arrays of a model trained elsewhere, as .npy files, and the command line's arguments for them."""
    rng = np.random.default_rng(3)
    arrays = dict(train=rng.normal(size=(60, 4)), test=rng.normal(size=(50, 4)), null=rng.normal(size=(40, 4)))
    arrays["groups"] = np.array([0] * 50 + [1] * 5 + [2] * 5)
    for name, a in arrays.items():
        np.save(tmp_path / f"{name}.npy", a)
    (tmp_path / "samples").mkdir()
    for e in (0, 5):
        np.save(tmp_path / "samples" / f"epoch_{e:04d}.npy", rng.normal(size=(40, 4)))
    args = {f"--{name}": str(tmp_path / f"{name}.npy") for name in arrays}
    args["--samples"] = str(tmp_path / "samples" / "epoch_*.npy")
    args["--out"] = str(tmp_path / "runs" / "mine")
    return tmp_path, args


def argv(args: dict, **change) -> list[str]:
    """The command line of `args` with flags changed (``model="b"`` sets --model b)."""
    merged = {**args, **{f"--{k}": v for k, v in change.items()}}
    return [x for kv in merged.items() for x in kv]


def refused(capsys, args: list[str]) -> str:
    """The one line main(args) writes to stderr as it exits with status 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        main(args)
    assert err.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(PREFIX) and stderr.count("\n") == 1, stderr
    return stderr[len(PREFIX) :].strip()


@pytest.mark.parametrize(
    "flag, value", [("model", "another-model"), ("dataset", "digits"), ("labels", "a,b,c"), ("neighbors", "torch")]
)
def test_a_folder_of_another_run_is_named_by_the_flags(files, capsys, flag, value):
    tmp_path, args = files
    assert main(argv(args)) == 0
    out = tmp_path / "runs" / "mine"
    stored = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    said = refused(capsys, argv(args, **{flag: value}))
    assert f"'--{flag}':" in said and "pass another --out or delete it" in said and str(out) in said
    assert "name=" not in said and f"'{flag}':" not in said
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == stored  # nothing written
    # the advice, followed: another --out ...
    assert main(argv(args, **{flag: value}, out=str(tmp_path / "runs" / "theirs"))) == 0
    assert Results(tmp_path / "runs" / "theirs").evaluated_epochs == [0, 5]
    # ... or the folder deleted
    shutil.rmtree(out)
    assert main(argv(args, **{flag: value})) == 0
    assert Results(out).evaluated_epochs == [0, 5]


def test_bad_arrays_are_named_by_their_flags(files, capsys):
    tmp_path, args = files
    np.save(tmp_path / "test3.npy", np.zeros((50, 3)))
    said = refused(capsys, argv(args, test=str(tmp_path / "test3.npy")))
    assert said.startswith("--test's dimension = 3 is invalid; allowed: 4"), said
    # a group code beyond memnb's three labels: the advice names --labels, and following it works
    np.save(tmp_path / "groups7.npy", np.array([0] * 50 + [1] * 5 + [7] * 5))
    said = refused(capsys, argv(args, groups=str(tmp_path / "groups7.npy")))
    assert said.startswith("--groups = 7 is invalid") and "(or pass --labels)" in said and "labels=" not in said
    labels = ",".join(f"g{i}" for i in range(8))
    assert main(argv(args, groups=str(tmp_path / "groups7.npy"), labels=labels)) == 0
    assert list(Results(args["--out"]).labels) == labels.split(",")
    said = refused(capsys, argv(args, out=str(tmp_path / "runs" / "-bad name")))
    assert said.startswith("--out's folder name = '-bad name' is invalid"), said


def test_a_bad_samples_file_is_named_and_the_epochs_before_it_are_kept(files, capsys):
    tmp_path, args = files
    np.save(tmp_path / "samples" / "epoch_0010.npy", np.zeros((40, 3)))
    said = refused(capsys, argv(args))
    bad = str(tmp_path / "samples" / "epoch_0010.npy")
    assert said.startswith(f"--samples file {bad!r} (epoch 10): --samples"), said
    assert Results(args["--out"]).evaluated_epochs == [0, 5]
    np.save(bad, np.zeros((40, 4)))  # drawn again with the model's dimension: observed, the others kept
    assert main(argv(args)) == 0 and Results(args["--out"]).evaluated_epochs == [0, 5, 10]
    said = refused(capsys, argv(args, samples=str(tmp_path / "nothing_*.npy")))
    assert said == f"--samples = {str(tmp_path / 'nothing_*.npy')!r} matches no file"


def test_as_flags_leaves_other_words_alone():
    text = "test points = 3; the training points' d; groups' names; 'mean': 1; --model = x; name: y"
    assert as_flags(text) == text
    assert (
        as_flags("samples = x; null = y; pass labels= or name=") == "--samples = x; --null = y; pass --labels or --out"
    )


def test_the_command_line_itself_exits_with_status_2_and_no_traceback(files):
    tmp_path, args = files
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's memnb

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "memnb.monitor", *a], capture_output=True, text=True, env=env)

    ok = cli(*argv(args))
    assert ok.returncode == 0, ok.stderr
    run = cli(*argv(args, model="b"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith(PREFIX) and run.stderr.count("\n") == 1 and "'--model':" in run.stderr
