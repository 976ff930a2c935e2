"""One way to say that an argument is wrong: "x = v is invalid; allowed: ...", and the checks that say it.

Every public function and config of memnb refuses bad input with `invalid` (a ValueError naming the argument,
the value and what is allowed) before any work; the checks here are the ones several modules need: a real
boolean (not the string "no"), an integer in a range, a finite real; and `UsageError`, the same refusal on a
command line (argparse's exit status 2).
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

import numpy as np

__all__ = ["UsageError", "invalid", "fail", "is_int", "is_real", "check_bool", "check_int", "check_real"]


def invalid(name: str, value: Any, allowed: str) -> ValueError:
    """The ValueError "name = value is invalid; allowed: allowed" (the value's repr cut at 80 characters)."""
    text = value if isinstance(value, _Shown) else repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return ValueError(f"{name} = {text} is invalid; allowed: {allowed}")


class _Shown(str):
    """A value already written as it should be shown (e.g. "an array of shape (3, 2)"), not repr'd."""


def shown(text: str) -> str:
    return _Shown(text)


def fail(name: str, value: Any, allowed: str) -> None:
    raise invalid(name, value, allowed)


def is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def is_real(v: Any) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)


def check_bool(name: str, value: Any) -> bool:
    """`value` as a bool when it is one (Python's or numpy's); else ValueError: a string such as "no" is truthy in
    Python, and taking it for True would do the opposite of what was asked."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    fail(name, value, "True or False")


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """`value` as an int when it is an integer in [lo, hi] (either bound None: unbounded); else ValueError."""
    ok = is_int(value) and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        bounds = " and ".join(
            b for b in (f">= {lo}" if lo is not None else "", f"<= {hi}" if hi is not None else "") if b
        )
        fail(name, value, "an integer" + (f" {bounds}" if bounds else ""))
    return int(value)


def check_real(name: str, value: Any, lo: float | None = None, hi: float | None = None, strict: bool = False) -> float:
    """`value` as a float when it is finite and in [lo, hi] ((lo, hi] with strict); else ValueError."""
    ok = is_real(value) and (lo is None or (value > lo if strict else value >= lo)) and (hi is None or value <= hi)
    if not ok:
        parts = [f"{'>' if strict else '>='} {lo}" if lo is not None else "", f"<= {hi}" if hi is not None else ""]
        bounds = " and ".join(p for p in parts if p)
        fail(name, value, "a finite number" + (f" {bounds}" if bounds else ""))
    return float(value)


class UsageError(SystemExit):
    """Exit status 2 (argparse's) after a one-line message "prog: error: message" on stderr; str() is the message."""

    def __init__(self, prog: str, message: str):
        super().__init__(2)
        self.message = " ".join(message.split())
        print(f"{prog}: error: {self.message}", file=sys.stderr)

    def __str__(self) -> str:
        return self.message
