"""run_packed: several configurations that share shapes, trained and sampled as one larger ensemble.

A GPU (and, less, a CPU) runs a batched ensemble of 40 members nearly as fast per step as one of 10:
the per-step cost of memnb's small networks is mostly fixed overhead. Configurations that differ
only in what does not change a tensor's shape (seed, dataset of the same dimension, injection
counts at an equal total, thresholds, the search backend...) can therefore share one `Ensemble`:
member i of the packed ensemble is repeat r of configuration k, with its generators derived from
(configs[k].seed, r) exactly as when that configuration runs alone, so every member draws the same
random numbers and takes the same steps (each member's gradient, clipping and AdamW update are its
own; memnb.models.train). Each configuration keeps its own run directory, data, searches, tables and
checkpoint, written by the runner's own steps (memnb.experiment.session.Session): the results are those
of `run_experiment(config)` array for array, and a packed run can be resumed alone and vice versa
(the checkpoint holds the configuration's members only).

Configurations are packed when `pack_key` is equal (the fields that fix the model's shapes, the
training recipe, the epochs and the evaluated epochs, the points per repeat and the device). Runs
already complete are loaded; runs resumed from checkpoints at different epochs fall back to
`run_experiment` one by one. Callbacks (early stopping) are not supported here: a callback may stop
one configuration and not the others.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.config import ExperimentConfig
from ..core.device import resolve_device
from ..core.registry import DENOISERS
from ..models.ensemble import Ensemble, member_state, stack_states
from .repeats import RepeatData
from .results import Results
from .runner import prepare_run, run_dir, run_locked
from .session import Session, checkpoint_due
from .store import run_lock

# fields that must be equal for configurations to share one ensemble (besides the data's shape)
PACK_FIELDS = (
    "denoiser",
    "hidden_size",
    "hidden_layers",
    "embedding_size",
    "num_timesteps",
    "beta_start",
    "beta_end",
    "learning_rate",
    "weight_decay",
    "grad_clip",
    "batch_size",
    "epochs",
    "precision",
    "sampler",
    "sample_steps",
    "device",
)


def pack_key(config: ExperimentConfig) -> tuple:
    """What configurations packed together must share: PACK_FIELDS, the evaluated epochs, the training points and
    generated samples per repeat (and, for an image denoiser, the dataset)."""
    c = config
    images = DENOISERS.get(c.denoiser).images
    return (
        *(getattr(c, f) for f in PACK_FIELDS),
        c.eval_epochs,
        c.n_train,
        c.n_generate_points,
        c.dataset if images else None,
    )


class _Members:
    """One configuration's share (members lo..hi-1) of the packed ensemble, with the Ensemble interface the runner
    uses: device, model (named_parameters of its members), train_epoch, generate, state_dict, load_state_dict."""

    def __init__(self, pack: _Pack, config: ExperimentConfig, lo: int, hi: int):
        self.pack, self.config, self.lo, self.hi = pack, config, lo, hi
        self.repeats = list(range(config.n_repeats))
        self.device = pack.device
        self.model = self
        self.loaded: dict | None = None

    def named_parameters(self):
        for name, p in self.pack.ensemble.model.named_parameters():
            yield name, p[self.lo : self.hi]

    def train_epoch(self, epoch: int) -> np.ndarray:
        return self.pack.train_epoch(epoch)[self.lo : self.hi]

    def generate(self, epoch: int) -> np.ndarray:
        return self.pack.generate(epoch)[self.lo : self.hi]

    def state_dict(self) -> dict:
        return member_state(self.pack.ensemble.state_dict(), self.lo, self.hi, self.repeats)

    def load_state_dict(self, state: dict) -> None:
        if list(state["repeats"]) != self.repeats:
            raise ValueError(f"checkpoint holds repeats {state['repeats']}, this configuration has {self.repeats}")
        self.loaded = state  # loaded into the packed ensemble once every configuration has resumed


class _Pack:
    """The packed ensemble and its once-per-epoch training and generation, shared by the configurations' _Members."""

    def __init__(self, configs: Sequence[ExperimentConfig]):
        self.configs = list(configs)
        self.members: list[_Members] = []
        self.data: list[np.ndarray] = []
        self.device = None
        self.ensemble: Ensemble | None = None
        self._trained: tuple[int, np.ndarray] | None = None
        self._generated: tuple[int, np.ndarray] | None = None
        self.train_s = self.generate_s = 0.0

    def add(self, config: ExperimentConfig, data: RepeatData) -> _Members:
        lo = sum(m.hi - m.lo for m in self.members)
        self.device = resolve_device(config.device)
        m = _Members(self, config, lo, lo + config.n_repeats)
        self.members.append(m)
        self.data.append(data.train_points)
        return m

    def build(self) -> None:
        repeats = [r for m in self.members for r in m.repeats]
        seeds = [m.config.seed for m in self.members for _ in m.repeats]
        self.ensemble = Ensemble(self.members[0].config, np.concatenate(self.data), repeats=repeats, seeds=seeds)

    def load_checkpoints(self) -> None:
        states = [m.loaded for m in self.members]
        if all(s is None for s in states):
            return
        repeats = [r for m in self.members for r in m.repeats]
        self.ensemble.load_state_dict(stack_states(states, repeats))

    def train_epoch(self, epoch: int) -> np.ndarray:
        if self._trained is None or self._trained[0] != epoch:
            t0 = time.perf_counter()
            self._trained = (epoch, self.ensemble.train_epoch(epoch))
            self.train_s += time.perf_counter() - t0
        return self._trained[1]

    def generate(self, epoch: int) -> np.ndarray:
        if self._generated is None or self._generated[0] != epoch:
            t0 = time.perf_counter()
            self._generated = (epoch, self.ensemble.generate(epoch))
            self.generate_s += time.perf_counter() - t0
        return self._generated[1]


