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
