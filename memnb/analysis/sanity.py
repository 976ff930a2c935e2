"""Sanity checks of a run's full results table: a wrong result fails loudly, not only an exception."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.vocabulary import GROUPS, OUTLIER
from ..experiment.tabulate import TABLE_COLUMNS
from ..metric.null import analytic_null, chance_level, expected_null
from .against_null import standing


def sanity_problems(table: pd.DataFrame, config, null_tolerance: float = 0.03) -> list[str]:
    """Everything wrong with a run's full table (empty list when it is sound).

    Checks: columns; every share within [0, 1] (copied may be NaN only for an empty group; a
    criterion the run could not compute at all is skipped); all four groups and the paper and
    train-only criteria present, every repeat at every evaluated epoch; the groups
    partition the memorized share; and the mean null level of the paper criterion ('all' group,
    config.ratio) within `null_tolerance` of `expected_null(config)` (also reported: the plain
    formula `chance_level(n_train, n_test, ratio)`, which ignores the outlier cluster).
    """
    problems: list[str] = []
    need = [c for c in TABLE_COLUMNS if c != "n_generated"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        return [f"columns missing: {missing}"]
    if table.empty:
        return ["the table is empty"]
    # a criterion a run could not compute (all NaN: e.g. 'relative' in runs stored before it existed) is skipped
    computed = table.groupby("criterion")["memorized"].transform(lambda v: v.notna().any()).to_numpy(bool)
    no_null = config.null == "none"  # a monitored run without a null set: its null columns are NaN
    for col in ("memorized", "memorized_null", "copied", "copied_null"):
        v = table[col].to_numpy(np.float64)
        if no_null and col.endswith("_null"):
            if not np.isnan(v).all():
                problems.append(f"{col}: values in a run without a null set")
            continue
        nan = np.isnan(v)
        if col.startswith("copied"):
            bad_nan = nan & computed & (table.n_group_points.to_numpy() > 0)
        else:
            bad_nan = nan & computed
        if bad_nan.any():
            problems.append(f"{col}: {int(bad_nan.sum())} NaN value(s) for non-empty groups")
        out = ~nan & ((v < 0) | (v > 1))
        if out.any():
            problems.append(f"{col}: {int(out.sum())} value(s) outside [0, 1] (e.g. {v[out][:3].tolist()})")
    groups, labels = set(table.group), (*config.group_names, "all")
    if groups != set(labels):
        problems.append(f"groups present {sorted(groups)}; expected {sorted(labels)}")
    expected_sizes = {GROUPS[OUTLIER]: config.n_outliers, "all": config.n_train}
    for g, n in expected_sizes.items():
        got = table.loc[table.group == g, "n_group_points"].unique()
        if len(got) and set(got.tolist()) != {n}:
            problems.append(f"group {g!r} has {sorted(got.tolist())} training points; config says {n}")
    if not {"paper", "train_only"} <= set(table.criterion):
        problems.append(f"criteria present {sorted(set(table.criterion))}; expected at least ['paper', 'train_only']")
    epochs = sorted(table.epoch.unique().tolist())
    if epochs != list(config.eval_epochs):
        problems.append(
            f"evaluated epochs {epochs[:5]}... ({len(epochs)}) differ from the config's "
            f"{list(config.eval_epochs)[:5]}... ({len(config.eval_epochs)})"
        )
    repeats = sorted(table.repeat.unique().tolist())
    if repeats != list(range(config.n_repeats)):
        problems.append(f"repeats {repeats} differ from the config's {config.n_repeats}")
    counts = table.groupby(["criterion", "threshold", "group"]).size()
    if counts.nunique() > 1:
        problems.append("some (criterion, threshold, group) lack some repeat x epoch rows")
    part = table.pivot_table(index=["repeat", "epoch", "criterion", "threshold"], columns="group", values="memorized")
    if set(labels) <= set(part.columns):
        gap = (part[list(config.group_names)].sum(axis=1) - part["all"]).abs().max(skipna=True)
        if gap > 1e-6:
            problems.append(f"group shares do not add up to the 'all' share (max gap {gap:.2e})")
    paper = table[(table.criterion == "paper") & np.isclose(table.threshold, config.ratio) & (table.group == "all")]
    if not analytic_null(config):  # real data: no analytic level, the null is held-out points (checked in [0, 1])
        return problems
    if paper.empty:
        problems.append(f"no rows for the paper criterion at ratio {config.ratio}")
    else:
        null = float(paper.memorized_null.mean())
        want = expected_null(config)
        if not abs(null - want) <= null_tolerance:
            problems.append(
                f"null level {100 * null:.2f}% of the paper criterion (all groups, ratio {config.ratio}) is "
                f"more than {100 * null_tolerance:.0f} points from its analytic value {100 * want:.2f}% "
                f"(plain formula n/(n+k^d m): "
                f"{100 * chance_level(config.n_train, config.n_test_points, config.ratio, config.dim):.2f}%)"
            )
    return problems


def below_null_notes(table: pd.DataFrame, config) -> list[str]:
    """Groups whose paper-criterion share (config.ratio, memorized) lies significantly below its null at the
    final epoch (memnb.analysis.against_null.standing: one-sided exact test pooled over repeats, 5 %), as
    sentences. Not a wrong result, but no memorization result either: a quality failure (the generator is worse
    than the data there), never to be read as "not memorized yet". Empty without a null set or paper rows."""
    rows = table[(table.criterion == "paper") & np.isclose(table.threshold, config.ratio)]
    if rows.empty or config.null == "none" or rows.memorized_null.isna().all():
        return []
    st = standing(rows, "memorized", config.n_null_points)
    return [
        f"{r.group}: {100 * r.final:.2f}% below its null {100 * r.null:.2f}% at the final epoch (p = {r.p_below:.2g}): "
        "below the null, a quality failure (the generator is worse than the data), not 'not memorized yet'"
        for r in st.itertuples()
        if r.standing == "below"
    ]


def check_sanity(table: pd.DataFrame, config, null_tolerance: float = 0.03) -> str:
    """Raise AssertionError listing every problem of `sanity_problems`; else return a one-line report (with
    `below_null_notes` after it, one line each)."""
    problems = sanity_problems(table, config, null_tolerance)
    if problems:
        raise AssertionError("sanity checks failed:\n- " + "\n- ".join(problems))
    paper = table[(table.criterion == "paper") & np.isclose(table.threshold, config.ratio) & (table.group == "all")]
    head = (
        f"sanity checks passed: {len(table)} rows, shares within [0, 1], {table.group.nunique()} groups, "
        f"{table.repeat.nunique()} repeats x {table.epoch.nunique()} epochs; "
        + ("no null set" if config.null == "none" else f"null level {100 * paper.memorized_null.mean():.2f}%")
    )
    if config.null == "none":
        return head
    notes = "".join(f"\nnote: {n}" for n in below_null_notes(table, config))
    if not analytic_null(config):
        return head + " (held-out real points; no analytic level for this dataset)" + notes
    return (
        f"{head} vs analytic "
        f"{100 * expected_null(config):.2f}% (outlier-aware) / "
        f"{100 * chance_level(config.n_train, config.n_test_points, config.ratio, config.dim):.2f}% (n/(n+k^d m))"
        + notes
    )
