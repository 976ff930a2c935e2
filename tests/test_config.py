import dataclasses
import json

import pytest

from memnb import ExperimentConfig

BAD = [
    ("ratio", 1.0),
    ("ratio", 0.5),
    ("ratio", float("nan")),
    ("ratio", float("inf")),
    ("ratio", "1.5"),
    ("train_ratio", 1.0),
    ("n_outliers", -1),
    ("n_outliers", 2.5),
    ("n_duplicates", -3),
    ("n_duplicates", True),
    ("n_base", 1),
    ("n_base", 100.0),
    ("dataset", "spiral"),
    ("device", "tpu"),
    ("neighbors", "annoy"),
    ("precision", "fp8"),
    ("n_generate", 0),
    ("eval_every", 0),
    ("n_repeats", 0),
    ("epochs", -1),
    ("seed", -1),
    ("batch_size", 0),
    ("learning_rate", 0.0),
    ("weight_decay", -0.1),
    ("grad_clip", 0),
    ("beta_start", 0.0),
    ("beta_end", 1.5),
    ("num_timesteps", 0),
    ("n_test", 1),
    ("outlier_distance", -1.0),
    ("outlier_spread", -0.1),
    ("duplicate_jitter", -1),
    ("embedding_size", 7),
    ("test_set", "heldout"),
    ("relative_alpha", 0.0),
    ("relative_alpha", 1.0),
    ("relative_alpha", 1.5),
    ("relative_alpha", float("nan")),
    ("relative_alpha", "0.1"),
]


@pytest.mark.parametrize("field,value", BAD)
def test_bad_input_names_field_value_and_allowed(field, value):
    with pytest.raises(ValueError) as e:
        ExperimentConfig(**{field: value})
    msg = str(e.value)
    assert repr(field) in msg and repr(value) in msg and "allowed" in msg


def test_more_duplicates_than_base_points():
    with pytest.raises(ValueError, match="n_duplicates.*at most n_base = 10"):
        ExperimentConfig(n_base=10, n_duplicates=11, n_outliers=0, batch_size=4)


def test_beta_end_below_beta_start():
    with pytest.raises(ValueError, match="beta_end"):
        ExperimentConfig(beta_start=0.02, beta_end=0.01)


def test_unknown_field_from_dict():
    with pytest.raises(ValueError, match="unknown config field"):
        ExperimentConfig.from_dict({"ratoi": 2.0})


