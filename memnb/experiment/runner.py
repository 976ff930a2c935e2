"""run_experiment: the paper's per-epoch protocol, written epoch by epoch, resumable, idempotent.

Protocol, for every repeat at once (one batched ensemble): at the start of every evaluated epoch
(0 = untrained, every `eval_every`, and after the last) draw `n_generate` samples, search their
neighbours among the repeat's training and test points, do the same for `n_generate` fresh
draws from the data distribution (the null baseline), tabulate, compute Meehan et al.'s Z_U,
write; then train one epoch.

`run_experiment` is a few named steps of `_Run`: open the directory, set up data and model,
resume from the checkpoint, replay stored epochs to the callbacks, then per epoch evaluate,
notify the callbacks, train and checkpoint, and finally write the tables and the manifest.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._version import __version__
from ..core.callbacks import EpochContext, check_callbacks, settings_of
from ..core.config import ExperimentConfig
from ..core.storage import (
    CorruptRunError,
    file_record,
    stale_temporaries,
    write_json,
    write_npz,
    write_parquet,
    write_torch,
)
from ..models.ensemble import Ensemble
from .repeats import RepeatData
from .replay import first_stop, notify
from .results import REPAIRED_BY_RUNNER, Results, TablesOnlyError, advice, epoch_file, load_npz, read_config
from .tabulate import data_copying, summarize, summary_at, table_thresholds

# Longest stretch of training (seconds) that an interruption may cost, between evaluated epochs.
CHECKPOINT_SECONDS = 60.0
# Largest magnitude a stored sample may have: samples are stored as float16 (data of scale ~1 need no more);
# a model whose samples leave this range has diverged.
SAMPLE_LIMIT = float(np.finfo(np.float16).max)
EPOCH_ARRAYS = ("samples", "d1", "d2", "d_test", "index", "summary")
NOT_RECORDED = ("manifest.json", "checkpoint.pt")  # the manifest itself; the resume point is not a result


class DivergedError(RuntimeError):
    """Training diverged: a non-finite loss or weight, or samples beyond float16's range, at a named epoch and repeat."""


class RunLockedError(RuntimeError):
    """Another process holds the run (run_experiment(..., wait=False))."""


_HELD: set[str] = set()  # run locks this process holds (run_lock is re-entrant within a process)


@contextlib.contextmanager
def run_lock(root: Path, name: str, wait: bool = True):
    """Exclusive lock on run `name` under `root` (``root/.locks/<name>.lock``), released by the OS if the process dies.

    Yields the seconds spent waiting. wait=False: RunLockedError naming the holder's pid instead of waiting.
    Re-entrant within a process (a sweep's task holds it around run_experiment, which takes it too).
    """
    lock_dir = Path(root) / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    key = str((lock_dir / f"{name}.lock").resolve())
    if key in _HELD:
        yield 0.0
        return
    t0 = time.perf_counter()
    with open(key, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            if not wait:
                raise RunLockedError(
                    f"run {name} is being written by process {holder} (lock {key}); wait for it, or call "
                    "run_experiment with wait=True to wait"
                ) from None
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        _HELD.add(key)
        try:
            yield time.perf_counter() - t0
        finally:
            _HELD.discard(key)
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def default_root() -> Path:
    """$MEMNB_RUNS if set and non-empty (read now, not at import), else outputs/runs."""
    return Path(os.environ.get("MEMNB_RUNS") or "outputs/runs")


def run_dir(config: ExperimentConfig, root: Path | str | None = None) -> Path:
    return Path(default_root() if root is None else root) / config.run_name()


def checkpoint_due(
    trained: int, eval_epochs, epochs: int, since_last_s: float, every_s: float = CHECKPOINT_SECONDS
) -> bool:
    """Whether to write the checkpoint once `trained` epochs are done.

    Always before an evaluated epoch and after the last one, so every stored epoch file has a
    checkpoint at or after its epoch's start and a stopped run holds the checkpoint of its stop
    epoch; in between only every `every_s` seconds. Writing ~12 MB of weights and optimizer state
    after every epoch cost up to 40 % of a small run's time; an interruption now re-trains at most
    `every_s` seconds of epochs, to the same numbers (each epoch's randomness is its own).
    """
    return trained in eval_epochs or trained >= epochs or since_last_s >= every_s


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


def open_run(path: Path, config: ExperimentConfig) -> Results:
    """The run directory of `config` at `path`, created (with its config.json) when new."""
    path.mkdir(parents=True, exist_ok=True)
    if (path / "config.json").exists():
        stored = read_config(path)
        if stored != config:
            diff = {k: (v, config.to_dict()[k]) for k, v in stored.to_dict().items() if config.to_dict()[k] != v}
            raise CorruptRunError(
                f"{path} belongs to another config (stored vs requested: {diff}); use another output root or delete it"
            )
    else:
        if any(path.iterdir()):
            raise CorruptRunError(f"{path} exists without config.json: not a memnb run; move or delete it")
        write_json(path / "config.json", config.to_dict())
    return Results(path, verify=False)


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="epoch")


