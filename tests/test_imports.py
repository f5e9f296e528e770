"""The package's imports run one way: no import circle between sr_bench's modules, and no module importing another
module's private names.

Every ``import`` and ``from ... import`` in ``sr_bench/`` is read with ``ast`` — at module level and inside
functions, since a deferred import only hides a circle until the call — and resolved to the sr_bench module it
names (``from sr_bench.run import folder`` is the module ``sr_bench.run.folder``; ``from sr_bench.models import
load_plugin`` is the package ``sr_bench.models``, whose ``__init__`` is a module like any other). A parent package is
not an edge of its own: Python initialises it before any child whoever imports, so it is no choice of the importer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sr_bench"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path):
    """(imported sr_bench module, the names taken from it, line) for every import statement of a module."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, up level - 1 more
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source not in MODULES:
                continue
            taken = []
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES:  # `from pkg import module`
                    yield sub, [], node.lineno
                else:
                    taken.append(alias.name)
            if taken:
                yield source, taken, node.lineno


GRAPH = {name: {} for name in MODULES}  # module -> {imported module: first line}
PRIVATE = []  # "module:line takes _name from other"
for _name, _path in MODULES.items():
    for _target, _taken, _line in _imports(_name, _path):
        if _target != _name:
            GRAPH[_name].setdefault(_target, _line)
        PRIVATE += [f"{_name}:{_line} takes {t} from {_target}" for t in _taken
                    if t.startswith("_") and not t.startswith("__") and _target != _name]


def _cycles(graph: dict[str, dict]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _describe(component: list[str]) -> str:
    edges = [f"{a} -> {b} (line {GRAPH[a][b]})" for a in component for b in GRAPH[a] if b in component]
    return "; ".join(edges)


def test_the_walk_sees_module_level_and_deferred_imports():
    # a property of the walker, checked on modules known to import each kind (a walker that missed function-level
    # imports would find no circles at all)
    assert "sr_bench.run.folder" in GRAPH["sr_bench.run.runner"]
    deferred = [t for t, _, line in _imports("sr_bench.cli", MODULES["sr_bench.cli"]) if line > 100]
    assert "sr_bench.report.tables" in deferred


def test_cycle_finder_on_a_known_graph():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}, "e": {"e": 1}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_circle():
    found = _cycles(GRAPH)
    assert not found, "import circles:\n" + "\n".join(_describe(c) for c in found)


def test_no_private_names_taken_from_another_module():
    assert not PRIVATE, "\n".join(PRIVATE)


@pytest.mark.parametrize("layer, later", [
    ("sr_bench.run.request", ("sr_bench.run.context", "sr_bench.run.evaluation", "sr_bench.run.executors",
                              "sr_bench.run.runner")),
    ("sr_bench.run.context", ("sr_bench.run.evaluation", "sr_bench.run.executors", "sr_bench.run.runner")),
    ("sr_bench.run.evaluation", ("sr_bench.run.executors", "sr_bench.run.runner")),
    ("sr_bench.run.executors", ("sr_bench.run.runner",)),
])
def test_run_layers_import_one_way(layer, later):
    """request -> context -> evaluation -> executors -> runner: no layer reaches a later one, even indirectly."""
    seen, todo = set(), [layer]
    while todo:
        for nxt in GRAPH[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert not seen & set(later), f"{layer} reaches {sorted(seen & set(later))}"
