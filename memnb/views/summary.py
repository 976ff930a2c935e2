"""The printed summary of a figure: the setting, the chance level, then per group its final rates, nulls and
where its curve stands against its null (memnb.analysis.curves.summary, memnb.analysis.against_null)."""

from __future__ import annotations

import pandas as pd

from ..analysis.against_null import SUMMARY_WORD, standing_or_none
from ..analysis.curves import _one_setting, readable_summary, summary
from ..core.registry import CRITERIA
from ..metric.null import analytic_null, chance_level, expected_null


def summary_text(table: pd.DataFrame, config=None) -> str:
    """The printed summary: the setting, then `summary(table)` as text."""
    crit, thr = _one_setting(table)
    s = readable_summary(summary(table))
    n_rep = table.repeat.nunique()
    head = [
        f"{CRITERIA.get(crit).text(thr)}; mean over {n_rep} repeat(s) at the final epoch "
        f"{int(table.epoch.max())}; '_null' = the same metric for fresh draws of the data distribution."
    ]
    if config is not None and crit == "paper" and analytic_null(config):
        head.append(
            f"Analytic chance level n/(n + k^d m) = "
            f"{100 * chance_level(config.n_train, config.n_test_points, thr, config.dim):.2f}% "
            f"(all groups; {100 * expected_null(config, thr):.2f}% counting the outlier cluster, "
            + ("which has no test points)." if config.n_test_outliers == 0 else "with its own test points).")
        )
    head.append(
        "first_epoch_*_above_null: memnb's one onset rule (the excess over the null, per point, passes 5 points "
        "at 5 % over the curve's evaluations, over repeats); never = on its null within the run; below = significantly BELOW its "
        "null at the final epoch, a quality failure (the generator is worse than the data), not 'not memorized "
        "yet'; with one repeat: not enough repeats to tell."
    )
    n_null = None if config is None else config.n_null_points
    for value in ("memorized", "copied"):
        col = f"first_epoch_{value}_above_null"
        st = standing_or_none(table, value, n_null)
        words = {} if st is None else dict(zip(st.group, st.standing))
        s[col] = [v if words.get(g) in (None, "above") else SUMMARY_WORD[words[g]] for g, v in zip(s.group, s[col])]
    body = s.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
    return "\n".join(head) + "\n\n" + body
