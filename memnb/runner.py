"""run_experiment: the paper's per-epoch protocol, written epoch by epoch, resumable, idempotent.

Protocol, for every repeat at once (one batched ensemble): at the start of every evaluated epoch
(0 = untrained, every `eval_every`, and after the last) draw `n_generate` samples, search their
neighbours among the repeat's training and test points, do the same for `n_generate` fresh
draws from the data distribution (the null baseline), tabulate, compute Meehan et al.'s Z_U,
write; then train one epoch.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__
from .config import ExperimentConfig
from .early_stopping import EpochContext, check_callbacks, first_stop
from .ensemble import Ensemble
from .metric import CRITERIA
from .results import (GROUP_LABELS, CorruptRunError, Results, data_copying, epoch_file, held_out_neighbours, read_config,
                      summarize, table_thresholds)
from .storage import write_json, write_npz, write_parquet, write_torch

DEFAULT_ROOT = Path(os.environ.get("MEMNB_RUNS", "outputs/runs"))


def run_dir(config: ExperimentConfig, root: Path | str | None = None) -> Path:
    return Path(DEFAULT_ROOT if root is None else root) / config.run_name()


def _prepare_dir(path: Path, config: ExperimentConfig) -> None:
    if (path / "config.json").exists():
        stored = read_config(path)
        if stored != config:
            diff = {k: (v, config.to_dict()[k]) for k, v in stored.to_dict().items() if config.to_dict()[k] != v}
            raise CorruptRunError(f"{path} belongs to another config (stored vs requested: {diff}); "
                                  "use another output root or delete it")
    else:
        if path.exists() and any(path.iterdir()):
            raise CorruptRunError(f"{path} exists without config.json: not a memnb run; move or delete it")
        write_json(path / "config.json", config.to_dict())


def _loss_frame(history: np.ndarray) -> pd.DataFrame:
    """history (E, R) -> long table repeat, epoch (1..E), loss."""
    E, R = history.shape
    return pd.DataFrame({"repeat": np.tile(np.arange(R), E), "epoch": np.repeat(np.arange(1, E + 1), R),
                         "loss": history.reshape(-1).astype(np.float64)})


# Longest stretch of training (seconds) that an interruption may cost, between evaluated epochs.
CHECKPOINT_SECONDS = 60.0


def checkpoint_due(trained: int, eval_epochs, epochs: int, since_last_s: float,
                   every_s: float = CHECKPOINT_SECONDS) -> bool:
    """Whether to write the checkpoint once `trained` epochs are done.

    Always before an evaluated epoch and after the last one, so every stored epoch file has a
    checkpoint at or after its epoch's start and a stopped run holds the checkpoint of its stop
    epoch; in between only every `every_s` seconds. Writing ~12 MB of weights and optimizer state
    after every epoch cost up to 40 % of a small run's time; an interruption now re-trains at most
    `every_s` seconds of epochs, to the same numbers (each epoch's randomness is its own).
    """
    return trained in eval_epochs or trained >= epochs or since_last_s >= every_s


def _settings(cb) -> dict:
    """A callback's settings for manifest.json: its settings() if it has one, else its record() without history."""
    if callable(getattr(cb, "settings", None)):
        return cb.settings()
    return {k: v for k, v in cb.record().items() if k != "history"}


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="epoch")


