"""Plotly title text: wrapped lines in three sizes, anchored at the top left, and how many lines it takes.

Plotly never wraps a title and centres a multi-line one in the top margin, over the panels' own titles; the
rates figures, the sweep view and the explorer build their titles here so that no line runs past the edge.
"""

from __future__ import annotations

import html
import textwrap

# Plotly never wraps a title: a longer line runs past the figure's right edge and is cut off.
# Characters per line that fit a 1000-px figure at each of the title's font sizes (15, 13, 11 px).
TITLE_WRAP = {"title": 110, "second": 130, "sub": 150}


def _wrap(line: str, width: int) -> list[str]:
    line = line.replace(" → ", "\u00a0→\u00a0")  # "100 → 10" stays on one line (textwrap never breaks at NBSP)
    return textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""]


def title_html(title: str, sub: str) -> str:
    """Plotly title text: the title's lines (the second and later ones smaller), then the subtitle's, smallest.

    Lines longer than `TITLE_WRAP` characters are wrapped at spaces; `title_lines` counts the result.
    """
    first, *rest = title.split("\n")
    lines = [html.escape(w, quote=False) for w in _wrap(first, TITLE_WRAP["title"])]
    lines += [
        f"<span style='font-size:13px'>{html.escape(w, quote=False)}</span>"
        for r in rest
        for w in _wrap(r, TITLE_WRAP["second"])
    ]
    lines += [
        f"<span style='font-size:11px'>{html.escape(w, quote=False)}</span>"
        for r in sub.split("\n")
        for w in _wrap(r, TITLE_WRAP["sub"])
    ]
    return "<br>".join(lines)


def top_title(text: str) -> dict:
    """Plotly title anchored at the top left (plotly centres a multi-line title in the margin, over the panels' titles)."""
    return dict(
        text=text, x=0.01, xanchor="left", y=1.0, yref="container", yanchor="top", pad=dict(t=26), font=dict(size=15)
    )


def title_lines(title_text: str) -> int:
    """Lines of a `title_html` text."""
    return title_text.count("<br>") + 1
