"""The module tables of the docs, generated from the source: one row per module, its docstring's summary.

A table sits between two marker comments in a Markdown page::

    <!-- modules:begin memnb/core -->
    | module | what it holds |
    | --- | --- |
    | `memnb/core/__init__.py` | ... |
    <!-- modules:end -->

The begin marker names one or more folders (``memnb/core``, or ``memnb`` for the top-level files alone);
the table lists every public module in them (``__init__.py`` first, then by name; a private ``_name.py``
is left out), each with the first paragraph of its module docstring, whitespace joined. A module belongs
to the deepest folder that a marker names: a sub-folder no marker names goes into its parent's table,
so ``memnb`` alone takes the top-level files.
A ``packages`` table (``<!-- packages:begin -->`` ... ``<!-- packages:end -->``) lists every package of
memnb with its layer (read from ``LAYERS`` in ``tests/test_architecture.py``), the summary of its
``__init__.py`` and its modules.

    python scripts/doc_tables.py --write   # rewrite the tables of docs/architecture.md and README.md
    python scripts/doc_tables.py --check   # write nothing; exit 1 listing every missing, stale or extra row

Nothing is imported from memnb: docstrings are read with ``ast``, so a module that does not import still
gets its row.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "memnb"
PAGES = (ROOT / "docs" / "architecture.md", ROOT / "README.md")
ARCHITECTURE_TEST = ROOT / "tests" / "test_architecture.py"

BLOCK = re.compile(
    r"^<!-- (?P<kind>modules|packages):begin(?P<args>[^>]*?)\s*-->\n(?P<body>.*?)^<!-- (?P=kind):end -->$",
    re.M | re.S,
)
ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| (?P<text>.*) \|$")
MODULES_HEAD = "| module | what it holds |\n| --- | --- |\n"
PACKAGES_HEAD = "| layer | package | what it holds | modules |\n| --- | --- | --- | --- |\n"


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


def summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line ("(no docstring)" when it has none)."""
    if not path.exists():
        return f"(no {path.name})"
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        return "(no docstring)"
    return " ".join(doc.strip().split("\n\n")[0].split()).replace("|", "\\|")


def public(path: Path) -> bool:
    return path.name == "__init__.py" or not path.name.startswith("_")


def public_modules(folder: Path) -> list[Path]:
    """Public modules directly in `folder`: __init__.py first, then by name."""
    return sorted((p for p in folder.glob("*.py") if public(p)), key=lambda p: (p.name != "__init__.py", p.name))


def packages() -> list[Path]:
    """memnb and every folder below it that holds a Python file, sorted by path."""
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    return sorted(folders, key=rel)


def every_module() -> list[str]:
    return sorted(rel(m) for pkg in packages() for m in public_modules(pkg))


def layers() -> dict[str, int]:
    """LAYERS of tests/test_architecture.py (dotted package -> layer), read without importing it."""
    for node in ast.parse(ARCHITECTURE_TEST.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "LAYERS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"no LAYERS in {rel(ARCHITECTURE_TEST)}")


def named_folders() -> set[str]:
    """Every folder a modules marker of the pages names."""
    return {folder for page in PAGES for block in blocks(page) if block.kind == "modules" for folder in block.folders}


def home(module: Path, named: set[str]) -> str | None:
    """The deepest named folder that holds `module` (a sub-folder no marker names goes with its parent)."""
    for folder in [module.parent, *module.parent.parents]:
        if rel(folder) in named:
            return rel(folder)
        if folder == ROOT:
            return None
    return None


def modules_table(folders: list[str], named: set[str] | None = None) -> str:
    named = set(folders) if named is None else named | set(folders)
    rows = []
    for folder in folders:
        mine = [m for pkg in packages() for m in public_modules(pkg) if home(m, named) == folder]
        for module in sorted(mine, key=lambda m: (rel(m.parent), m.name != "__init__.py", m.name)):
            rows.append(f"| `{rel(module)}` | {summary(module)} |\n")
    return MODULES_HEAD + "".join(rows)


def packages_table() -> str:
    layer_of = layers()
    rows = []
    for pkg in packages():
        dotted = ".".join(pkg.relative_to(ROOT).parts)
        layer = layer_of.get(dotted)
        while layer is None and "." in dotted:  # a sub-package is in its package's layer
            dotted = dotted.rpartition(".")[0]
            layer = layer_of.get(dotted) if dotted != "memnb" else None
        modules = ", ".join(f"`{m.name}`" for m in public_modules(pkg) if m.name != "__init__.py")
        row = f"| {'?' if layer is None else layer} | `{rel(pkg)}/` | {summary(pkg / '__init__.py')} | {modules} |\n"
        rows.append((layer is None, layer or 0, rel(pkg), row))
    return PACKAGES_HEAD + "".join(row for *_, row in sorted(rows))


@dataclass(frozen=True)
class Block:
    page: Path
    kind: str
    folders: tuple[str, ...]
    start: int  # offsets of the body in the page's text
    end: int
    body: str

    def expected(self) -> str:
        return packages_table() if self.kind == "packages" else modules_table(list(self.folders), named_folders())


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, m.group("kind"), tuple(m.group("args").split()), m.start("body"), m.end("body"), m.group("body"))
        for m in BLOCK.finditer(text)
    ]


