"""The 2-D results are those of memnb before its restructure, bit for bit on the CPU.

tests/fixtures/reference/ holds three small runs recorded by the flat layout (commit 6cf7964, see
tests/fixtures/record_reference.py): moons with the base test set, circle with the matched test set,
gmm with bf16 sampling. Each configuration is run again here (one torch thread, as recorded) and
every stored array, the table, Z_U and the loss must be identical. tests/fixtures/old_run/ is a run
directory written by that code, which must still open and give its stored table.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from memnb import ExperimentConfig, Results, run_experiment

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCES = sorted(p.stem for p in (FIXTURES / "reference").glob("*.json"))


def test_three_references_exist():
    assert REFERENCES == ["circle_matched", "gmm_bf16", "moons_base"]


@pytest.mark.parametrize("name", REFERENCES)
def test_same_arrays_and_tables_as_before_the_restructure(name, tmp_path):
    meta = json.loads((FIXTURES / "reference" / f"{name}.json").read_text())
    config = ExperimentConfig.from_dict(meta["config"])
    assert config.run_name() == meta["run_name"], "run directory names of 2-D runs are unchanged"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as recorded: the float kernels' summation order depends on the threads
    try:
        res = run_experiment(config, root=tmp_path, progress=False)
    finally:
        torch.set_num_threads(threads)
    ref = np.load(FIXTURES / "reference" / f"{name}.npz")
    got = {f"data/{k}": v for k, v in res.data.items()}
    for e in res.evaluated_epochs:
        got.update({f"epoch{e}/{k}": v for k, v in res.epoch_arrays(e).items()})
    got["loss/loss"] = res.loss().loss.to_numpy()
    assert sorted(got) == sorted(ref.files)
    for k in ref.files:
        assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape, k
        np.testing.assert_array_equal(got[k], ref[k], err_msg=f"{name}: {k} differs (recorded on {meta['cpu']})")
    pd.testing.assert_frame_equal(res.table(), pd.read_parquet(FIXTURES / "reference" / f"{name}.parquet"))
    pd.testing.assert_frame_equal(res.zu(), pd.read_parquet(FIXTURES / "reference" / f"{name}_zu.parquet"))


def test_a_run_stored_by_the_flat_layout_still_opens(tmp_path):
    (old,) = list((FIXTURES / "old_run").iterdir())
    copy = tmp_path / old.name
    shutil.copytree(old, copy)
    res = Results(copy)
    assert res.complete and res.config.denoiser == "tiny_diffusion"  # a field it never had takes its old value
    assert res.config.run_name() == old.name
    table = res.table()
    pd.testing.assert_frame_equal(table, res.assemble_table())  # the stored table equals one rebuilt from its epochs
    pd.testing.assert_frame_equal(table, pd.read_parquet(FIXTURES / "reference" / "moons_base.parquet"))
    assert not res.rates_at("relative", 2.0).empty and not res.zu().empty
    # run_experiment finds it under its old name and returns it as it is
    again = run_experiment(res.config, root=tmp_path, progress=False)
    assert again.path == copy and again.complete
