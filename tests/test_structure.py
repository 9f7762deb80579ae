"""The shape of the code, checked: no import cycles between modules, no module reaching into another's private
names, and docs/architecture.md's table of which package uses which is the real one.

Every import counts — at the top of a module, inside a function, under `if TYPE_CHECKING:` — because each is a
dependency a reader has to hold in mind, and a cycle hidden inside a function is still a cycle.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "eimzo_agent"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def resolve(name: str) -> str | None:
    """The module of ours that `name` (a module, or a name inside a module/package) refers to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> list[tuple[str, list[str]]]:
    """(imported module of ours, names taken from it) for every import statement in `module`."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith("eimzo_agent")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("eimzo_agent"):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    found.append((submodule, []))
                else:
                    found.append((base, [alias.name]))
    return [(target, names) for raw, names in found if (target := resolve(raw)) and target != module]


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _ in imports_of(module):
            edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted({*edges, *(t for targets in edges.values() for t in targets)}):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """The unit docs/architecture.md talks about: a sub-package (`keys`), or a top-level module (`agent`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "eimzo_agent"


def package_edges() -> dict[str, set[str]]:
    """Which unit (sub-package or top-level module) imports which other unit."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        for target in targets:
            if package_of(target) != package_of(module):
                edges[package_of(module)].add(package_of(target))
    return edges


def test_no_import_cycles_between_modules() -> None:
    assert cycles(graph()) == []


def compiled_module(package: str, name: str) -> bool:
    """A C extension of the package (the O'zDSt hash accelerator `_gost94`): a module, not a private name."""
    folder = ROOT.joinpath(*package.split("."))
    return folder.is_dir() and any(folder.glob(f"{name}.c"))


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = [
        f"{module} imports {name} from {target}"
        for module in MODULES
        for target, names in imports_of(module)
        for name in names
        if name.startswith("_") and not name.startswith("__") and not compiled_module(target, name)
    ]
    assert offenders == []


def test_the_layers_in_docs_architecture_are_the_real_ones() -> None:
    """docs/architecture.md has a table "package | uses"; it must match the imports, both ways."""
    real = package_edges()
    text = (ROOT / "docs" / "architecture.md").read_text()
    documented: dict[str, set[str]] = {}
    for row in re.finditer(r"^\| `([a-z0-9_]+)/?` \|([^|]*)\|", text, re.MULTILINE):
        documented[row.group(1)] = set(re.findall(r"`([a-z0-9_]+)/?`", row.group(2)))
    packages = {package_of(m) for m in MODULES}
    assert set(documented) == packages, "every package has a row"
    for package in sorted(packages):
        assert documented[package] == real.get(package, set()), package


def test_no_cycles_between_packages_either() -> None:
    """Stronger than the module rule: the layers form a hierarchy (what the table in the docs draws)."""
    assert cycles(package_edges()) == []
