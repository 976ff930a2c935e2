"""run_experiment: the paper's per-epoch protocol, written epoch by epoch, resumable, idempotent.

Protocol, for every repeat at once (one batched ensemble): at the start of every evaluated epoch
(0 = untrained, every `eval_every`, and after the last) draw `n_generate` samples, search their
neighbours among the repeat's training and test points, do the same for `n_generate` fresh
draws from the data distribution (the null baseline), tabulate, compute Meehan et al.'s Z_U,
commit the epoch (one file); then train one epoch.

`run_experiment` opens the run directory through the run store (memnb.experiment.store), repairs what a complete
run can rebuild, and hands a partial run to the session's steps (memnb.experiment.session): set up, resume,
replay stored epochs to the callbacks, evaluate and train, finish (tables from memory, then the manifest).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..core.callbacks import check_callbacks
from ..core.config import ExperimentConfig
from ..core.resources import check_resources
from ..core.storage import CorruptRunError, check_record, file_record, write_parquet
from ..core.validate import check_bool, invalid
from .checks import SAMPLE_LIMIT, DivergedError, check_samples, check_training
from .repeats import RepeatData
from .replay import first_stop
from .results import Results, TablesOnlyError
from .session import CHECKPOINT_SECONDS, Session, checkpoint_due, loss_frame
from .store import (
    RunLockedError,
    advice,
    read_checkpoint,
    read_config,
    read_manifest,
    records,
    remove_stale,
    run_lock,
    runs_root,
    set_aside,
    write_config,
    write_data,
    write_manifest,
)
from .store.layout import CALLBACKS, CHECKPOINT, CONFIG, DATA, EPOCHS, LOSS, MANIFEST, TABLE, ZU, epoch_file

RUN_FILES = {DATA, EPOCHS, LOSS, TABLE, ZU, CHECKPOINT, CALLBACKS, MANIFEST}  # what a run folder may hold

__all__ = [
    "run_experiment",
    "prepare_run",
    "run_dir",
    "default_root",
    "run_lock",
    "RunLockedError",
    "DivergedError",
    "CHECKPOINT_SECONDS",
    "SAMPLE_LIMIT",
    "checkpoint_due",
    "check_samples",
    "check_training",
    "loss_frame",
    "records",
]


def default_root() -> Path:
    """The runs root: $MEMNB_RUNS (read now), else the project's outputs/runs (memnb.experiment.store.runs)."""
    return runs_root()


def run_dir(config: ExperimentConfig, root: Path | str | None = None) -> Path:
    return runs_root(root) / config.run_name()


def open_run(path: Path, config: ExperimentConfig) -> Results:
    """The run directory of `config` at `path`, created (config.json first) when new.

    A config.json that is missing or unreadable in a folder named for this config (its name holds the config's
    fingerprint) is written again; a folder of another config, or holding files but no run, is refused.
    """
    path.mkdir(parents=True, exist_ok=True)
    f = path / CONFIG
    if f.exists():
        try:
            stored = read_config(path, lambda name: advice(path, name))
        except CorruptRunError as e:
            if path.name != config.run_name():
                raise
            stored = _config_again(path, config, f"{f} is unreadable ({str(e).split('(', 1)[-1].split(')')[0]})")
        if stored != config and path.name == config.run_name() and _recorded_fingerprint(path) == config.fingerprint():
            # edited by hand: the folder's name and the manifest both say which config wrote this run
            stored = _config_again(path, config, f"{f} is not the config this run was written with")
        if stored != config:
            diff = {k: (v, config.to_dict()[k]) for k, v in stored.to_dict().items() if config.to_dict().get(k) != v}
            raise CorruptRunError(
                f"{path} belongs to another config (stored vs requested: {diff}); use another output root or delete it"
            )
    else:
        held = [p.name for p in path.iterdir() if not p.name.startswith(".")]
        if held and (path.name != config.run_name() or not set(held) <= RUN_FILES):
            raise CorruptRunError(f"{path} holds {held[:3]} without config.json: not a memnb run; move or delete it")
        write_config(path, config)  # before any other file (a lost config.json: the folder is named for this one)
    try:
        return Results(path, verify=False)
    except CorruptRunError as e:  # an unreadable manifest: the run is verified and described again at its end
        set_aside(path, MANIFEST)
        warnings.warn(f"{e}; set aside: the run is verified and its manifest written again", stacklevel=4)
        return Results(path, verify=False)


