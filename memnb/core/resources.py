"""What a run of a config will need, in memory and on disk, before any of it is spent: `estimate` and `check_resources`.

`ExperimentConfig(n_base=10**12)` is a valid config, but its first run would be killed by the kernel for memory
hours (or an allocation) later; `check_resources(config, folder)` refuses it up front, naming the field most
responsible and the estimate in GiB. The estimate is rough (a factor of 2 either way): it counts the arrays memnb
allocates, from the config's sizes, not what the allocator and the libraries add. Memory is counted as host memory
(on a GPU part of it lives in device memory instead, so it is an upper bound there).

Symbols (all per config, read without building anything): R repeats, N = n_train training points per repeat,
m = n_test_points, n = n_generate_points, n0 = n_null_points, d = dim, P parameters per ensemble member (from the
denoiser, hidden sizes and embedding size), A activations per point of one forward pass, T = num_timesteps,
B = batch_size, E = epochs, V evaluated epochs, K50 = min(50, N) neighbours of the relative criterion, C criteria,
G groups + 1 ("all"), K thresholds of the table. Bytes: float64 8, float32 4, float16 2, int64 8, int32 4.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .config import ExperimentConfig
from .registry import CRITERIA
from .validate import fail, shown

__all__ = ["Estimate", "estimate", "check_resources", "available_memory", "free_disk", "parameter_count", "GiB"]

GiB = 1 << 30
MEMORY_ENV = "MEMNB_MEMORY_BYTES"  # bytes of memory check_resources may assume (tests; a share of a machine)
PROCESS_BYTES = 512 << 20  # Python with numpy, scipy, pandas and torch imported, before any array
NPZ_ENTRY_BYTES = 250  # one array in an .npz: zip headers and the .npy header
PARQUET_BYTES = 5 << 10  # one parquet file's footer and schema
FILE_RECORD_BYTES = 150  # one file's size and checksum in manifest.json
RELATIVE_NEIGHBOURS = 50  # memnb.metric.neighbors.RELATIVE_NEIGHBOURS (core may not import metric)
SAMPLE_CHUNK = 1024  # memnb.models.sampling.CHUNK: points per member through one forward pass when sampling
TORCH_SEARCH_BYTES = 2 * (256 << 20)  # neighbors="torch": its two chunk matrices (memnb.metric.neighbors)
EPOCH_ARRAY_COUNT = 14  # arrays of one epoch file: samples, 5 neighbour fields x 2 sources, summary, zu, zu_n


@dataclass(frozen=True)
class Estimate:
    """Peak memory (bytes) of a run and the disk (bytes) of its finished folder, each with its terms.

    memory_terms, disk_terms: (name, bytes) pairs, largest first; memory_bytes is not their sum but the persistent
    terms plus the largest of the phases (training, evaluation, the final tables), which do not overlap.
    """

    memory_bytes: int
    disk_bytes: int
    memory_terms: tuple[tuple[str, int], ...]
    disk_terms: tuple[tuple[str, int], ...]

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GiB

    @property
    def disk_gib(self) -> float:
        return self.disk_bytes / GiB


def parameter_count(config: ExperimentConfig) -> tuple[int, int]:
    """(P, A): parameters of one member of the config's denoiser and activations per point of one forward pass.

    The built-in denoisers' formulas (memnb.models; tests/test_resources.py checks P against the built models):
    tiny_diffusion (3E + 1) H + L (H + 1) H + (H + 1) 2 and A = 3E + (L + 2) H; residual_mlp
    (E + 1) W + (d + 1) W + 2 L (W + 1) W + (W + 1) d and A = E + (2L + 2) W + 2d; unet (C channels, two
    resolutions) about 130 C^2 + 4 C E + 2 E^2 and A = 30 C d (some 30 feature maps of C channels at full resolution).
    A denoiser of the user's is sized as the residual MLP."""
    h, layers, e, d = config.hidden_size, config.hidden_layers, config.embedding_size, config.dim
    if config.denoiser == "tiny_diffusion":
        return (3 * e + 1) * h + layers * (h + 1) * h + (h + 1) * 2, 3 * e + (layers + 2) * h
    if config.denoiser == "unet":
        return _unet_parameters(h, e), 30 * h * d
    return (e + 1) * h + (d + 1) * h + 2 * layers * (h + 1) * h + (h + 1) * d, e + (2 * layers + 2) * h + 2 * d


def _unet_parameters(c: int, e: int) -> int:
    """memnb.models.unet's count: its docstring's layers (3x3 convs with bias, GroupNorm affine, time Linear)."""

    def conv(a: int, b: int, k: int = 3) -> int:
        return (a * k * k + 1) * b

    def res(a: int, b: int) -> int:
        return 2 * a + conv(a, b) + (e + 1) * b + 2 * b + conv(b, b) + (conv(a, b, 1) if a != b else 0)

    return (
        (2 * (e + 1) * e + conv(1, c) + res(c, c) + conv(c, c) + res(c, 2 * c) + conv(2 * c, c) + res(2 * c, c))
        + 2 * c
        + conv(c, 1)
    )


