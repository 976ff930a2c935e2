"""Tables-only copies of runs: what comes back from a machine that keeps the per-sample arrays.

A paper-protocol run stores gigabytes of per-epoch arrays; its tidy tables (``table.parquet``,
``zu.parquet``, ``loss.parquet``) and ``config.json`` are megabytes. `tables_only_copy` writes those into a new
run directory whose manifest says ``"tables_only": true`` (with the evaluated epochs, the machine it was made
on and the source manifest's timings); `pack` puts several such copies in one ``.tar.gz`` (split into pieces
``<archive>.partKK-of-NN`` below a size limit: ``cat`` them in order to get the archive), `unpack` puts them under
a runs folder here. There, `memnb.Results` opens them (tables, Z_U, loss, config) and `run_experiment` with the
same config returns them as they are, so the figure notebooks render them; what needs per-sample arrays
(`Results.rates_at`, `RateGrid`, image views, first copies) raises `TablesOnlyError` naming the machine, and the
explorer reads its rates from the table (`TableGrid`, the table's thresholds only).

`unpack` is all or nothing: the archive is decompressed and every run in it verified (sizes and SHA-256 against
its manifest) in a temporary folder beside the runs, and only then moved into place. A truncated or damaged
archive, or a missing piece, raises `CorruptArchiveError` naming the file and leaves the runs folder as it was.
A run already there is returned when it is the archive's copy, byte for byte; another run of that name (a full
run, other tables) is never replaced: `unpack` refuses, naming the folder (unpack into another root, or move it
away first).

    python -m memnb.experiment.archive pack outputs/runs/moons-* --out build/runs.tar.gz
    python -m memnb.experiment.archive unpack build/runs.tar.gz --root outputs/runs
"""

from __future__ import annotations

import argparse
import glob
import gzip
import io
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

from ..core.storage import TMP_SUFFIX, CorruptRunError, write_bytes_of, write_parquet
from ..core.validate import UsageError, check_int, fail, invalid
from .results import Results, TablesOnlyError
from .store import Manifest, is_run, records, runs_root, write_config, write_manifest
from .store.layout import CONFIG, LOSS, MANIFEST, TABLE, ZU

__all__ = [
    "tables_only_copy",
    "pack",
    "unpack",
    "piece_name",
    "CorruptArchiveError",
    "TablesOnlyError",
    "TABLE_FILES",
    "TIMING_KEYS",
    "MIN_PART_BYTES",
]

TABLE_FILES = (CONFIG, TABLE, ZU, LOSS, MANIFEST)  # what a copy holds
TIMING_KEYS = ("train_s", "generate_s", "metric_s", "wall_s_this_session", "device", "torch_version", "memnb_version")
MIN_PART_BYTES = 1024  # smaller pieces would be thousands of files for an archive of a few megabytes
_PIECE = re.compile(r"(?P<base>.+)\.part(?P<k>\d+)-of-(?P<n>\d+)")
_OLD_PIECE = re.compile(r"(?P<base>.+)\.part(?P<k>\d\d+)")  # memnb before 'of-NN' names: .part00, .part01, ...
RECOPY = "copy it again from the machine that made it (or pack the runs again there)"


class CorruptArchiveError(CorruptRunError, ValueError):
    """An archive that cannot be unpacked (truncated, damaged, a piece missing, not pack()'s); nothing was
    extracted. Both a CorruptRunError (its runs cannot be trusted) and a ValueError (the `archive` argument)."""


def tables_only_copy(run: Path | str, dest: Path | str, made_on: str | None = None) -> Path:
    """A tables-only copy of run directory `run` at ``dest/<run's name>``; its path.

    The tables are those `Results` gives (a partial run's assembled from its epoch files); the copy's manifest
    records their sizes and checksums, ``complete`` as the run's, ``evaluated_epochs``, ``made_on`` (default:
    this machine's name and processor) and the run's timings (TIMING_KEYS).
    """
    res = Results(run)
    m = res.manifest
    out = Path(dest) / res.path.name
    if out.exists():
        fail("dest", str(dest), f"a folder without {res.path.name} (it exists)")
    out.mkdir(parents=True)
    write_config(out, res.config if res.kind != "monitor" else res.config.with_observed(()))
    write_parquet(out / TABLE, res.table())
    write_parquet(out / ZU, res.zu())
    write_parquet(out / LOSS, res.loss())
    tables_only = {
        "tables_only": True,
        "evaluated_epochs": res.evaluated_epochs,
        "made_on": made_on or f"{platform.node()} ({platform.processor() or platform.machine()})",
        "source": {k: m[k] for k in TIMING_KEYS if k in m},
    }
    manifest = Manifest(
        complete=res.complete,
        fingerprint=m.get("fingerprint", res.config.fingerprint()),
        files=records(out),
        stopped_at_epoch=m.stopped_at_epoch,
        tables_only=tables_only,
        monitoring={k: v for k, v in m.monitoring.items() if k == "kind"},
    )
    write_manifest(out, manifest)
    return out


