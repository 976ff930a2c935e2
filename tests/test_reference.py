"""The 2-D results are those of memnb before its restructure: bit for bit on the recording CPU, within stated
tolerances on any other.

tests/fixtures/reference/ holds three small runs recorded by the flat layout (commit 6cf7964, see
tests/fixtures/record_reference.py): moons with the base test set, circle with the matched test set,
gmm with bf16 sampling. Each configuration is run again here (one torch thread, as recorded).

Float kernels differ in their last bits between CPUs (an Intel Xeon and an AMD EPYC, both AVX-512, give
distances 1.4e-6 apart), so the comparison depends on where it runs. Where the recording's kernel signature
(CPU name, torch's CPU capability, torch version: `kernel_signature`) is this machine's, every array, table,
Z_U and loss must be identical. Elsewhere:

- fp32 runs: every stored sample within one float16 step, distances within 1e-5 (they are of order 1;
  measured 1.4e-6), the loss within 1e-6 relative, integer arrays (indices, groups, data) and the tables
  exactly (0 cells change: measured);
- bf16 runs (sampling in bfloat16 amplifies the last bits): samples and distances within 4e-3 + 1e-2 |x|,
  at most 1 % of neighbour indices other, every table share within one sample of its cell (memorized:
  |change| x n_generated <= 1; copied: |change| x the group's size <= the most points at one location),
  Z_U's counts within one point and Z_U within what one sample moving can change it (n_test / sigma_U,
  the Mann-Whitney U's standard deviation).

Which comparison ran is a test property ("reference_comparison") listed at the end of the session.
tests/fixtures/old_run/ is a run directory written by that code, which must still open and give its table.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import kernel_signature

from memnb import ExperimentConfig, Results, run_experiment

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCES = sorted(p.stem for p in (FIXTURES / "reference").glob("*.json"))
SHARES = ["memorized", "memorized_null", "copied", "copied_null"]


def test_three_references_exist():
    assert REFERENCES == ["circle_matched", "gmm_bf16", "moons_base"]


def comparison(meta: dict, here: dict) -> str:
    """'exact' where the recording's kernel signature is this machine's, else 'tolerant'."""
    recorded = {k: meta.get(k) for k in here}
    return "exact" if recorded == here else "tolerant"


def test_the_comparison_is_exact_only_on_the_recording_signature():
    meta = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "torch": "2.13.0+cpu"}
    assert comparison(meta, dict(meta)) == "exact"
    for key, other in (("cpu", "AMD EPYC"), ("cpu_capability", "AVX2"), ("torch", "2.12.0+cpu")):
        assert comparison(meta, {**meta, key: other}) == "tolerant"
    assert comparison({k: v for k, v in meta.items() if k != "cpu_capability"}, meta) == "tolerant"


def assert_arrays_close(name: str, key: str, got: np.ndarray, ref: np.ndarray, bf16: bool) -> None:
    msg = f"{name}: {key} differs beyond the tolerance of another CPU"
    if got.dtype.kind != "f":
        if bf16 and key.endswith("index"):
            assert (got != ref).mean() <= 0.01, msg
        else:
            np.testing.assert_array_equal(got, ref, err_msg=msg)
        return
    g, r = got.astype(np.float64), ref.astype(np.float64)
    if key.startswith("data/"):
        np.testing.assert_array_equal(got, ref, err_msg=msg)  # drawn by numpy from seeds: no float kernel
    elif bf16:
        if key.endswith(("summary", "zu")):
            return  # derived from the distances: the tables below bound them
        np.testing.assert_allclose(g, r, rtol=1e-2, atol=4e-3, err_msg=msg)
    elif key == "loss/loss":
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=0, err_msg=msg)
    elif got.dtype == np.float16:  # one float16 step
        step = np.spacing(np.abs(ref)).astype(np.float64)
        assert np.all(np.abs(g - r) <= step), msg
    elif key.endswith(("summary", "zu")):
        np.testing.assert_array_equal(got, ref, err_msg=msg)  # shares and Z_U: the tables are exact
    else:
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-5, err_msg=msg)


def assert_tables_within_one_sample(table, ref, zu, ref_zu, per_location: int = 1):
    """per_location: the most training points at one location (a duplicated point): one sample copies them all."""
    other = [c for c in ref.columns if c not in SHARES]
    pd.testing.assert_frame_equal(table[other], ref[other])
    for c in SHARES:  # memorized: a share of the generated set; copied: of the group's training points
        n = ref["n_generated" if c.startswith("memorized") else "n_group_points"].to_numpy(np.float64)
        change = np.nan_to_num(np.abs(table[c].to_numpy() - ref[c].to_numpy()), nan=0.0) * n
        if c.startswith("copied"):
            change = change / per_location
        assert change.max() <= 1 + 1e-9, f"{c}: a cell moved by {change.max():.2f} samples"
        assert np.array_equal(table[c].isna(), ref[c].isna())
    keys = ["repeat", "epoch", "group"]
    pd.testing.assert_frame_equal(zu[keys], ref_zu[keys])
    for c in ("n_generated", "n_null", "n_test"):
        assert np.abs(zu[c].to_numpy() - ref_zu[c].to_numpy()).max() <= 1, c
    n1, n2 = ref_zu.n_generated.to_numpy(np.float64), ref_zu.n_test.to_numpy(np.float64)
    for c, size in (("z_u", n1), ("z_u_null", ref_zu.n_null.to_numpy(np.float64))):
        change = np.abs(zu[c].to_numpy() - ref_zu[c].to_numpy())
        with np.errstate(invalid="ignore", divide="ignore"):  # empty cells: NaN Z_U, checked below
            bound = n2 / np.sqrt(size * n2 * (size + n2 + 1) / 12)
        ok = np.isnan(change) | (change <= bound)
        assert ok.all() and np.array_equal(zu[c].isna(), ref_zu[c].isna()), f"{c} moved by more than one sample"


@pytest.mark.parametrize("name", REFERENCES)
def test_same_arrays_and_tables_as_before_the_restructure(name, tmp_path, record_property):
    meta = json.loads((FIXTURES / "reference" / f"{name}.json").read_text())
    config = ExperimentConfig.from_dict(meta["config"])
    assert config.run_name() == meta["run_name"], "run directory names of 2-D runs are unchanged"
    here = kernel_signature()
    mode = comparison(meta, here)
    record_property("reference_comparison", f"{name}: {mode} (recorded on {meta['cpu']}, here {here['cpu']})")
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
    table, ref_table = res.table(), pd.read_parquet(FIXTURES / "reference" / f"{name}.parquet")
    zu, ref_zu = res.zu(), pd.read_parquet(FIXTURES / "reference" / f"{name}_zu.parquet")
    for k in ref.files:
        assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape, k
        if mode == "exact":
            np.testing.assert_array_equal(got[k], ref[k], err_msg=f"{name}: {k} differs (recorded on {meta['cpu']})")
        else:
            assert_arrays_close(name, k, got[k], ref[k], bf16=config.precision == "bf16")
    if mode == "exact" or config.precision != "bf16":
        pd.testing.assert_frame_equal(table, ref_table)
        pd.testing.assert_frame_equal(zu, ref_zu)
    else:
        train = res.data["train_points"]
        per_location = max(int(np.unique(t, axis=0, return_counts=True)[1].max()) for t in train)
        assert_tables_within_one_sample(table, ref_table, zu, ref_zu, per_location)


def test_the_tolerant_comparison_fails_on_a_real_change():
    """The tolerances catch a change of the results: one sample more in a cell, a distance off by 1e-4."""
    ref = pd.read_parquet(FIXTURES / "reference" / "gmm_bf16.parquet")
    ref_zu = pd.read_parquet(FIXTURES / "reference" / "gmm_bf16_zu.parquet")
    assert_tables_within_one_sample(ref.copy(), ref, ref_zu.copy(), ref_zu)
    moved = ref.copy()
    moved.loc[0, "memorized"] += 2.0 / moved.loc[0, "n_generated"]
    with pytest.raises(AssertionError, match="samples"):
        assert_tables_within_one_sample(moved, ref, ref_zu, ref_zu)
    d = np.load(FIXTURES / "reference" / "moons_base.npz")["epoch2/d1"]
    with pytest.raises(AssertionError):
        assert_arrays_close("moons_base", "epoch2/d1", d + np.float32(1e-4), d, bf16=False)
    s = np.load(FIXTURES / "reference" / "moons_base.npz")["epoch2/samples"]
    two_steps = (s.astype(np.float64) + 2 * np.spacing(np.abs(s)).astype(np.float64)).astype(np.float16)
    with pytest.raises(AssertionError):
        assert_arrays_close("moons_base", "epoch2/samples", two_steps, s, bf16=False)


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