def evaluated_epochs(config: ExperimentConfig) -> int:
    """V, the number of evaluated epochs, without listing them (config.eval_epochs of epochs = 10**9 is a list of a
    billion): linear ceil(E / eval_every) + 1; log exactly for n_evals <= 10**6, else at most min(n_evals, E) + 1."""
    e = config.epochs
    if config.eval_schedule == "log":
        if e == 0:
            return 1
        if config.n_evals <= 10**6:
            return len(config.eval_epochs)
        return min(config.n_evals, e) + 1
    return -(-e // config.eval_every) + 1


def _thresholds(config: ExperimentConfig) -> int:
    """K: the table's thresholds, the grid plus each criterion's own (memnb.experiment.tabulate.table_thresholds)."""
    return len({float(k) for k in config.thresholds} | {float(c.own_threshold(config)) for c in CRITERIA})


def estimate(config: ExperimentConfig) -> Estimate:
    """The memory and disk a run of `config` needs (bytes), from its sizes alone; pure, no array is built.

    Memory, persistent through the run:
      process        PROCESS_BYTES (the interpreter and its libraries)
      data           R [N (32 d + 64) + m (24 d + 32)]: float64 training points in their set, distinct locations,
                     k-d tree and the stacked copy for data.npz (4 x 8d), int64 groups, locations, first points,
                     tree index, row hash and its order (64); test points likewise (3 x 8d, 32)
      model          28 R P: float32 parameters, gradients, AdamW's two moments (16 R P), and the checkpoint's
                     12 R P while it is written or read
      train data     4 R N d: the training points on the ensemble's device (float32)
      loss history   48 E R: the (E, R) float32 history and its concatenated copy (8), loss.parquet's frame (40)
      schedule       100 V: the evaluated epochs as Python ints in a list, a tuple and a set
    Memory, one phase at a time (the largest counts):
      training       R N (16 + 8 d) + 12 R B A: one epoch's permutation and timesteps (int64), noise and gathered
                     points (float32), and the batch's activations (forward, saved, gradient: 3 x 4 bytes)
      evaluation     sampling 4 R n d (2T + 3) + 2 R n d: the up-front noise (T, R, n, d) float32 and its stacking
                     copy, x_T, the output and its host copy, the float16 copy; 8 R SAMPLE_CHUNK A of activations;
                     8 R n0 d null draws (float64); 40 R (n + n0) neighbour fields (20 bytes a point, per repeat and
                     stacked); the search of one repeat 16 K50 max(n, n0, m) (float64 distances and int64 indices of
                     K50 neighbours), + TORCH_SEARCH_BYTES for neighbors="torch"
      tables         300 R V C G K: the table's rows (11 columns, 8 bytes, sorted and concatenated: 3 copies) and
                     the epoch summaries they come from
    Disk of the finished run:
      data.npz       R (8 N d + N + 8 m d + 8 d + 8) + 5 NPZ_ENTRY_BYTES (float64 points, int8 groups, the cluster)
      epochs         V [R (2 n d + 20 n + 20 n0) + 8 R C 4 G K + 40 R G + 14 NPZ_ENTRY_BYTES]: float16 samples
                     (R, n, d); d1, d2, d_test, d_mean50 float32 and index int32 (R, n) for the generated and the
                     (R, n0) null draws; the summary (R, C, 2 sources, 2 values, G, K) float64; zu and zu_n
      checkpoint.pt  12 R P + 4 E R + 16 KiB: parameters and AdamW's moments, the loss history
      tables         table.parquet 20 R V C G K, zu.parquet 40 R V G, loss.parquet 12 E R (+ PARQUET_BYTES each);
                     config.json and manifest.json 4 KiB + FILE_RECORD_BYTES per epoch file
    """
    if not isinstance(config, ExperimentConfig):
        fail("config", shown(type(config).__name__), "an ExperimentConfig (a run memnb trains)")
    r, big_n, m, n, n0, d = (
        config.n_repeats,
        config.n_train,
        config.n_test_points,
        config.n_generate_points,
        config.n_null_points,
        config.dim,
    )
    p, a = parameter_count(config)
    t, b, e, v = config.num_timesteps, config.batch_size, config.epochs, evaluated_epochs(config)
    k50 = min(RELATIVE_NEIGHBOURS, big_n)
    c, g, k = len(CRITERIA), len(config.group_names) + 1, _thresholds(config)
    persistent = {
        "process": PROCESS_BYTES,
        "data": r * (big_n * (32 * d + 64) + m * (24 * d + 32)),
        "model": 28 * r * p,
        "train data": 4 * r * big_n * d,
        "loss history": 48 * e * r,
        "schedule": 100 * v,
    }
    search = 16 * k50 * max(n, n0, m) + (TORCH_SEARCH_BYTES if config.neighbors == "torch" else 0)
    phases = {
        "training": r * big_n * (16 + 8 * d) + 12 * r * b * a,
        "evaluation": 4 * r * n * d * (2 * t + 3)
        + 2 * r * n * d
        + 8 * r * min(SAMPLE_CHUNK, n) * a
        + 8 * r * n0 * d
        + 40 * r * (n + n0)
        + search,
        "tables": 300 * r * v * c * g * k,
    }
    phase = max(phases, key=phases.get)
    epoch_file = (
        r * (2 * n * d + 20 * n + 20 * n0) + 8 * r * c * 4 * g * k + 40 * r * g + EPOCH_ARRAY_COUNT * NPZ_ENTRY_BYTES
    )
    disk = {
        "data.npz": r * (8 * big_n * d + big_n + 8 * m * d + 8 * d + 8) + 5 * NPZ_ENTRY_BYTES,
        "epochs": v * epoch_file,
        "checkpoint.pt": 12 * r * p + 4 * e * r + (16 << 10),
        "tables": 20 * r * v * c * g * k
        + 40 * r * v * g
        + 12 * e * r
        + 3 * PARQUET_BYTES
        + (4 << 10)
        + FILE_RECORD_BYTES * v,
    }
    memory = {**persistent, phase: phases[phase]}
    return Estimate(
        memory_bytes=int(sum(memory.values())),
        disk_bytes=int(sum(disk.values())),
        memory_terms=_largest_first(memory),
        disk_terms=_largest_first(disk),
    )


def _largest_first(terms: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(((name, int(v)) for name, v in terms.items()), key=lambda kv: -kv[1]))


def available_memory() -> tuple[int, str]:
    """(bytes, where from): $MEMNB_MEMORY_BYTES when set (an integer > 0), else /proc/meminfo's MemAvailable, else
    os.sysconf's available pages."""
    text = os.environ.get(MEMORY_ENV)
    if text:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value <= 0:
            fail(f"${MEMORY_ENV}", text, "an integer number of bytes > 0, or unset (the machine's available memory)")
        return value, f"${MEMORY_ENV}"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable"
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available pages"


def free_disk(folder: Path | str) -> int:
    """Free bytes on the file system that holds `folder` (its nearest existing parent: the run is not made yet)."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _stored_bytes(folder: Path) -> int:
    """Bytes already in `folder` (a run resumed: its files are part of the estimate's disk)."""
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _responsible(config: ExperimentConfig, amount: str) -> tuple[str, Any] | None:
    """The field whose value, set back to its default, lowers the estimate's `amount` ("memory_bytes" or
    "disk_bytes") the most; None when no field's default lowers it (the default config itself is too big)."""
    best, best_bytes = None, getattr(estimate(config), amount)
    for f in fields(config):
        value = getattr(config, f.name)
        if value == f.default:
            continue
        try:
            trial = getattr(estimate(config.replace(**{f.name: f.default})), amount)
        except ValueError:  # the default does not fit the other fields (batch_size > n_train, ...)
            continue
        if trial < best_bytes:
            best, best_bytes = (f.name, value), trial
    return best


def _gib(nbytes: float) -> str:
    return f"{nbytes / GiB:.2g} GiB"


def check_resources(config: ExperimentConfig, folder: Path | str) -> Estimate:
    """The run's `estimate`, when it fits: memory in the machine's available memory (`available_memory`), disk in the
    free space where `folder` (the run's directory, made or not) lies, less what the folder already holds.

    Otherwise ValueError, before anything is written: "config field 'n_base' = 1000000000000 is invalid; allowed:
    a value whose run fits in memory: it needs about 2.9e+04 GiB, this machine has 23 GiB available (...)", naming
    the field whose default value would lower the estimate most, and the estimate's largest terms.
    """
    est = estimate(config)
    folder = Path(folder)
    have, source = available_memory()
    need_disk = est.disk_bytes - _stored_bytes(folder)
    free = free_disk(folder)
    for amount, need, limit, where, terms in (
        (
            "memory_bytes",
            est.memory_bytes,
            have,
            f"this machine has {_gib(have)} available ({source})",
            est.memory_terms,
        ),
        ("disk_bytes", need_disk, free, f"{folder} has {_gib(free)} free", est.disk_terms),
    ):
        if need <= limit:
            continue
        what = "memory" if amount == "memory_bytes" else "disk"
        largest = ", ".join(f"{name} {_gib(b)}" for name, b in terms[:3])
        allowed = (
            f"a value whose run fits in {what}: this config needs about {_gib(need)} of {what}, {where}; "
            f"largest terms: {largest} (memnb.core.resources.estimate)"
        )
        field = _responsible(config, amount)
        if field is None:
            fail("config", shown(config.run_name()), allowed.replace("a value whose run", "a config whose run"))
        fail(f"config field {field[0]!r}", field[1], allowed)
    return est
