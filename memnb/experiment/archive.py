"""Tables-only copies of runs: what comes back from a machine that keeps the per-sample arrays.

A paper-protocol run stores gigabytes of per-epoch arrays; its tidy tables (``table.parquet``,
``zu.parquet``, ``loss.parquet``) and ``config.json`` are megabytes. `tables_only_copy` writes those into a new
run directory whose manifest says ``"tables_only": true`` (with the evaluated epochs, the machine it was made
on and the source manifest's timings); `pack` puts several such copies in one ``.tar.gz`` (split into pieces
below a size limit), `unpack` puts them under a runs folder here. There, `memnb.Results` opens them (tables,
Z_U, loss, config) and `run_experiment` with the same config returns them as they are, so the figure notebooks
render them; what needs per-sample arrays (`Results.rates_at`, `RateGrid`, image views, first copies) raises
`TablesOnlyError` naming the machine, and the explorer reads its rates from the table (`TableGrid`, the
table's thresholds only).

    python -m memnb.experiment.archive pack outputs/runs/moons-* --out build/runs.tar.gz
    python -m memnb.experiment.archive unpack build/runs.tar.gz --root outputs/runs
"""

from __future__ import annotations

import argparse
import io
import platform
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from ..core.storage import write_json, write_parquet
from .results import Results, TablesOnlyError
from .runner import records

__all__ = ["tables_only_copy", "pack", "unpack", "TablesOnlyError", "TABLE_FILES", "TIMING_KEYS"]

TABLE_FILES = ("config.json", "table.parquet", "zu.parquet", "loss.parquet", "manifest.json")  # what a copy holds
TIMING_KEYS = ("train_s", "generate_s", "metric_s", "wall_s_this_session", "device", "torch_version", "memnb_version")


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
        raise ValueError(f"dest = {str(dest)!r} is invalid; allowed: a folder without {res.path.name} (it exists)")
    out.mkdir(parents=True)
    shutil.copy2(res.path / "config.json", out / "config.json")
    write_parquet(out / "table.parquet", res.table())
    write_parquet(out / "zu.parquet", res.zu())
    write_parquet(out / "loss.parquet", res.loss())
    write_json(
        out / "manifest.json",
        {
            "tables_only": True,
            "complete": res.complete,
            "stopped_at_epoch": m.get("stopped_at_epoch"),
            "fingerprint": m.get("fingerprint", res.config.fingerprint()),
            "evaluated_epochs": res.evaluated_epochs,
            "made_on": made_on or f"{platform.node()} ({platform.processor() or platform.machine()})",
            "source": {k: m[k] for k in TIMING_KEYS if k in m},
            "files": records(out),
        },
    )
    return out


def pack(runs, target: Path | str, part_bytes: int | None = None, made_on: str | None = None) -> list[Path]:
    """One ``.tar.gz`` at `target` of tables-only copies of `runs` (run directories); split into
    ``<target>.partNN`` pieces of at most `part_bytes` when larger (None: never). Returns the files written."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        copies = [tables_only_copy(r, tmp, made_on) for r in runs]
        with tarfile.open(target, "w:gz") as tar:
            for c in copies:
                tar.add(c, arcname=c.name)
    if part_bytes is None or target.stat().st_size <= part_bytes:
        return [target]
    parts = []
    with open(target, "rb") as f:
        for i, chunk in enumerate(iter(lambda: f.read(part_bytes), b"")):
            part = target.with_name(f"{target.name}.part{i:02d}")
            part.write_bytes(chunk)
            parts.append(part)
    target.unlink()
    return parts


def unpack(archive: Path | str, root: Path | str) -> list[Path]:
    """The runs of `archive` (a .tar.gz of `pack`, or the first of its .partNN pieces: the others are read after
    it) under `root`; their paths. A run already there is left as it is (not replaced)."""
    archive = Path(archive)
    if archive.name.endswith(".part00"):
        data = b"".join(p.read_bytes() for p in sorted(archive.parent.glob(archive.name[:-2] + "[0-9][0-9]")))
    else:
        data = archive.read_bytes()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        names = sorted({Path(m.name).parts[0] for m in members})
        for m in members:
            if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                raise ValueError(f"archive = {str(archive)!r} holds {m.name!r}; allowed: run folders of pack()")
        for name in names:
            if (root / name).exists():
                out.append(root / name)
                continue
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12 / 3.11.4
            tar.extractall(root, members=[m for m in members if Path(m.name).parts[0] == name], **safe)
            out.append(root / name)
    for p in out:
        Results(p)  # verified: sizes against the copy's manifest
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m memnb.experiment.archive", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="tables-only copies of runs in one .tar.gz")
    a.add_argument("runs", nargs="+")
    a.add_argument("--out", required=True)
    a.add_argument("--part-bytes", type=int, default=None)
    b = sub.add_parser("unpack", help="the runs of an archive under a runs folder")
    b.add_argument("archive")
    b.add_argument("--root", default="outputs/runs")
    args = p.parse_args(argv)
    if args.command == "pack":
        for f in pack(args.runs, args.out, args.part_bytes):
            print(f)
    else:
        for r in unpack(args.archive, args.root):
            print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
