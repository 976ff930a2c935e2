"""Papermill parameters: a notebook rejects a parameter name it does not know, before any work.

papermill injects the parameters it is given as a cell of assignments ("# Parameters" first) after
the notebook's cell tagged ``parameters``, without checking their names: ``-p ration 2.0`` would
run with the default ratio. `check_parameters(globals())`, called by every notebook right after
its parameters, compares the names assigned by the injected cell with those of the parameters
cell, reading both from the kernel's input history (IPython's ``In``).
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from typing import Any

INJECTED_HEADER = "# Parameters"  # the first line of papermill's injected cell


def assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a cell's source, in order."""
    names = []
    for node in ast.parse(source).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def unknown_parameters(known: list[str], given: list[str]) -> dict[str, str | None]:
    """{given name not in known: the closest known name (None if none is close)}."""
    return {n: next(iter(difflib.get_close_matches(n, known, n=1, cutoff=0.6)), None) for n in given if n not in known}


def check_parameters(namespace: Mapping[str, Any]) -> None:
    """ValueError naming every injected parameter the notebook does not define, and the closest one it does.

    namespace: the notebook's globals(). Without an injected cell (a notebook run by hand), nothing to check.
    """
    cells = [c for c in namespace.get("In", []) if isinstance(c, str)]
    injected = [i for i, c in enumerate(cells) if c.lstrip().startswith(INJECTED_HEADER)]
    if not injected or injected[-1] == 0:
        return
    i = injected[-1]
    known = assigned_names(cells[i - 1])  # papermill puts its cell right after the parameters cell
    unknown = unknown_parameters(known, assigned_names(cells[i]))
    if unknown:
        parts = [f"{n!r}" + (f" (did you mean {c!r}?)" if c else "") for n, c in unknown.items()]
        raise ValueError(f"unknown notebook parameter(s) {', '.join(parts)}; allowed: {', '.join(known)}")
