"""Papermill parameters: a notebook rejects a parameter name it does not know, or a boolean given as another
string than true/false, before any work.

papermill injects the parameters it is given as a cell of assignments ("# Parameters" first) after
the notebook's cell tagged ``parameters``, without checking their names: ``-p ration 2.0`` would
run with the default ratio. `check_parameters(globals())`, called by every notebook right after
its parameters, compares the names assigned by the injected cell with those of the parameters
cell, reading both from the kernel's input history (IPython's ``In``).

Booleans: a parameter whose default in the parameters cell is ``True`` or ``False`` is a boolean parameter.
papermill passes ``-p interactive no`` and ``-r interactive false`` as the strings "no" and "false", and a non-empty
string is true in Python: ``-r interactive no`` would run interactively. So a boolean parameter takes a bool, or
exactly one of the strings in `BOOL_WORDS` ("true", "True", "false", "False": what ``-r`` and ``-p`` give for a
boolean spelled as a word), which `check_parameters` replaces by the bool in the notebook's namespace; anything else
("no", "yes", 0, 1, "0") fails naming the parameter ("interactive = 'no' is invalid; allowed: ...").
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import MutableMapping
from typing import Any

import numpy as np

from ..core.validate import fail

INJECTED_HEADER = "# Parameters"  # the first line of papermill's injected cell
BOOL_WORDS = {"true": True, "True": True, "false": False, "False": False}  # papermill -r / -p strings read as bools
BOOL_ALLOWED = "True or False (or, as papermill -r passes them, the strings 'true' or 'false')"


def _assignments(source: str) -> list[tuple[str, ast.expr]]:
    """(name, value expression) of every top-level assignment of a cell's source, in order."""
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            out += [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.append((node.target.id, node.value))
    return out


def assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a cell's source, in order."""
    return [name for name, _ in _assignments(source)]


def boolean_parameters(source: str) -> list[str]:
    """Names a parameters cell assigns a ``True`` or ``False`` literal: the notebook's boolean parameters."""
    return [n for n, v in _assignments(source) if isinstance(v, ast.Constant) and isinstance(v.value, bool)]


def as_bool(name: str, value: Any) -> bool:
    """`value` as a bool: a bool (Python's or numpy's), or exactly a string of `BOOL_WORDS`; else ValueError."""
    if isinstance(value, str) and value in BOOL_WORDS:
        return BOOL_WORDS[value]
    if isinstance(value, (bool, np.bool_)):  # never a str or an int
        return bool(value)
    fail(name, value, BOOL_ALLOWED)


def unknown_parameters(known: list[str], given: list[str]) -> dict[str, str | None]:
    """{given name not in known: the closest known name (None if none is close)}."""
    return {n: next(iter(difflib.get_close_matches(n, known, n=1, cutoff=0.6)), None) for n in given if n not in known}


def check_parameters(namespace: MutableMapping[str, Any]) -> None:
    """ValueError naming every injected parameter the notebook does not define (and the closest one it does), or a
    boolean parameter given another value than `as_bool` takes; a boolean given as "true"/"false" becomes the bool.

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
    for name in boolean_parameters(cells[i - 1]):
        if name in namespace:
            namespace[name] = as_bool(name, namespace[name])