class _Run:
    """One session of a run: the state its steps share."""

    def __init__(self, config: ExperimentConfig, path: Path, results: Results, callbacks: list):
        self.config, self.path, self.results, self.callbacks = config, path, results, callbacks
        self.previous = results.manifest
        self.timings = {"train_s": 0.0, "generate_s": 0.0, "metric_s": 0.0}
        self.checkpoint_file = path / "checkpoint.pt"
        self.manifest_extra: dict = {}  # further manifest entries (a packed run's "packed")

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
        data_file = self.path / "data.npz"
        try:
            stored = self.results.data["train_points"] if data_file.exists() else None
        except CorruptRunError:  # unreadable: the config gives it again
            stored = None
        if stored is None:
            write_npz(data_file, self.data.arrays())
        elif not np.array_equal(stored, self.data.train_points):
            raise CorruptRunError(
                f"{data_file} does not hold this config's training data; {advice(self.path, 'epochs')}"
            )
        # test-to-train nearest-neighbour distances, L(P_n) of the Z_U test: fixed for the run
        self.test_d, self.test_group = self.data.held_out_neighbours()  # on config.device for the torch search
        self.context = EpochContext(c, self.groups, self.locations, self.thresholds)

    def resume(self) -> None:
        """Load the checkpoint (if any) and check that the stored epoch files match it and can be read.

        Everything a resume depends on is checked here, before any training: a damaged epoch file at the
        resume point is removed (it is recomputed); one before it cannot be, and stops the run with advice.
        """
        c = self.config
        self.start, self.history = 0, np.zeros((0, c.n_repeats), np.float32)
        if self.checkpoint_file.exists():
            try:
                ckpt = torch.load(self.checkpoint_file, map_location=self.ensemble.device, weights_only=False)
                self.ensemble.load_state_dict(ckpt["ensemble"])
            except Exception as e:
                raise CorruptRunError(
                    f"{self.checkpoint_file} is unreadable ({type(e).__name__}: {e}); delete {self.path} to start over"
                ) from None
            self.start, self.history = int(ckpt["trained_epochs"]), np.asarray(ckpt["loss_history"], np.float32)
        for e in self.results.evaluated_epochs:
            f = epoch_file(self.path, e)
            try:
                load_npz(f, EPOCH_ARRAYS, self.path)
            except CorruptRunError as err:
                if e < self.start:
                    raise CorruptRunError(
                        f"{err} (epoch {e} is before the checkpoint at epoch {self.start}, so it "
                        f"cannot be recomputed from it); {advice(self.path, 'epochs')}"
                    ) from None
                f.unlink()  # at the resume point: evaluated again below, to the same numbers
                warnings.warn(
                    f"{f} was unreadable; it is recomputed from the checkpoint at epoch {self.start}", stacklevel=3
                )
        self.evaluated = set(self.results.evaluated_epochs)
        self.eval_epochs = set(c.eval_epochs)
        missing = sorted(e for e in self.eval_epochs if e < self.start and e not in self.evaluated)
        extra = sorted(e for e in self.evaluated if e > self.start or e not in self.eval_epochs)
        if missing or extra:
            raise CorruptRunError(
                f"{self.path}: checkpoint at epoch {self.start} but evaluated-epoch files missing "
                f"{missing} or unexpected {extra}; delete {self.path} to start over"
            )

    def replay_callbacks(self) -> None:
        """Callbacks see every evaluated epoch in order: those before the resume point are replayed from disk."""
        for cb in self.callbacks:
            cb.reset()
        fired = [
            e
            for e in sorted(x for x in self.evaluated if x < self.start)
            if self.callbacks and notify(self.callbacks, e, self.results.epoch_arrays(e), self.context)
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
        """Generate, search (samples and null draws), tabulate and write epoch `epoch`; its arrays."""
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
        write_npz(epoch_file(self.path, epoch), arrays)
        self.timings["generate_s"] += t1 - t0
        self.timings["metric_s"] += time.perf_counter() - t1
        return arrays

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
        write_json(self.path / "callbacks.json", [cb.record() for cb in self.callbacks])
        return fired

    def train(self, epoch: int) -> np.ndarray:
        if self.stale:
            (self.path / "manifest.json").unlink(missing_ok=True)
            if not self.callbacks:
                (self.path / "callbacks.json").unlink(missing_ok=True)
            self.stale = False
        t0 = time.perf_counter()
        loss = self.ensemble.train_epoch(epoch)
        check_training(loss, self.ensemble.model, epoch, self.config)  # before any checkpoint can hold it
        self.timings["train_s"] += time.perf_counter() - t0
        self.history = np.concatenate([self.history, loss[None].astype(np.float32)])
        return loss

    def checkpoint(self, trained: int) -> None:
        write_torch(
            self.checkpoint_file,
            {"ensemble": self.ensemble.state_dict(), "trained_epochs": trained, "loss_history": self.history},
        )
        write_parquet(self.path / "loss.parquet", loss_frame(self.history))

    def loop(self, progress: bool) -> int | None:
        """Evaluate, notify, train and checkpoint from the resume point to the end; the stop epoch (None: none)."""
        c = self.config
        bar = _progress(c.epochs + 1, self.start, progress, f"{c.dataset} x{c.n_repeats} repeats")
        self.t_run = last_checkpoint = time.perf_counter()
        stopped_at = None
        for epoch in range(self.start, c.epochs + 1):
            arrays = None
            if epoch in self.eval_epochs and epoch not in self.evaluated:
                arrays = self.evaluate(epoch)
                memorized, null = self.bar_numbers(arrays)
                bar.set_postfix(memorized=f"{memorized:.3f}", null=f"{null:.3f}", refresh=False)
            if epoch in self.eval_epochs and self.callbacks:
                if (
                    self.notify(epoch, arrays if arrays is not None else self.results.epoch_arrays(epoch))
                    and epoch < c.epochs
                ):
                    stopped_at = epoch
                    break
            if epoch == c.epochs:
                break
            loss = self.train(epoch)
            if checkpoint_due(epoch + 1, self.eval_epochs, c.epochs, time.perf_counter() - last_checkpoint):
                self.checkpoint(epoch + 1)
                last_checkpoint = time.perf_counter()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.mean():.4f}", refresh=True)
        bar.update(1)
        bar.close()
        return stopped_at

    # -- the end --------------------------------------------------------------------------------
    def finish(self, stopped_at: int | None) -> Results:
        """Write loss (for 0 epochs), the tables, and the manifest that marks the run complete or stopped."""
        c, callbacks = self.config, self.callbacks
        if c.epochs == 0:
            write_parquet(self.path / "loss.parquet", loss_frame(self.history))
        if not callbacks:
            (self.path / "callbacks.json").unlink(missing_ok=True)  # from a stopped session; this one had no callbacks
        previous = self.previous
        previous_stop = {
            k: previous[k] for k in ("stopped_at_epoch", "callbacks") if previous.get("stopped_at_epoch") is not None
        }
        if previous_stop == {"stopped_at_epoch": stopped_at, "callbacks": [settings_of(cb) for cb in callbacks]}:
            previous_stop = {}  # stopped again where it was, by the same callbacks: nothing to tell
        write_parquet(self.path / "table.parquet", self.results.assemble_table())
        write_parquet(self.path / "zu.parquet", self.results.assemble_zu())
        write_json(
            self.path / "manifest.json",
            {
                "fingerprint": c.fingerprint(),
                "files": records(self.path),
                "complete": stopped_at is None,
                "stopped_at_epoch": stopped_at,
                "trained_epochs": stopped_at if stopped_at is not None else c.epochs,
                "callbacks": [settings_of(cb) for cb in callbacks],
                **({"previous_stop": previous_stop} if previous_stop else {}),
                "memnb_version": __version__,
                "torch_version": torch.__version__,
                "device": str(self.ensemble.device),
                "resumed_from_epoch": self.start,
                "wall_s_this_session": time.perf_counter() - self.t_run,
                **{k: round(v, 3) for k, v in self.timings.items()},
                **self.manifest_extra,
            },
        )
        return Results(self.path)


