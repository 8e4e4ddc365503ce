"""The package's layers, checked statically from the source: no import cycle between any
two modules, and each module imports only from its own package and the layers below.

Every ``import`` counts, at the top of a module, inside a function or under
``TYPE_CHECKING``: a lazy import is still a dependency. docs/architecture.md explains
the layers; a new top-level module or package is placed in ``LAYERS`` here.
"""

import ast
from collections.abc import Iterable
from pathlib import Path

import cnnkit

PACKAGE = Path(cnnkit.__file__).parent

# Lowest first. A top-level module or package may import from any layer below its own;
# two names in one layer are peers and may not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("config", "files", "stops", "progress"),
    ("transforms", "metrics"),
    ("data", "models"),
    ("analysis", "runtime", "baseline"),
    ("runs",),  # the run layer: a trained model and its record
    ("plots",),  # figures that the report, search and history draw
    # Training writes runs; the consumers read them and never import the trainer.
    (
        "trainer",
        "predict",
        "explain",
        "explain_checks",
        "evaluate",
        "export",
        "reports",
        "search",
        "read",
    ),
    ("serve",),  # a consumer that serves the others (predict, explain, search)
    ("training",),  # the one front door for training: the trainer, then the report
    ("bench", "milestones"),  # tools that train through the front door and compare
    ("api",),  # the public API, ``import cnnkit``: what a notebook calls
    ("cli",),  # parsing and rendering only
    ("entry",),  # the console script: stop signals first, then the CLI
    ("__main__",),  # python -m cnnkit
)


def layer_of(top: str) -> int:
    for number, names in enumerate(LAYERS):
        if top in names:
            return number
    raise LookupError(f"cnnkit.{top} has no layer: place it in LAYERS (tests/test_layers.py)")


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported_names(path: Path, name: str) -> set[str]:
    """Every dotted name ``path`` imports, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a package and its own children not
    counted: importing a child through its package is no cycle)."""
    known = modules(package)
    graph = {}
    for name, path in known.items():
        graph[name] = {
            target
            for target in imported_names(path, name)
            if target in known
            and target != name
            and not target.startswith(name + ".")
            and not name.startswith(target + ".")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    with an explicit stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def upward_imports(graph: dict[str, set[str]]) -> Iterable[str]:
    """``a -> b`` for each import of a module from a peer or a higher layer."""
    for name, targets in sorted(graph.items()):
        source = name.split(".")
        if len(source) < 2:
            continue  # the package itself: the public API, which imports lazily
        for target in sorted(targets):
            top, target_top = source[1], target.split(".")[1] if "." in target else ""
            if not target_top or top == target_top:
                continue
            if layer_of(target_top) >= layer_of(top):
                yield f"{name} -> {target}"


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_each_module_imports_only_from_the_layers_below() -> None:
    assert list(upward_imports(import_graph())) == []


def test_every_top_level_module_has_a_layer() -> None:
    tops = {name.split(".")[1] for name in modules() if "." in name}
    for top in tops:
        layer_of(top)  # raises for a module placed nowhere


def test_the_checks_see_a_planted_upward_import_and_a_cycle() -> None:
    """The contract is not vacuous: a model that imports the trainer, and two modules
    that import each other (one lazily), are both found."""
    graph = {
        "cnnkit.models": {"cnnkit.trainer"},
        "cnnkit.trainer": {"cnnkit.models"},
        "cnnkit.trainer.loop": set(),
    }
    assert cycles(graph) == [["cnnkit.models", "cnnkit.trainer"]]
    assert list(upward_imports(graph)) == ["cnnkit.models -> cnnkit.trainer"]


def test_lazy_and_type_checking_imports_count(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n"
    )
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.b"]]


def test_no_test_imports_another_test_module() -> None:
    """Shared test code lives in ``tests/helpers`` or in fixtures, never in a test module
    or a conftest that another test imports."""
    tests = Path(__file__).parent
    offenders = []
    for path in tests.rglob("*.py"):
        name = ".".join(path.relative_to(tests.parent).with_suffix("").parts)
        for imported in imported_names(path, name):
            last = imported.split(".")[-1]
            if imported.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                offenders.append(f"{name} -> {imported}")
    assert offenders == []