def _check(configs: Sequence[ExperimentConfig]) -> None:
    if not configs:
        raise ValueError("configs: got none; allowed: one or more ExperimentConfig that share pack_key")
    for c in configs:
        if not isinstance(c, ExperimentConfig):
            raise TypeError(f"config = {c!r} is invalid; allowed: an ExperimentConfig")
    names = [c.run_name() for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"configs: run names repeat ({names}); allowed: distinct configurations")
    keys = {pack_key(c) for c in configs}
    if len(keys) > 1:
        differ = [
            f
            for i, f in enumerate([*PACK_FIELDS, "eval_epochs", "n_train", "n_generate_points", "dataset (images)"])
            if len({k[i] for k in keys}) > 1
        ]
        raise ValueError(f"configs cannot be packed: they differ in {differ}; allowed: configurations equal in these")


def run_packed(configs: Sequence[ExperimentConfig], root: Path | str | None = None, progress: bool = False) -> list:
    """Run `configs` as one packed ensemble; returns their Results in order (each as run_experiment would).

    Every configuration's results go to ``root/config.run_name()``, written exactly as by
    `run_experiment(config, root)`; each manifest adds ``packed``: the run names packed together, the
    members, and the packed training and generation seconds (the manifest's train_s and generate_s are
    this configuration's share of them, in proportion to its members).
    """
    configs = list(configs)
    _check(configs)
    paths = [run_dir(c, root) for c in configs]
    with contextlib.ExitStack() as stack:
        for p in paths:
            stack.enter_context(run_lock(p.parent, p.name))
        return _run_packed_locked(configs, paths, progress)


def _run_packed_locked(configs: list[ExperimentConfig], paths: list[Path], progress: bool) -> list:
    done: dict[int, Results] = {}
    runs: dict[int, Session] = {}
    for i, (c, path) in enumerate(zip(configs, paths)):
        results = prepare_run(c, path)
        if results.complete:
            done[i] = results
        else:
            runs[i] = Session(c, path, results, [])
    if runs:
        pack = _Pack([configs[i] for i in runs])
        for i, run in runs.items():
            run.set_up(lambda data, c=configs[i]: pack.add(c, data))
        pack.build()
        for run in runs.values():
            run.resume()
        starts = {run.start for run in runs.values()}
        if len(starts) > 1:  # checkpoints at different epochs: each configuration goes on alone
            for i in runs:
                done[i] = run_locked(configs[i], paths[i], progress, [])
        else:
            pack.load_checkpoints()
            for run in runs.values():
                run.replay_callbacks()
            stopped = _loop(pack, list(runs.values()), starts.pop(), progress)
            for i, run in runs.items():
                done[i] = run.finish(stopped)
    return [done[i] for i in range(len(configs))]


def _loop(pack: _Pack, runs: list[Session], start: int, progress: bool) -> None:
    """The runner's loop (memnb.experiment.session.Session.loop, without callbacks) in lockstep for every run."""
    from tqdm.auto import tqdm

    c = runs[0].config
    total = sum(m.hi - m.lo for m in pack.members)
    bar = tqdm(total=c.epochs + 1, initial=start, disable=not progress, desc=f"packed x{total} members", unit="epoch")
    t_run = last_checkpoint = time.perf_counter()
    for run in runs:
        run.t_run = t_run
    for epoch in range(start, c.epochs + 1):
        for run in runs:
            if epoch in run.eval_epochs and epoch not in run.evaluated:
                run.evaluate(epoch)
        if epoch == c.epochs:
            break
        for run in runs:
            run.train(epoch)
        if checkpoint_due(epoch + 1, runs[0].eval_epochs, c.epochs, time.perf_counter() - last_checkpoint):
            for run in runs:
                run.checkpoint(epoch + 1)
            last_checkpoint = time.perf_counter()
        bar.update(1)
    bar.update(1)
    bar.close()
    names = [run.path.name for run in runs]
    for run, m in zip(runs, pack.members):
        share = (m.hi - m.lo) / total
        run.timings["train_s"] = pack.train_s * share
        run.timings["generate_s"] = pack.generate_s * share
        run.manifest_extra = {
            "packed": {
                "runs": names,
                "members": total,
                "train_s": round(pack.train_s, 3),
                "generate_s": round(pack.generate_s, 3),
            }
        }
    return None
