"""The layout shows the architecture: memnb's import graph, built from the source, has no cycle and no
import that runs upward through the layers.

Layers, bottom to top (a module may import its own package and any lower layer):
0 core; 1 data, models, metric (independent of one another); 2 experiment; 3 analysis; 4 views;
5 workflows; 6 the package's public API (memnb/__init__.py, memnb/_version.py is below everything).
Every import counts: module level and inside functions, absolute ("memnb.x") and relative.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "memnb"
LAYERS = {
    "memnb._version": -1,
    "memnb.core": 0,
    "memnb.data": 1,
    "memnb.models": 1,
    "memnb.metric": 1,
    "memnb.experiment": 2,
    "memnb.analysis": 3,
    "memnb.views": 4,
    "memnb.workflows": 5,
    "memnb": 6,
}


def modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """memnb modules that `name` imports (the most specific known module of each import)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t.split(".")[0] == "memnb" and t != name:
                found.add(t)
                break
    return found


def layer(module: str) -> tuple[str, int]:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, LAYERS[prefix]
    raise AssertionError(f"{module} belongs to no layer; add its package to LAYERS")


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(m, f, set(mods)) for m, f in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                return stack[stack.index(w) :] + [w]
            if w not in state:
                cyc = visit(w)
                if cyc:
                    return cyc
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(edges):
        if v not in state:
            cyc = visit(v)
            if cyc:
                return cyc
    return None


def upward(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, targets in edges.items():
        pkg, rank = layer(m)
        for t in targets:
            tpkg, trank = layer(t)
            if tpkg != pkg and trank >= rank:  # within one package anything goes; across, only downward
                bad.append(f"{m} (layer {rank}) imports {t} (layer {trank})")
    return sorted(bad)


def test_every_module_is_in_a_layer():
    for m in modules():
        layer(m)


def test_no_import_cycle():
    cyc = find_cycle(graph())
    assert cyc is None, " -> ".join(cyc)


def test_no_import_runs_upward():
    assert upward(graph()) == []


def test_the_checker_finds_a_cycle_and_an_upward_import():
    """The two checks are not vacuous: planted defects are caught."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    planted = {
        "memnb.core.config": {"memnb.experiment.runner"},
        "memnb.experiment.runner": set(),
        "memnb.data.toys": {"memnb.models.train"},
        "memnb.models.train": set(),
    }
    assert upward(planted) == [
        "memnb.core.config (layer 0) imports memnb.experiment.runner (layer 2)",
        "memnb.data.toys (layer 1) imports memnb.models.train (layer 1)",
    ]


@pytest.mark.parametrize(
    "source,expected",
    [
        ("from ..core.config import ExperimentConfig", {"memnb.core.config"}),
        ("from . import make_base", {"memnb.data"}),
        ("import memnb.metric.criteria", {"memnb.metric.criteria"}),
        ("def f():\n    from ..experiment.runner import run_experiment", {"memnb.experiment.runner"}),
    ],
)
def test_imports_are_read_from_the_source(source, expected, tmp_path):
    f = tmp_path / "injection.py"
    f.write_text(source)
    known = set(modules())
    assert imports_of("memnb.data.injection", f, known) == expected


# -- plotly lives in memnb/views (and the workflows above it) only -------------------------------------------
def plotly_imports(path: Path) -> list[str]:
    """The plotly modules a source file imports, module level or inside functions ("plotly", "plotly.x.y")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "plotly"]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "plotly":
            found.append(node.module)
    return found


def test_no_module_below_views_imports_plotly():
    views = LAYERS["memnb.views"]
    bad = {m: plotly_imports(f) for m, f in modules().items() if layer(m)[1] < views and plotly_imports(f)}
    assert bad == {}, f"figures belong in memnb/views; these modules below it import plotly: {bad}"


@pytest.mark.parametrize(
    "source,expected",
    [
        ("import plotly", ["plotly"]),
        ("import numpy as np, plotly.graph_objects as go", ["plotly.graph_objects"]),
        ("def f():\n    from plotly.subplots import make_subplots", ["plotly.subplots"]),
        ("class A:\n    def f(self):\n        import plotly.express as px", ["plotly.express"]),
        ("from .plotly import x\nimport plotlyish\n# import plotly", []),
    ],
)
def test_plotly_imports_are_read_from_the_source(source, expected, tmp_path):
    f = tmp_path / "m.py"
    f.write_text(source)
    assert plotly_imports(f) == expected


# -- one idea per module: every module of memnb stays under 400 lines -----------------------------------------
MAX_LINES = 400


def test_every_module_stays_under_400_lines():
    long = {m: n for m, f in modules().items() if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules by idea (at most {MAX_LINES} lines each): {long}"