def _config_again(path: Path, config: ExperimentConfig, why: str) -> ExperimentConfig:
    dest = set_aside(path, CONFIG)
    write_config(path, config)
    warnings.warn(f"{why}: set aside as {dest}, written again from the config this folder is named for", stacklevel=5)
    return config


def _recorded_fingerprint(path: Path) -> str | None:
    try:
        return read_manifest(path).fingerprint
    except CorruptRunError:
        return None


def repair(results: Results, config: ExperimentConfig, verify: bool = False) -> Results:
    """A complete run made whole again where it can be: what is damaged is rebuilt or recomputed.

    data.npz (drawn again from the config, checked against its recorded checksum), the tables (from the epoch
    files) and the loss (from the checkpoint) are rebuilt in place; a damaged or missing epoch file is set aside
    and the run becomes partial, so that the session recomputes that epoch alone. Sizes are checked always, the
    checksums of data.npz and the tables always, every epoch file's checksum with `verify`.
    """
    path, recorded = results.path, results.records
    damaged = results.damaged(checksums=verify)
    for name in (DATA, TABLE, ZU, LOSS):
        rec = recorded.get(name)
        if name not in damaged and rec is not None:
            problem = check_record(path / name, rec)
            if problem:
                damaged[name] = problem
    if CONFIG in damaged:
        raise CorruptRunError(f"{path / CONFIG} {damaged[CONFIG]}; {results.advice(CONFIG)}")
    epochs = [n for n in damaged if n.startswith("epochs/")]
    others = [n for n in damaged if n not in (DATA, TABLE, ZU, LOSS) and n not in epochs]
    if others:
        raise CorruptRunError(f"{path / others[0]} {damaged[others[0]]}; {results.advice(Path(others[0]).name)}")
    if epochs:  # recomputed by the session, every other epoch kept
        for name in epochs:
            if (path / name).exists():
                set_aside(path, name)
        set_aside(path, MANIFEST)
        warnings.warn(f"{path}: {', '.join(epochs)} damaged ({damaged[epochs[0]]}): recomputed", stacklevel=4)
        return Results(path, verify=False)
    if not damaged:
        return results
    if DATA in damaged:
        write_data(path, RepeatData(config).arrays())
        rec = recorded.get(DATA)
        if rec is not None and file_record(path / DATA)["sha256"] != rec["sha256"]:
            raise CorruptRunError(f"{path / DATA} drawn again from the config differs from the run's; delete {path}")
    fresh = Results(path, verify=False)
    if TABLE in damaged or ZU in damaged:
        for e in fresh.evaluated_epochs:  # the tables' sources, verified first
            fresh._check(epoch_file(path, e))
        write_parquet(path / TABLE, fresh.assemble_table())
        write_parquet(path / ZU, fresh.assemble_zu())
    if LOSS in damaged:
        if not (path / CHECKPOINT).exists():  # the loss history is trained again (every stored epoch kept)
            set_aside(path, LOSS)
            set_aside(path, MANIFEST)
            warnings.warn(f"{path / LOSS} {damaged[LOSS]}: trained again for its loss history", stacklevel=4)
            return Results(path, verify=False)
        write_parquet(path / LOSS, loss_frame(read_checkpoint(path / CHECKPOINT)["loss_history"]))
    repaired = sorted(set(results.manifest.training.get("repaired", [])) | set(damaged))
    write_manifest(path, results.manifest.replace(files=records(path), training={"repaired": repaired}))
    warnings.warn(f"{path}: rebuilt {', '.join(sorted(damaged))} from the run's other files", stacklevel=4)
    return Results(path)


