"""README.md and docs/*.md: relative links resolve, anchors name headings, no moved module leaves a stale path.

Checked without importing memnb (module-level names are read from the source with `ast`):

- every Markdown link or image ``[text](target)`` outside code whose target is not http(s)/mailto
  points at an existing file or folder, relative to the page; an ``#anchor`` into a ``.md`` page
  (or into the page itself) must be the GitHub-style slug of one of its headings;
- README.md has at most 200 lines and links to every docs/*.md page; every docs page starts with a
  ``# Title`` and links back to the README;
- every repository path named in backticks (``memnb/...py``, ``memnb/<package>/``, ``tests/...``,
  ``notebooks/...``, ``benchmarks/...``, ``scripts/...``) exists;
- every dotted name ``memnb.a.b`` and every ``from memnb.a import b`` in backticks or code blocks
  names a module that exists and, where it goes on past a module, a name that module defines or imports;
  so does every such name in memnb's own docstrings, comments and strings (reported as file:line);
- the module tables of docs/architecture.md and README.md are those `scripts/doc_tables.py` generates
  from the source (a module missing, stale or extra fails, naming it).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import re
import sys
import tokenize
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 200

# Paths the docs name on purpose before the code that holds them has landed (being written in
# parallel). A missing path listed here skips, naming it, instead of failing; drop an entry once
# the file exists.
PENDING: dict[str, str] = {}  # path -> what it will hold

FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n]*\n.*?^\1\2[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
REPO_PATH = re.compile(r"(?<![\w./-])((?:memnb|tests|notebooks|benchmarks|scripts)/[\w./-]*[\w/])")
DOTTED = re.compile(r"(?<![\w./-])memnb(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(r"\bfrom[ \t]+(memnb(?:\.\w+)*)[ \t]+import[ \t]+(?:\(([^)]*)\)|([\w \t,]+))")


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def without_fences(text: str) -> str:
    """The text with fenced code blocks blanked (line numbers kept)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def without_code(text: str) -> str:
    """The text with fenced blocks and inline code spans blanked (so their contents are not links)."""
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), without_fences(text))


