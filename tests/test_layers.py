"""The layering of geomon as tests: which wing may import which, and how tall the import graph stands.

Every module of ``geomon/`` is parsed with :mod:`ast` (nothing is imported). An import is any
``import x`` / ``from x import y`` (relative ones resolved), at module level or inside a function, any
``importlib.import_module("...")`` with a literal name, and every entry of the lazy table (``_LAZY``) of
``geomon/__init__.py``. Each import is charged to the wing of the importing module and checked against
:data:`ALLOWED` (docs/architecture.md draws the same table). ``kernels/`` imports no geomon but itself
(``geomon.kernels``) and no cli, and ``geomon/`` never imports ``geomon.cli``.

A module should stay near 500 lines (STYLE.md: a file that passes ~500 lines is asking to be split);
the test fails above :data:`MAX_LINES` and lists every offender.

:func:`import_floors` gives each module its floor: 1 + the highest floor among the geomon modules it
imports at module level (function-level imports, which run late, are left out). Print the counts with::

    python -m tests.test_layers              # geomon/ of this checkout
    python -m tests.test_layers OTHER/geomon # any other tree, e.g. a git worktree of an older commit
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GEOMON = REPO / "geomon"
KERNELS = REPO / "kernels"

#: The wings of the library, each a folder of geomon/.
WINGS = ("geo", "rules", "io", "tracks", "engine", "store", "run", "office", "sim")
#: The modules at the top of geomon/ that every wing may import.
TOP = ("schema", "errors")
#: What the importing wing may import (its own modules always). ``kernels`` is geomon.kernels (kernels/).
ALLOWED: dict[str, frozenset[str]] = {
    "schema": frozenset(),
    "errors": frozenset(),
    "geo": frozenset({"schema", "errors", "kernels"}),
    "rules": frozenset({"errors", "schema"}),
    "io": frozenset({"geo", "rules", "schema", "errors", "kernels"}),
    "tracks": frozenset({"geo", "io", "rules", "schema", "errors", "kernels"}),
    "engine": frozenset({"tracks", "rules", "geo", "io", "schema", "errors", "kernels"}),
    "store": frozenset({"io", "schema", "errors"}),
    "office": frozenset({"store", "engine", "tracks", "rules", "geo", "io", "schema", "errors", "kernels"}),
    "run": frozenset(set(WINGS + TOP) - {"run", "sim"} | {"kernels"}),
    "sim": frozenset(set(WINGS + TOP) - {"sim", "run"} | {"kernels"}),
}
#: ``geomon/__init__.py`` (the package itself) imports little at once, so ``import geomon`` stays cheap, and
#: loads its public names lazily from any wing but the simulator.
ROOT = "geomon"
ROOT_EAGER = frozenset({"schema", "errors"})
ROOT_LAZY = frozenset(set(WINGS + TOP) - {"sim"} | {"kernels"})

#: Line limit of a module of geomon/ (STYLE.md: a file that passes ~500 lines is asking to be split).
MAX_LINES = 500


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Import:
    """One import found in a module: who imports what, where, and whether it runs when the module loads."""

    path: Path
    line: int
    module: str
    target: str
    lazy: bool

    def where(self) -> str:
        try:
            path = self.path.relative_to(REPO)
        except ValueError:
            path = self.path
        return f"{path}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a file under ``root`` (a package folder): ``geomon/engine/__init__.py`` -> ``geomon.engine``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files(root: Path) -> dict[str, Path]:
    """Every module (``.py`` file, package ``__init__`` files included) under ``root``, by dotted name."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def _lazy_table(tree: ast.Module) -> dict[str, tuple[str, int]]:
    """``name -> (module, line)`` of a module-level ``_LAZY = {"name": "module", ...}``."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets) and isinstance(node.value, ast.Dict):
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    out[key.value] = (value.value, value.lineno)
    return out


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def lazy_names(root: Path) -> dict[str, str]:
    """The lazy public names of the package at ``root`` (its ``__init__``'s ``_LAZY``): name -> module."""
    init = root / "__init__.py"
    return {k: m for k, (m, _) in _lazy_table(_parse(init)).items()} if init.exists() else {}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in ("import_module", "__import__"))