def piece_name(target: Path | str, k: int, n: int) -> Path:
    """Piece `k` (1..n) of `n` of the archive `target`: ``<target>.partKK-of-NN`` (zero-padded, so that sorting
    the names sorts the pieces)."""
    target, width = Path(target), max(2, len(str(n)))
    return target.with_name(f"{target.name}.part{k:0{width}d}-of-{n:0{width}d}")


def _pieces_of(target: Path) -> list[Path]:
    """The pieces (either naming) of archives at `target` that are there."""
    out = []
    for p in target.parent.glob(glob.escape(target.name) + ".part*"):
        m = _PIECE.fullmatch(p.name) or _OLD_PIECE.fullmatch(p.name)
        if m and m["base"] == target.name and p.is_file():
            out.append(p)
    return sorted(out)


def pack(runs, target: Path | str, part_bytes: int | None = None, made_on: str | None = None) -> list[Path]:
    """One ``.tar.gz`` at `target` of tables-only copies of `runs` (a list of run directories, distinct names);
    split into pieces ``<target>.partKK-of-NN`` (see `piece_name`) of at most `part_bytes` (an integer >=
    MIN_PART_BYTES) when larger (None: never). Returns the files written.

    Every file is written atomically, and an archive packed before at `target` (the whole file or its pieces) is
    removed only once the new one is complete.
    """
    if isinstance(runs, (str, os.PathLike)) or not hasattr(runs, "__iter__"):
        fail("runs", runs, "a list of run directories (one run: [path])")
    runs = [Path(r) for r in runs]
    for r in runs:
        if not is_run(r):
            fail("runs", str(r), f"run directories (this one has no {CONFIG})")
    names = [r.name for r in runs]
    if len(set(names)) < len(names):
        fail("runs", [str(r) for r in runs], "runs of distinct folder names (each is one folder of the archive)")
    if part_bytes is not None:
        part_bytes = check_int("part_bytes", part_bytes, lo=MIN_PART_BYTES)
    if made_on is not None and (not isinstance(made_on, str) or not made_on):
        fail("made_on", made_on, "None (this machine) or a non-empty name")
    target = Path(target)
    if target.is_dir():
        fail("target", str(target), "a file name (it is a folder)")
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        copies = [tables_only_copy(r, tmp, made_on) for r in runs]
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for c in copies:
                tar.add(c, arcname=c.name)
    data = buf.getvalue()
    if part_bytes is None or len(data) <= part_bytes:
        files = {target: data}
    else:
        n = -(-len(data) // part_bytes)
        files = {piece_name(target, k, n): data[(k - 1) * part_bytes : k * part_bytes] for k in range(1, n + 1)}
    before = [p for p in (target, *_pieces_of(target)) if p.is_file() and p not in files]
    written: list[Path] = []
    try:
        for path, chunk in files.items():
            write_bytes_of(path, lambda chunk=chunk: chunk)
            written.append(path)
    except BaseException:
        for path in written:  # an incomplete set of pieces is no archive; the runs are where they were
            path.unlink(missing_ok=True)
        raise
    for p in before:
        p.unlink()
    return written


def _archive_files(archive) -> tuple[str, list[Path]]:
    """How to name the archive in messages, and its files in order (one, or its pieces); errors before reading."""
    if not isinstance(archive, (str, os.PathLike)):
        fail("archive", archive, "the path of a .tar.gz of pack() or of one of its pieces")
    path = Path(archive)
    if path.is_dir():
        fail("archive", str(path), "a .tar.gz of pack() or one of its pieces (it is a folder)")
    m = _PIECE.fullmatch(path.name)
    if m is None and not path.exists():
        found = [p for p in _pieces_of(path) if _PIECE.fullmatch(p.name)]
        totals = sorted({_PIECE.fullmatch(p.name)["n"] for p in found})
        if len(totals) > 1:
            fail("archive", str(path), f"one archive (its pieces of {len(totals)} packs are there: pass one piece)")
        if not found:
            fail(
                "archive", str(path), "an existing .tar.gz of pack() or one of its .partKK-of-NN pieces (no such file)"
            )
        path, m = found[0], _PIECE.fullmatch(found[0].name)
    if m is not None:
        base, n = path.with_name(m["base"]), int(m["n"])
        pieces = [piece_name(base, k, n) for k in range(1, n + 1)]
        missing = [k for k, p in enumerate(pieces, 1) if not p.is_file()]
        if missing:
            raise CorruptArchiveError(
                f"{base} is incomplete: piece {', '.join(map(str, missing))} of {n} "
                f"({', '.join(pieces[k - 1].name for k in missing)}) missing beside {pieces[0].parent}; "
                f"copy the missing pieces again from the machine that made the archive"
            )
        return f"{base} ({n} pieces)", pieces
    old = _OLD_PIECE.fullmatch(path.name)
    if old is not None and path.is_file():
        base = path.with_name(old["base"])
        numbered = {int(_OLD_PIECE.fullmatch(p.name)["k"]): p for p in _pieces_of(base) if _OLD_PIECE.fullmatch(p.name)}
        pieces = [numbered[k] for k in sorted(numbered)]
        numbers = sorted(numbered)
        gaps = sorted(set(range(max(numbers) + 1)) - set(numbers))
        if gaps:
            raise CorruptArchiveError(
                f"{base} is incomplete: piece(s) {', '.join(f'.part{k:02d}' for k in gaps)} missing (found "
                f"{', '.join(p.name for p in pieces)}); copy the missing pieces again from the machine that made it"
            )
        return f"{base} ({len(pieces)} pieces .part00...)", pieces
    if not path.is_file():
        fail("archive", str(path), "an existing .tar.gz of pack() or one of its pieces (no such file)")
    return str(path), [path]


def _tar_bytes(what: str, data: bytes, pieces: int) -> bytes:
    """The decompressed archive (gzip checks its CRC and length); CorruptArchiveError saying what is wrong."""
    cut = " (if it came in pieces, the last may be missing)" if pieces == 1 else " (a piece may be cut short)"
    if not data:
        raise CorruptArchiveError(f"{what} is empty (0 bytes): truncated{cut}; {RECOPY}")
    try:
        return gzip.decompress(data)
    except EOFError:
        raise CorruptArchiveError(
            f"{what} is truncated: its {len(data)} bytes end before its compressed stream does{cut}; {RECOPY}"
        ) from None
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise CorruptArchiveError(f"{what} is damaged ({type(e).__name__}: {e}); {RECOPY}") from None


def _same_folder(a: Path, b: Path) -> str | None:
    """None when folders `a` and `b` hold the same files, byte for byte; else how `b` differs from `a`."""
    files_a = {str(p.relative_to(a)) for p in a.rglob("*") if p.is_file()}
    files_b = {str(p.relative_to(b)) for p in b.rglob("*") if p.is_file()}

    def listed(names) -> str:
        names = sorted(names)
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    if files_b - files_a:
        return f"it also holds {listed(files_b - files_a)}"
    if files_a - files_b:
        return f"it lacks {listed(files_a - files_b)}"
    differ = [f for f in sorted(files_a) if (a / f).read_bytes() != (b / f).read_bytes()]
    return f"its {listed(differ)} differ{'s' if len(differ) == 1 else ''}" if differ else None


def unpack(archive: Path | str, root: Path | str | None = None) -> list[Path]:
    """The runs of `archive` under `root` (default: $MEMNB_RUNS, else outputs/runs, read at the call); their
    paths. `archive`: a .tar.gz of `pack`, one of its pieces (the others are read with it) or the name the pieces
    were made from. All or nothing (see the module's doc): CorruptArchiveError for a truncated or damaged archive
    or a missing piece; ValueError naming `root` when a run of the archive is there with other content.
    """
    what, files = _archive_files(archive)
    root = runs_root(root)
    if root.exists() and not root.is_dir():
        fail("root", str(root), "a folder for the runs (it is a file)")
    tar_bytes = _tar_bytes(what, b"".join(p.read_bytes() for p in files), len(files))
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            members = tar.getmembers()
    except tarfile.TarError as e:
        raise CorruptArchiveError(f"{what} is damaged (not a tar archive: {e}); {RECOPY}") from None
    for m in members:
        parts = Path(m.name).parts
        in_a_folder = len(parts) >= 2 or m.isdir()  # a run's files are inside its folder
        if m.name.startswith(("/", "..")) or ".." in parts or not (m.isfile() or m.isdir()) or not in_a_folder:
            fail("archive", what, f"run folders of pack() (it holds {m.name!r})")
    names = sorted({Path(m.name).parts[0] for m in members})
    made = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".unpack-", suffix=TMP_SUFFIX))
    try:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12 / 3.11.4
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            tar.extractall(staging, **safe)
        for name in names:
            _verify(staging, name, what)
        same = {name: (root / name).is_dir() and _same_folder(root / name, staging / name) is None for name in names}
        for name in names:
            there = root / name
            if not same[name] and there.exists() and (not there.is_dir() or any(there.iterdir())):
                raise _conflict(root, name, what, staging)
        for name in names:
            if not same[name]:
                try:
                    os.rename(staging / name, root / name)  # onto nothing or an empty folder
                except OSError:  # made there meanwhile (another unpack): fine when it is this copy
                    if _same_folder(root / name, staging / name) is not None:
                        raise _conflict(root, name, what, staging) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if made and not any(root.iterdir()):
            root.rmdir()
    return [root / name for name in names]


