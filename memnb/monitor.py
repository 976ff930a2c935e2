"""Command line for models trained elsewhere: per-epoch sample files in, a memnb run out.

    python -m memnb.monitor --train train.npy --groups groups.npy --test test.npy \\
        --samples 'samples/epoch_*.npy' --out outputs/runs/mymodel [--null null.npy] [--labels a,b,c]

Each samples file holds the (n, d) or (R, n, d) samples drawn at one epoch, whose number is the last integer in
its file name (``epoch_0040.npy`` -> 40; ``step-12000_samples.npy`` -> 12000). The run directory is written by
`memnb.Monitor` (see memnb.experiment.monitor); epochs already stored are skipped unless ``--overwrite``.
Bad input stops it before anything is written (epochs observed before a bad samples file are kept) with one
line on stderr naming the flag, the value and what is allowed, and exit status 2 (argparse's).
"""

from __future__ import annotations

import argparse
import glob
import re
import sys
from pathlib import Path

import numpy as np

from .core.validate import UsageError
from .experiment.monitor import Monitor

PROG = "python -m memnb.monitor"
# memnb.Monitor's argument names -> this command line's flags ("name" is the last part of --out)
FLAGS = {
    "root": "--out",
    "train": "--train",
    "groups": "--groups",
    "test": "--test",
    "null": "--null",
    "labels": "--labels",
    "model": "--model",
    "dataset": "--dataset",
    "neighbors": "--neighbors",
    "samples": "--samples",
    "overwrite": "--overwrite",
    "store_samples": "--store-samples",
    "search_memory": "--search-memory",
    "device": "--device",
}
# the stored config's keys (in "stored vs given" of a folder that holds another run) -> the flags that set them
CONFIG_FLAGS = {
    **{k: v for k, v in FLAGS.items() if k in ("model", "dataset", "neighbors", "null", "store_samples")},
    "name": "--out",
    "group_names": "--labels",
    "group_counts": "--groups",
    "data_sha256": "--train/--groups/--test/--null",
    "dim": "--train",
    "n_train": "--train",
    "n_test_points": "--test",
    "n_null_points": "--null",
}


def as_flags(message: str) -> str:
    """A memnb.Monitor error in this command line's words: argument names (``model = ``, ``labels=``,
    ``test's dimension``, the keys of "stored vs given") -> its flags, ``name`` -> --out."""
    message = re.sub(r"(?<![\w.'-])name = ", "--out's folder name = ", message)
    message = re.sub(r"(?<![\w.'-])name=", "--out", message)
    names = "|".join(FLAGS)
    message = re.sub(rf"(?<![\w.'-])({names})(?=( = |=|'s ))=?", lambda m: FLAGS[m[1]], message)
    return re.sub(r"'(\w+)':", lambda m: f"'{CONFIG_FLAGS.get(m[1], m[1])}':", message)


def epoch_of(path: str) -> int:
    """The epoch in a samples file's name: its last integer (ValueError when it has none)."""
    found = re.findall(r"\d+", Path(path).name.split(".")[0])
    if not found:
        raise ValueError(f"--samples file {path!r} has no epoch number in its name; allowed: names like epoch_0040.npy")
    return int(found[-1])


def _load(path: str | None, arg: str):
    if path is None:
        return None
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{arg} = {path!r} is invalid; allowed: an existing .npy file") from None
    except Exception as e:
        raise ValueError(f"{arg} = {path!r} is unreadable ({type(e).__name__}: {e}); allowed: a .npy array") from None


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="(N, d) or (R, N, d) training points, .npy")
    p.add_argument("--groups", required=True, help="(N,) or (R, N) group codes or labels, .npy")
    p.add_argument("--test", required=True, help="(m, d) or (R, m, d) held-out test points, .npy")
    p.add_argument("--null", help="(n0, d) or (R, n0, d) held-out points for the null baseline, .npy (optional)")
    p.add_argument("--samples", required=True, help="glob of per-epoch samples files, e.g. 'samples/epoch_*.npy'")
    p.add_argument("--out", required=True, help="the run directory to write, e.g. outputs/runs/mymodel")
    p.add_argument("--labels", help="comma-separated group names when --groups holds codes (default memnb's)")
    p.add_argument("--model", default="model", help="the model's name, for the figures")
    p.add_argument("--dataset", default="custom", help="the data's name (a memnb dataset's name gives image views)")
    p.add_argument("--neighbors", default="auto", help="kdtree | faiss | torch | auto")
    p.add_argument("--overwrite", action="store_true", help="observe epochs already stored again")
    p.add_argument(
        "--store-samples",
        default="all",
        help="samples kept per epoch: all (float16) | none | k (a fixed subsample of k; distances kept for all)",
    )
    p.add_argument("--search-memory", type=int, default=None, help="bytes: bound on one search chunk's memory")
    p.add_argument("--device", default="auto", help="where the torch search runs: cpu | cuda | auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def _store_samples(value: str):
    """--store-samples as memnb.Monitor takes it: "all", "none" or a number (checked by the Monitor)."""
    return int(value) if re.fullmatch(r"[+-]?\d+", value.strip()) else value


def main(argv=None) -> int:
    a = parse(argv)
    try:
        files = sorted(glob.glob(a.samples), key=epoch_of)
    except ValueError as e:
        raise UsageError(PROG, str(e)) from None
    if not files:
        raise UsageError(PROG, f"--samples = {a.samples!r} matches no file")
    epochs = [epoch_of(f) for f in files]
    twice = sorted({e for e in epochs if epochs.count(e) > 1})
    if twice:
        raise UsageError(
            PROG, f"--samples = {a.samples!r}: several files for epoch(s) {twice}; allowed: one file per epoch"
        )
    out = Path(a.out)
    current = None  # the samples file being observed
    try:
        monitor = Monitor(
            _load(a.train, "--train"),
            _load(a.groups, "--groups"),
            _load(a.test, "--test"),
            root=out.parent,
            name=out.name,
            null=_load(a.null, "--null"),
            labels=a.labels.split(",") if a.labels else None,
            model=a.model,
            dataset=a.dataset,
            neighbors=a.neighbors,
            store_samples=_store_samples(a.store_samples),
            device=a.device,
            progress=not a.no_progress,
            **({} if a.search_memory is None else {"search_memory": a.search_memory}),
        )
        for f, e in zip(files, epochs):
            current = f
            summary = monitor.observe(e, lambda f=f: _load(f, "--samples"), overwrite=a.overwrite)
            row = summary[(summary.criterion == "paper") & (summary.group == "all")].iloc[0]
            print(f"epoch {e}: memorized {100 * row.memorized:.2f}% (null {100 * row.memorized_null:.2f}%)  {f}")
    except ValueError as e:  # memnb.Monitor's, in its argument names: said in the flags
        where = f"--samples file {current!r} (epoch {epoch_of(current)}): " if current is not None else ""
        raise UsageError(PROG, where + as_flags(str(e))) from None
    res = monitor.results()  # the tables and the manifest, from every stored epoch
    print(f"wrote {res!r}; open it with memnb.Results({str(monitor.path)!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