class _Finder(ast.NodeVisitor):
    """Collects the imports of one module; ``lazy`` while inside a function or an ``if TYPE_CHECKING:``."""

    def __init__(self, path: Path, module: str, is_package: bool, known: set[str], lazy_of_root: dict[str, str],
                 root_name: str):
        self.path, self.module, self.known = path, module, known
        self.package = module if is_package else module.rpartition(".")[0]
        self.lazy_of_root, self.root_name = lazy_of_root, root_name
        self.depth = 0
        self.found: list[Import] = []

    def _add(self, node: ast.AST, target: str) -> None:
        found = Import(self.path, node.lineno, self.module, target, self.depth > 0)
        if found not in self.found:          # from geomon.kernels import a, b: one import of geomon.kernels
            self.found.append(found)

    def _late(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _late

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            parent = ".".join(base + ([node.module] if node.module else []))
        else:
            parent = node.module or ""
        for alias in node.names:
            child = f"{parent}.{alias.name}"
            if child in self.known:
                self._add(node, child)           # from geomon.engine import checkins: the submodule
            elif parent == self.root_name and alias.name in self.lazy_of_root:
                self._add(node, self.lazy_of_root[alias.name])   # from geomon import fuse: loads its module
            else:
                self._add(node, parent)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_import_module(node.func) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self._add(node, node.args[0].value)
        self.generic_visit(node)


def find_imports(root: Path, *, name: str | None = None) -> list[Import]:
    """Every import of every module under ``root`` (a package folder; ``name``: its import name, by default
    the folder's). The ``_LAZY`` table of the package's ``__init__`` counts as lazy imports of the package."""
    files = module_files(root)
    if name is not None and name != root.name:
        files = {name + m[len(root.name):]: p for m, p in files.items()}
    root_name = name or root.name
    known = set(files)
    lazy_of_root = lazy_names(root)
    out: list[Import] = []
    for module, path in files.items():
        finder = _Finder(path, module, path.name == "__init__.py", known, lazy_of_root, root_name)
        tree = _parse(path)
        finder.visit(tree)
        out.extend(finder.found)
        if module == root_name:
            out.extend(Import(path, line, module, target, True) for target, line in _lazy_table(tree).values())
    return out


# --------------------------------------------------------------------------- the rules


def wing_of(module: str) -> str | None:
    """The wing of a dotted name: ``geomon.engine.monitor`` -> ``engine``; ``geomon`` -> ``geomon``; outside
    geomon (numpy, duckdb) -> None. Bare ``kernels``/``cli`` are their own names, so they show up."""
    parts = module.split(".")
    if parts[0] in ("kernels", "cli"):
        return "bare " + parts[0]
    if parts[0] != ROOT:
        return None
    return parts[1] if len(parts) > 1 else ROOT


def layer_violations(root: Path = GEOMON) -> dict[str, list[str]]:
    """Per importing wing, each import it may not make, as ``file:line: module imports target (wing)``."""
    out: dict[str, list[str]] = {}
    for imp in find_imports(root):
        mine, theirs = wing_of(imp.module), wing_of(imp.target)
        if theirs is None or theirs == mine or theirs == ROOT:
            continue       # not geomon, its own wing, or the package itself (``from geomon import __version__``)
        if mine == ROOT:
            allowed = ROOT_LAZY if imp.lazy else ROOT_EAGER
        else:
            allowed = ALLOWED.get(mine, frozenset())
        if theirs not in allowed:
            how = "lazily " if imp.lazy else ""
            out.setdefault(mine, []).append(f"{imp.where()}: {imp.module} {how}imports {imp.target} ({theirs})")
    return out


def _top_level_parts(root: Path) -> list[str]:
    parts = []
    for p in sorted(root.iterdir()):
        if p.suffix == ".py" and p.name != "__init__.py":
            parts.append(p.stem)
        elif p.is_dir() and (p / "__init__.py").exists():
            parts.append(p.name)
    return parts


# --------------------------------------------------------------------------- floors


def import_floors(root: Path = GEOMON) -> dict[str, int]:
    """Floor of each module under ``root``: 1 + the highest floor of the modules under ``root`` it imports at
    module level (1 when it imports none). Function-level and ``TYPE_CHECKING`` imports are left out, and so
    are modules outside ``root`` (geomon.kernels lives in kernels/). Modules in an import cycle share a floor.
    """
    files = module_files(root)
    edges: dict[str, set[str]] = {m: set() for m in files}
    for imp in find_imports(root):
        if not imp.lazy and imp.target in files and imp.target != imp.module:
            edges[imp.module].add(imp.target)
    component = _strongly_connected(edges)
    floor: dict[int, int] = {}

    def floor_of(c: int) -> int:
        if c not in floor:
            below = {component[t] for m in members[c] for t in edges[m]} - {c}
            floor[c] = 1 + max((floor_of(b) for b in below), default=0)
        return floor[c]

    members: dict[int, list[str]] = {}
    for m, c in component.items():
        members.setdefault(c, []).append(m)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(files) + 100))
    return {m: floor_of(component[m]) for m in files}