def test_frozen_and_roundtrip():
    c = ExperimentConfig(n_base=1000, ratio=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.ratio = 3.0
    assert ExperimentConfig.from_dict(json.loads(c.to_json())) == c
    assert c.replace(seed=1) != c


def test_derived_sizes_and_eval_epochs():
    c = ExperimentConfig(n_base=1000, n_outliers=10, n_duplicates=20, epochs=10, eval_every=4)
    assert c.n_train == 1030 and c.n_generate_points == 1030 and c.n_test_points == 1000
    assert c.eval_epochs == (0, 4, 8, 10)
    assert ExperimentConfig(epochs=8, eval_every=4).eval_epochs == (0, 4, 8)


def test_run_name_from_config_not_clock():
    a, b = ExperimentConfig(), ExperimentConfig()
    assert a.run_name() == b.run_name()
    assert a.run_name() != a.replace(learning_rate=2e-3).run_name()
    assert a.run_name().startswith("moons-n20000-o400-d400-e400-r10-s0-")


def test_matched_test_set_sizes_follow_training_proportions():
    c = ExperimentConfig(n_base=1000, n_outliers=20, n_duplicates=40, test_set="matched")
    assert (c.n_test_base, c.n_test_outliers, c.n_test_duplicates, c.n_test_points) == (1000, 20, 40, 1060)
    half = c.replace(n_test=500)
    assert (half.n_test_outliers, half.n_test_duplicates, half.n_test_points) == (10, 20, 530)
    base = c.replace(test_set="base")
    assert (base.n_test_outliers, base.n_test_duplicates, base.n_test_points) == (0, 0, 1000)
    assert c.fingerprint() != base.fingerprint()


def test_log_spaced_evaluation_epochs():
    """eval_schedule="log": 0, round(geomspace(1, epochs, n_evals)) without repeats, and the end."""
    import numpy as np

    c = ExperimentConfig(epochs=1000, eval_schedule="log", n_evals=4)
    assert c.eval_epochs == (0, 1, 10, 100, 1000)
    c = ExperimentConfig(epochs=3000, eval_schedule="log", n_evals=12)
    expected = sorted({0, *np.round(np.geomspace(1, 3000, 12)).astype(int).tolist(), 3000})
    assert list(c.eval_epochs) == expected and len(expected) == 13
    few = ExperimentConfig(epochs=5, eval_schedule="log", n_evals=20)  # rounding merges duplicates
    assert few.eval_epochs == (0, 1, 2, 3, 4, 5)
    assert ExperimentConfig(epochs=7, eval_schedule="log", n_evals=1).eval_epochs == (0, 7)
    assert ExperimentConfig(epochs=0, eval_schedule="log", n_evals=3).eval_epochs == (0,)
    assert ExperimentConfig(epochs=10, eval_every=4).eval_epochs == (0, 4, 8, 10)  # linear, unchanged


def test_the_evaluation_schedule_is_validated_and_leaves_old_run_names_alone():
    with pytest.raises(ValueError, match=r"'eval_schedule' = 'geometric' is invalid; allowed: linear \| log"):
        ExperimentConfig(eval_schedule="geometric")
    with pytest.raises(ValueError, match=r"'n_evals' = None is invalid; allowed: an integer >= 1"):
        ExperimentConfig(eval_schedule="log")
    with pytest.raises(ValueError, match=r"'n_evals' = 0 is invalid; allowed: an integer >= 1"):
        ExperimentConfig(eval_schedule="log", n_evals=0)
    with pytest.raises(ValueError, match=r"'n_evals' = 5 is invalid; allowed: None with eval_schedule=\"linear\""):
        ExperimentConfig(n_evals=5)
    base = ExperimentConfig()
    d = base.to_dict()
    del d["eval_schedule"], d["n_evals"]  # a config.json written before the fields existed
    assert ExperimentConfig.from_dict(d) == base
    old = {k: v for k, v in base.to_dict().items() if k not in ("eval_schedule", "n_evals")}
    added_later = ("denoiser", "dim", "injection", "watermark", "n_null", "sampler", "sample_steps", "detectors")
    old = {k: v for k, v in old.items() if k not in added_later}
    import hashlib

    assert base.fingerprint() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:10]
    log = base.replace(eval_schedule="log", n_evals=10)
    assert log.fingerprint() != base.fingerprint() != log.replace(n_evals=11).fingerprint()


def _monitor_config():
    from memnb.core.monitor_config import MonitorConfig

    return MonitorConfig(
        name="own-run",
        model="my-model",
        dataset="own",
        dim=3,
        n_repeats=2,
        n_train=10,
        n_test_points=5,
        n_generate_points=10,
        group_names=("inlier", "outlier"),
        group_counts=(8, 2),
        data_sha256="0" * 64,
        observed=(0, 5, 10),
    )


@pytest.mark.parametrize("make", [ExperimentConfig, _monitor_config], ids=["experiment", "monitor"])
def test_both_configs_have_everything_the_run_config_protocol_declares(make):
    """Readers ask a run's config for RunConfig's attributes without getattr defaults: both classes must have them,
    of the declared type (int for int, a tuple of the declared item type, ...), and its methods."""
    import types
    import typing

    from memnb.core.run_config import KINDS, NULLS, RunConfig

    config = make()
    hints = typing.get_type_hints(RunConfig)
    methods = [n for n, v in vars(RunConfig).items() if callable(v) and not n.startswith("_")]
    assert len(hints) >= 25 and set(methods) == {"own_threshold", "fingerprint", "run_name", "to_dict", "replace"}
    missing = [n for n in [*hints, *methods] if not hasattr(config, n)]
    assert not missing, f"{type(config).__name__} lacks {missing} of memnb.core.run_config.RunConfig"
    for name, hint in hints.items():
        value = getattr(config, name)
        if isinstance(hint, types.UnionType):  # X | None: None, or a value of X
            if value is None:
                continue
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint) or hint
        assert isinstance(value, origin) and not (origin is int and isinstance(value, bool)), (name, value, hint)
        if origin is tuple:
            item = typing.get_args(hint)[0]
            assert all(isinstance(v, int if item is int else (float if item is float else str)) for v in value), name
    for name in methods:
        assert callable(getattr(config, name)), name
    assert config.kind in KINDS and config.null in NULLS
    assert isinstance(config.to_dict(), dict) and isinstance(config.fingerprint(), str) and config.run_name()
    assert config.own_threshold("paper") == config.ratio
    assert type(config.replace(ratio=2.0)) is type(config) and config.replace(ratio=2.0).ratio == 2.0
