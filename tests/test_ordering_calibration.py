"""The verdict's error rates on simulated part-2 cells with a known group ordering (memnb.analysis.simulate_ordering;
issue 25, item 1). The bench (benchmarks/ordering_bench.py, `make bench`) runs 200 runs per setting; here the
documented settings (ramp, 20 repeats; height 0.3 for the errors, 0.6 for the power) at 60 runs each."""

import math

import numpy as np
import pytest

from memnb.analysis import simulate_ordering as so
from memnb.analysis.stats import timing_table
from memnb.workflows.questions_grid import FULL, apply_profile, cell_configs


def test_simulated_cell_is_part_twos_cell():
    """The simulated run has the grid, group sizes and horizon of the laptop profile's default cell."""
    p, _ = apply_profile(dict(FULL), "laptop")
    cell = next(c for f, c in cell_configs(p) if (c.hidden_size, c.learning_rate, c.batch_size) == (128, 1e-3, 32))
    s = so.OrderingSetting()
    sig = so.simulate_run(s, np.random.default_rng(0))
    np.testing.assert_array_equal(np.unique(sig.epoch), np.array(cell.eval_epochs, np.float64))
    assert s.n_train == cell.n_train and s.n_repeats == cell.n_repeats
    sizes = sig.groupby("group").n.first().to_dict()
    assert sizes == {"inlier": 58.0, "outlier": 6.0, "duplicate": 12.0}
    assert sizes["outlier"] == cell.n_outliers and sizes["duplicate"] == 2 * cell.n_duplicates
    assert set(sig.columns) == {"repeat", "epoch", "group", "signal", "null", "n", "scale"}
    # shares of whole points: k / n_g
    for col in ("signal", "null"):
        k = sig[col] * sig.n
        assert np.allclose(k, np.round(k)) and (k >= 0).all() and (k <= sig.n).all()


def test_onsets_follow_their_law_without_noise_floor():
    """Step curves of large groups with no onset noise: every onset is the first evaluated epoch at or after τ,
    an independent loop over the grid."""
    s = so.OrderingSetting(
        shape="step", height=0.5, sizes=(20_000, 20_000, 20_000), sigma_repeat=0.0, sigma_group=0.0, shift=math.log(2)
    )
    sig = so.simulate_run(s, np.random.default_rng(1))
    t = timing_table(sig, 0.05, pool_null=True, z=3.0)
    spe = s.n_train // s.batch_size
    epochs = np.unique(sig.epoch)
    for group, tau in (("inlier", s.tau_ref), ("duplicate", s.tau_ref), ("outlier", 2 * s.tau_ref)):
        want = next(e for e in epochs if e * spe >= tau)
        assert (t[t.group == group].onset == want).all()


def test_a_bad_setting_is_refused():
    with pytest.raises(ValueError, match="shape = 'sigmoid' is invalid; allowed: step | ramp"):
        so.OrderingSetting(shape="sigmoid")
    with pytest.raises(ValueError, match="n_repeats = 1 is invalid"):
        so.OrderingSetting(n_repeats=1)
    with pytest.raises(ValueError, match=r"height = 0.8 is invalid; allowed: > 0 with null \+ height <= 1"):
        so.OrderingSetting(height=0.8)
    with pytest.raises(ValueError, match="sigma_group = -1 is invalid; allowed: a number >= 0"):
        so.OrderingSetting(sigma_group=-1)
    with pytest.raises(ValueError, match="tau_ref = 0 is invalid; allowed: a number > 0"):
        so.OrderingSetting(tau_ref=0)


@pytest.fixture(scope="module")
def rates():
    rng = np.random.default_rng(0)
    return {
        truth: so.verdict_rates(so.OrderingSetting(shift=shift, height=h), 60, rng, n_bootstrap=500)
        for truth, shift, h in (("equal", 0.0, 0.3), ("never", math.log(100.0), 0.6))
    }


def test_the_verdict_rarely_says_holds_when_the_outliers_are_not_later(rates):
    # "holds" is the claim the questions answer with; with equal onsets it is an error (bench: 0 of 200)
    assert rates["equal"]["holds"] <= 0.05


def test_the_verdict_finds_outliers_never_memorized(rates):
    # the others' plateau 0.6 above their null, 20 repeats (bench: 1.000; at plateau 0.3, 0.575)
    assert rates["never"]["holds"] >= 0.9


def test_the_verdict_says_reversed_too_often_by_measurement(rates):
    """A finding, kept as a test so that a change to it is seen: with equal true onsets the duplicates (12
    points, null 0.26) are timed later than the outliers by their noise floor, and the verdict says "reversed"
    far above its nominal 5 % (bench: docs/questions.md)."""
    assert rates["equal"]["reversed"] > 0.1  # bench: 0.180 of 200 runs


def test_the_bench_writes_its_table(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "ordering.json"
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "ordering_bench.py"), "--runs", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.read_text())["table"]
    assert len(rows) == 3 * 2 * 2 * 2 and all(r["n_runs"] == 2 for r in rows)
    assert all(abs(sum(r[w] for w in ("holds", "reversed", "inconclusive", "below null")) - 1) < 1e-12 for r in rows)
    assert done.stdout.splitlines()[0].startswith("| outliers | height | shape | repeats | holds |")
    bad = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "ordering_bench.py"), "--runs", "0"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--runs = 0 is invalid" in bad.stderr
