"""One session of a trained run (run_experiment's steps): set up, resume, replay, evaluate and train, finish.

What a resume depends on is verified before any training, and what can be recovered is: an unreadable or changed
checkpoint, a damaged or missing epoch file before the resume point, are set aside (the run's ``.damaged/``) and
training starts again from epoch 0, skipping the evaluation of every stored epoch and evaluating the missing ones
(the same config gives the same numbers); when the checkpoint itself was sound, training stops after the last
missing epoch and the checkpoint is loaded again, so only the damaged epoch is redone. An epoch file of an epoch
this config does not evaluate is set aside.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._version import __version__
from ..core.callbacks import EpochContext, settings_of
from ..core.config import ExperimentConfig
from ..core.storage import CorruptRunError, write_json, write_parquet
from ..models.ensemble import Ensemble
from .checks import check_samples, check_training
from .repeats import RepeatData
from .replay import notify
from .results import TABLE_KEYS, Results
from .store import (
    Manifest,
    read_checkpoint,
    read_data,
    read_epoch,
    records,
    set_aside,
    stored_epochs,
    write_checkpoint,
    write_data,
    write_epoch,
    write_manifest,
)
from .store.layout import CALLBACKS, CHECKPOINT, LOSS, MANIFEST, TABLE, ZU, epoch_name
from .tabulate import data_copying, group_sizes, summarize, summary_at, table_thresholds, tables


def loss_frame(history: np.ndarray) -> pd.DataFrame:
    """history (E, R) -> long table repeat, epoch (1..E), loss."""
    E, R = history.shape
    return pd.DataFrame(
        {
            "repeat": np.tile(np.arange(R), E),
            "epoch": np.repeat(np.arange(1, E + 1), R),
            "loss": history.reshape(-1).astype(np.float64),
        }
    )


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="epoch")


class Session:
    """One session of a run: the state its steps share."""

    def __init__(self, config: ExperimentConfig, path: Path, results: Results, callbacks: list):
        self.config, self.path, self.results, self.callbacks = config, path, results, callbacks
        self.previous = results.manifest
        self.timings = {"train_s": 0.0, "generate_s": 0.0, "metric_s": 0.0}
        self.checkpoint_file = path / CHECKPOINT
        self.manifest_extra: dict = {}  # further manifest sections (a packed run's "packed")
        self.frames: dict[int, dict[str, np.ndarray]] = {}  # epoch -> what the tables need of it (TABLE_KEYS)
        self.resume_state = None  # (epoch, checkpoint, history) to load again once the redone epochs are evaluated
        self.redo_until: int | None = None  # the last epoch redone before a sound checkpoint

    # -- set-up ---------------------------------------------------------------------------------
    def set_up(self, ensemble=None) -> None:
        """Data of every repeat (stored once in data.npz), the model ensemble, the fixed test-to-train distances.

        ensemble: None (this config's own Ensemble), or a callable(RepeatData) -> an object with the
        Ensemble's interface for this config's members (memnb.experiment.packed: a share of a larger one).
        """
        c = self.config
        self.data = RepeatData(c)
        self.ensemble = Ensemble(c, self.data.train_points) if ensemble is None else ensemble(self.data)
        self.groups, self.locations = self.data.groups, self.data.locations
        self.thresholds = table_thresholds(c)
        try:
            stored = read_data(self.path)["train_points"]
        except CorruptRunError:  # missing or unreadable: the config gives it again
            stored = None
        if stored is None or not np.array_equal(stored, self.data.train_points):
            write_data(self.path, self.data.arrays())  # drawn from the config's seeds: the run's own data
        # test-to-train nearest-neighbour distances, L(P_n) of the Z_U test: fixed for the run
        self.test_d, self.test_group = self.data.held_out_neighbours()  # on config.device for the torch search
        self.context = EpochContext(c, self.groups, self.locations, self.thresholds)

    def _set_aside(self, name: str, why: str) -> None:
        dest = set_aside(self.path, name)
        warnings.warn(f"{self.path / name} {why}; set aside as {dest}", stacklevel=4)

    def resume(self) -> None:
        """Load the checkpoint and verify every stored epoch file, before any training (see the module docstring)."""
        c = self.config
        self.start, self.history = 0, np.zeros((0, c.n_repeats), np.float32)
        checkpoint = None
        if self.checkpoint_file.exists():
            try:
                checkpoint = read_checkpoint(self.checkpoint_file, map_location=self.ensemble.device)
                self.ensemble.load_state_dict(checkpoint["ensemble"])
            except (CorruptRunError, KeyError, RuntimeError, ValueError) as e:
                self._set_aside(CHECKPOINT, f"cannot be trusted ({e}); training starts again from epoch 0")
                checkpoint = None
        if checkpoint is not None:
            self.start = int(checkpoint["trained_epochs"])
            self.history = np.asarray(checkpoint["loss_history"], np.float32)
        self.eval_epochs = set(c.eval_epochs)
        for e in stored_epochs(self.path):
            if e not in self.eval_epochs:
                self._set_aside(epoch_name(e), f"is not an epoch this config evaluates ({c.eval_epochs[:4]}...)")
                continue
            try:
                arrays = read_epoch(self.path, e)  # every array: its CRC-32 and its own epoch number
            except CorruptRunError as err:
                self._set_aside(epoch_name(e), f"is damaged ({err}); epoch {e} is evaluated again")
                continue
            self.frames[e] = {k: arrays[k] for k in TABLE_KEYS if k in arrays}
        self.evaluated = set(self.frames)
        missing = sorted(e for e in self.eval_epochs if e < self.start and e not in self.evaluated)
        write_parquet(self.path / LOSS, loss_frame(self.history))  # from the verified checkpoint
        if missing:  # train again from the start to the last missing epoch, then load this checkpoint again
            if checkpoint is not None:
                self.resume_state = (self.start, checkpoint, self.history)
                self._fresh_weights()
            self.start, self.history = 0, np.zeros((0, c.n_repeats), np.float32)
            self.redo_until = missing[-1]
        if checkpoint is None or missing:
            (self.path / MANIFEST).unlink(missing_ok=True)  # the run is partial again until finish

    def _fresh_weights(self) -> None:
        """The ensemble's weights and optimizer as at epoch 0 (built again from the config's seeds)."""
        self.ensemble.load_state_dict(Ensemble(self.config, self.data.train_points).state_dict())

    def replay_callbacks(self) -> None:
        """Callbacks see every evaluated epoch in order: those before the resume point are replayed from disk."""
        for cb in self.callbacks:
            cb.reset()
        fired = [
            e
            for e in sorted(x for x in self.evaluated if x < self.start)
            if self.callbacks and notify(self.callbacks, e, read_epoch(self.path, e), self.context)
        ]
        if fired:
            # only possible when these callbacks differ from the ones that made the checkpoint: it is already
            # trained past that epoch, so the run goes on rather than pretending to have stopped there
            warnings.warn(
                f"{self.path}: the callbacks would have stopped at epoch {fired[0]}, before the resume "
                f"point (epoch {self.start}); training goes on from there",
                stacklevel=3,
            )
        # A stopped run's manifest (and callbacks.json, without callbacks now) stop describing the directory as
        # soon as it trains on; removing them first makes an interruption look like one (no manifest).
        self.stale = self.previous.get("stopped_at_epoch") is not None

    # -- per epoch ------------------------------------------------------------------------------
    def evaluate(self, epoch: int) -> dict[str, np.ndarray]:
        """Generate, search (samples and null draws), tabulate and commit epoch `epoch`; its arrays."""
        t0 = time.perf_counter()
        samples = self.ensemble.generate(epoch)
        check_samples(samples, epoch, self.config)  # before the float16 cast could turn them into inf
        t1 = time.perf_counter()
        arrays = {
            "samples": samples.astype(np.float16),
            **self.data.search(samples),
            **self.data.search(self.data.null_draws(epoch), "null_"),
        }
        arrays["summary"] = summarize(arrays, self.groups, self.locations, self.thresholds)
        arrays["zu"], arrays["zu_n"] = data_copying(arrays, self.test_d, self.test_group, self.groups)
        detect = 0.0
        if self.config.detectors:  # the weights that drew this epoch's samples score the points (docs/detection.md)
            t2 = time.perf_counter()
            arrays.update(self._membership())
            detect = time.perf_counter() - t2
            self.timings["detect_s"] = self.timings.get("detect_s", 0.0) + detect
        write_epoch(self.path, epoch, arrays)
        self.frames[epoch] = {k: arrays[k] for k in TABLE_KEYS if k in arrays}
        self.evaluated.add(epoch)
        self.timings["generate_s"] += t1 - t0
        self.timings["metric_s"] += time.perf_counter() - t1 - detect  # the search's and tables' time alone
        return arrays

    def _membership(self) -> dict[str, np.ndarray]:
        """The detectors' stored arrays of this epoch (memnb.experiment.repeats.RepeatData.membership)."""
        model, schedule = self.ensemble.model, getattr(self.ensemble, "schedule", None)
        if schedule is None or not isinstance(model, torch.nn.Module):
            raise ValueError(f"config field 'detectors' = {self.config.detectors!r}: a packed run has no ε̂ of its own")
        out = self.data.membership(model, schedule.alphas_cumprod.cpu().numpy(), self.ensemble.device)
        out.pop("detector_seconds")
        return out

    def bar_numbers(self, arrays: dict[str, np.ndarray]) -> tuple[float, float]:
        """The progress bar's numbers: the paper criterion at the config's ratio, all groups, mean over repeats."""
        k = int(np.flatnonzero(self.thresholds == self.config.ratio)[0])
        s = arrays["summary"]
        return tuple(
            float(summary_at(s, criterion="paper", source=src, threshold_index=k).mean())
            for src in ("generated", "null")
        )

    def notify(self, epoch: int, arrays: dict[str, np.ndarray]) -> bool:
        """Every callback sees the epoch; callbacks.json is rewritten. True when one asks to stop."""
        fired = notify(self.callbacks, epoch, arrays, self.context)
        write_json(self.path / CALLBACKS, [cb.record() for cb in self.callbacks])
        return fired

    def train(self, epoch: int) -> np.ndarray:
        if self.stale:
            (self.path / MANIFEST).unlink(missing_ok=True)
            if not self.callbacks:
                (self.path / CALLBACKS).unlink(missing_ok=True)
            self.stale = False
        t0 = time.perf_counter()
        loss = self.ensemble.train_epoch(epoch)
        check_training(loss, self.ensemble.model, epoch, self.config)  # before any checkpoint can hold it
        self.timings["train_s"] += time.perf_counter() - t0
        self.history = np.concatenate([self.history, loss[None].astype(np.float32)])
        return loss

    def checkpoint(self, trained: int) -> None:
        if self.resume_state is not None:
            return  # redoing epochs before a sound checkpoint: it is loaded again, not overwritten
        write_checkpoint(
            self.checkpoint_file,
            {"ensemble": self.ensemble.state_dict(), "trained_epochs": trained, "loss_history": self.history},
        )
        write_parquet(self.path / LOSS, loss_frame(self.history))

    def jump_back(self, epoch: int) -> int | None:
        """After the last redone epoch: load the sound checkpoint again; the epoch to go on from (None: go on)."""
        if self.resume_state is None or epoch != self.redo_until:
            return None
        start, checkpoint, history = self.resume_state
        self.ensemble.load_state_dict(checkpoint["ensemble"])
        self.resume_state, self.history = None, history
        return start

    def loop(self, progress: bool) -> int | None:
        """Evaluate, notify, train and checkpoint from the resume point to the end; the stop epoch (None: none)."""
        c = self.config
        bar = _progress(c.epochs + 1, self.start, progress, f"{c.dataset} x{c.n_repeats} repeats")
        self.t_run = last_checkpoint = time.perf_counter()
        stopped_at, epoch = None, self.start
        while epoch <= c.epochs:
            arrays = None
            if epoch in self.eval_epochs and epoch not in self.evaluated:
                arrays = self.evaluate(epoch)
                memorized, null = self.bar_numbers(arrays)
                bar.set_postfix(memorized=f"{memorized:.3f}", null=f"{null:.3f}", refresh=False)
            if epoch in self.eval_epochs and self.callbacks:
                if (
                    self.notify(epoch, arrays if arrays is not None else read_epoch(self.path, epoch))
                    and epoch < c.epochs
                ):
                    stopped_at = epoch
                    break
            back = self.jump_back(epoch)
            if back is not None:
                bar.update(back - epoch)
                epoch = back
                continue
            if epoch == c.epochs:
                break
            loss = self.train(epoch)
            if checkpoint_due(epoch + 1, self.eval_epochs, c.epochs, time.perf_counter() - last_checkpoint):
                self.checkpoint(epoch + 1)
                last_checkpoint = time.perf_counter()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.mean():.4f}", refresh=True)
            epoch += 1
        bar.update(1)
        bar.close()
        return stopped_at

    # -- the end --------------------------------------------------------------------------------
    def finish(self, stopped_at: int | None) -> Results:
        """Write the loss, the tables (from memory) and the manifest that marks the run complete or stopped."""
        c, callbacks = self.config, self.callbacks
        write_parquet(self.path / LOSS, loss_frame(self.history))
        if not callbacks:
            (self.path / CALLBACKS).unlink(missing_ok=True)  # from a stopped session; this one had no callbacks
        previous = self.previous
        previous_stop = {
            k: previous[k] for k in ("stopped_at_epoch", "callbacks") if previous.get("stopped_at_epoch") is not None
        }
        if previous_stop == {"stopped_at_epoch": stopped_at, "callbacks": [settings_of(cb) for cb in callbacks]}:
            previous_stop = {}  # stopped again where it was, by the same callbacks: nothing to tell
        table, zu = tables(self.frames, c, group_sizes(self.groups, c.group_names))
        write_parquet(self.path / TABLE, table)
        write_parquet(self.path / ZU, zu)
        training = {
            "trained_epochs": stopped_at if stopped_at is not None else c.epochs,
            "callbacks": [settings_of(cb) for cb in callbacks],
            **({"previous_stop": previous_stop} if previous_stop else {}),
            "memnb_version": __version__,
            "torch_version": _torch_version(),
            "device": str(self.ensemble.device),
            "resumed_from_epoch": self.start,
            "wall_s_this_session": time.perf_counter() - self.t_run,
            **{k: round(v, 3) for k, v in self.timings.items()},
        }
        write_manifest(
            self.path,
            Manifest(
                complete=stopped_at is None,
                fingerprint=c.fingerprint(),
                files=records(self.path),
                stopped_at_epoch=stopped_at,
                training=training,
                packed=dict(self.manifest_extra),  # a packed run's {"packed": ...}
            ),
        )
        return Results(self.path)


def _torch_version() -> str:
    import torch

    return torch.__version__


def checkpoint_due(trained: int, eval_epochs, epochs: int, since_last_s: float, every_s: float | None = None) -> bool:
    """Whether to write the checkpoint once `trained` epochs are done.

    Always before an evaluated epoch and after the last one, so every stored epoch file has a
    checkpoint at or after its epoch's start and a stopped run holds the checkpoint of its stop
    epoch; in between only every `every_s` seconds (default CHECKPOINT_SECONDS). Writing ~12 MB of weights and
    optimizer state after every epoch cost up to 40 % of a small run's time; an interruption now re-trains at most
    `every_s` seconds of epochs, to the same numbers (each epoch's randomness is its own).
    """
    every_s = CHECKPOINT_SECONDS if every_s is None else every_s
    return trained in eval_epochs or trained >= epochs or since_last_s >= every_s


# Longest stretch of training (seconds) that an interruption may cost, between evaluated epochs.
CHECKPOINT_SECONDS = 60.0