def _verify(staging: Path, name: str, what: str) -> None:
    """CorruptArchiveError unless `staging/name` is a run whose files are what its manifest records."""
    try:
        damaged = Results(staging / name, verify=False).damaged(checksums=True)
    except CorruptRunError as e:
        text = str(e).replace(str(staging) + os.sep, "").split("; ")[0]
        raise CorruptArchiveError(f"{what} is damaged: its {text}; {RECOPY}") from None
    for f, problem in damaged.items():
        raise CorruptArchiveError(f"{what} is damaged: its {name}/{f} {problem}; {RECOPY}")


def _conflict(root: Path, name: str, what: str, staging: Path) -> ValueError:
    why = _same_folder(staging / name, root / name) if (root / name).is_dir() else "it is a file"
    return invalid(
        "root",
        str(root),
        f"a runs folder without {name} or with the same copy of it: {root / name} holds another run than the one "
        f"in {what} ({why}); unpack with another root= or move {root / name} away first (it is never replaced)",
    )


_FLAGS = {"target": "--out", "part_bytes": "--part-bytes", "root": "--root"}


def _as_flags(message: str) -> str:
    """A message of pack/unpack in the command line's words: argument names (``root = ``, ``root=``) -> flags."""
    return re.sub(r"(?<![\w.-])(target|part_bytes|root)(?= = |=)=?", lambda m: _FLAGS[m[1]], message)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m memnb.experiment.archive", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="tables-only copies of runs in one .tar.gz")
    a.add_argument("runs", nargs="+")
    a.add_argument("--out", required=True)
    a.add_argument(
        "--part-bytes", type=int, default=None, help=f"split into pieces of at most this (>= {MIN_PART_BYTES})"
    )
    b = sub.add_parser("unpack", help="the runs of an archive under a runs folder")
    b.add_argument("archive")
    b.add_argument("--root", default=None, help="the runs folder (default: $MEMNB_RUNS, else outputs/runs)")
    args = p.parse_args(argv)
    try:
        if args.command == "pack":
            if args.part_bytes is not None:
                check_int("--part-bytes", args.part_bytes, lo=MIN_PART_BYTES)
            for f in pack(args.runs, args.out, args.part_bytes):
                print(f)
        else:
            for r in unpack(args.archive, args.root):
                print(r)
    except ValueError as e:  # CorruptArchiveError too
        raise UsageError(p.prog, _as_flags(str(e))) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