def records(path: Path) -> dict[str, dict]:
    """{file relative to the run: {"size", "sha256"}} of every result file of a run (the manifest's "files")."""
    out = {}
    for f in sorted(Path(path).rglob("*")):
        name = str(f.relative_to(path))
        if f.is_file() and name not in NOT_RECORDED and not f.name.startswith("."):
            out[name] = file_record(f)
    return out


def _first_bad_member(values: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if len(bad) else None


def _divergence_advice(config: ExperimentConfig, epoch: int) -> str:
    return (
        f"training diverged (learning_rate = {config.learning_rate}, grad_clip = {config.grad_clip}); the "
        f"evaluated epochs before epoch {epoch} are stored and the checkpoint holds the last finite weights; "
        "lower learning_rate (tiny-diffusion's is 1e-3) or grad_clip and run the new config"
    )


def check_training(loss: np.ndarray, model: torch.nn.Module, epoch: int, config: ExperimentConfig) -> None:
    """DivergedError naming the epoch, repeat and value when a member's loss or weights are not finite.

    loss: (R,) mean training loss of the epoch; the model's parameters carry the member axis first.
    """
    r = _first_bad_member(np.asarray(loss, np.float64))
    if r is not None:
        raise DivergedError(
            f"repeat {r}: training loss {float(loss[r])} at epoch {epoch + 1} (training epoch "
            f"{epoch} -> {epoch + 1}); {_divergence_advice(config, epoch + 1)}"
        )
    with torch.no_grad():
        for name, p in model.named_parameters():
            finite = torch.isfinite(p.reshape(p.shape[0], -1)).all(dim=1).cpu().numpy()
            if not finite.all():
                r = int(np.flatnonzero(~finite)[0])
                value = p[r][~torch.isfinite(p[r])].flatten()[0].item()
                raise DivergedError(
                    f"repeat {r}: weight {name} = {value} at epoch {epoch + 1}; {_divergence_advice(config, epoch + 1)}"
                )


def check_samples(samples: np.ndarray, epoch: int, config: ExperimentConfig) -> None:
    """DivergedError when a sample is not finite or beyond float16's range (the stored dtype), naming the epoch,
    the repeat and the value; samples (R, n, d)."""
    magnitude = np.abs(samples).reshape(len(samples), -1).max(axis=1)
    bad = np.flatnonzero(~(magnitude <= SAMPLE_LIMIT))  # NaN compares False
    if len(bad):
        r = int(bad[0])
        raise DivergedError(
            f"repeat {r}: samples drawn at epoch {epoch} reach {float(magnitude[r])} (stored as "
            f"float16, at most {SAMPLE_LIMIT:g}); {_divergence_advice(config, epoch)}"
        )


def repair(results: Results, config: ExperimentConfig) -> Results:
    """A run whose repairable files (REPAIRED_BY_RUNNER) are damaged, rebuilt from the rest.

    data.npz is regenerated from the config (deterministic) and must match its recorded checksum; the tables
    are assembled again from the epoch files, whose checksums are verified first. CorruptRunError with advice
    when anything else is damaged.
    """
    path, m = results.path, results.manifest
    recorded = results.records
    damaged = results.damaged()
    fixable = [n for n in damaged if n in REPAIRED_BY_RUNNER]
    others = [n for n in damaged if n not in REPAIRED_BY_RUNNER]
    if others:
        raise CorruptRunError(f"{path / others[0]} {damaged[others[0]]}; {advice(path, Path(others[0]).name)}")
    if not fixable:
        return Results(path)
    if "data.npz" in fixable:
        write_npz(path / "data.npz", RepeatData(config).arrays())
        rec = recorded.get("data.npz")
        if rec is not None and file_record(path / "data.npz")["sha256"] != rec["sha256"]:
            raise CorruptRunError(
                f"{path / 'data.npz'} rebuilt from the config differs from the run's; {advice(path, 'epochs')}"
            )
    fresh = Results(path, verify=False)
    for e in fresh.evaluated_epochs:
        fresh._check(epoch_file(path, e))
    if "table.parquet" in fixable:
        write_parquet(path / "table.parquet", fresh.assemble_table())
    if "zu.parquet" in fixable:
        write_parquet(path / "zu.parquet", fresh.assemble_zu())
    if recorded:
        write_json(
            path / "manifest.json",
            {
                **m,
                "files": {**recorded, **{n: file_record(path / n) for n in fixable}},
                "repaired": sorted(set(m.get("repaired", [])) | set(fixable)),
            },
        )
    warnings.warn(f"{path}: rebuilt {', '.join(fixable)} from the run's other files", stacklevel=4)
    return Results(path)


def run_experiment(
    config: ExperimentConfig, root: Path | str | None = None, progress: bool = True, callbacks=None, wait: bool = True
) -> Results:
    """Run (or resume, or just load) `config`; returns its Results.

    Results go to ``root/config.run_name()`` (root defaults to $MEMNB_RUNS, read at the call, or
    outputs/runs). Every file is written atomically, so a run killed at any moment and started again
    resumes from its last complete epoch and ends with exactly the results of an uninterrupted run.

    callbacks: objects following `memnb.core.callbacks`'s protocol (e.g. `EarlyStopping`), called
    in order after every evaluated epoch is written. When one asks to stop at epoch e < epochs,
    training ends there: the run holds epochs up to e, ``manifest.json`` says ``complete: false``
    and ``stopped_at_epoch: e``, and ``callbacks.json`` holds every callback's record. On resume,
    the stored epochs are first replayed to the callbacks, so their state (and their decision) is
    that of an uninterrupted run: calling again with the same callbacks returns the stopped run
    unchanged; calling without callbacks (or with others) trains on, to the same numbers as a run
    never stopped. A complete run is returned as it is; callbacks that would have stopped it are
    replayed and reported in a warning (nothing is written).

    One process at a time writes a run: a second call on the same config (another process, at the same
    instant) waits for the first and then returns its result; with wait=False it raises RunLockedError
    naming the process that holds it. A complete run is verified before it is returned (its files'
    sizes; checksums as files are read) and its tables and data.npz are rebuilt when damaged. Training
    stops with DivergedError at the first non-finite loss or weight, or samples beyond float16's range.
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(
            f"config = {config!r} is invalid; allowed: an ExperimentConfig (from a dict: ExperimentConfig.from_dict(d))"
        )
    callbacks = check_callbacks(callbacks)
    path = run_dir(config, root)
    with run_lock(path.parent, path.name, wait) as waited:
        results = _run_locked(config, path, progress, callbacks)
    results.lock_wait_s = waited
    return results


def prepare_run(config: ExperimentConfig, path: Path) -> Results:
    """The run directory of `config` at `path`, ready to resume or to return (the caller holds its lock).

    Stale temporaries removed; a complete or recorded run repaired where it can be (`repair`); a complete
    tables-only copy (memnb.experiment.archive) returned as it is, verified; a partial one refused.
    """
    path.mkdir(parents=True, exist_ok=True)
    for tmp in stale_temporaries(path):  # left by a write that a kill interrupted; this process holds the run
        tmp.unlink()
    results = open_run(path, config)
    if results.tables_only:  # a copy of a run made elsewhere (memnb.experiment.archive): returned, never trained on
        if not results.complete:
            raise TablesOnlyError(
                f"{path} is a tables-only copy of a partial run (made on {results.manifest.get('made_on')}): it "
                "cannot be resumed here (no checkpoint, no epoch files); resume it there, or delete the copy to run "
                "the config here from the start"
            )
        results.verify(checksums=False)
        return results
    if results.manifest.get("files") is not None or results.complete:
        results = repair(results, config)
    return results


def _run_locked(config: ExperimentConfig, path: Path, progress: bool, callbacks: list) -> Results:
    results = prepare_run(config, path)
    if results.complete:
        if callbacks and not results.tables_only:  # a copy has no epoch files to replay
            stop = first_stop(results, callbacks)
            if stop is not None and stop < config.epochs:
                warnings.warn(
                    f"{path} is complete ({config.epochs} epochs); its callbacks would have stopped it at "
                    f"epoch {stop} (returned unchanged; see memnb.experiment.replay)",
                    stacklevel=2,
                )
        return results
    run = _Run(config, path, results, callbacks)
    run.set_up()
    run.resume()
    run.replay_callbacks()
    return run.finish(run.loop(progress))
