"""Monitor: memnb's per-epoch protocol for a model memnb does not train (a diffusers U-Net, an EDM, anything that samples).

    monitor = memnb.Monitor(train, groups, test, null=held_out, root="outputs/runs", name="my-unet")
    for epoch in range(epochs):
        if epoch % 5 == 0:
            monitor.observe(epoch, lambda: pipeline.sample(len(train)))   # or an (n, d) / (R, n, d) array
        train_one_epoch()

Each `observe` searches the samples' neighbours among the training and test points (and the null points'),
tabulates every criterion at every threshold, computes Meehan et al.'s Z_U, and commits the epoch: one atomic
file holding its samples, distances, rates, Z_U and loss (memnb.experiment.store), so an observation costs the same
at epoch 400 as at epoch 10 and a kill loses at most the epoch in progress. `results()` writes the tables and the
manifest from the stored epochs. The run directory is `run_experiment`'s format, a `MonitorConfig` in
``config.json`` (written first), so every reader of memnb reads it. One process at a time writes a run (the
store's lock): two Monitors on one folder both keep what they observed.

Arrays: ``train`` (N, d) or, one training set per repeat (seed), (R, N, d); ``groups`` (N,) or (R, N): group
codes into ``labels`` or the labels themselves (memnb's inlier / outlier / duplicate, or any names of the
user's); ``test`` (m, d) or (R, m, d): held-out points of the training distribution; ``null`` (n0, d) or
(R, n0, d), or a callable of the epoch returning them (fresh draws per epoch): what a perfect generator would
produce, held out from the training data and never seen by the model (None: no null baseline; the curves
are then drawn without one, and say so). Samples: (n, d) or (R, n, d), numpy or torch on any device. Points
are vectors: flatten images first (``x.reshape(len(x), -1)``).

Bad input (a shape, NaN, a dimension or repeat count that does not match, an unknown label, a bad threshold)
raises ValueError naming the argument, the value and what is allowed, before anything is written. An epoch
already stored is not observed again (its sample function is not called) unless ``overwrite=True``. Reopened on
the same data, a monitor keeps every complete epoch, sets a damaged one aside (``.damaged/``: observe it again),
and rebuilds data.npz, the tables and the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..core.monitor_config import MonitorConfig
from ..core.storage import CorruptRunError, write_parquet
from ..core.validate import check_bool, check_int, fail
from .monitor_features import Embedding
from .monitor_inputs import (
    MAX_EPOCH,
    check_arguments,
    check_epoch,
    check_loss,
    check_observation,
    loss_row,
    points,
)
from .monitor_recovery import adopt_leftovers, config_again, recover
from .monitor_scores import check_test_groups, recomputed, score_epoch, score_summary, stored_part
from .monitor_search import PROGRESS_AFTER_S, SEARCH_MEMORY, Searches, progress_bar, say_once
from .results import TABLE_KEYS, Results
from .samples import chosen_slots, keep_samples
from .store import (
    Manifest,
    read_config,
    read_epoch,
    read_scores,
    records,
    run_lock,
    runs_root,
    stored_epochs,
    write_config,
    write_data,
    write_epoch,
    write_manifest,
    write_scores,
)
from .store.layout import CONFIG, EPOCHS, LOSS, SCORES, TABLE, ZU, epoch_file, score_file
from .tabulate import at_own_thresholds, data_copying, summarize, summary_rows

__all__ = ["Monitor", "MAX_EPOCH"]


class Monitor:
    """Per-epoch memorization of any model's samples, stored as a memnb run (see the module docstring).

    train, groups, test, null: the arrays of the module docstring; root: the runs folder (default $MEMNB_RUNS
    or outputs/runs); name: the run's folder (default ``monitor-<model>-<data hash>``); criteria: {criterion:
    its own threshold k} (defaults: memnb's, paper 1.5, train_only 3, relative 10 = 1/alpha); thresholds: the
    grid the table is tabulated at (default memnb's); labels: the group names when `groups` holds codes;
    model, dataset: names for the figures (a registered dataset's name, e.g. "digits", also gives the image
    views its image shape; else pass `image_shape`); neighbors: kdtree | faiss | torch | auto (k-d tree for
    d <= 12, FAISS above); repeats: R when `train` is one (N, d) set shared by R seeds (default: read from the
    first samples); verify: on reopening, read every stored epoch file in full (a damaged one is set aside),
    not only the arrays the tables need; detectors: generation-free membership scores to compute when `observe`
    gets `eps` (names in memnb.core.registry.DETECTORS; memnb.experiment.monitor_scores), test_groups: the test
    points' groups for their per-group null (default: each one's nearest training point's); progress: a progress bar for an observation that takes over a few seconds;
    store_samples: "all" (float16), "none", or k (a fixed subsample of k slots per epoch; memnb.experiment.samples);
    features: a callable mapping (n, d) points to (n, f) features, the space every point is compared in
    (memnb.experiment.monitor_features), named `features_name` in the config; device: where the torch search runs
    (neighbors="torch"; "auto": the GPU when there is one); search_memory: bytes, the bound on one chunk of the
    search's working memory (at least 1 MiB).
    """

    def __init__(
        self,
        train,
        groups,
        test,
        root: Path | str | None = None,
        name: str | None = None,
        null=None,
        criteria: Mapping[str, float] | None = None,
        thresholds: Sequence[float] | None = None,
        *,
        labels: Sequence[str] | None = None,
        model: str = "model",
        dataset: str = "custom",
        image_shape: Sequence[int] | None = None,
        neighbors: str = "auto",
        repeats: int | None = None,
        verify: bool = False,
        progress: bool = True,
        store_samples: str | int = "all",
        features=None,
        features_name: str | None = None,
        device: str = "auto",
        search_memory: int = SEARCH_MEMORY,
        detectors: Sequence[str] = (),
        test_groups=None,
    ):
        given = check_arguments(
            train,
            groups,
            test,
            name,
            null,
            criteria,
            thresholds,
            labels,
            model,
            dataset,
            image_shape,
            neighbors,
            repeats,
        )
        self.dim, self.labels, self.n_repeats, self.null_fn = given.dim, given.labels, given.n_repeats, given.null_fn
        self._train, self._codes, self._test, self._null_points = (
            given.train,
            given.codes,
            given.test,
            given.null_points,
        )
        self._embedding = Embedding(features, features_name)
        # the points as searched: themselves, or their features (computed once per Monitor)
        self._train_f = self._embedding.of_training(self._train)
        self._template = {**given.template, "store_samples": store_samples, **self._embedding.config_fields()}
        self._template["detectors"] = () if detectors is None else detectors
        MonitorConfig(n_repeats=1, n_generate_points=1, **self._template)  # store_samples, detectors checked first
        self._test_groups = check_test_groups(test_groups, self.labels, self._test)
        self.device = device
        self.search_memory = check_int("search_memory", search_memory, 2**20)
        self.root = runs_root(root)
        self.path = self.root / given.name
        name = given.name
        self.config: MonitorConfig | None = None
        self._searches = None
        self.setup_s: float | None = None  # seconds of the search's one-time set-up (None: not set up yet)
        self._observe_s = 0.0  # seconds spent observing in this session (added to the manifest's observe_s)
        self._seconds = {"sampling": 0.0, "memnb": 0.0}  # this session's: the sample functions', memnb's own
        self.verify, self.progress = check_bool("verify", verify), check_bool("progress", progress)
        with run_lock(self.root, name):
            if (self.path / CONFIG).exists():
                self._reopen()
            else:
                adopt_leftovers(self)

    # -- the run on disk -------------------------------------------------------------------------
    def _reopen(self) -> None:
        """Check that the stored run is this data's; keep its complete epochs; rebuild what is damaged."""
        try:
            stored = read_config(self.path)
        except CorruptRunError as e:
            if not config_again(self):
                raise ValueError(f"name = {self.path.name!r}: {e}") from None
            stored = read_config(self.path)
        if stored.kind != "monitor":
            fail("name", self.path.name, f"a new folder or a monitored run's ({self.path} is a run of run_experiment)")
        theirs = stored.to_dict()
        diff = {
            k: (theirs.get(k), v)
            for k, v in MonitorConfig(n_repeats=0, n_generate_points=0, **self._template).to_dict().items()
            if k not in ("n_repeats", "n_generate_points", "n_null_points") and theirs.get(k) != v
        }
        if self.n_repeats is not None and stored.n_repeats != self.n_repeats:
            diff["n_repeats"] = (stored.n_repeats, self.n_repeats)
        if diff:
            raise ValueError(
                f"{self.path} holds a monitored run of other data or settings (stored vs given: {diff}); "
                "pass another name= or delete it"
            )
        self.config = stored
        self.n_repeats = stored.n_repeats
        recover(self)

    def _start(self, n_repeats: int, n_generate: int, n_null: int | None) -> None:
        """The first observation fixes R and n: write config.json (first) and data.npz."""
        self.n_repeats = n_repeats
        template = dict(self._template)
        if n_null is not None and self.null_fn is not None:
            template["n_null_points"] = n_null
        self.config = MonitorConfig(n_repeats=n_repeats, n_generate_points=n_generate, **template)
        self.path.mkdir(parents=True, exist_ok=True)
        write_config(self.path, self.config)
        write_data(self.path, self._data_arrays())
        self._previous_observe_s = 0.0

    def _data_arrays(self) -> dict[str, np.ndarray]:
        """The given arrays, each stored once: (1, ...) when shared by every repeat (readers broadcast it)."""
        null = {} if self._null_points is None else {"null_points": self._null_points}
        held = {} if self._test_groups is None else {"test_groups": self._test_groups}
        return {"train_points": self._train, "groups": self._codes, "test_points": self._test, **null, **held}

    def _set_up_search(self) -> None:
        """The one-time set-up, once per Monitor: the training points hashed and de-duplicated, the indexes built,
        the test points' own neighbours searched (Z_U); said in one line when it takes over a few seconds."""
        t0, emb = time.perf_counter(), self._embedding
        self._searches = Searches(self._train_f, emb.of(self._test, "test"), self._codes, self.config, self.device,
                                  self.search_memory)  # fmt: skip
        self._fixed_null: dict | None = None  # the fixed null's neighbours, once searched
        self._slots = chosen_slots(self.config.store_samples, self.config.n_generate_points, self.config.data_sha256)
        self.setup_s = time.perf_counter() - t0
        if self.progress and self.setup_s > PROGRESS_AFTER_S:
            say_once(self.setup_s, self._searches, self.config)

    def _consolidate(self) -> None:
        """table.parquet, zu.parquet, loss.parquet and the manifest, from the stored epoch files (the caller holds
        the lock): what `results()` returns, and what reopening rebuilds."""
        res = Results(self.path, verify=False)
        write_parquet(self.path / TABLE, res.assemble_table())
        write_parquet(self.path / ZU, res.assemble_zu())
        write_parquet(self.path / LOSS, res.loss())
        files = {n: rec for n, rec in records(self.path).items() if n.split("/")[0] not in (EPOCHS, SCORES)}
        self._previous_observe_s, self._observe_s = self._previous_observe_s + self._observe_s, 0.0
        monitoring = {"kind": "monitor", "observed_epochs": res.evaluated_epochs}
        monitoring["observe_s"] = round(self._previous_observe_s, 3)
        manifest = Manifest(complete=True, fingerprint=self.config.fingerprint(), files=files, monitoring=monitoring)
        write_manifest(self.path, manifest.replace(training={"memnb_version": __version__}))

    # -- observing ---------------------------------------------------------------------------------
    @property
    def epochs(self) -> list[int]:
        """The observed epochs, in order (the epoch files stored, by any process)."""
        return stored_epochs(self.path) if self.config is not None else []

    def results(self) -> Results:
        """The run as `memnb.Results` (every view, statistic and the verdict read it); writes its tables first."""
        if self.config is None:
            raise ValueError(f"{self.path}: nothing observed yet; call observe(epoch, samples) first")
        with run_lock(self.root, self.path.name):
            self._consolidate()
        return Results(self.path)

    def _stored_summary(self, epoch: int) -> pd.DataFrame | None:
        """This epoch's summary when its file is stored and sound (None: observe it)."""
        try:
            arrays = read_epoch(self.path, epoch, keys=TABLE_KEYS)
        except CorruptRunError:
            return None
        return self._epoch_summary(epoch, arrays["summary"])

    def observe(
        self, epoch: int, samples=None, *, eps=None, alphas_cumprod=None, loss=None, overwrite: bool = False
    ) -> pd.DataFrame:
        """Search, tabulate and commit the samples drawn at `epoch`; this epoch's summary.

        samples: (n, d) or (R, n, d) array (numpy or torch, any device), or a callable returning one (not called
        when the epoch is already stored and overwrite is False). eps, alphas_cumprod: the model's noise
        prediction eps(x (n, d), t (n,)) -> (n, d) and its schedule's (T,) ᾱ: the Monitor's `detectors` score every
        training and test point (memnb.experiment.monitor_scores), with the samples or, samples None, without
        drawing any (the summary is then the detectors' per group). loss: optional training loss at this epoch,
        a number or (R,) (committed with the epoch). Returns, per criterion at its own threshold and group, the
        memorized and copied shares and their null levels, means over repeats.
        """
        epoch, overwrite = check_epoch(epoch), check_bool("overwrite", overwrite)
        loss_values = check_loss(loss)
        if samples is None:
            if eps is None:
                fail("samples", None, "(n, d) or (R, n, d) samples or a callable drawing them, or eps= (scores alone)")
            return self._observe_scores(epoch, eps, alphas_cumprod, loss_values, loss, overwrite)
        if self.config is not None and epoch_file(self.path, epoch).exists() and not overwrite:
            stored = self._stored_summary(epoch)
            if stored is not None:
                return stored
        if callable(samples):
            t_sample = time.perf_counter()
            samples = samples()
            self._seconds["sampling"] += time.perf_counter() - t_sample
        null = None
        if self.null_fn is not None:
            null = points(self.null_fn(epoch), "null(epoch)", self.dim)
        elif self._null_points is not None:
            null = self._null_points
        x, null, losses = check_observation(samples, null, loss_values, loss, self.dim, self.n_repeats, self.config)
        R, n = x.shape[:2]
        # everything checked: from here on the run is written, one process at a time
        with run_lock(self.root, self.path.name):
            t0 = time.perf_counter()
            if self.config is None:
                if (self.path / CONFIG).exists():  # another process started it meanwhile: the same data, checked
                    self._reopen()
                else:
                    self._start(R, n, None if null is None else null.shape[1])
            if self.config.n_generate_points == 0:  # scored without samples so far: the first samples fix n
                self.config = self.config.replace(n_generate_points=n)
                write_config(self.path, self.config)
            if self._searches is None:
                self._set_up_search()
            fresh = null is not None and (self.null_fn is not None or self._fixed_null is None)
            sr, emb = self._searches, self._embedding
            bar = progress_bar(epoch, R * n + (null.shape[0] * null.shape[1] if fresh else 0), self.progress)
            query = sr.on_device(samples) if emb.fn is None else None  # a GPU tensor is searched where it lies
            query = emb.of(x, "samples") if query is None else query
            arrays = {**keep_samples(x, self._slots), **sr.search(query, bar=bar)}
            if null is not None:
                if self.null_fn is None:  # a fixed null: the same points every epoch, searched once per Monitor
                    self._fixed_null = self._fixed_null or sr.search(emb.of(null, "null"), "null_", bar)
                arrays.update(
                    self._fixed_null if self.null_fn is None else sr.search(emb.of(null, "null"), "null_", bar)
                )
            bar.close()
            arrays["summary"] = summarize(arrays, sr.groups, sr.locations, sr.thresholds, self.labels)
            arrays["zu"], arrays["zu_n"] = data_copying(arrays, sr.test_d, sr.test_group, sr.groups, self.labels)
            arrays["loss"] = losses
            if eps is not None:
                arrays.update(stored_part(score_epoch(self, eps, alphas_cumprod, R, self._held_groups())))
            write_epoch(self.path, epoch, arrays)  # the commit: samples, distances, rates, Z_U and loss together
            self._observe_s += time.perf_counter() - t0
            self._seconds["memnb"] += time.perf_counter() - t0
        return self._epoch_summary(epoch, arrays["summary"])

    def _held_groups(self) -> np.ndarray:
        """(R or 1, m) group codes of the test points: the given test_groups, else their nearest training point's."""
        if self._test_groups is not None:
            return self._test_groups
        if self._searches is None:
            self._set_up_search()
        return self._searches.test_group

    def _observe_scores(self, epoch, eps, alphas_cumprod, loss_values, loss, overwrite) -> pd.DataFrame:
        """`observe` with eps alone: the detectors' scores committed to scores/ (no samples drawn or searched)."""
        if self.config is not None and score_file(self.path, epoch).exists() and not overwrite:
            try:
                return score_summary(
                    recomputed(read_scores(self.path, epoch), self._codes, len(self.labels)), self.labels, epoch
                )
            except CorruptRunError:
                pass
        R = self.n_repeats or self._train.shape[0]
        losses = loss_row(loss_values, loss, R)
        if not self._template["detectors"]:
            fail("eps", "given", "a Monitor built with detectors=(...) (names in memnb.core.registry.DETECTORS)")
        with run_lock(self.root, self.path.name):
            t0 = time.perf_counter()
            if self.config is None:
                if (self.path / CONFIG).exists():
                    self._reopen()
                else:
                    self._start(R, 0, None)  # n: fixed by the first samples, if any
            out = score_epoch(self, eps, alphas_cumprod, R, self._held_groups())
            write_scores(self.path, epoch, {**stored_part(out), "loss": losses})
            self._observe_s += time.perf_counter() - t0
            self._seconds["memnb"] += time.perf_counter() - t0
        return score_summary(out, self.labels, epoch)

    @property
    def seconds(self) -> dict[str, float]:
        """Wall seconds of this Monitor's observations in this session: "sampling" (the sample functions it
        called) and "memnb" (the search, the tables and the commit, or the detectors' scoring with eps alone)."""
        return dict(self._seconds)

    def _epoch_summary(self, epoch: int, summary: np.ndarray) -> pd.DataFrame:
        c = self.config
        if self._searches is None:
            self._set_up_search()
        table = summary_rows(
            summary,
            epoch,
            list(range(c.n_repeats)),
            self._searches.thresholds,
            c.n_generate_points,
            self._searches.sizes,
            self.labels,
        )
        return at_own_thresholds(table, c).assign(epoch=epoch)

    def __repr__(self) -> str:
        return f"Monitor({str(self.path)!r}, {len(self.epochs)} epoch(s) observed, groups {list(self.labels)})"
