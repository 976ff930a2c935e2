"""What to do about a damaged file of a run: advice that, followed, gives a correct run again.

Each piece of advice is a promise kept by a test (tests/test_store_faults.py follows it to a correct run). What is
recoverable is recovered and only what must go is set aside (into the run's ``.damaged/`` folder, never deleted):

- a trained run (run_experiment) is deterministic in its config: data.npz is drawn again, the tables are
  assembled again from the epoch files, the loss from the checkpoint, a damaged epoch file is recomputed alone
  (training again from the start to that epoch, every other epoch kept), a damaged checkpoint is trained again
  (the stored epochs are kept), a damaged manifest is written again from the verified files, and config.json is
  written again from the config whose run name is the folder's;
- a monitored run (memnb.Monitor) keeps what it was given in data.npz and each epoch in its own file: a new
  Monitor on the same data rebuilds data.npz, the tables, the loss and the manifest; a damaged epoch is set aside
  and is the only one to observe again;
- a tables-only copy (memnb.experiment.archive) has nothing to rebuild from: unpack its archive again.
"""

from __future__ import annotations

from pathlib import Path

from .layout import CHECKPOINT, CONFIG, DATA, LOSS, MANIFEST, TABLE, ZU

__all__ = ["advice", "REBUILT", "DAMAGED"]

REBUILT = (DATA, TABLE, ZU, LOSS, MANIFEST)  # what a trained run rebuilds in place from its other files
DAMAGED = ".damaged"  # the run's folder of files set aside (hidden: never read, never recorded)


def advice(path: Path | str, name: str, kind: str | None = "experiment", tables_only: bool = False) -> str:
    """What to do about damaged file `name` (a file name, or "epochs") of run `path` of `kind`."""
    run = Path(path)
    if tables_only:
        return (
            f"{run} is a tables-only copy: nothing here can rebuild {name}; unpack its archive again "
            "(memnb.experiment.archive.unpack(archive, root)) after moving this copy away, or copy it again from "
            "the machine that made it"
        )
    if kind == "monitor":
        if name.startswith("epoch_"):
            return (
                f"open the run with memnb.Monitor on the same data ({run}): it sets {name} aside (into "
                f"{DAMAGED}/), keeps every other epoch and rebuilds the tables; then observe that epoch again"
            )
        if name == CONFIG:
            return (
                f"open memnb.Monitor on the same data with name={run.name!r}: it writes {CONFIG} again when "
                f"{DATA} holds that data (else restore {run / CONFIG})"
            )
        return (
            f"open the run with memnb.Monitor on the same data ({run}): it rebuilds {name} from the run's other files"
        )
    if name == CONFIG:
        return (
            f"call memnb.run_experiment(config) with the config whose run_name() is {run.name!r}: it writes {CONFIG} "
            f"again (or restore {run / CONFIG})"
        )
    if name == CHECKPOINT:
        return (
            "call memnb.run_experiment(config) with this run's config: it sets the checkpoint aside and trains "
            "again from the start, keeping every stored epoch (the same config gives the same numbers)"
        )
    if name.startswith("epoch_") or name == "epochs":
        return (
            "call memnb.run_experiment(config) with this run's config (verify=True when its size is right: then "
            "every checksum is compared): it sets the damaged epoch file aside and recomputes that epoch alone, "
            "keeping every other stored epoch"
        )
    return f"call memnb.run_experiment(config) with this run's config: it rebuilds {name} from what is stored"
