"""The words every layer shares, defined once: groups, values, sources, colours, and the axes of
the per-epoch summary array.

Groups. Every training point belongs to one group, stored as its code (the index here):
0 inlier, 1 outlier (the injected cluster), 2 duplicate (an injected near-duplicate and the base
point it copies). Tables add ``all`` (every training point). Figures order groups by
`DISPLAY_GROUPS`: all first, then the three in the paper's order of interest.
"""

from __future__ import annotations

INLIER, OUTLIER, DUPLICATE = 0, 1, 2
GROUPS = ("inlier", "outlier", "duplicate")  # index = group code
GROUP_LABELS = GROUPS + ("all",)  # the summary's group axis: the three groups, then every point
DISPLAY_GROUPS = ("all", "inlier", "outlier", "duplicate")  # panel order of the figures
GROUP_NAMES = {"all": "all groups", "inlier": "inliers", "outlier": "outliers", "duplicate": "near-duplicates"}
GROUP_COLORS = {"all": "#333333", "inlier": "#1f77b4", "outlier": "#d62728", "duplicate": "#2ca02c"}

# Normalisations of a rate: `memorized` = share of the generated set memorized and attributed to the
# group (the paper's plots); `copied` = share of the group's training points copied by a memorized sample.
VALUES = ("memorized", "copied")
# Signals the timing statistics can follow (memnb.analysis.stats.signal_frame): the two values, and
# `conditional` = the memorized share among the samples that land next to the group.
SIGNAL_VALUES = ("copied", "memorized", "conditional")
# Where the queried points come from: the model's samples, or fresh draws / held-out points (the null).
SOURCES = ("generated", "null")
SOURCE_PREFIX = {"generated": "", "null": "null_"}  # prefix of a source's neighbour arrays in an epoch file

# Axes of an epoch's `summary` array (memnb.experiment.tabulate.summarize):
# (repeat, criterion, source, value, group, threshold), criterion in registry order, group in GROUP_LABELS.
SUMMARY_AXES = ("repeat", "criterion", "source", "value", "group", "threshold")

# A run monitored from a user's own training loop (memnb.experiment.monitor) may name its groups freely;
# these give every label a display name, a colour and a panel order (memnb's three keep theirs).
EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e", "#aec7e8")


def group_name(label: str) -> str:
    """The display name of a group label (a user's own label is its own name)."""
    return GROUP_NAMES.get(label, str(label))


def group_color(label: str, labels=GROUPS) -> str:
    """The colour of a group label; a label of the user's takes the next colour of EXTRA_COLORS by its position
    among the run's `labels` that memnb does not name."""
    if label in GROUP_COLORS:
        return GROUP_COLORS[label]
    own = [g for g in labels if g not in GROUP_COLORS]
    i = own.index(label) if label in own else len(own)
    return EXTRA_COLORS[i % len(EXTRA_COLORS)]


def display_groups(labels) -> tuple[str, ...]:
    """Panel order for the groups present: all, memnb's three in the paper's order, then the user's own labels."""
    present = list(dict.fromkeys(labels))
    known = [g for g in DISPLAY_GROUPS if g in present]
    return tuple(known + [g for g in present if g not in DISPLAY_GROUPS])