def import_cycles(root: Path = GEOMON) -> list[list[str]]:
    """Groups of modules under ``root`` that import each other at module level (none, ideally)."""
    files = module_files(root)
    edges: dict[str, set[str]] = {m: set() for m in files}
    for imp in find_imports(root):
        if not imp.lazy and imp.target in files and imp.target != imp.module:
            edges[imp.module].add(imp.target)
    groups: dict[int, list[str]] = {}
    for m, c in _strongly_connected(edges).items():
        groups.setdefault(c, []).append(m)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _strongly_connected(edges: dict[str, set[str]]) -> dict[str, int]:
    """Tarjan's strongly connected components (iterative): node -> component number."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    component: dict[str, int] = {}
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component[member] = index[node]
                        if member == node:
                            break
    return component


# --------------------------------------------------------------------------- tests


def test_every_part_of_geomon_is_a_wing_with_rules():
    unknown = [p for p in _top_level_parts(GEOMON) if p not in ALLOWED]
    assert not unknown, f"geomon/ holds parts the layering rules do not know (add them to ALLOWED): {unknown}"


@pytest.mark.parametrize("wing", (ROOT, *TOP, *WINGS))
def test_wing_imports_only_the_wings_it_may(wing):
    bad = layer_violations().get(wing, [])
    allowed = sorted(ROOT_EAGER | ROOT_LAZY if wing == ROOT else ALLOWED[wing])
    assert not bad, f"{wing} may import only {allowed}:\n" + "\n".join(bad)


def test_engine_never_imports_store_run_office_or_sim():
    # Said twice on purpose: the engine must stay usable without DuckDB and the drivers above it.
    bad = [line for line in layer_violations().get("engine", [])
           if any(f"({w})" in line for w in ("store", "run", "office", "sim"))]
    assert not bad, "\n".join(bad)


def test_lazy_names_of_geomon_exist():
    """Every name of geomon's lazy table is defined (or imported) at the top of the module it points to."""
    files = module_files(GEOMON)
    missing = []
    for name, module in lazy_names(GEOMON).items():
        path = files.get(module)
        if path is None or name not in _top_level_names(_parse(path)):
            missing.append(f"{name} -> {module}")
    assert not missing, f"geomon._LAZY names a module or name that does not exist: {missing}"


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_kernels_import_no_geomon_and_no_cli():
    bad = [f"{imp.where()}: imports {imp.target}" for imp in find_imports(KERNELS, name="geomon.kernels")
           if imp.target.split(".")[0] in ("kernels", "cli")
           or imp.target.split(".")[0] == ROOT and imp.target.split(".")[:2] != ["geomon", "kernels"]]
    assert not bad, "kernels/ imports only numpy, numba and itself (as geomon.kernels):\n" + "\n".join(bad)


def test_geomon_never_imports_the_cli():
    bad = [f"{imp.where()}: imports {imp.target}" for imp in find_imports(GEOMON)
           if wing_of(imp.target) in ("cli", "bare cli", "bare kernels")]
    assert not bad, "geomon/ never imports geomon.cli (nor a bare kernels or cli):\n" + "\n".join(bad)


@pytest.mark.parametrize("module", ["geomon.engine", "geomon.engine.monitor"])
def test_engine_loads_without_duckdb(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'duckdb')[:1])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", f"import {module} loaded duckdb: {out.stdout.strip()}"


def test_no_module_over_the_line_limit():
    """No module of geomon/ over MAX_LINES lines; every offender listed."""
    over = {str(path.relative_to(REPO)): n for path in module_files(GEOMON).values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them along a seam): {over}"


def test_import_floors_of_geomon():
    floors = import_floors()
    assert set(floors) == set(module_files(GEOMON))
    assert floors["geomon.schema"] == floors["geomon.errors"] == 1
    # The engine stands on the tracks, which stand on geo: floors grow along the arrows.
    assert floors["geomon.engine.monitor"] > floors["geomon.tracks.fusion"] > floors["geomon.geo.crs"]