def rows(body: str) -> dict[str, str]:
    """Key (the first column, unquoted) -> the rest of the row, of every table row of a block."""
    out = {}
    for line in body.splitlines():
        if line.startswith("| `"):
            key, _, rest = line[3:].partition("` | ")
            out[key] = rest.removesuffix(" |")
        elif line.startswith("| ") and not line.startswith(("| ---", "| module", "| layer")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) > 1:
                out[cells[1].strip("`")] = line
    return out


def difference(have: str, want: str) -> str:
    """What changed in a row: the modules added and removed (a packages row), else the old and new text."""
    listed = [set(re.findall(r"`([\w.]+\.py)`", row.rpartition(" | ")[2])) for row in (have, want)]
    if have.startswith("| ") and listed[0] != listed[1]:
        added, removed = sorted(listed[1] - listed[0]), sorted(listed[0] - listed[1])
        return "; ".join(f"{what} {', '.join(names)}" for what, names in (("new", added), ("gone", removed)) if names)
    return f"{have!r} -> {want!r}"


def problems() -> list[str]:
    """Every difference between the pages' tables and the source, one line each (empty: all true)."""
    out = []
    covered: set[str] = set()
    for page in PAGES:
        found = blocks(page)
        for block in found:
            for folder in block.folders:
                if not (ROOT / folder).is_dir():
                    out.append(f"{rel(page)}: a table names folder {folder}, which does not exist")
            before = len(out)
            have, want = rows(block.body), rows(block.expected())
            where = f"{rel(page)} ({block.kind} table {' '.join(block.folders)})".replace(" )", ")")
            for key in want:
                if key not in have:
                    out.append(f"{where}: missing {key}")
                elif have[key] != want[key]:
                    out.append(f"{where}: stale {key}: {difference(have[key], want[key])}")
            for key in have:
                if key not in want:
                    out.append(f"{where}: extra {key} (no such module)")
            if block.kind == "packages":
                out.extend(
                    f"{where}: {key} has no layer; add it to LAYERS in {rel(ARCHITECTURE_TEST)}"
                    for key, row in want.items()
                    if row.startswith("| ? |")
                )
            if len(out) == before and block.body != block.expected():
                out.append(f"{where}: rows in another order or layout than generated")
            if block.kind == "modules":
                covered.update(want)
        if page.name == "architecture.md" and not any(b.kind == "modules" for b in found):
            out.append(f"{rel(page)}: no <!-- modules:begin ... --> table")
    for module in every_module():
        if module not in covered:
            folder = module.rpartition("/")[0]
            out.append(
                f"docs/architecture.md: missing {module} (no modules table names {folder} or a folder above it; "
                f"add {folder} to a <!-- modules:begin ... --> marker)"
            )
    return out


def write() -> list[Path]:
    """Rewrite every table of the pages from the source; the pages that changed."""
    changed = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        new = text
        for block in reversed(blocks(page)):
            new = new[: block.start] + block.expected() + new[block.end :]
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the tables from the source")
    mode.add_argument("--check", action="store_true", help="write nothing; exit 1 listing every difference")
    args = parser.parse_args(argv)
    if args.write:
        changed = write()
        print("rewrote " + ", ".join(rel(p) for p in changed) if changed else "tables already up to date")
        rest = problems()  # what --write cannot fix: a module in no table, a marker naming no folder
    else:
        rest = problems()
    for line in rest:
        print(line)
    return 1 if rest else 0


if __name__ == "__main__":
    sys.exit(main())