def run_experiment(config: ExperimentConfig, root: Path | str | None = None, progress: bool = True,
                   callbacks=None) -> Results:
    """Run (or resume, or just load) `config`; returns its Results.

    Results go to ``root/config.run_name()`` (root defaults to $MEMNB_RUNS or outputs/runs).
    Every file is written atomically, so a run killed at any moment and started again resumes
    from its last complete epoch and ends with exactly the results of an uninterrupted run.

    callbacks: objects following `memnb.early_stopping`'s protocol (e.g. `EarlyStopping`), called
    in order after every evaluated epoch is written. When one asks to stop at epoch e < epochs,
    training ends there: the run holds epochs up to e, ``manifest.json`` says ``complete: false``
    and ``stopped_at_epoch: e``, and ``callbacks.json`` holds every callback's record. On resume,
    the stored epochs are first replayed to the callbacks, so their state (and their decision) is
    that of an uninterrupted run: calling again with the same callbacks returns the stopped run
    unchanged; calling without callbacks (or with others) trains on, to the same numbers as a run
    never stopped. A complete run is returned as it is; callbacks that would have stopped it are
    replayed and reported in a warning (nothing is written).
    """
    callbacks = check_callbacks(callbacks)
    path = run_dir(config, root)
    path.mkdir(parents=True, exist_ok=True)
    _prepare_dir(path, config)
    results = Results(path)
    if results.complete:
        if callbacks:
            stop = first_stop(results, callbacks)
            if stop is not None and stop < config.epochs:
                warnings.warn(f"{path} is complete ({config.epochs} epochs); its callbacks would have stopped it at "
                              f"epoch {stop} (returned unchanged; see memnb.early_stopping.replay)", stacklevel=2)
        return results
    previous = results.manifest

    ens = Ensemble(config)
    groups, locations = ens.groups, ens.locations
    thresholds = table_thresholds(config)
    if not (path / "data.npz").exists():
        write_npz(path / "data.npz", {
            "train_points": np.stack([t.points for t in ens.train_sets]),
            "groups": groups,
            "test_points": np.stack(ens.test_sets),
            "cluster_centre": np.stack([t.cluster.centre for t in ens.train_sets]),
            "cluster_std": np.array([t.cluster.std for t in ens.train_sets]),
        })
    elif not np.array_equal(results.data["train_points"], np.stack([t.points for t in ens.train_sets])):
        raise CorruptRunError(f"{path / 'data.npz'} does not hold this config's training data; delete {path}")

    start, history = 0, np.zeros((0, config.n_repeats), np.float32)
    ckpt_file = path / "checkpoint.pt"
    if ckpt_file.exists():
        try:
            ckpt = torch.load(ckpt_file, map_location=ens.device, weights_only=False)
            ens.load_state_dict(ckpt["ensemble"])
        except Exception as e:
            raise CorruptRunError(f"{ckpt_file} is unreadable ({type(e).__name__}: {e}); delete {path} to start over") from None
        start, history = int(ckpt["trained_epochs"]), np.asarray(ckpt["loss_history"], np.float32)
    evaluated = set(results.evaluated_epochs)
    eval_epochs = set(config.eval_epochs)
    missing = sorted(e for e in eval_epochs if e < start and e not in evaluated)
    extra = sorted(e for e in evaluated if e > start or e not in eval_epochs)
    if missing or extra:
        raise CorruptRunError(f"{path}: checkpoint at epoch {start} but evaluated-epoch files missing {missing} "
                              f"or unexpected {extra}; delete {path} to start over")

    # Callbacks see every evaluated epoch in order: those before the resume point are replayed from disk.
    context = EpochContext(config, groups, locations, thresholds)
    for cb in callbacks:
        cb.reset()
    fired_before = []
    for e in sorted(x for x in evaluated if x < start) if callbacks else ():
        if any([cb(e, results.epoch_arrays(e), context) for cb in callbacks]):  # a list: every callback sees e
            fired_before.append(e)
    if fired_before:
        # only possible when these callbacks differ from the ones that made the checkpoint: it is already
        # trained past that epoch, so the run goes on rather than pretending to have stopped there
        warnings.warn(f"{path}: the callbacks would have stopped at epoch {fired_before[0]}, before the resume "
                      f"point (epoch {start}); training goes on from there", stacklevel=2)
    stopped_at = None
    # A stopped run's manifest (and callbacks.json, without callbacks now) stop describing the directory as
    # soon as it trains on; removing them first makes an interruption look like one (no manifest).
    stale = previous.get("stopped_at_epoch") is not None

    # test-to-train nearest-neighbour distances, L(P_n) of the Z_U test: fixed for the run
    test_d, test_group = held_out_neighbours(np.stack([t.points for t in ens.train_sets]), np.stack(ens.test_sets),
                                             groups, config.neighbors)
    timings = {"train_s": 0.0, "generate_s": 0.0, "metric_s": 0.0}
    # the progress bar's numbers: the paper criterion at the config's ratio, all groups (summarize's layout)
    bar_index = (CRITERIA.index("paper"), slice(None), 0, GROUP_LABELS.index("all"),
                 int(np.flatnonzero(thresholds == config.ratio)[0]))
    bar = _progress(config.epochs + 1, start, progress, f"{config.dataset} x{config.n_repeats} repeats")
    t_run = last_checkpoint = time.perf_counter()
    for epoch in range(start, config.epochs + 1):
        if epoch in eval_epochs and epoch not in evaluated:
            t0 = time.perf_counter()
            samples = ens.generate(epoch)
            t1 = time.perf_counter()
            arrays = {"samples": samples.astype(np.float16), **ens.search(samples), **ens.search(ens.null_draws(epoch), "null_")}
            arrays["summary"] = summarize(arrays, groups, locations, thresholds)
            arrays["zu"], arrays["zu_n"] = data_copying(arrays, test_d, test_group, groups)
            write_npz(epoch_file(path, epoch), arrays)
            t2 = time.perf_counter()
            timings["generate_s"] += t1 - t0
            timings["metric_s"] += t2 - t1
            memorized, null = arrays["summary"][(slice(None), *bar_index)].mean(axis=0)  # (source,): generated, null
            bar.set_postfix(memorized=f"{memorized:.3f}", null=f"{null:.3f}", refresh=False)
        if epoch in eval_epochs and callbacks:
            arrays = arrays if epoch not in evaluated else results.epoch_arrays(epoch)
            fired = any([cb(epoch, arrays, context) for cb in callbacks])  # a list: every callback sees the epoch
            write_json(path / "callbacks.json", [cb.record() for cb in callbacks])
            if fired and epoch < config.epochs:
                stopped_at = epoch
                break
        if epoch == config.epochs:
            break
        if stale:
            (path / "manifest.json").unlink(missing_ok=True)
            if not callbacks:
                (path / "callbacks.json").unlink(missing_ok=True)
            stale = False
        t0 = time.perf_counter()
        loss = ens.train_epoch(epoch)
        timings["train_s"] += time.perf_counter() - t0
        history = np.concatenate([history, loss[None].astype(np.float32)])
        if checkpoint_due(epoch + 1, eval_epochs, config.epochs, time.perf_counter() - last_checkpoint):
            write_torch(ckpt_file, {"ensemble": ens.state_dict(), "trained_epochs": epoch + 1, "loss_history": history})
            write_parquet(path / "loss.parquet", _loss_frame(history))
            last_checkpoint = time.perf_counter()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.mean():.4f}", refresh=True)
    bar.update(1)
    bar.close()

    if config.epochs == 0:
        write_parquet(path / "loss.parquet", _loss_frame(history))
    if not callbacks:
        (path / "callbacks.json").unlink(missing_ok=True)  # from a stopped session; this one had no callbacks
    previous_stop = {k: previous[k] for k in ("stopped_at_epoch", "callbacks") if previous.get("stopped_at_epoch") is not None}
    if previous_stop == {"stopped_at_epoch": stopped_at, "callbacks": [_settings(cb) for cb in callbacks]}:
        previous_stop = {}  # stopped again where it was, by the same callbacks: nothing to tell
    write_parquet(path / "table.parquet", results.assemble_table())
    write_parquet(path / "zu.parquet", results.assemble_zu())
    write_json(path / "manifest.json", {
        "complete": stopped_at is None,
        "stopped_at_epoch": stopped_at,
        "trained_epochs": stopped_at if stopped_at is not None else config.epochs,
        "callbacks": [_settings(cb) for cb in callbacks],
        **({"previous_stop": previous_stop} if previous_stop else {}),
        "memnb_version": __version__,
        "torch_version": torch.__version__,
        "device": str(ens.device),
        "resumed_from_epoch": start,
        "wall_s_this_session": time.perf_counter() - t_run,
        **{k: round(v, 3) for k, v in timings.items()},
    })
    return Results(path)
