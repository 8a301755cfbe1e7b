"""No import cycles between the project's modules (``src/fluoro_perception``, ``src/fluoro_training``).

Built on :mod:`ast` only: every module under ``src/`` is parsed (not imported), every
``import`` / ``from ... import`` statement anywhere in it (module level, inside
functions, under ``if TYPE_CHECKING:``) is resolved to a project module, and the
strongly connected components of the resulting graph are computed. A component with more
than one module is a cycle, reported as a path ``a -> b -> a``.

Resolution rules: ``import a.b.c`` and ``from a.b.c import x`` are edges to ``a.b.c`` (a
package means its ``__init__``); when ``a.b.c.x`` is itself a module, ``from a.b.c import
x`` is an edge to that submodule instead. Relative imports are resolved against the
importing module's package. Parent packages a dotted import executes on the way are not
edges (else every package ``__init__`` that re-exports its submodules would form a
cycle with each of them). Imports by name at run time (``importlib.import_module``, the
node classes ``config/graph.yaml`` names) are not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = ("fluoro_perception", "fluoro_training")

#: Cycles tolerated for now: the set of modules of the strongly connected component ->
#: why it stays. Empty: no cycle is tolerated. An entry matches only that exact
#: component, so a cycle that grows (or a new one) still fails.
ALLOWED_CYCLES: dict[frozenset[str], str] = {}


def module_files(src: Path = SRC, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file of every module of ``packages`` under ``src``."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((src / package).rglob("*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _package_of(module: str, path: Path) -> str:
    """The package relative imports of ``module`` start from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of dotted ``name`` that is a project module (None: not ours)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """Project modules that ``module`` (source ``path``) imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [_resolve(alias.name, modules) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, path).split(".")
                keep = len(base) - (node.level - 1)
                if keep <= 0:
                    continue  # above the top-level package: not a project import
                parent = ".".join(base[:keep] + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            targets = [
                f"{parent}.{alias.name}"
                if f"{parent}.{alias.name}" in modules
                else _resolve(parent, modules)
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target is not None)
    found.discard(module)
    return found


def import_graph(src: Path = SRC, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module -> project modules it imports, for every module under ``src``."""
    modules = module_files(src, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def strongly_connected_components(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components in discovery order, members sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def cycle_path(graph: Mapping[str, Iterable[str]], component: Iterable[str]) -> list[str]:
    """A shortest cycle through the first module of ``component``: ``[a, b, ..., a]``."""
    members = set(component)
    start = min(members)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = previous[node]
                    return [start, *reversed(path[1:]), start]
                if child in members and child not in previous:
                    previous[child] = node
                    next_frontier.append(child)
        frontier = next_frontier
    raise ValueError(f"{sorted(members)} is not a cycle of the graph")


def cyclic_components(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, sorted."""
    return sorted(c for c in strongly_connected_components(graph) if len(c) > 1)


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One printable cycle per strongly connected component of more than one module."""
    return [cycle_path(graph, component) for component in cyclic_components(graph)]


def unexpected_cycles(
    graph: Mapping[str, Iterable[str]], allowed: Mapping[frozenset[str], str]
) -> list[str]:
    """``"a -> b -> a"`` for every cycle whose component is not in ``allowed``."""
    return [
        " -> ".join(cycle_path(graph, component))
        for component in cyclic_components(graph)
        if frozenset(component) not in allowed
    ]


# ----------------------------------------------------------------------------- tests


def test_cycle_finder_reports_a_synthetic_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    two = {"x": {"y"}, "y": {"x"}, "p": {"q"}, "q": {"p"}}
    assert find_cycles(two) == [["p", "q", "p"], ["x", "y", "x"]]
    assert unexpected_cycles(graph, {}) == ["a -> b -> c -> a"]
    assert unexpected_cycles(two, {frozenset({"p", "q"}): "reason"}) == ["x -> y -> x"]


def test_resolution_of_relative_package_and_submodule_imports(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg.sub import thing\n",
        "pkg/sub/__init__.py": "from .leaf import value\nfrom . import other\n",
        "pkg/sub/leaf.py": "def f():\n    from .. import top\n    import pkg.sub.other as o\n",
        "pkg/sub/other.py": "from pkg import top\nimport numpy\n",
        "pkg/top.py": "from ..outside import x\nfrom pkg.sub.leaf import value\n",
        "pkg/sub/deep.py": "from .... import nothing\nfrom ... import far\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ["pkg"])
    assert graph == {
        "pkg": {"pkg.sub"},
        "pkg.sub": {"pkg.sub.leaf", "pkg.sub.other"},
        "pkg.sub.leaf": {"pkg.top", "pkg.sub.other"},
        "pkg.sub.other": {"pkg.top"},
        "pkg.top": {"pkg.sub.leaf"},
        "pkg.sub.deep": set(),
    }
    assert find_cycles(graph) == [["pkg.sub.leaf", "pkg.top", "pkg.sub.leaf"]]


def test_src_has_no_import_cycles() -> None:
    graph = import_graph()
    assert "fluoro_perception" in graph and "fluoro_training" in graph
    unexpected = unexpected_cycles(graph, ALLOWED_CYCLES)
    if unexpected:
        pytest.fail("import cycles in src/:\n  " + "\n  ".join(unexpected))