def code_of(text: str) -> list[str]:
    """Contents of every fenced block and inline code span."""
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    rest = FENCE.sub("", text)
    return blocks + [m.group(2) for m in CODE_SPAN.finditer(rest)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in HEADING.finditer(without_fences(page.read_text(encoding="utf-8"))):
        s = slug(m.group(2))
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return frozenset(out)


def links(page: Path) -> list[tuple[str, str]]:
    """(text, target) of every Markdown link and image outside code."""
    return [(m.group(1), m.group(2)) for m in LINK.finditer(without_code(page.read_text(encoding="utf-8")))]


def local_targets(page: Path) -> list[tuple[str, Path, str]]:
    """(raw target, resolved path, anchor) of every link that is not http(s) or mailto."""
    out = []
    for _, target in links(page):
        if re.match(r"(?i)(https?:|mailto:)", target):
            continue
        path, _, anchor = target.partition("#")
        out.append((target, (page.parent / path).resolve() if path else page, anchor))
    return out


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_and_anchors_resolve(page):
    problems = []
    for target, path, anchor in local_targets(page):
        if not path.exists():
            problems.append(f"{target}: no file {path}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(
                f"{target}: no heading with anchor #{anchor} in {rel(path)} "
                f"(anchors: {', '.join(sorted(anchors(path)))})"
            )
    assert not problems, f"{rel(page)}:\n" + "\n".join(problems)


def test_readme_is_short_and_links_every_docs_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; at most {MAX_README_LINES}"
    assert DOCS, "docs/ holds no page"
    linked = {path for _, path, _ in local_targets(README)}
    missing = [rel(p) for p in DOCS if p.resolve() not in linked]
    assert not missing, f"README.md does not link to {missing}"


@pytest.mark.parametrize("page", DOCS, ids=rel)
def test_docs_page_has_a_title_and_links_back(page):
    lines = page.read_text(encoding="utf-8").splitlines()
    assert lines and re.match(r"# \S", lines[0]), f"{rel(page)} must start with '# Title'"
    head = "\n".join(lines[:5])
    assert re.search(r"Back to the \[README\]\(\.\./README\.md\)", head), (
        f"{rel(page)}: no 'Back to the [README](../README.md)' line"
    )


def named_paths() -> dict[str, list[str]]:
    """Repository path -> pages that name it in backticks."""
    out: dict[str, list[str]] = {}
    for page in PAGES:
        for code in code_of(page.read_text(encoding="utf-8")):
            for m in REPO_PATH.finditer(code):
                path = m.group(1)
                if "<" in path or "*" in path or ".." in path or "…" in path:  # a pattern, not a path
                    continue
                out.setdefault(path, []).append(rel(page))
    return out


def test_every_memnb_path_is_named_somewhere():
    """The path scan itself works: the docs name modules of the package."""
    assert any(p.startswith("memnb/") and p.endswith(".py") for p in named_paths())


def test_named_paths_exist():
    missing = {p: pages for p, pages in named_paths().items() if p not in PENDING and not (ROOT / p).exists()}
    assert not missing, "paths in backticks that do not exist (a module moved?):\n" + "\n".join(
        f"  {p}  (in {', '.join(sorted(set(pages)))})" for p, pages in sorted(missing.items())
    )


def test_pending_paths():
    """Paths the docs name ahead of the code (PENDING): skipped, by name, until they exist."""
    missing = [p for p in PENDING if not (ROOT / p).exists()]
    if missing:
        pytest.skip("named in the docs, not yet in the tree: " + ", ".join(f"{p} ({PENDING[p]})" for p in missing))


@cache
def module_file(dotted: str) -> Path | None:
    """memnb.a.b -> memnb/a/b.py or memnb/a/b/__init__.py, None when neither exists."""
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@cache
def defined_names(path: Path) -> frozenset[str]:
    """Names a module defines or imports at its top level (functions, classes, assignments, imports)."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def dotted_problem(dotted: str) -> str | None:
    """Why `dotted` (memnb.a.b...) names nothing, or None.

    Every module on the way must exist; the first name past a module must be defined or imported there.
    """
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        module, name = ".".join(parts[:i]), parts[i]
        path = module_file(module)
        if module_file(f"{module}.{name}") is not None:
            continue  # a submodule: go on
        if path is None:
            return f"no module {module}"
        if name not in defined_names(path):
            return f"{module} has no module or name {name!r}"
        return None  # an attribute of an existing module: what follows is not checked
    return None


def named_python() -> dict[str, list[str]]:
    """Dotted memnb names and `from memnb... import x` targets in code -> pages naming them."""
    out: dict[str, list[str]] = {}
    for page in PAGES:
        for code in code_of(page.read_text(encoding="utf-8")):
            for m in DOTTED.finditer(code):
                out.setdefault(m.group(0), []).append(rel(page))
            for m in FROM_IMPORT.finditer(code):
                imported = m.group(2) if m.group(2) is not None else m.group(3)
                for name in re.split(r"[\s,]+", re.sub(r"#[^\n]*", "", imported).strip()):
                    if name:
                        out.setdefault(f"{m.group(1)}.{name}", []).append(rel(page))
    return out


def test_dotted_names_exist():
    names = named_python()
    assert any(n.startswith("memnb.") for n in names)
    problems = {n: pages for n, pages in names.items() if dotted_problem(n)}
    assert not problems, "memnb names in the docs that do not exist:\n" + "\n".join(
        f"  {n}: {dotted_problem(n)}  (in {', '.join(sorted(set(p)))})" for n, p in sorted(problems.items())
    )


def test_slug_matches_github():
    assert slug('Does "outliers memorized last" hold?') == "does-outliers-memorized-last-hold"
    assert slug("In a real browser (`tests/test_browser.py`)") == "in-a-real-browser-teststest_browserpy"
    assert slug("Where to add …") == "where-to-add-"
    assert slug("Noise (`z`)") == "noise-z"


def source_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and string literal (docstrings included) of a Python file."""
    source = path.read_text(encoding="utf-8")
    out = [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    out += [
        (t.start[0], t.string)
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type == tokenize.COMMENT
    ]
    return out


def source_names() -> list[tuple[str, str]]:
    """(file:line, name) of every dotted memnb name and `from memnb... import x` in memnb's docstrings and comments."""
    out = []
    for path in sorted((ROOT / "memnb").rglob("*.py")):
        for line, text in source_texts(path):
            for m in DOTTED.finditer(text):
                out.append((f"{rel(path)}:{line + text.count(chr(10), 0, m.start())}", m.group(0)))
            for m in FROM_IMPORT.finditer(text):
                imported = m.group(2) if m.group(2) is not None else m.group(3)
                for name in re.split(r"[\s,]+", re.sub(r"#[^\n]*", "", imported).strip()):
                    if name:
                        out.append((f"{rel(path)}:{line + text.count(chr(10), 0, m.start())}", f"{m.group(1)}.{name}"))
    return out


def test_dotted_names_in_the_source_exist():
    """A docstring or comment of memnb that names a memnb module names one that exists (file:line, name, why)."""
    names = source_names()
    assert any(n.startswith("memnb.") for _, n in names)
    problems = [(where, n, dotted_problem(n)) for where, n in names if dotted_problem(n)]
    assert not problems, "memnb names in memnb's docstrings and comments that do not exist:\n" + "\n".join(
        f"  {where}: {n}: {why}" for where, n, why in problems
    )


@cache
def doc_tables():
    """scripts/doc_tables.py, imported from its file (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("doc_tables", ROOT / "scripts" / "doc_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("doc_tables", module)  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_module_tables_match_the_source():
    """docs/architecture.md's module tables and README.md's package table are what the source says."""
    problems = doc_tables().problems()
    assert not problems, "module tables out of date (run `python scripts/doc_tables.py --write`):\n" + "\n".join(
        f"  {p}" for p in problems
    )


def test_doc_tables_names_what_is_wrong(tmp_path, monkeypatch):
    """The check names a missing, a stale and an extra module (on a copy of a page, not the real one)."""
    tables = doc_tables()
    page = tmp_path / "architecture.md"
    body = tables.modules_table(["memnb/core"]).splitlines(keepends=True)
    seeding = next(i for i, row in enumerate(body) if "`memnb/core/seeding.py`" in row)
    storage = next(i for i, row in enumerate(body) if "`memnb/core/storage.py`" in row)
    body[storage] = "| `memnb/core/storage.py` | an old description |\n"
    del body[seeding]
    body.append("| `memnb/core/gone.py` | a module that moved away |\n")
    page.write_text("# x\n\n<!-- modules:begin memnb/core -->\n" + "".join(body) + "<!-- modules:end -->\n")
    monkeypatch.setattr(tables, "PAGES", (page,))
    found = "\n".join(tables.problems())
    assert "missing memnb/core/seeding.py" in found
    assert "stale memnb/core/storage.py" in found
    assert "extra memnb/core/gone.py" in found
    assert "missing memnb/data/toys.py" in found  # a package no table names
    tables.write()
    assert "memnb/core/gone.py" not in page.read_text() and "`memnb/core/seeding.py`" in page.read_text()