def prepare_run(config: ExperimentConfig, path: Path, verify: bool = False) -> Results:
    """The run directory of `config` at `path`, ready to resume or to return (the caller holds its lock).

    Stale temporaries removed; a complete run repaired where it can be (`repair`); a complete tables-only copy
    (memnb.experiment.archive) returned as it is, every checksum verified; a partial one refused.
    """
    path.mkdir(parents=True, exist_ok=True)
    remove_stale(path)  # left by writes that a kill interrupted; this process holds the run
    results = open_run(path, config)
    if results.tables_only:  # a copy of a run made elsewhere: returned, never trained on
        if not results.complete:
            raise TablesOnlyError(
                f"{path} is a tables-only copy of a partial run (made on {results.manifest.get('made_on')}): it "
                "cannot be resumed here (no checkpoint, no epoch files); resume it there, or delete the copy to run "
                "the config here from the start"
            )
        results.verify(checksums=True)
        return results
    if results.complete:
        results = repair(results, config, verify)
    return results


def run_experiment(
    config: ExperimentConfig,
    root: Path | str | None = None,
    progress: bool = True,
    callbacks=None,
    wait: bool = True,
    verify: bool = False,
) -> Results:
    """Run (or resume, or just load) `config`; returns its Results.

    Results go to ``root/config.run_name()`` (root: memnb.experiment.store.runs_root: $MEMNB_RUNS, read at the
    call, or the project's outputs/runs). Every epoch is one atomic file, so a run killed at any moment and
    started again resumes from its last complete epoch and ends with exactly the results of an uninterrupted run.

    callbacks: objects following `memnb.core.callbacks`'s protocol (e.g. `EarlyStopping`), called
    in order after every evaluated epoch is written. When one asks to stop at epoch e < epochs,
    training ends there: the run holds epochs up to e, ``manifest.json`` says ``complete: false``
    and ``stopped_at_epoch: e``, and ``callbacks.json`` holds every callback's record. On resume,
    the stored epochs are first replayed to the callbacks, so their state (and their decision) is
    that of an uninterrupted run: calling again with the same callbacks returns the stopped run
    unchanged; calling without callbacks (or with others) trains on, to the same numbers as a run
    never stopped. A complete run is returned as it is; callbacks that would have stopped it are
    replayed and reported in a warning (nothing is written).

    One process at a time writes a run: a second call on the same config waits for the first and then returns
    its result; with wait=False it raises RunLockedError naming the process that holds it. A complete run is
    verified before it is returned (sizes, and the checksums of data.npz and the tables; of every file with
    verify=True) and what is damaged is rebuilt or recomputed (memnb.experiment.store.advice); a partial run's
    checkpoint and epoch files are verified before it resumes. Training stops with DivergedError at the first
    non-finite loss or weight, or samples beyond float16's range.
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(
            str(invalid("config", config, "an ExperimentConfig (from a dict: ExperimentConfig.from_dict(d))"))
        )
    progress, wait, verify = (check_bool(n, v) for n, v in (("progress", progress), ("wait", wait), ("verify", verify)))
    callbacks = check_callbacks(callbacks)
    path = run_dir(config, root)
    _check_resources(config, path)
    with run_lock(path.parent, path.name, wait) as waited:
        results = run_locked(config, path, progress, callbacks, verify)
    results.lock_wait_s = waited
    return results


def _check_resources(config: ExperimentConfig, path: Path) -> None:
    """Refuse, before any work, a run this machine cannot hold (memnb.core.resources), unless it is stored."""
    if not (path / MANIFEST).exists():
        check_resources(config, path.parent)


def run_locked(config: ExperimentConfig, path: Path, progress: bool, callbacks: list, verify: bool = False) -> Results:
    results = prepare_run(config, path, verify)
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
    run = Session(config, path, results, callbacks)
    run.set_up()
    run.resume()
    run.replay_callbacks()
    return run.finish(run.loop(progress))