# The checker itself: a small tree with known violations, so a rule that can never fail would show here.


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "geomon"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_the_checker_finds_what_is_forbidden(tmp_path):
    root = _tree(tmp_path, {
        "__init__.py": '_LAZY = {"AlertStore": "geomon.store.alert_store", "simulate": "geomon.sim.simulate"}\n',
        "errors.py": "",
        "schema.py": "from geomon.errors import X\n",
        "engine/__init__.py": "from .monitor import Monitor\n",
        "engine/monitor.py": """\
            import importlib
            from geomon.tracks import fusion
            from geomon import AlertStore


            def later():
                from geomon.store.alert_store import AlertStore
                return importlib.import_module("geomon.run.replay")
            """,
        "store/__init__.py": "",
        "store/alert_store.py": "import duckdb\nfrom geomon.io.export import pseudonym\nimport geomon.cli.main\n",
        "sim/__init__.py": "",
        "sim/simulate.py": "from geomon.run import replay\n",
        "tracks/__init__.py": "",
        "tracks/fusion.py": "from geomon.geo.crs import LocalFrame\nfrom kernels import fusion\n",
    })
    found = layer_violations(root)
    lines = {w: [line.split(": ", 1)[1] for line in v] for w, v in found.items()}
    assert lines == {
        "geomon": ["geomon lazily imports geomon.sim.simulate (sim)"],
        "schema": ["geomon.schema imports geomon.errors (errors)"],
        "engine": ["geomon.engine.monitor imports geomon.store.alert_store (store)",
                   "geomon.engine.monitor lazily imports geomon.store.alert_store (store)",
                   "geomon.engine.monitor lazily imports geomon.run.replay (run)"],
        "store": ["geomon.store.alert_store imports geomon.cli.main (cli)"],
        "sim": ["geomon.sim.simulate imports geomon.run (run)"],
        "tracks": ["geomon.tracks.fusion imports kernels (bare kernels)"],
    }
    assert found["engine"][0].endswith("monitor.py:3: geomon.engine.monitor imports geomon.store.alert_store (store)")
    floors = import_floors(root)
    # engine.monitor -> geomon.store.alert_store (from geomon import AlertStore, at module level) and
    # tracks.fusion; the function-level imports do not count.
    assert floors["geomon.errors"] == 1 and floors["geomon.schema"] == 2
    assert floors["geomon.store.alert_store"] == 1 and floors["geomon.engine.monitor"] == 2
    assert floors["geomon.engine"] == 3
    assert import_cycles(root) == []


def test_floors_put_a_cycle_on_one_floor(tmp_path):
    root = _tree(tmp_path, {"__init__.py": "", "a.py": "import geomon.b\n", "b.py": "from geomon import a\n",
                            "c.py": "from geomon.a import x\n"})
    assert import_floors(root) == {"geomon": 1, "geomon.a": 1, "geomon.b": 1, "geomon.c": 2}
    assert import_cycles(root) == [["geomon.a", "geomon.b"]]


def tallest_chain(root: Path, start: str, floors: dict[str, int]) -> list[str]:
    """From ``start`` down, each time to a module-level import one floor lower: why ``start`` stands so high."""
    below: dict[str, list[str]] = {}
    for imp in find_imports(root):
        if not imp.lazy and imp.target in floors:
            below.setdefault(imp.module, []).append(imp.target)
    chain = [start]
    while True:
        lower = sorted(t for t in below.get(chain[-1], ()) if floors[t] == floors[chain[-1]] - 1)
        if not lower:
            return chain
        chain.append(lower[0])


def main(argv: list[str]) -> None:
    root = Path(argv[0]).resolve() if argv else GEOMON
    floors = import_floors(root)
    height = max(floors.values(), default=0)
    print(f"{root}: {len(floors)} modules on {height} floors")
    per_floor = Counter(floors.values())
    for level in range(1, height + 1):
        print(f"  floor {level:2d}: {per_floor[level]:3d} modules")
    top = sorted(m for m, f in floors.items() if f == height)
    print(f"  top floor: {', '.join(top)}")
    if top:
        print(f"  a tallest chain: {' -> '.join(tallest_chain(root, top[0], floors))}")
    cycles = import_cycles(root)
    if cycles:
        print(f"  module-level import cycles (one floor each): {cycles}")


if __name__ == "__main__":
    main(sys.argv[1:])
